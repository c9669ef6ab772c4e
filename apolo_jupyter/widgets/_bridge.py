"""The one module that feeds views from the runtime thread.

An ``Attachment`` follows one job on the runtime loop: status changes from
``jobs.watch`` and output from ``jobs.monitor``. It hands them either to a
``JobStatusView`` (widget mode; updates happen on the runtime thread, started in an
empty context so headless runs record them) or to a queue that the caller's thread
prints from (text mode: terminals, nbclient, nbval).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from .._runtime import Runtime
from ..client import Client, JobDescription, JobStatus
from ._jobs_panel import JobsPanelView
from ._status_view import JobStatusView

TICK = 1.0
LOG_BATCH = 0.1  # a noisy job must not flood the browser with redraws


def as_of(job: JobDescription, n: int) -> JobDescription:
    """``job`` as it stood after its first ``n`` (>= 1) status transitions."""
    items = job.history.transitions[:n]
    last = items[-1]
    history = replace(
        job.history,
        status=last.status,
        reason=last.reason,
        description=last.description,
        exit_code=last.exit_code,
        transitions=items,
    )
    return replace(job, status=last.status, history=history)


@dataclass(frozen=True)
class Event:
    """What text mode prints: a status snapshot, or a chunk of output."""

    job: JobDescription | None = None
    log: str | None = None


class Attachment:
    def __init__(
        self,
        rt: Runtime,
        client: Client,
        job_id: str,
        view: JobStatusView | None = None,
        *,
        logs: bool = True,
    ) -> None:
        self._rt = rt
        self._client = client
        self.job_id = job_id
        self.view = view
        self._logs = logs
        self.events: queue.Queue[Event | None] = queue.Queue()
        self.last: JobDescription | None = None
        # Output is held back until a status past "pending" has been shown, so
        # text mode never prints a job's first lines above its "running" line.
        self._started = asyncio.Event()
        self.future: concurrent.futures.Future[JobDescription] = rt.submit(
            self._follow()
        )

    def kill(self) -> None:
        """Ask the platform to kill the job; the watcher shows the outcome."""
        if self.view is not None:
            self.view.kill_requested()
        self._rt.submit(self._client.jobs.kill(self.job_id))

    def stop(self) -> None:
        self.future.cancel()

    def _emit(self, event: Event) -> None:
        if self.view is None:
            self.events.put(event)
        elif event.job is not None:
            self.view.update(event.job)
        elif event.log is not None:
            self.view.append_log(event.log)

    async def _follow(self) -> JobDescription:
        logs = asyncio.create_task(self._follow_logs()) if self._logs else None
        ticker = asyncio.create_task(self._tick()) if self.view is not None else None
        try:
            async with self._client.jobs.watch(self.job_id) as updates:
                async for job in updates:
                    self.last = job
                    if job.status.is_finished and logs is not None:
                        # A short job may be seen first already finished: show the
                        # statuses it went through, then all its output, then the end.
                        if len(job.history.transitions) > 1:
                            self._emit(
                                Event(job=as_of(job, len(job.history.transitions) - 1))
                            )
                        self._started.set()
                        await logs
                    self._emit(Event(job=job))
                    if job.status != JobStatus.PENDING:
                        self._started.set()
        finally:
            for task in (logs, ticker):
                if task is not None and not task.done():
                    task.cancel()
            self.events.put(None)
        assert self.last is not None
        return self.last

    async def _follow_logs(self) -> None:
        """Forward output, batched to at most one view redraw per LOG_BATCH seconds."""
        decoder = _Utf8()
        pending: list[str] = []
        flushed = 0.0
        loop = asyncio.get_running_loop()
        async with self._client.jobs.monitor(self.job_id) as chunks:
            async for chunk in chunks:
                pending.append(decoder.feed(chunk))
                await self._started.wait()
                if self.view is None or loop.time() - flushed >= LOG_BATCH:
                    self._emit(Event(log="".join(pending)))
                    pending.clear()
                    flushed = loop.time()
        if any(pending):
            self._emit(Event(log="".join(pending)))

    async def _tick(self) -> None:
        assert self.view is not None
        while True:
            await asyncio.sleep(TICK)
            self.view.tick(datetime.now(UTC))


class _Utf8:
    """Decode a byte stream whose chunks may split multi-byte characters."""

    def __init__(self) -> None:
        import codecs

        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        return self._decoder.decode(data)


DISCOVER = 2.0  # seconds between looks for jobs started elsewhere


async def follow_panel(client: Client, view: JobsPanelView, *, all_jobs: bool) -> None:
    """Keep a jobs panel current: one pushed watch per live job, new jobs found
    by a periodic list. Runs until cancelled."""
    watchers: dict[str, asyncio.Task[None]] = {}

    async def watch(job_id: str) -> None:
        async with client.jobs.watch(job_id) as updates:
            async for job in updates:
                view.update(job)

    statuses = set() if all_jobs else JobStatus.active_items()
    try:
        while True:
            async with client.jobs.list(statuses=statuses) as jobs:
                async for job in jobs:
                    if job.id in watchers:
                        continue
                    view.update(job)
                    if not job.status.is_finished:
                        watchers[job.id] = asyncio.create_task(watch(job.id))
                    else:
                        watchers[job.id] = asyncio.create_task(asyncio.sleep(0))
            await asyncio.sleep(DISCOVER)
    finally:
        for task in watchers.values():
            task.cancel()
