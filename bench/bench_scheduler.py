"""Scheduler throughput: jobs started per second on the local platform, against
bare process spawning of the same command on the same machine.

Platform: N ``jobs.start`` calls at once (capacity for all of them), timed until
each job has been observed ``running`` through ``watch()``; then they are killed.
Baseline: N ``subprocess.Popen(["sleep", ...], start_new_session=True)`` (Popen
returns once the child has exec'd), then killed. Median of --rounds rounds each.

Run: .venv/bin/python bench/bench_scheduler.py [--jobs N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _daemon import local_platform

from apolo_jupyter import Client, JobStatus, get
from apolo_jupyter.client._local_home import LocalPaths

SLEEP = "30"  # long enough that no job ends before it is seen running


async def _until_running(client: Client, job_id: str) -> JobStatus:
    async with client.jobs.watch(job_id) as updates:
        async for job in updates:
            if job.status == JobStatus.RUNNING or job.status.is_finished:
                return job.status
    raise RuntimeError(f"watch of {job_id} ended before the job ran")


async def platform_rate(client: Client, count: int) -> float:
    t0 = time.perf_counter()
    jobs = await asyncio.gather(
        *(
            client.jobs.start(
                image=client.parse.remote_image("ubuntu"),
                preset_name="cpu-small",
                command=f"sleep {SLEEP}",
            )
            for _ in range(count)
        )
    )
    seen = await asyncio.gather(*(_until_running(client, j.id) for j in jobs))
    rate = count / (time.perf_counter() - t0)
    await asyncio.gather(*(client.jobs.kill(j.id) for j in jobs))
    not_run = [s for s in seen if s != JobStatus.RUNNING]
    if not_run:
        raise RuntimeError(f"{len(not_run)} of {count} jobs did not run: {not_run}")
    return rate


def bare_rate(count: int) -> float:
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(["sleep", SLEEP], start_new_session=True) for _ in range(count)
    ]
    rate = count / (time.perf_counter() - t0)
    for proc in procs:
        proc.kill()
        proc.wait()
    return rate


async def main(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = LocalPaths(Path(tmp) / "home")
        paths.ensure()
        capacity = {"cpu": count * 2, "memory": count * 2**31}
        paths.settings_file.write_text(
            json.dumps({"capacity": capacity, "kill_grace": 1})
        )
        with local_platform(paths) as info:
            async with get(info.url, info.token, quiet=True) as client:
                await platform_rate(client, 5)  # warm up
                ours = [await platform_rate(client, count) for _ in range(rounds)]
    bare_rate(5)  # warm up
    bare = [bare_rate(count) for _ in range(rounds)]
    ours_p50, bare_p50 = statistics.median(ours), statistics.median(bare)
    print(f"bench_scheduler ({count} jobs started at once, {rounds} rounds, p50)")
    print(
        f"local platform: {ours_p50:.0f} jobs/s from jobs.start to running "
        f"({count / ours_p50 * 1e3:.0f} ms for all); bare subprocess.Popen: "
        f"{bare_p50:.0f} spawns/s ({count / bare_p50 * 1e3:.0f} ms for all); "
        f"ratio {ours_p50 / bare_p50:.3f}"
    )
    print(
        "rounds: platform "
        + ", ".join(f"{r:.0f}" for r in ours)
        + " jobs/s; bare "
        + ", ".join(f"{r:.0f}" for r in bare)
        + " spawns/s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.rounds))
    sys.exit(0)
