"""Exports end to end: job -> file -> ExportCompleted to user:{id} -> signed URL that
serves only the owner and expires."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from tests.aiusage.api.p2b_support import iso, post_events


def stream(p, n_sessions: int, org_user: str = "alice"):
    events = []
    for i in range(n_sessions):
        start = p.clock.now - timedelta(hours=3, minutes=i)
        end = start + timedelta(minutes=20)
        sid = f"sess-{i:03d}"
        events += [
            {
                "eventId": f"{sid}-s",
                "type": "SessionStarted",
                "occurredAt": iso(start),
                "userId": org_user,
                "sessionId": sid,
                "startTime": iso(start),
                "tool": "ChatGPT",
            },
            {
                "eventId": f"{sid}-d",
                "type": "AIDetected",
                "occurredAt": iso(start + timedelta(minutes=1)),
                "userId": org_user,
                "sessionId": sid,
                "tool": "Claude",
                "duration": 12.5,
            },
            {
                "eventId": f"{sid}-e",
                "type": "SessionEnded",
                "occurredAt": iso(end),
                "userId": org_user,
                "sessionId": sid,
                "endTime": iso(end),
                "duration": 1200,
                "aiUsageTime": 300,
            },
        ]
    return events


async def create_and_finish(p, fmt: str, user="mgr", org="acme"):
    body = {"from": iso(p.clock.now - timedelta(days=1)), "to": iso(p.clock.now), "format": fmt}
    r = await p.client.post("/api/exports", json=body, headers=p.auth(user, org, "Admin"))
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "pending" and r.headers["location"] == f"/api/exports/{job['id']}"
    await p.exports.wait_idle()
    return job


async def test_csv_export_runs_notifies_the_requester_and_downloads_for_the_owner(platform):
    p = platform
    await post_events(p, "acme", stream(p, 7))
    await post_events(p, "globex", stream(p, 3, "zed"))  # other tenant: never exported
    p.exports._chunk = 4  # several chunks: rows are streamed, not loaded at once
    job = await create_and_finish(p, "csv")

    done = await p.client.get(f"/api/exports/{job['id']}", headers=p.auth("mgr", "acme", "Admin"))
    assert done.json()["status"] == "done" and done.json()["rowCount"] == 14

    pushes = p.hub.of("ExportCompleted")
    assert [s.group for s in pushes] == ["user:acme:mgr"]
    payload = pushes[0].args[0]
    assert payload["jobId"] == job["id"]
    url = payload["downloadUrl"]
    assert url.startswith(f"/api/exports/{job['id']}/download?")

    r = await p.client.get(url, headers=p.auth("mgr", "acme", "Admin"))
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 14
    assert {row["type"] for row in rows} == {"session", "detection"}
    assert {row["userId"] for row in rows} == {"alice"}
    sessions = [row for row in rows if row["type"] == "session"]
    assert sorted(row["sessionId"] for row in sessions) == [f"sess-{i:03d}" for i in range(7)]
    assert all(float(row["aiUsageSeconds"]) == 300 for row in sessions)


async def test_jsonl_export_has_one_object_per_line(platform):
    p = platform
    await post_events(p, "acme", stream(p, 2))
    job = await create_and_finish(p, "jsonl")
    url = p.hub.of("ExportCompleted")[0].args[0]["downloadUrl"]
    r = await p.client.get(url, headers=p.auth("mgr", "acme", "Admin"))
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert len(lines) == 4 and lines[0]["type"] == "session"
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert job["format"] == "jsonl"


async def test_download_is_refused_to_other_users_and_for_tampered_links(platform):
    p = platform
    await post_events(p, "acme", stream(p, 1))
    job = await create_and_finish(p, "csv")
    url = p.hub.of("ExportCompleted")[0].args[0]["downloadUrl"]
    other_user = await p.client.get(url, headers=p.auth("admin2", "acme", "Admin"))
    assert other_user.status_code == 403
    other_org = await p.client.get(url, headers=p.auth("mgr", "globex", "Admin"))
    assert other_org.status_code == 403
    no_token = await p.client.get(url)
    assert no_token.status_code == 401
    query = parse_qs(urlsplit(url).query)
    forged = (
        f"/api/exports/{job['id']}/download?exp={int(query['exp'][0]) + 3600}&sig={query['sig'][0]}"
    )
    assert (await p.client.get(forged, headers=p.auth("mgr", "acme", "Admin"))).status_code == 403
    # Another user cannot even see the job.
    assert (
        await p.client.get(f"/api/exports/{job['id']}", headers=p.auth("admin2", "acme"))
    ).status_code == 404


async def test_download_link_expires_after_an_hour_and_a_fresh_one_can_be_fetched(platform):
    p = platform
    await post_events(p, "acme", stream(p, 1))
    job = await create_and_finish(p, "csv")
    url = p.hub.of("ExportCompleted")[0].args[0]["downloadUrl"]
    p.clock.advance(minutes=59)
    assert (await p.client.get(url, headers=p.auth("mgr", "acme", "Admin"))).status_code == 200
    p.clock.advance(minutes=2)
    assert (await p.client.get(url, headers=p.auth("mgr", "acme", "Admin"))).status_code == 410
    fresh = (
        await p.client.get(f"/api/exports/{job['id']}", headers=p.auth("mgr", "acme", "Admin"))
    ).json()
    assert fresh["downloadUrl"] != url
    assert (
        await p.client.get(fresh["downloadUrl"], headers=p.auth("mgr", "acme", "Admin"))
    ).status_code == 200


async def test_invalid_export_requests_are_rejected(platform):
    p = platform
    h = p.auth("mgr", "acme", "Admin")
    now = iso(p.clock.now)
    assert (
        await p.client.post(
            "/api/exports", json={"from": now, "to": now, "format": "csv"}, headers=h
        )
    ).status_code == 422
    assert (
        await p.client.post(
            "/api/exports", json={"from": now, "to": now, "format": "xml"}, headers=h
        )
    ).status_code == 422
    assert (
        await p.client.post(
            "/api/exports", json={"from": "2026-03-10T00:00:00", "to": now}, headers=h
        )
    ).status_code == 422
    employee = p.auth("e", "acme", "Employee")
    assert (
        await p.client.post("/api/exports", json={"from": now, "to": now}, headers=employee)
    ).status_code == 403


async def test_worker_mode_leaves_jobs_pending_until_run_pending_claims_each_once(platform):
    p = platform
    await post_events(p, "acme", stream(p, 2))
    p.exports._in_process = False
    body = {"from": iso(p.clock.now - timedelta(days=1)), "to": iso(p.clock.now), "format": "csv"}
    r = await p.client.post("/api/exports", json=body, headers=p.auth("mgr", "acme", "Admin"))
    job_id = r.json()["id"]
    assert (
        await p.client.get(f"/api/exports/{job_id}", headers=p.auth("mgr", "acme", "Admin"))
    ).json()["status"] == "pending"
    assert await p.exports.run_pending() == 1
    assert await p.exports.run_job(job_id) is False  # already claimed: never run twice
    assert await p.exports.run_pending() == 0
    assert len(p.hub.of("ExportCompleted")) == 1


async def test_a_job_that_cannot_write_its_file_is_marked_failed_and_not_announced(platform):
    p = platform
    await post_events(p, "acme", stream(p, 1))
    p.data_dir.mkdir(parents=True, exist_ok=True)
    (p.data_dir / "exports").write_text("not a directory")
    job = await create_and_finish(p, "csv")
    got = await p.client.get(f"/api/exports/{job['id']}", headers=p.auth("mgr", "acme", "Admin"))
    assert got.json()["status"] == "failed" and got.json()["error"]
    assert got.json()["downloadUrl"] is None
    assert p.hub.of("ExportCompleted") == []


async def test_super_admin_exports_another_organization_and_only_they_download_it(platform):
    p = platform
    await post_events(p, "globex", stream(p, 2, "zed"))
    root = p.auth("root", "platform", "SuperAdmin")
    body = {"from": iso(p.clock.now - timedelta(days=1)), "to": iso(p.clock.now), "format": "csv"}
    r = await p.client.post("/api/exports?organizationId=globex", json=body, headers=root)
    assert r.status_code == 202 and r.json()["organizationId"] == "globex"
    await p.exports.wait_idle()
    url = p.hub.of("ExportCompleted")[0].args[0]["downloadUrl"]
    ok = await p.client.get(url, headers=root)
    assert ok.status_code == 200 and "zed" in ok.text
    assert (await p.client.get(url, headers=p.auth("mgr", "globex", "Admin"))).status_code == 403


async def test_managers_are_refused_exports_and_the_list_shows_only_own_jobs(platform):
    p = platform
    body = {"from": iso(p.clock.now - timedelta(days=1)), "to": iso(p.clock.now), "format": "csv"}
    refused = await p.client.post("/api/exports", json=body, headers=p.auth("m", "acme", "Manager"))
    assert refused.status_code == 403
    mine = await create_and_finish(p, "csv", user="alice")
    await create_and_finish(p, "jsonl", user="bob")
    listed = await p.client.get("/api/exports", headers=p.auth("alice", "acme", "Admin"))
    assert listed.status_code == 200
    assert [j["id"] for j in listed.json()] == [mine["id"]]
    assert listed.json()[0]["downloadUrl"].startswith(f"/api/exports/{mine['id']}/download?")
    assert (
        await p.client.get("/api/exports", headers=p.auth("m", "acme", "Manager"))
    ).status_code == 403
