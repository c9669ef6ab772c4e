"""Owns a PortForwardToggle's forward: open it, register it with the Jupyter
proxy, and take both down when toggled off, when the job ends, or at kernel exit
(the registry removes this process's records at exit)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
from dataclasses import dataclass, field

from ..client import Client, JobStatus
from ..widgets._forward_toggle import PortForwardToggle
from . import _forward_registry as registry
from ._runtime import Runtime


def base_url() -> str:
    """The Jupyter server's base URL, as far as the kernel can tell."""
    prefix = os.environ.get("APOLO_JUPYTER_BASE_URL") or os.environ.get(
        "JUPYTERHUB_SERVICE_PREFIX", "/"
    )
    return prefix if prefix.endswith("/") else prefix + "/"


def proxy_url(forward_id: str) -> str:
    return f"{base_url()}apolo/forward/{forward_id}/"


@dataclass
class ForwardControl:
    """Each "on" runs one ``_serve`` on the runtime loop, with its own stop event
    and record. A quick off-then-on waits for the previous forward to be fully
    down first, so two never overlap and each removes only its own route."""

    rt: Runtime
    client: Client
    job_id: str
    job_port: int
    view: PortForwardToggle = field(init=False)
    record: registry.Forward | None = None
    _stop: asyncio.Event | None = None
    _task: concurrent.futures.Future[None] | None = None

    def __post_init__(self) -> None:
        self.view = PortForwardToggle(self.job_id, self.job_port, self._on_change)

    def _on_change(self, wanted: bool) -> None:
        if wanted:
            self._stop = stop = asyncio.Event()
            self._task = self.rt.submit(self._serve(self._task, stop))
        elif self._stop is not None:
            self.rt.loop.call_soon_threadsafe(self._stop.set)

    async def _serve(
        self,
        previous: concurrent.futures.Future[None] | None,
        stop: asyncio.Event,
    ) -> None:
        if previous is not None and not previous.done():
            with contextlib.suppress(BaseException):
                await asyncio.wrap_future(previous)
        if stop.is_set():  # turned off again before it started
            return
        self.view.show_starting()
        try:
            job = await self.client.jobs.status(self.job_id)
            if job.status != JobStatus.RUNNING:
                self.view.show_error(
                    f"{self.job_id} is {job.status}; port forwarding needs a running job"
                )
                return
            async with self.client.jobs.port_forward(
                self.job_id, 0, self.job_port
            ) as fwd:
                record = self.record = registry.register(fwd.port, self.job_id)
                try:  # the route goes before the listener closes
                    self.view.show_on(proxy_url(record.id), fwd.port)
                    note = await self._until_off_or_ended(stop)
                finally:
                    registry.unregister(record.id)
                    if self.record is record:
                        self.record = None
        except Exception as exc:  # shown to the user, not raised into the kernel
            self.view.show_error(f"forward failed: {exc}")
            return
        if not self._newer_than(stop):
            self.view.show_off(note)

    def _newer_than(self, stop: asyncio.Event) -> bool:
        """Another "on" came after the one that ``stop`` belongs to."""
        return self._stop is not stop and not (
            self._stop is not None and self._stop.is_set()
        )

    async def _until_off_or_ended(self, stop: asyncio.Event) -> str:
        ended = asyncio.create_task(self._job_end())
        stopped = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait(
                {ended, stopped}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ended.cancel()
            stopped.cancel()
        return "off: the job has finished" if ended in done else "off"

    async def _job_end(self) -> None:
        async with self.client.jobs.watch(self.job_id) as updates:
            async for _ in updates:
                pass
