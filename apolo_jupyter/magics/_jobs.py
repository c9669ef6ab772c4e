"""``%apolo_ps``, ``%apolo_logs``, ``%apolo_kill``, ``%apolo_use``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from IPython.core.error import UsageError

from ..client import Client, JobDescription, JobStatus, get
from ..kernel._runtime import runtime
from ._run import connect, known_job

IDLE_END = 0.5  # without -f, stop reading a running job's log after this quiet time


def _one_line(text: str, width: int) -> str:
    """``text`` on one line (a cell's script has newlines), cut to ``width``."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _age(job: JobDescription) -> str:
    created = job.history.created_at
    if created is None:
        return "-"
    seconds = int((datetime.now(UTC) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _statuses(names: Sequence[str]) -> set[JobStatus]:
    try:
        return {JobStatus(n) for n in names}
    except ValueError:
        known = ", ".join(sorted(s.value for s in JobStatus.items()))
        raise UsageError(f"--status takes one of {known}") from None


def list_jobs(
    status: Sequence[str], all_: bool, name: str | None, tags: Sequence[str]
) -> None:
    rt, client = connect()
    statuses = (
        _statuses(status) if status else set() if all_ else JobStatus.active_items()
    )

    async def collect() -> list[JobDescription]:
        async with client.jobs.list(
            statuses=statuses, name=name or "", tags=tags
        ) as it:
            return [job async for job in it]

    jobs = rt.run(collect(), timeout=60)
    if not jobs:
        print(
            "no jobs"
            + ("" if all_ or status else " running or pending (--all shows all)")
        )
        return
    rows = [("ID", "NAME", "STATUS", "PRESET", "AGE", "COMMAND")]
    for job in jobs:
        rows.append(
            (
                job.id,
                job.name or "",
                job.status.value,
                job.preset_name or "",
                _age(job),
                _one_line(job.container.command or "", 40),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


async def _read_logs(client: Client, job_id: str, follow: bool) -> None:
    async with client.jobs.monitor(job_id) as chunks:
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


def print_logs(job_id: str, follow: bool) -> None:
    rt, client = connect()
    try:
        with known_job(job_id):
            job = rt.run(client.jobs.status(job_id), timeout=30)
            rt.run(_read_logs(client, job.id, follow or job.status.is_finished))
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
