"""A disk full of files never stalls the platform: measuring its usage and
removing it run off the event loop, and creating or starting a job that mounts
it does not walk it at all."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from apolo_jupyter import Client, DiskVolume, get

from ..conftest import Platform, start_job, wait_finished

FILES = 100_000


def _fill(folder: Path, count: int) -> None:
    """``count`` empty files in folders of 1,000 (fast: no job, no storage API)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for first in range(0, count, 1000):
        sub = folder / f"d{first // 1000}"
        sub.mkdir()
        for index in range(1000):
            os.close(os.open(sub / str(index), flags, 0o644))


async def _while_pinging(
    client: Client, job_id: str, action: Callable[[], Awaitable[Any]]
) -> tuple[float, float]:
    """(how long ``action`` took, the slowest ``jobs.status`` meanwhile) on a
    connection of its own, as another notebook would ask."""
    slowest = 0.0
    done = asyncio.Event()

    async def ping() -> None:
        nonlocal slowest
        while not done.is_set():
            start = time.perf_counter()
            await client.jobs.status(job_id)
            slowest = max(slowest, time.perf_counter() - start)
            await asyncio.sleep(0.01)

    pinger = asyncio.create_task(ping())
    await asyncio.sleep(0.2)  # the pinger runs before the action begins
    start = time.perf_counter()
    try:
        await action()
    finally:
        took = time.perf_counter() - start
        done.set()
        await pinger
    return took, slowest


async def test_a_disk_of_many_files_never_stalls_other_requests(
    client: Client, platform: Platform
) -> None:
    disk = await client.disks.create(2**30)
    folder = platform.paths.home / "disks" / disk.id
    assert folder.is_dir()
    await asyncio.to_thread(_fill, folder, FILES)
    (folder / "data").write_bytes(b"x" * 1234)
    other = await start_job(client, command="sleep 300")
    async with get(platform.url, platform.token, quiet=True) as pinger:
        try:
            # Measuring its usage walks every file, in a thread.
            async def measure() -> None:
                found = await asyncio.gather(
                    client.disks.get(disk.id), client.disks.get(disk.id)
                )
                assert [d.used_bytes for d in found] == [1234, 1234]

            took, slowest = await _while_pinging(pinger, other.id, measure)
            assert slowest < took / 3, (took, slowest)

            # Creating and starting a job that mounts it walks nothing.
            async def run_job() -> None:
                job = await start_job(
                    client,
                    command="sh -c 'test -f /mnt/d/data'",
                    disk_volumes=[DiskVolume(disk.uri, "/mnt/d")],
                )
                assert (await wait_finished(client, job.id)).exit_code == 0

            job_took, job_slowest = await _while_pinging(pinger, other.id, run_job)
            assert job_slowest < max(took / 3, 0.25), (took, job_took, job_slowest)

            # Removing it deletes every file, in a thread.
            async def remove() -> None:
                await client.disks.rm(disk.id)

            took, slowest = await _while_pinging(pinger, other.id, remove)
            assert not folder.exists()
            assert slowest < took / 3, (took, slowest)
        finally:
            await client.jobs.kill(other.id)
