"""Log streaming throughput: a job prints 200 MB; ``jobs.monitor`` streams it.

Baseline in the same run: reading the job's log file straight from disk. Measured
twice: live (following the job while it prints) and replay (the finished job).

Run: .venv/bin/python bench/bench_logs.py [--mb 200]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _daemon import local_platform

from apolo_jupyter import Client, get
from apolo_jupyter.client._local_home import LocalPaths

PRINTER = (
    "import sys; line = b'x' * 1023 + b'\\n'; block = line * 1024; "
    "w = sys.stdout.buffer.write\n"
    "for _ in range({mb}): w(block)"
)


async def stream(client: Client, job_id: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    total = 0
    async with client.jobs.monitor(job_id) as chunks:
        async for chunk in chunks:
            total += len(chunk)
    return total, time.perf_counter() - t0


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6


def read_file(path: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    total = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            total += len(chunk)
    return total, time.perf_counter() - t0


async def main(mb: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = LocalPaths(Path(tmp) / "home")
        with local_platform(paths) as info:
            async with get(info.url, info.token, quiet=True) as client:
                job = await client.jobs.start(
                    image=client.parse.remote_image("python:3.11"),
                    preset_name="cpu-small",
                    command=f'python3 -c "{PRINTER.format(mb=mb)}"',
                )
                live_bytes, live_s = await stream(client, job.id)
                replay_bytes, replay_s = await stream(client, job.id)
            file_bytes, file_s = read_file(paths.jobs_dir / job.id / "log")
    assert live_bytes == replay_bytes == file_bytes == mb * 2**20, (
        live_bytes,
        replay_bytes,
        file_bytes,
    )
    print(f"bench_logs ({mb} MiB of job output)")
    print(
        f"live follow: {mbps(live_bytes, live_s):.0f} MB/s (includes the job printing it)"
    )
    print(
        f"replay: {mbps(replay_bytes, replay_s):.0f} MB/s; reading the log file "
        f"directly: {mbps(file_bytes, file_s):.0f} MB/s; ratio "
        f"{file_s / replay_s:.2f} (target >= 100 MB/s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    asyncio.run(main(parser.parse_args().mb))
