"""``%apolo_logs``, ``%apolo_kill``, ``%apolo_status``'s description,
``%apolo_bump_life_span``, ``%apolo_generate_run_command``, ``%apolo_use``; the CLI
runs the same functions."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import datetime

from IPython.core.error import UsageError

from ..client import Client, get
from ..kernel._options import parse_duration
from ..kernel._runtime import runtime
from ._ps import parse_date
from ._run import connect, job_status, known_job
from ._run_command import describe, run_command

IDLE_END = 0.5  # without -f, stop reading a running job's log after this quiet time


async def _read_logs(
    client: Client,
    job_id: str,
    follow: bool,
    since: datetime | None = None,
    timestamps: bool = False,
) -> None:
    monitor = client.jobs.monitor(job_id, since=since, timestamps=timestamps)
    async with monitor as chunks:
        iterator = chunks.__aiter__()
        while True:
            try:
                if follow:
                    chunk = await iterator.__anext__()
                else:
                    chunk = await asyncio.wait_for(iterator.__anext__(), IDLE_END)
            except (StopAsyncIteration, TimeoutError):
                return
            sys.stdout.write(chunk.decode(errors="replace"))


def print_logs(
    job_id: str, follow: bool, since: str | None = None, timestamps: bool = False
) -> None:
    when = parse_date(since, "--since")
    rt, client = connect()
    try:
        with known_job(job_id):
            job = rt.run(client.jobs.status(job_id), timeout=30)
            finished = follow or job.status.is_finished
            rt.run(_read_logs(client, job.id, finished, when, timestamps))
    except KeyboardInterrupt:
        print(f"\n(stopped following {job_id}; it keeps running)")
    sys.stdout.flush()


def kill_jobs(ids: Sequence[str]) -> None:
    rt, client = connect()
    for job_id in ids:
        with known_job(job_id):
            rt.run(client.jobs.kill(job_id), timeout=60)
            job = rt.run(client.jobs.status(job_id), timeout=30)
        print(f"{job.id}: {job.status}")


def describe_job(job_id: str, full_uri: bool) -> None:
    """What `apolo status` prints about a job."""
    _, client, job = job_status(job_id)
    print(describe(job, client, full_uri))


def bump_life_span(job_id: str, additional: str) -> None:
    seconds = parse_duration(additional, "TIMEDELTA")
    if not seconds:
        raise UsageError("the additional life span must be more than 0, e.g. 2h")
    rt, client = connect()
    with known_job(job_id):
        rt.run(client.jobs.bump_life_span(job_id, seconds), timeout=30)
        job = rt.run(client.jobs.status(job_id), timeout=30)
    minutes = int((job.life_span or 0) // 60)
    print(f"{job.id}: life span is now {minutes} min from its start")


def generate_run_command(job_id: str) -> str:
    """The `apolo run` line that starts the same job again."""
    job = job_status(job_id)[2]
    return run_command(job)


def show_backend(backend: str | None, token: str | None) -> None:
    rt = runtime()
    if backend is None:
        _, client = connect()
        print(client.config.describe())
        return
    if backend not in ("local", "auto") and token is None:
        raise UsageError(
            f"%apolo_use {backend}: an API URL needs --token, e.g. "
            "%apolo_use https://api.apolo.us/api/v1 --token $TOKEN (or use local / auto)"
        )

    async def connect_to() -> Client:
        if backend == "local":
            return await get(local=True, quiet=True)
        if backend == "auto":
            return await get(quiet=True)
        return await get(backend, token, quiet=True)

    try:
        client = rt.run(connect_to(), timeout=60)
    except Exception as exc:
        raise UsageError(f"cannot use {backend}: {exc}") from None
    rt.use(client)
    print(client.config.describe())
