"""The one module that feeds views from the runtime thread.

An ``Attachment`` follows one job on the runtime loop: its status changes and
output, in the order ``_follow.JobEvents`` gives them. It hands them either to a
``JobStatusView`` (widget mode; updates happen on the runtime thread, started in an
empty context so headless runs record them) or to a queue that the caller's thread
prints from (text mode: terminals, nbclient, nbval).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
from datetime import UTC, datetime

from ..client import Client, JobDescription, JobStatus
from ..widgets._jobs_panel import JobsPanelView
from ..widgets._status_view import JobStatusView
from ..widgets._telemetry import TelemetryChart
from ._follow import Event, JobEvents
from ._runtime import Runtime

TICK = 1.0
LOG_BATCH = 0.1  # a noisy job must not flood the browser with redraws


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
        ticker = asyncio.create_task(self._tick()) if self.view is not None else None
        loop = asyncio.get_running_loop()
        pending: list[str] = []  # output not shown yet (a view redraws in batches)
        flushed = 0.0

        def flush() -> None:
            nonlocal flushed
            if pending:
                self._emit(Event(log="".join(pending)))
                pending.clear()
                flushed = loop.time()

        try:
            async with JobEvents(self._client, self.job_id, logs=self._logs) as events:
                while True:
                    try:
                        event = await events.next(LOG_BATCH if pending else None)
                    except TimeoutError:  # a quiet moment: show what is pending
                        flush()
                        continue
                    if event is None:
                        break
                    if event.log is not None:
                        pending.append(event.log)
                        if self.view is None or loop.time() - flushed >= LOG_BATCH:
                            flush()
                    else:
                        flush()
                        self.last = event.job
                        self._emit(event)
        finally:
            if ticker is not None:
                ticker.cancel()
            self.events.put(None)
        assert self.last is not None
        return self.last

    async def _tick(self) -> None:
        assert self.view is not None
        while True:
            await asyncio.sleep(TICK)
            self.view.tick(datetime.now(UTC))


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


async def feed_telemetry(client: Client, job_id: str, chart: TelemetryChart) -> None:
    """Feed ``chart`` the job's samples until the job stops (``%apolo_top``)."""
    try:
        async with client.jobs.top(job_id) as samples:
            async for sample in samples:
                chart.add(sample)
    except asyncio.CancelledError:
        chart.end("stopped")
        raise
    except Exception as exc:
        chart.end(f"ended: {exc}")
        return
    try:
        job = await client.jobs.status(job_id)
        chart.end(f"the job is {job.status.value}")
    except Exception:
        chart.end("the job stopped running")
