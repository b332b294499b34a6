"""Ingestion benchmark: events/s through ``POST /api/agent/events`` (batches of 100)
on SQLite and PostgreSQL, and end-to-end latency from the agent's POST to ``SessionStarted`` at
a connected hub client (p50/p99) at a paced 1,000 events/s.

    .venv/bin/python bench/bench_ingest.py [--seconds 10] [--reps 3] [--databases sqlite,postgres]

Each database gets a real ``aiusage serve`` process on 127.0.0.1 (its own data dir; PostgreSQL
in a fresh schema of db ``test``). Reference measured in the same run: the same rows written by
a bare ``sqlite3.executemany`` in this process (the storage ceiling the API is compared with).
Every loop is bounded in time; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parents[1]
ORG = "bench"
RS = "\x1e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "aiusage.cli", *args],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def batch(n: int, users: int = 50) -> tuple[list[dict], list[str]]:
    """n events: SessionStarted / AIDetected / SessionEnded triples for fresh sessions."""
    now = dt.datetime.now(dt.UTC)
    events: list[dict] = []
    started: list[str] = []
    while len(events) < n:
        sid = uuid.uuid4().hex
        user = f"u{len(events) % users}"
        events.append(
            {
                "eventId": uuid.uuid4().hex,
                "type": "SessionStarted",
                "occurredAt": iso(now),
                "userId": user,
                "sessionId": sid,
                "startTime": iso(now),
                "tool": "Claude",
            }
        )
        started.append(sid)
        if len(events) < n:
            events.append(
                {
                    "eventId": uuid.uuid4().hex,
                    "type": "AIDetected",
                    "occurredAt": iso(now),
                    "userId": user,
                    "sessionId": sid,
                    "tool": "Claude",
                    "duration": 12.5,
                }
            )
        if len(events) < n:
            events.append(
                {
                    "eventId": uuid.uuid4().hex,
                    "type": "SessionEnded",
                    "occurredAt": iso(now),
                    "userId": user,
                    "sessionId": sid,
                    "endTime": iso(now),
                    "duration": 30,
                    "aiUsageTime": 12.5,
                }
            )
    return events, started


class Server:
    def __init__(self, database: str) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-ingest-{database}-"))
        self.port = free_port()
        self.env = dict(
            os.environ,
            AIUSAGE_DATA_DIR=str(self.tmp),
            AIUSAGE_ACCESS_LOG="false",
            AIUSAGE_LOG_LEVEL="WARNING",
        )
        for key in ("AIUSAGE_DATABASE_URL", "AIUSAGE_DATABASE_SCHEMA", "AIUSAGE_REDIS_URL"):
            self.env.pop(key, None)
        if database == "postgres":
            self.env["AIUSAGE_DATABASE_URL"] = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
            self.env["AIUSAGE_DATABASE_SCHEMA"] = f"bench_{uuid.uuid4().hex[:12]}"
        cli(self.env, "migrate")
        cli(self.env, "org", "create", "--id", ORG, "--name", "Bench")
        # The dashboard that measures latency is a store user (tokens of unknown users are
        # refused: docs/security.md).
        cli(self.env, "user", "create", "--id", "bench-admin", "--org", ORG, "--role", "Admin")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aiusage.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / "serve.log", "wb"),
            start_new_session=True,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError((self.tmp / "serve.log").read_text()[-2000:])
        sys.path.insert(0, str(ROOT / "src"))
        from aiusage.auth.issuer import BuiltinIssuer

        issuer = BuiltinIssuer.load_or_create(self.tmp)
        self.agent = issuer.issue("bench-agent", ORG, "Agent", 3600)
        self.admin = issuer.issue("bench-admin", ORG, "Admin", 3600)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        if "AIUSAGE_DATABASE_SCHEMA" in self.env:
            subprocess.run(
                [
                    "psql",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "test",
                    "-qc",
                    f"DROP SCHEMA IF EXISTS {self.env['AIUSAGE_DATABASE_SCHEMA']} CASCADE",
                ],
                capture_output=True,
                check=False,
            )


async def throughput(srv: Server, seconds: float, concurrency: int) -> dict[str, float]:
    """Batches of 100 as fast as the server takes them, from ``concurrency`` connections."""
    headers = {"Authorization": f"Bearer {srv.agent}"}
    done = 0
    errors = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done, errors
        async with httpx.AsyncClient(base_url=srv.base, timeout=30) as http:
            while time.monotonic() < deadline:
                events, _ = batch(100)
                r = await http.post("/api/agent/events", json={"events": events}, headers=headers)
                if r.status_code == 200:
                    done += len(events)
                else:
                    errors += 1

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - t0
    return {"events_per_s": done / elapsed, "events": done, "errors": errors}


async def latency(srv: Server, seconds: float, rate: float) -> dict[str, float]:
    """Paced agent traffic; time from POST start to SessionStarted at a hub client."""
    async with httpx.AsyncClient(base_url=srv.base, timeout=30) as http:
        neg = await http.post(
            "/hubs/analytics/negotiate?negotiateVersion=1",
            headers={"Authorization": f"Bearer {srv.admin}"},
        )
        token = neg.json()["connectionToken"]
        ws = await websockets.connect(
            f"ws://127.0.0.1:{srv.port}/hubs/analytics?id={token}&access_token={srv.admin}",
            max_size=None,
        )
        await ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
        await ws.recv()
        sent_at: dict[str, float] = {}
        lat: list[float] = []

        async def reader() -> None:
            async for frame in ws:
                t = time.perf_counter()
                for rec in str(frame).split(RS):
                    if '"SessionStarted"' in rec:
                        sid = json.loads(rec)["arguments"][0]["sessionId"]
                        if sid in sent_at:
                            lat.append(t - sent_at.pop(sid))

        task = asyncio.create_task(reader())
        per_batch = 100
        interval = per_batch / rate
        headers = {"Authorization": f"Bearer {srv.agent}"}
        t_end = time.monotonic() + seconds
        next_at = time.monotonic()
        while time.monotonic() < t_end:
            events, started = batch(per_batch)
            t = time.perf_counter()
            for sid in started:
                sent_at[sid] = t
            await http.post("/api/agent/events", json={"events": events}, headers=headers)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await asyncio.sleep(1.0)
        task.cancel()
        await ws.close()
    lat.sort()
    return {
        "n": len(lat),
        "lost": len(sent_at),
        "p50_ms": 1e3 * lat[len(lat) // 2] if lat else float("nan"),
        "p99_ms": 1e3 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan"),
    }


def raw_sqlite_reference(seconds: float) -> float:
    """Rows/s of a bare executemany of comparable rows (one transaction per 100)."""
    path = Path(tempfile.mkdtemp()) / "ref.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE ev (org TEXT, id TEXT, type TEXT, body TEXT, PRIMARY KEY (org, id))")
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        events, _ = batch(100)
        with db:
            db.executemany(
                "INSERT INTO ev VALUES (?, ?, ?, ?)",
                [(ORG, e["eventId"], e["type"], json.dumps(e)) for e in events],
            )
        n += len(events)
    rate = n / (time.monotonic() - t0)
    db.close()
    return rate


def _median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rate", type=float, default=1000.0, help="paced events/s for the latency run")
    ap.add_argument("--databases", default="sqlite,postgres")
    ap.add_argument("--reps", type=int, default=3, help="fresh server per repetition; medians")
    ap.add_argument(
        "--py-spy",
        type=Path,
        dest="py_spy",
        help="sample each server with py-spy during its throughput run (raw format, per "
        "thread) into PY_SPY.<database>.<rep>.txt",
    )
    a = ap.parse_args()
    rows = []
    for database in a.databases.split(","):
        reps = []
        for rep in range(a.reps):
            ref = raw_sqlite_reference(min(a.seconds, 5.0))
            srv = Server(database)
            spy = None
            try:
                if a.py_spy:
                    spy = subprocess.Popen(
                        [
                            str(Path(sys.executable).parent / "py-spy"),
                            "record",
                            "--pid",
                            str(srv.proc.pid),
                            "--threads",
                            "--format",
                            "raw",
                            "--duration",
                            str(int(a.seconds)),
                            "--output",
                            f"{a.py_spy}.{database}.{rep}.txt",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                tp = asyncio.run(throughput(srv, a.seconds, a.concurrency))
                lt = asyncio.run(latency(srv, a.seconds, a.rate))
            finally:
                if spy is not None:
                    spy.wait(30)
                srv.stop()
            print(
                f"{database} rep {rep + 1}: {tp['events_per_s']:,.0f} events/s "
                f"({tp['events_per_s'] / ref:.3f} x bare sqlite {ref:,.0f} rows/s), "
                f"p50 {lt['p50_ms']:.1f} / p99 {lt['p99_ms']:.1f} ms, "
                f"{lt['n']} delivered / {lt['lost']} lost, {tp['errors']} errors",
                flush=True,
            )
            reps.append((tp, lt, ref))
        rows.append((database, reps))
    print(
        f"\nIngestion, batches of 100, {a.concurrency} concurrent agents, {a.seconds:.0f} s per "
        f"run, medians of {a.reps} runs (fresh server each); {dt.date.today()}, "
        f"{platform.node()} {os.cpu_count()} cores"
    )
    print(
        "| database | events/s | x target 5,000 | x bare sqlite executemany | errors | "
        f"POST->SessionStarted p50 / p99 ms at {a.rate:.0f} ev/s | delivered / lost |"
    )
    print("|---|---|---|---|---|---|---|")
    for database, reps in rows:
        rate = _median([tp["events_per_s"] for tp, _, _ in reps])
        ratio = _median([tp["events_per_s"] / ref for tp, _, ref in reps])
        p50 = _median([lt["p50_ms"] for _, lt, _ in reps])
        p99 = _median([lt["p99_ms"] for _, lt, _ in reps])
        errors = sum(int(tp["errors"]) for tp, _, _ in reps)
        delivered = sum(int(lt["n"]) for _, lt, _ in reps)
        lost = sum(int(lt["lost"]) for _, lt, _ in reps)
        print(
            f"| {database} | {rate:,.0f} | {rate / 5000:.2f} | {ratio:.3f} | {errors} | "
            f"{p50:.1f} / {p99:.1f} | {delivered} / {lost} |"
        )


if __name__ == "__main__":
    main()
