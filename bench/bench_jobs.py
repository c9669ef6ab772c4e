"""Jobs benchmarks on the local platform, each as a ratio to a baseline of this run.

(a) status-change latency: job exit -> ``watch()`` yields the final status,
    against the seed's 1-second ``status()`` polling loop;
(b) start overhead: ``jobs.start`` -> ``running`` observed, against spawning the
    same command with bare ``subprocess``;
(c) ``jobs.list`` streaming 10,000 jobs: time, and client memory peak against
    streaming 1,000 (flat memory means a ratio near 1).

Run: .venv/bin/python bench/bench_jobs.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from _daemon import local_platform

from apolo_jupyter import Client, JobStatus, get
from apolo_jupyter.client._local_home import LocalPaths
from apolo_jupyter.local._records import JobRecord
from apolo_jupyter.local._requests import parse_job_request
from apolo_jupyter.local._settings import Settings
from apolo_jupyter.local._store import Store

EXIT_STAMP = "import time; time.sleep(0.3); print(repr(time.time()), flush=True)"


def p50(values: list[float]) -> float:
    return statistics.median(values)


def exit_time(paths: LocalPaths, job_id: str) -> float:
    text = (paths.jobs_dir / job_id / "log").read_text().strip().splitlines()[-1]
    return float(text)


async def _start(client: Client, command: str) -> str:
    job = await client.jobs.start(
        image=client.parse.remote_image("python:3.11"),
        preset_name="cpu-small",
        command=command,
    )
    return job.id


async def latency_watch(client: Client, paths: LocalPaths) -> float:
    job_id = await _start(client, f"python3 -c '{EXIT_STAMP}'")
    async with client.jobs.watch(job_id) as updates:
        async for job in updates:
            if job.status.is_finished:
                seen = time.time()
    return seen - exit_time(paths, job_id)


async def latency_seed_polling(client: Client, paths: LocalPaths) -> float:
    job_id = await _start(client, f"python3 -c '{EXIT_STAMP}'")
    while True:  # the seed's loop
        job = await client.jobs.status(job_id)
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            seen = time.time()
            break
        await asyncio.sleep(1)
    return seen - exit_time(paths, job_id)


async def start_overhead(client: Client) -> float:
    t0 = time.perf_counter()
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu"),
        preset_name="cpu-small",
        command="sleep 5",
    )
    async with client.jobs.watch(job.id) as updates:
        async for update in updates:
            if update.status == JobStatus.RUNNING:
                elapsed = time.perf_counter() - t0
                break
    await client.jobs.kill(job.id)
    return elapsed


def bare_spawn() -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(["sleep", "5"], start_new_session=True)
    elapsed = time.perf_counter() - t0
    proc.kill()
    proc.wait()
    return elapsed


def seed_jobs(paths: LocalPaths, count: int) -> None:
    paths.ensure()
    settings = Settings(paths)
    store = Store(paths.db_file)
    records: list[JobRecord] = []
    for i in range(count):
        body = {
            "image": "ubuntu:latest",
            "command": f"echo {i}",
            "preset_name": "cpu-small",
            "tags": ["bench"],
            "name": f"bench-{i}",
        }
        job = parse_job_request(settings, body, from_preset=True, owner="bench")
        job.transition(JobStatus.RUNNING)
        job.transition(JobStatus.SUCCEEDED, exit_code=0)
        records.append(job)
    store.save_many(records)
    store.close()


async def _drain(client: Client, limit: int) -> int:
    n = 0
    async with client.jobs.list(limit=limit) as jobs:
        async for _ in jobs:
            n += 1
    return n


async def list_all(client: Client, limit: int) -> tuple[float, int, int]:
    """Time one pass (untraced), then the memory peak of a traced pass."""
    t0 = time.perf_counter()
    n = await _drain(client, limit)
    elapsed = time.perf_counter() - t0
    tracemalloc.start()
    await _drain(client, limit)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak, n


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = LocalPaths(Path(tmp) / "home")
        seed_jobs(paths, 10_000)
        with local_platform(paths) as info:
            async with get(info.url, info.token, quiet=True) as client:
                await start_overhead(client)  # warm up
                watch = [await latency_watch(client, paths) for _ in range(rounds)]
                poll = [
                    await latency_seed_polling(client, paths) for _ in range(rounds)
                ]
                ours = [await start_overhead(client) for _ in range(rounds)]
                bare = [bare_spawn() for _ in range(rounds)]
                t10k, mem10k, n10k = await list_all(client, 10_000)
                _, mem1k, n1k = await list_all(client, 1_000)
    print(f"bench_jobs ({rounds} rounds, p50)")
    print(
        f"(a) exit->final status: watch {p50(watch) * 1e3:.1f} ms, seed 1 s polling "
        f"{p50(poll) * 1e3:.1f} ms; ratio {p50(watch) / p50(poll):.3f} (target <= 25 ms)"
    )
    print(
        f"(b) start->running: jobs.start {p50(ours) * 1e3:.1f} ms, bare subprocess "
        f"{p50(bare) * 1e3:.2f} ms; ratio {p50(ours) / p50(bare):.1f}x (target <= 50 ms)"
    )
    print(
        f"(c) jobs.list {n10k} jobs: {t10k:.2f} s ({n10k / t10k:,.0f} jobs/s, target <= 1 s);"
        f" client peak {mem10k / 2**20:.1f} MiB vs {mem1k / 2**20:.1f} MiB for {n1k} jobs;"
        f" memory ratio {mem10k / mem1k:.2f} (flat ~ 1)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    asyncio.run(main(parser.parse_args().rounds))
    sys.exit(0)
