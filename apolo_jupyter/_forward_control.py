"""Owns a PortForwardToggle's forward: open it, register it with the Jupyter
proxy, and take both down when toggled off, when the job ends, or at kernel exit
(the registry removes this process's records at exit)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from . import _forward_registry as registry
from ._runtime import Runtime
from .client import Client, JobStatus
from .widgets._forward_toggle import PortForwardToggle


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
    rt: Runtime
    client: Client
    job_id: str
    job_port: int
    view: PortForwardToggle = field(init=False)
    record: registry.Forward | None = None
    _stop: asyncio.Event | None = None

    def __post_init__(self) -> None:
        self.view = PortForwardToggle(self.job_id, self.job_port, self._on_change)

    def _on_change(self, wanted: bool) -> None:
        if wanted:
            self.rt.submit(self._serve())
        elif self._stop is not None:
            self.rt.loop.call_soon_threadsafe(self._stop.set)

    async def _serve(self) -> None:
        self._stop = stop = asyncio.Event()
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
                self.record = registry.register(fwd.port, self.job_id)
                self.view.show_on(proxy_url(self.record.id))
                ended = asyncio.create_task(self._job_end())
                stopped = asyncio.create_task(stop.wait())
                done, pending = await asyncio.wait(
                    {ended, stopped}, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()
                note = "off: the job has finished" if ended in done else "off"
        except Exception as exc:  # shown to the user, not raised into the kernel
            self._unregister()
            self.view.show_error(f"forward failed: {exc}")
            return
        self._unregister()
        self.view.show_off(note)

    async def _job_end(self) -> None:
        async with self.client.jobs.watch(self.job_id) as updates:
            async for _ in updates:
                pass

    def _unregister(self) -> None:
        if self.record is not None:
            registry.unregister(self.record.id)
            self.record = None
