"""Shared pieces of the fan-out benchmark: control files, the fixed-size payload, stats.

Method (the same for every stack, the raw reference included, so figures are comparable):
every broadcast round carries one object serialized once, always the same size, stamped with
``time.time()`` so probe connections can measure end-to-end latency on this single machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

PAYLOAD_LEN = 200


def make_obj(kind: str, seq: int) -> dict[str, str]:
    """A JSON object of exactly PAYLOAD_LEN bytes (compact), all values strings."""
    head = {"t": f"{time.time():.6f}", "k": kind, "s": f"{seq:09d}", "p": ""}
    base = len(json.dumps(head, separators=(",", ":")))
    head["p"] = "x" * (PAYLOAD_LEN - base)
    return head


def pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(p / 100.0 * len(ys)))]


async def wait_file(ctl: str, name: str, poll: float = 0.05, limit: float = 600.0) -> Any:
    path = os.path.join(ctl, name)
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(name)
        await asyncio.sleep(poll)
    await asyncio.sleep(0.01)
    with open(path) as f:
        txt = f.read().strip()
    return json.loads(txt) if txt else {}


def write_file(ctl: str, name: str, obj: Any) -> None:
    tmp = os.path.join(ctl, name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, os.path.join(ctl, name))


SendRound = Callable[[str, int], Awaitable[None]]


async def drive(
    ctl: str,
    name: str,
    count: Callable[[], int],
    send_round: SendRound,
    backpressure: Callable[[], Awaitable[None]],
    drain: Callable[[], Awaitable[None]],
) -> None:
    """Server side: flood phase then paced phase, driven by control files."""
    params = await wait_file(ctl, "go")
    duration = float(params.get("duration", 5.0))
    n = count()
    seq = rounds = 0
    t0_wall = time.time()
    t0 = time.monotonic()
    deadline = t0 + duration
    while time.monotonic() < deadline:
        seq += 1
        await send_round("F", seq)
        rounds += 1
        await backpressure()
        await asyncio.sleep(0)
    t1 = time.monotonic()
    try:
        await asyncio.wait_for(drain(), 60)
    except TimeoutError:
        pass
    write_file(
        ctl,
        "flood.json",
        {
            "stack": name,
            "n": n,
            "rounds": rounds,
            "t0_wall": t0_wall,
            "flood_s": t1 - t0,
            "server_dps": rounds * n / (t1 - t0),
        },
    )
    params = await wait_file(ctl, "paced_go")
    for _ in range(int(params.get("rounds", 10))):
        await asyncio.sleep(float(params.get("interval", 0.3)))
        seq += 1
        await send_round("P", seq)
    try:
        await asyncio.wait_for(drain(), 30)
    except TimeoutError:
        pass
    write_file(ctl, "result.json", {"stack": name, "n": count()})
