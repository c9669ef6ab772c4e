"""Refusing oversized job requests: what a huge request costs the local platform,
and how long everyone else waits meanwhile.

Each round POSTs, all at once, ``--requests`` oversized job bodies (half with a
900 kB command, half with 3000 volumes: both over the platform's limits, both
refused with a 400), while a second connection pings ``GET /config`` in a loop.
Baselines from the same run: the same number of small malformed bodies refused
at once, and the pings of an idle platform. Figures are medians over --rounds.

Targets: a huge request is refused within 20x the time of a small one (before
the linear command splitter, a 900 kB command took seconds), and no ping waits
more than 20x an idle one plus 50 ms (the event loop never stalls for long).

Run: .venv/bin/python bench/bench_refusals.py [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _daemon import local_platform

from apolo_jupyter.client._local_home import LocalPaths

BIG_COMMAND = "a" * 900_000


def body(top: dict[str, Any] | None = None, **container: Any) -> bytes:
    return json.dumps(
        {
            "container": {
                "image": "ubuntu:latest",
                "command": "true",
                "resources": {"cpu": 0.1, "memory": 2**26},
                **container,
            },
            "cluster_name": "local",
            **(top or {}),
        }
    ).encode()


def big_bodies(count: int) -> list[bytes]:
    volumes = [
        {"src_storage_uri": f"storage://local/local/default/v{i}", "dst_path": f"/v{i}"}
        for i in range(3000)
    ]
    pair = [body(command=BIG_COMMAND), body(volumes=volumes)]
    return [pair[i % 2] for i in range(count)]


def small_bodies(count: int) -> list[bytes]:
    return [body({"priority": {}}) for _ in range(count)]  # not a string


class Platform:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.headers = url, {"Authorization": f"Bearer {token}"}

    async def refuse(self, session: aiohttp.ClientSession, data: bytes) -> None:
        headers = {**self.headers, "Content-Type": "application/json"}
        async with session.post(f"{self.url}/jobs", data=data, headers=headers) as resp:
            text = await resp.text()
            if resp.status != 400:
                raise RuntimeError(f"expected a 400, got {resp.status}: {text[:200]}")

    async def refuse_all(self, bodies: list[bytes]) -> float:
        """Seconds to have every body refused, all sent at once."""
        async with aiohttp.ClientSession() as session:
            t0 = time.perf_counter()
            await asyncio.gather(*(self.refuse(session, b) for b in bodies))
            return time.perf_counter() - t0

    async def pings(self, stop: asyncio.Event) -> list[float]:
        delays: list[float] = []
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                t0 = time.perf_counter()
                async with session.get(f"{self.url}/config", headers=self.headers):
                    pass
                delays.append(time.perf_counter() - t0)
                await asyncio.sleep(0.005)
        return delays

    async def refuse_while_pinging(
        self, bodies: list[bytes]
    ) -> tuple[float, list[float]]:
        stop = asyncio.Event()
        pinger = asyncio.create_task(self.pings(stop))
        await asyncio.sleep(0.05)  # the pings are flowing
        took = await self.refuse_all(bodies)
        stop.set()
        return took, await pinger


async def idle_pings(platform: Platform, seconds: float = 0.5) -> list[float]:
    stop = asyncio.Event()
    pinger = asyncio.create_task(platform.pings(stop))
    await asyncio.sleep(seconds)
    stop.set()
    return await pinger


async def bench(platform: Platform, requests: int, rounds: int) -> int:
    await platform.refuse_all(small_bodies(2) + big_bodies(2))  # warm up
    idle = await idle_pings(platform)
    small, big, worst = [], [], []
    for _ in range(rounds):
        small.append(await platform.refuse_all(small_bodies(requests)))
        took, delays = await platform.refuse_while_pinging(big_bodies(requests))
        big.append(took)
        worst.append(max(delays))
    small_p50, big_p50 = statistics.median(small), statistics.median(big)
    idle_p50, worst_p50 = statistics.median(idle), statistics.median(worst)
    refusal_ratio = big_p50 / small_p50
    stall_ratio = worst_p50 / idle_p50
    print(f"bench_refusals ({requests} requests at once, {rounds} rounds, p50)")
    print(
        f"refused: huge {big_p50 * 1e3:.1f} ms, small {small_p50 * 1e3:.1f} ms, "
        f"ratio {refusal_ratio:.1f} (target <= 20)"
    )
    print(
        f"ping meanwhile: worst {worst_p50 * 1e3:.1f} ms, idle {idle_p50 * 1e3:.2f} ms, "
        f"ratio {stall_ratio:.1f} (target: worst <= 20x idle + 50 ms)"
    )
    missed = []
    if refusal_ratio > 20:
        missed.append("huge refusal")
    if worst_p50 > 20 * idle_p50 + 0.05:
        missed.append("ping during refusals")
    if missed:
        print(f"targets NOT met: {', '.join(missed)}")
        return 1
    print("targets: met")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-refusals-") as tmp:
        paths = LocalPaths(Path(tmp) / "home")
        with local_platform(paths) as info:
            platform = Platform(info.url, info.token)
            return asyncio.run(bench(platform, args.requests, args.rounds))


if __name__ == "__main__":
    sys.exit(main())
