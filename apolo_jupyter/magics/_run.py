"""What ``%apolo_run`` / ``%%apolo_job`` / ``%apolo_status`` do: start, then attach."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from IPython.core.error import UsageError

from ..client import (
    Client,
    ClientError,
    ConfigError,
    JobDescription,
    JobStatus,
    ResourceNotFound,
)
from ..client._users import Action, Permission
from ..kernel._options import JobOptions
from ..kernel._run_request import RunPlan, plan_run, submit
from ..kernel._runtime import Runtime, runtime


def connect() -> tuple[Runtime, Client]:
    rt = runtime()
    try:
        return rt, rt.client()
    except (ClientError, ConfigError, RuntimeError, OSError) as exc:
        raise UsageError(
            f"no Apolo platform is reachable: {exc}. See the current one with "
            "%apolo_use, or start the local one: !apolo-jupyter local start"
        ) from None


def unknown_job(job_id: str) -> UsageError:
    return UsageError(f"unknown job {job_id!r}: list jobs with %apolo_ps --all")


@contextmanager
def known_job(job_id: str) -> Iterator[None]:
    """The platform's 404 for ``job_id`` as a UsageError that says what to do
    (whatever the platform's own words: they name its tools, not ours)."""
    try:
        yield
    except ResourceNotFound:
        raise unknown_job(job_id) from None


def not_running(job: JobDescription, magic: str) -> UsageError:
    return UsageError(
        f"job {job.id} is {job.status.value}, not running: {magic} needs a running "
        "job (%apolo_ps lists them)"
    )


def running_job(rt: Runtime, client: Client, job_id: str, magic: str) -> JobDescription:
    """The job ``job_id`` if it runs now, else a UsageError in the magics' words."""
    with known_job(job_id):
        job: JobDescription = rt.run(client.jobs.status(job_id), timeout=30)
    if not job.status.is_running:
        raise not_running(job, magic)
    return job


NO_COMMAND = (
    "the local platform needs a command: it runs programs of this machine and "
    "pulls no image, so an image brings no default command. Add -- COMMAND, e.g. "
    "%apolo_run ubuntu:latest -- echo hi"
)


def job_status(job_id: str) -> tuple[Runtime, Client, JobDescription]:
    """Connect, then ask the job's status (an unknown job is a UsageError)."""
    rt, client = connect()
    with known_job(job_id):
        job = rt.run(client.jobs.status(job_id), timeout=30)
    return rt, client, job


def start_job(o: JobOptions) -> JobDescription:
    """Check the options, start the job (as `apolo run` would), share it, start
    its port forwards; UsageError for whatever needs fixing."""
    rt, client = connect()
    if client.config.local and not o.command:
        raise UsageError(NO_COMMAND)
    plan: RunPlan = rt.run(plan_run(client, o), timeout=60)
    try:
        job: JobDescription = rt.run(submit(client, plan), timeout=60)
    except (ValueError, ClientError) as exc:
        raise UsageError(f"the platform refused the job: {exc}") from None
    for user in plan.share:
        try:
            rt.run(
                client.users.share(user, Permission(job.uri, Action.WRITE)), timeout=60
            )
        except (ValueError, ClientError) as exc:
            print(f"could not share {job.id} with {user}: {exc}", file=sys.stderr)
    for local, remote in plan.port_forwards:
        rt.submit(_forward_while_running(client, job.id, local, remote))
        print(f"forwarding 127.0.0.1:{local} to port {remote} of {job.id}")
    return job


async def _forward_while_running(
    client: Client, job_id: str, local: int, remote: int
) -> None:
    async with client.jobs.watch(job_id) as updates:
        async for job in updates:
            if job.status == JobStatus.RUNNING:
                break
            if job.status.is_finished:
                return
    async with (
        client.jobs.port_forward(job_id, local, remote),
        client.jobs.watch(job_id) as updates,
    ):
        async for _ in updates:
            pass


def wait_start(rt: Runtime, client: Client, job: JobDescription) -> JobDescription:
    """Until the job has left pending (as `apolo run --detach` waits)."""

    async def started() -> JobDescription:
        last = job
        async with client.jobs.watch(job.id) as updates:
            async for last in updates:
                if not last.status.is_pending:
                    break
        return last

    return rt.run(started())


def attach_job(
    job_id: str, o: JobOptions, *, wait_for_start: bool = True
) -> JobDescription:
    from ..kernel._attach import follow  # widgets are loaded only when a job is shown

    rt, client, job = job_status(job_id)
    if o.detach and o.wait_start and job.status.is_pending and wait_for_start:
        job = wait_start(rt, client, job)
    result = follow(rt, client, job, replace(o, detach=o.detach or not o.wait_start))
    if o.raise_ and result.status != JobStatus.SUCCEEDED:
        detail = " ".join(p for p in (result.reason, result.history.description) if p)
        raise RuntimeError(f"job {result.id} {result.status}: {detail}")
    sys.stdout.flush()
    return result
