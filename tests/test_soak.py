"""Soak: start and kill 500 short jobs, at most 50 at a time, then look for leaks.

On a platform of its own, with room for all 50 jobs at once. Afterwards every job
must be terminal, the daemon must have no child processes and no job process may
survive anywhere, the daemon's file descriptors must be back near a baseline, and
each job must have exactly one log file, none of them still open in the daemon.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from apolo_jupyter import Client, JobStatus, get

from .conftest import Platform, start_job, wait_finished, wait_running

GiB = 2**30
JOBS = 500
AT_ONCE = 50
WARM_UP = 5
FD_MARGIN = 20
SETTLE = 10.0  # seconds for children to be reaped and sockets to be closed

T = TypeVar("T")

# Three kinds of job, in turn: one that finishes on its own, one killed once it
# is observed running, one killed straight after jobs.start (racing its spawn).
FINISHES, KILLED_RUNNING, KILLED_AT_ONCE = "finishes", "killed-running", "killed-now"
KINDS = (FINISHES, KILLED_RUNNING, KILLED_AT_ONCE)
COMMANDS = {
    FINISHES: "sh -c 'sleep 0.2'",
    KILLED_RUNNING: "sleep 5",
    KILLED_AT_ONCE: "sleep 5",
}
EXPECTED = {
    FINISHES: JobStatus.SUCCEEDED,
    KILLED_RUNNING: JobStatus.CANCELLED,
    KILLED_AT_ONCE: JobStatus.CANCELLED,
}


@pytest.fixture
def soak_platform(tmp_path: Path) -> Iterator[Platform]:
    plat = Platform(
        tmp_path / "home",
        capacity={"cpu": AT_ONCE + 10, "memory": (AT_ONCE + 10) * GiB},
        kill_grace=1.0,
    )
    yield plat
    plat.stop()


async def _run_one(client: Client, kind: str, marker: str) -> tuple[str, JobStatus]:
    job = await start_job(
        client,
        command=COMMANDS[kind],
        env={"SOAK_MARKER": marker},
        tags=["soak"],
    )
    if kind == KILLED_RUNNING:
        await wait_running(client, job.id)
        await client.jobs.kill(job.id)
    elif kind == KILLED_AT_ONCE:
        await client.jobs.kill(job.id)
    final = await wait_finished(client, job.id)
    return job.id, final.status


async def _run_jobs(
    platform: Platform, kinds: list[str], marker: str
) -> dict[str, tuple[str, JobStatus]]:
    """Run the jobs, at most AT_ONCE at a time; job id -> (kind, final status)."""
    gate = asyncio.Semaphore(AT_ONCE)
    in_flight = peak = 0

    async with get(platform.url, platform.token, quiet=True) as client:

        async def guarded(kind: str) -> tuple[str, JobStatus]:
            nonlocal in_flight, peak
            async with gate:
                in_flight += 1
                peak = max(peak, in_flight)
                try:
                    return await _run_one(client, kind, marker)
                finally:
                    in_flight -= 1

        results = await asyncio.gather(*(guarded(kind) for kind in kinds))
    assert peak <= AT_ONCE
    return {
        job_id: (kind, status)
        for kind, (job_id, status) in zip(kinds, results, strict=True)
    }


def _live_children(daemon: psutil.Process) -> list[psutil.Process]:
    alive = []
    for child in daemon.children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


def _marked_processes(marker: str) -> list[psutil.Process]:
    """Processes anywhere on the machine that carry this run's job environment."""
    found = []
    for proc in psutil.process_iter():
        try:
            mine = proc.environ().get("SOAK_MARKER") == marker
            if mine and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def _job_files_open(daemon: psutil.Process, jobs_dir: Path) -> list[str]:
    """Job files (``log``, its ``log.idx``) the daemon still has open."""
    return [
        f.path for f in daemon.open_files() if Path(f.path).is_relative_to(jobs_dir)
    ]


def _settled(probe: Callable[[], T], ok: Callable[[T], bool]) -> T:
    """The probe's value once ``ok`` holds, or its last value after SETTLE s."""
    deadline = time.monotonic() + SETTLE
    value = probe()
    while not ok(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = probe()
    return value


def _describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for proc in procs:
        try:
            out.append(f"{proc.pid} {proc.status()} {proc.cmdline()}")
        except psutil.NoSuchProcess:
            out.append(f"{proc.pid} (gone)")
    return out


@pytest.mark.timeout(180)
async def test_soak_500_jobs_leave_nothing_behind(soak_platform: Platform) -> None:
    marker = secrets.token_hex(8)
    daemon = psutil.Process(soak_platform.info.pid)
    jobs_dir = soak_platform.paths.jobs_dir

    # Warm up (first spawn, sqlite, sandbox detection), then take the baseline
    # with no client connected.
    warm = await _run_jobs(soak_platform, [FINISHES] * WARM_UP, marker)
    assert all(status == JobStatus.SUCCEEDED for _, status in warm.values()), warm
    _settled(lambda: _live_children(daemon), lambda c: not c)
    time.sleep(0.5)
    baseline_fds = daemon.num_fds()

    t0 = time.monotonic()
    kinds = [KINDS[i % len(KINDS)] for i in range(JOBS)]
    soaked = await _run_jobs(soak_platform, kinds, marker)
    elapsed = time.monotonic() - t0
    assert len(soaked) == JOBS
    print(f"soak: {JOBS} jobs, at most {AT_ONCE} at a time, in {elapsed:.1f} s")

    # Each job ended the way its kind says.
    wrong = {
        job_id: (kind, status)
        for job_id, (kind, status) in soaked.items()
        if status != EXPECTED[kind]
    }
    assert not wrong, f"{len(wrong)} jobs ended unexpectedly: {wrong}"

    # Every job the platform knows is terminal.
    all_ids = set(warm) | set(soaked)
    async with (
        get(soak_platform.url, soak_platform.token, quiet=True) as client,
        client.jobs.list() as listing,
    ):
        listed = {job.id: job.status async for job in listing}
    assert set(listed) == all_ids
    stuck = {i: s for i, s in listed.items() if not s.is_finished}
    assert not stuck, f"{len(stuck)} jobs not terminal: {stuck}"

    # No process leaks: no live child of the daemon, no job process anywhere.
    children = _settled(lambda: _live_children(daemon), lambda c: not c)
    assert not children, f"daemon children left: {_describe(children)}"
    strays = _settled(lambda: _marked_processes(marker), lambda p: not p)
    assert not strays, f"job processes left: {_describe(strays)}"

    # No file-descriptor leak (the clients above are closed: their keep-alive
    # sockets must be gone too, give the daemon a moment to see them close).
    fds = _settled(daemon.num_fds, lambda n: n <= baseline_fds + FD_MARGIN)
    print(f"soak: daemon fds {baseline_fds} at the baseline, {fds} after the run")
    assert fds <= baseline_fds + FD_MARGIN, (
        f"daemon fds: {fds} after the run, {baseline_fds} at the baseline"
    )

    # One log per job, none still open in the daemon.
    logs = sorted(jobs_dir.glob("*/log"))
    assert len(logs) == len(all_ids)
    assert {log.parent.name for log in logs} == all_ids
    still_open = _settled(lambda: _job_files_open(daemon, jobs_dir), lambda o: not o)
    assert not still_open, f"job files still open in the daemon: {still_open}"
