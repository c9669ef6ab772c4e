"""The seed's "Start a Job", "Check Job Status" and "Kill a Job" snippets, verbatim
with ``apolo_sdk`` replaced by ``apolo_jupyter``, against the real local platform."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import psutil
import pytest

from apolo_jupyter import (
    Client,
    Container,
    JobStatus,
    Resources,
)

from .conftest import wait_finished, wait_running
from .test_exec import host_processes_with, unique_sleep


async def test_start_a_job_verbatim(
    isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from apolo_jupyter import get

    async with get() as client:
        job = await client.jobs.start(
            image=client.parse.remote_image("ubuntu:latest"),
            preset_name="cpu-small",
            command="sleep 30",
        )
        try:
            assert job.status in (JobStatus.PENDING, JobStatus.RUNNING)
            assert job.id.startswith("job-")
            assert job.preset_name == "cpu-small"
            assert job.container.command == "sleep 30"
            assert job.container.resources.cpu == 1.0
            assert job.container.image.name == "ubuntu"
        finally:
            await client.jobs.kill(job.id)
    assert "embedded local platform" in capsys.readouterr().err


async def test_check_job_status_loop_verbatim(client: Client) -> None:
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu:latest"),
        preset_name="cpu-small",
        command="sleep 1",
    )

    # job is a JobDescription given by former client.job.run() call

    while True:
        job = await client.jobs.status(job.id)
        if job.status in (JobStatus.RUNNING, JobStatus.SUCCEEDED):
            break
        elif job.status == JobStatus.FAILED:
            raise RuntimeError(
                f"Job {job.id} failed with {job.reason}:{job.history.description}"
            )
        else:
            await asyncio.sleep(1)

    assert job.status in (JobStatus.RUNNING, JobStatus.SUCCEEDED)
    assert job.history.started_at is not None
    await client.jobs.kill(job.id)


async def test_failed_job_reason_and_description(client: Client) -> None:
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu:latest"),
        preset_name="cpu-small",
        command="sh -c 'echo oops >&2; exit 3'",
    )
    job = await wait_finished(client, job.id)
    assert job.status == JobStatus.FAILED
    with pytest.raises(RuntimeError, match=rf"Job {job.id} failed with Error:.*code 3"):
        if job.status == JobStatus.FAILED:
            raise RuntimeError(
                f"Job {job.id} failed with {job.reason}:{job.history.description}"
            )
    assert job.history.exit_code == 3
    assert job.reason == "Error" and "code 3" in (job.history.description or "")
    assert [t.status for t in job.history.transitions] == [
        JobStatus.PENDING,
        JobStatus.RUNNING,
        JobStatus.FAILED,
    ]
    assert job.history.finished_at is not None


async def test_succeeded_job_history(client: Client) -> None:
    job = await client.jobs.start(
        image=client.parse.remote_image("python:3.11"),
        preset_name="cpu-medium",
        command="python3 -c 'print(6*7)'",
    )
    job = await wait_finished(client, job.id)
    assert job.status == JobStatus.SUCCEEDED, job.history
    assert job.history.exit_code == 0
    assert job.container.resources.cpu == 2.0
    h = job.history
    assert (
        h.created_at is not None
        and h.started_at is not None
        and h.finished_at is not None
    )
    assert h.created_at <= h.started_at <= h.finished_at


def _job_processes(marker: str) -> list[psutil.Process]:
    """This job's processes, once its two ``sleep <marker>`` run: all of its
    sandbox's pid namespace (or, unsandboxed, of its process group), never
    another job's or another test run's."""
    deadline = time.monotonic() + 30
    while len(sleeps := host_processes_with(f"sleep\0{marker}")) < 2:
        assert time.monotonic() < deadline, "the job's sleeps did not start"
        time.sleep(0.01)
    ns = os.readlink(f"/proc/{sleeps[0]}/ns/pid")
    if ns != os.readlink("/proc/self/ns/pid"):
        same = [p for p in psutil.process_iter() if _pid_ns(p.pid) == ns]
    else:
        group = os.getpgid(sleeps[0])
        same = [p for p in psutil.process_iter() if _pgid(p.pid) == group]
    assert {p.pid for p in same} >= set(sleeps), same
    return same


def _pid_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


async def test_kill_a_job_verbatim(client: Client) -> None:
    marker = unique_sleep()
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu:latest"),
        preset_name="cpu-small",
        command=f"sh -c 'sleep {marker} & sleep {marker} & wait'",
    )
    job = await wait_running(client, job.id)
    before = await asyncio.to_thread(_job_processes, marker)

    await client.jobs.kill(job.id)

    job = await client.jobs.status(job.id)
    assert job.status == JobStatus.CANCELLED
    assert job.reason == "UserRequested"
    alive = [
        p
        for p in before  # is_running() also tells a reused pid from the old one
        if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == []
    # Terminal states are final: killing again changes nothing.
    await client.jobs.kill(job.id)
    again = await client.jobs.status(job.id)
    assert again.history.transitions == job.history.transitions


async def test_run_with_older_spellings(client: Client) -> None:
    job = await client.jobs.run(
        Container(
            image=client.parse.remote_image("ubuntu:latest"),
            resources=Resources(memory_mb=100, cpu=0.5),
            command="true",
        ),
        preemptible_node=True,
    )
    assert job.preemptible_node is True
    assert job.container.resources.memory == 100 * 2**20
    assert job.container.resources.memory_mb == 100
    assert job.container.resources.cpu == 0.5
    job = await wait_finished(client, job.id)
    assert job.status == JobStatus.SUCCEEDED
    assert job.reason == job.history.reason
