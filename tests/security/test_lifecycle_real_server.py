"""A real ``aiusage serve`` (default settings: unknown users refused) and the real command
line: deactivating, demoting or removing a user, and canceling or removing an organization,
refuses that user's REST requests, new hub connections and open hub connections within 5 s.

Each victim holds a live WebSocket connection (SignalR JSON handshake done) when the command
runs; the clock starts when the command has returned (the change is committed). SQLite, and
PostgreSQL in the integration run. Real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets

from tests.support.platform_procs import Deployment

pytestmark = pytest.mark.integration

RS = "\x1e"
BOUND_S = 5.0

BACKENDS = ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres])]

# (user, org, role, command that takes access away, REST refusal text)
CASES = [
    ("deact", "acme", "Admin", ("user", "deactivate", "deact", "--org", "acme"), "Access revoked"),
    (
        "demoted",
        "acme",
        "Manager",
        ("user", "set-role", "demoted", "--org", "acme", "--role", "Employee"),
        "Forbidden",
    ),
    ("gone", "acme", "Manager", ("user", "remove", "gone", "--org", "acme"), "Access revoked"),
    (
        "ivan",
        "initech",
        "Admin",
        ("org", "set-subscription", "initech", "canceled"),
        "Subscription inactive: canceled",
    ),
    ("al", "umbrella", "Admin", ("org", "remove", "umbrella", "--yes"), "Unknown organization"),
]


@pytest.fixture(params=BACKENDS)
def server(request, tmp_path):
    d = Deployment(tmp_path / "data", database=request.param)
    try:
        for org in ("acme", "initech", "umbrella"):
            d.create_org(org)
        d.run_cli("user", "create", "--org", "acme", "--id", "ann", "--role", "Admin")
        for user, org, role, _, _ in CASES:
            d.run_cli("user", "create", "--org", org, "--id", user, "--role", role)
        proc = d.start_server(AIUSAGE_ALLOW_UNKNOWN_USERS="false")
        yield d, proc
    finally:
        d.close()


async def open_connection(base: str, token: str):
    async with httpx.AsyncClient(base_url=base) as http:
        neg = await http.post(
            "/hubs/analytics/negotiate?negotiateVersion=1",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert neg.status_code == 200, neg.text
    ws = await websockets.connect(
        f"{base.replace('http', 'ws')}/hubs/analytics"
        f"?id={neg.json()['connectionToken']}&access_token={token}"
    )
    await ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
    assert (await asyncio.wait_for(ws.recv(), 5)) == "{}" + RS
    return ws


async def close_of(ws, deadline: float) -> dict | None:
    """The Close message the server sends (None if the connection stays open)."""
    while time.monotonic() < deadline:
        try:
            frame = await asyncio.wait_for(ws.recv(), max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            return None
        except websockets.ConnectionClosed:
            return {"type": 7, "closedWithoutMessage": True}
        for record in str(frame).split(RS):
            if record and json.loads(record).get("type") == 7:
                return json.loads(record)
    return None


async def wait_refused(http: httpx.AsyncClient, request, status: int, text: str, deadline: float):
    while True:
        response = await request()
        if response.status_code == status and text in response.text:
            return time.monotonic()
        assert time.monotonic() < deadline, (response.status_code, response.text)
        await asyncio.sleep(0.05)


async def test_lifecycle_changes_take_effect_within_5s_everywhere(server):
    deployment, proc = server
    base = proc.base_url
    tokens = {user: deployment.token(user, org, role) for user, org, role, _, _ in CASES}
    keeper = deployment.token("ann", "acme", "Admin")
    async with httpx.AsyncClient(base_url=base, timeout=5.0) as http:
        # Before: everyone is served on REST and on the hub.
        for user, _, _, _, _ in CASES:
            r = await http.get("/api/sessions", headers={"Authorization": f"Bearer {tokens[user]}"})
            assert r.status_code == 200, (user, r.text)
        keeper_ws = await open_connection(base, keeper)
        timings = {}
        for user, _, _, command, refusal in CASES:
            token = tokens[user]
            ws = await open_connection(base, token)
            await asyncio.to_thread(deployment.run_cli, *command)
            start = time.monotonic()
            deadline = start + BOUND_S
            auth = {"Authorization": f"Bearer {token}"}
            rest_at = await wait_refused(
                http, lambda a=auth: http.get("/api/sessions", headers=a), 403, refusal, deadline
            )
            negotiate_at = await wait_refused(
                http,
                lambda a=auth: http.post("/hubs/analytics/negotiate?negotiateVersion=1", headers=a),
                403,
                refusal,
                deadline,
            )
            closed = await close_of(ws, deadline)
            await ws.close()
            assert closed is not None, f"{user}: hub connection still open {BOUND_S} s later"
            if "closedWithoutMessage" not in closed:
                assert closed.get("error") == "Access revoked" and not closed.get("allowReconnect")
            timings[user] = (rest_at - start, negotiate_at - start, time.monotonic() - start)
        # The untouched Admin was never disturbed.
        r = await http.get("/api/sessions", headers={"Authorization": f"Bearer {keeper}"})
        assert r.status_code == 200
        await keeper_ws.send(json.dumps({"type": 6}) + RS)
        assert await close_of(keeper_ws, time.monotonic() + 0.5) is None
        await keeper_ws.close()
    print("seconds to refusal (REST, negotiate, open connection):", timings)
    assert all(max(t) <= BOUND_S for t in timings.values()), timings
    assert not [line for line in proc.error_lines() if "Traceback" in line], proc.log()[-3000:]
