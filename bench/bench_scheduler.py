"""Scheduler throughput: jobs started per second on the local platform, against
bare process spawning of the same command on the same machine.

Run: .venv/bin/python bench/bench_scheduler.py [--jobs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from apolo_jupyter import Client, JobStatus, get
from apolo_jupyter.client._local_home import LocalPaths, ensure_running


async def _until_running(client: Client, job_id: str) -> None:
    async with client.jobs.watch(job_id) as updates:
        async for job in updates:
            if job.status == JobStatus.RUNNING or job.status.is_finished:
                return


async def platform_rate(client: Client, count: int) -> float:
    t0 = time.perf_counter()
    jobs = await asyncio.gather(
        *(
            client.jobs.start(
                image=client.parse.remote_image("ubuntu"),
                preset_name="cpu-small",
                command="sleep 30",
            )
            for _ in range(count)
        )
    )
    await asyncio.gather(*(_until_running(client, j.id) for j in jobs))
    rate = count / (time.perf_counter() - t0)
    await asyncio.gather(*(client.jobs.kill(j.id) for j in jobs))
    return rate


def bare_rate(count: int) -> float:
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(["sleep", "30"], start_new_session=True) for _ in range(count)
    ]
    rate = count / (time.perf_counter() - t0)
    for proc in procs:
        proc.kill()
        proc.wait()
    return rate


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = LocalPaths(Path(tmp) / "home")
        paths.ensure()
        capacity = {"cpu": count * 2, "memory": count * 2**31}
        paths.settings_file.write_text(
            json.dumps({"capacity": capacity, "kill_grace": 1})
        )
        info = ensure_running(paths)
        try:
            async with get(info.url, info.token, quiet=True) as client:
                ours = await platform_rate(client, count)
        finally:
            os.kill(info.pid, 15)
    bare = bare_rate(count)
    print(f"bench_scheduler ({count} jobs started at once)")
    print(
        f"local platform: {ours:.0f} jobs/s from jobs.start to running; bare "
        f"subprocess.Popen: {bare:.0f} spawns/s; ratio {ours / bare:.3f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    asyncio.run(main(parser.parse_args().jobs))
