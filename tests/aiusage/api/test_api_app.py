async def test_healthz_is_always_ok(api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_reports_the_backplane_down_with_503(api) -> None:
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "backplane": "ok"}
    api.backplane[0] = False
    down = await api.client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["backplane"] == "down"


async def test_openapi_documents_the_platform_endpoints(api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    paths = schema["paths"]
    assert "post" in paths["/api/agent/events"]
    assert "get" in paths["/api/sessions"]
    assert "422" in paths["/api/agent/events"]["post"]["responses"]
    assert "/api/auth/login" in paths


async def test_unknown_paths_answer_json_404(api) -> None:
    response = await api.client.get("/api/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
