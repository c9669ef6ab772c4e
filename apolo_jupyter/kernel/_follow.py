"""One job's status changes and output, merged in the order a reader expects.

Both the magics' views (``kernel._bridge``) and ``apolo-jupyter run`` show a job
as it goes; this is the one place that decides the order:

- status snapshots as they come; a short job first seen already finished gets a
  snapshot as of its last status before the end first (its history holds every
  earlier transition, for callers that print a line per transition);
- output only once a status past ``pending`` has been shown;
- all output before the final status, which ends the stream.

Output is decoded as UTF-8 across chunk boundaries.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import TracebackType

from ..client import Client, JobDescription, JobStatus, JobStatusItem

__all__ = ["Event", "JobEvents", "as_of"]


def _restart_marks(items: Sequence[JobStatusItem]) -> int:
    """Transitions that count as a restart, as the platform counts them: a
    container restarting in place, or a suspension (preemption)."""
    return sum(
        item.reason == "Restarting" or item.status == JobStatus.SUSPENDED
        for item in items
    )


def as_of(job: JobDescription, n: int) -> JobDescription:
    """``job`` as it stood after its first ``n`` (>= 1) status transitions
    (its restart count too, so a replayed line does not claim later restarts)."""
    items = job.history.transitions[:n]
    last = items[-1]
    later = _restart_marks(job.history.transitions[n:])
    history = replace(
        job.history,
        status=last.status,
        reason=last.reason,
        description=last.description,
        exit_code=last.exit_code,
        transitions=items,
        restarts=max(0, job.history.restarts - later),
    )
    return replace(job, status=last.status, history=history)


@dataclass(frozen=True)
class Event:
    """A status snapshot, or a piece of output."""

    job: JobDescription | None = None
    log: str | None = None


class JobEvents:
    """``async with JobEvents(client, job_id) as events``, then ``await
    events.next()`` until it returns None (after the final status). ``next`` takes
    a timeout (``TimeoutError``; nothing is lost), for callers that batch output."""

    def __init__(self, client: Client, job_id: str, *, logs: bool = True) -> None:
        self._client = client
        self._job_id = job_id
        self._logs = logs
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._started = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> JobEvents:
        log_task = asyncio.create_task(self._read_logs()) if self._logs else None
        self._watcher = asyncio.create_task(self._watch(log_task))
        self._tasks = [t for t in (log_task, self._watcher) if t is not None]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task

    async def next(self, timeout: float | None = None) -> Event | None:
        event = await asyncio.wait_for(self._queue.get(), timeout)
        if event is None:
            await self._watcher  # its error, if the stream ended on one
        return event

    async def _read_logs(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        async with self._client.jobs.monitor(self._job_id) as chunks:
            async for chunk in chunks:
                await self._started.wait()
                if text := decoder.decode(chunk):
                    self._queue.put_nowait(Event(log=text))
        if tail := decoder.decode(b"", final=True):
            self._queue.put_nowait(Event(log=tail))

    async def _watch(self, log_task: asyncio.Task[None] | None) -> None:
        try:
            async with self._client.jobs.watch(self._job_id) as updates:
                async for job in updates:
                    count = len(job.history.transitions)
                    if job.status.is_finished and log_task is not None:
                        if count > 1:
                            self._queue.put_nowait(Event(job=as_of(job, count - 1)))
                        self._started.set()
                        await log_task
                    self._queue.put_nowait(Event(job=job))
                    if job.status != JobStatus.PENDING:
                        self._started.set()
        finally:
            self._queue.put_nowait(None)
