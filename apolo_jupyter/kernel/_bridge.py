"""The one module that feeds views from the runtime thread.

An ``Attachment`` follows one job on the runtime loop: its status changes and
output, in the order ``_follow.JobEvents`` gives them. It hands them either to a
``JobStatusView`` (widget mode), as frozen snapshots built by a ``StatusFeed``,
or to a queue that the caller's thread prints from (text mode: terminals).

Widget mode, bounded: status changes are shown at once; output is taken in as it
comes (the feed keeps only a tail) but shown at most every ``LOG_INTERVAL``, and
less often when a tail is large, so the kernel sends the browser no more than
about ``LOG_RATE`` bytes per second of log however fast a job prints.

While the job runs, a view also gets its resource use: one ``client.jobs.top``
stream per attachment, opened when the job is seen running, closed when it ends
or the attachment stops following. A sample is shown as it comes (about once a
second; at most every ``USAGE_INTERVAL``) and costs the browser only that sample.
A platform without the top route, or a stream that fails, leaves the view as it
was: no sparkline, nothing else changes.

A displayed attachment owns its output (a display id): when the job has finished
it replaces the output with the final status and log tail as text and HTML, so a
saved, exported or reopened notebook tells the outcome. Live JupyterLab routes
that update by display id even after the cell finished; a headless executor
(nbclient, papermill, nbconvert) records it while a cell of the notebook runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import queue
import uuid
from datetime import UTC, datetime

from ..client import Client, JobDescription, JobStatus
from ..widgets._jobs_panel import JobsPanelView
from ..widgets._static import live_metadata
from ..widgets._status_model import StatusFeed
from ..widgets._status_view import JobStatusView, log_state_size
from ..widgets._telemetry import TelemetryChart
from ._follow import Event, JobEvents
from ._platform_registry import kill_path, register_client
from ._runtime import Runtime

LOG_INTERVAL = 0.2  # seconds between log redraws, at least
LOG_RATE = 200_000  # bytes of log state per second the browser gets, at most
USAGE_INTERVAL = 0.5  # seconds between resource samples shown, at least


class Attachment:
    def __init__(
        self,
        rt: Runtime,
        client: Client,
        job_id: str,
        view: JobStatusView | None = None,
        *,
        logs: bool = True,
        job: JobDescription | None = None,
        display: bool = False,
    ) -> None:
        self._rt = rt
        self._client = client
        self.job_id = job_id
        self.view = view
        self._logs = logs
        self.events: queue.Queue[Event | None] = queue.Queue()
        self.last: JobDescription | None = job
        self.display_id: str | None = None
        self._feed: StatusFeed | None = None
        self._due = 0.0  # loop time before which the log is not redrawn
        # The resource stream (widget mode, while the job runs) and why it ended
        # if it failed; read by tests.
        self.top_task: asyncio.Task[None] | None = None
        self.top_error = ""
        self._usage_due = 0.0
        if view is not None:
            platform = register_client(client)
            self._feed = StatusFeed(
                hint=f"%apolo_logs {job_id}",
                can_kill=True,
                kill_path=kill_path(platform, job_id),
            )
            if job is not None:
                self._feed.update(job)
            view.show(self._feed.snapshot())  # before the runtime thread takes over
            if display:
                self._display(view)
        self.future: concurrent.futures.Future[JobDescription] = rt.submit(
            self._follow()
        )

    def _display(self, view: JobStatusView) -> None:
        from IPython.display import display

        self.display_id = f"apolo-{self.job_id}-{uuid.uuid4().hex[:8]}"
        bundle = view.bundle(live=True)
        display(  # type: ignore[no-untyped-call]
            bundle, raw=True, metadata=live_metadata(), display_id=self.display_id
        )

    # -- requests from other threads (run on the runtime loop) ----------------------

    def kill(self) -> None:
        """Ask the platform to kill the job; the watcher shows the outcome."""
        self._rt.submit(self._kill())

    async def _kill(self) -> None:
        if self._feed is not None:
            self._feed.kill_requested()
            self._push()
        try:
            await self._client.jobs.kill(self.job_id)
        except Exception as exc:  # shown in the view, never raised into the kernel
            if self._feed is None:
                raise
            self._feed.kill_failed(f"could not kill the job: {exc}")
            self._push()

    def set_note(self, text: str) -> None:
        """An info line under the status, e.g. how to kill a detached job."""
        self._rt.loop.call_soon_threadsafe(self._set_note, text)

    def _set_note(self, text: str) -> None:
        if self._feed is not None:
            self._feed.note = text
            self._push()

    def stop(self) -> None:
        self.future.cancel()

    def _push(self) -> None:
        if self.view is None or self._feed is None:
            return
        snapshot = self._feed.snapshot(datetime.now(UTC))
        self.view.show(snapshot)
        loop = asyncio.get_running_loop()
        cost = log_state_size(self.view.log)
        self._due = loop.time() + max(LOG_INTERVAL, cost / LOG_RATE)

    # -- the resource stream -----------------------------------------------------------

    def _track_usage(self, job: JobDescription) -> None:
        """Open the top stream when the job runs, close it when it has ended."""
        if self._feed is None:
            return
        task = self.top_task
        if job.status.is_finished:
            if task is not None:
                task.cancel()
            return
        if not job.status.is_running or self.top_error:
            return
        if job.history.finished_at is not None:
            return  # the job as it stood before its end (``_follow.as_of``): over
        if task is None or task.done():  # a job restarted after a suspension
            self.top_task = asyncio.create_task(
                self._watch_usage(), name=f"apolo-top-{self.job_id}"
            )

    async def _watch_usage(self) -> None:
        feed = self._feed
        assert feed is not None
        loop = asyncio.get_running_loop()
        try:
            async with self._client.jobs.top(self.job_id) as samples:
                async for sample in samples:
                    feed.sample(sample)
                    if loop.time() >= self._usage_due:  # else shown with the next
                        self._show_usage()
                        self._usage_due = loop.time() + USAGE_INTERVAL
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # no route, no permission, the job just ended
            self.top_error = str(exc) or type(exc).__name__

    def _show_usage(self) -> None:
        """The view as last shown, with the new samples: only they change."""
        if self.view is None or self._feed is None:
            return
        shown = self.view.snapshot
        self.view.show(dataclasses.replace(shown, usage=self._feed.usage.freeze()))

    async def _stop_usage(self) -> None:
        task = self.top_task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the watcher ------------------------------------------------------------------

    async def _follow(self) -> JobDescription:
        loop = asyncio.get_running_loop()
        feed = self._feed
        dirty = False  # output taken in but not shown yet
        try:
            async with JobEvents(self._client, self.job_id, logs=self._logs) as events:
                while True:
                    if dirty and loop.time() >= self._due:
                        self._push()
                        dirty = False
                    timeout = max(self._due - loop.time(), 0.001) if dirty else None
                    try:
                        event = await events.next(timeout)
                    except TimeoutError:
                        continue  # a quiet moment: the pending output is shown
                    if event is None:
                        break
                    if feed is None:
                        if event.job is not None:
                            self.last = event.job
                        self.events.put(event)
                    elif event.log is not None:
                        feed.feed(event.log)
                        dirty = True
                    elif event.job is not None:
                        self.last = event.job
                        if feed.update(event.job):
                            self._track_usage(event.job)
                        self._push()
                        dirty = False
        finally:
            await self._stop_usage()
            if feed is not None:
                self._push()
                self._finish()
            self.events.put(None)
        assert self.last is not None
        return self.last

    def _finish(self) -> None:
        """The job is over: its output becomes the final text and HTML."""
        if self.display_id is None or self.view is None:
            return
        if not self.view.snapshot.finished:
            return  # stopped following (detached by a kernel restart, say)
        from IPython.display import update_display

        final = self.view.bundle(live=False)
        update_display(final, raw=True, display_id=self.display_id)  # type: ignore[no-untyped-call]


DISCOVER = 2.0  # seconds between looks for jobs started elsewhere


async def follow_panel(
    client: Client,
    view: JobsPanelView,
    *,
    all_jobs: bool,
    listed: concurrent.futures.Future[None] | None = None,
) -> None:
    """Keep a jobs panel current: one pushed watch per live job, new jobs found
    by a periodic list. ``listed`` is done once the first list is shown (so the
    panel is displayed with its rows). Runs until cancelled."""
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
            if listed is not None and not listed.done():
                listed.set_result(None)
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
