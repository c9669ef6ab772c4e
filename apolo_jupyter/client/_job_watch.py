"""``jobs.watch``: a job now and on every change of its status, until it ends.

Pushed over the platform's status WebSocket where the config names one (the
local platform does), else adaptive polling of ``jobs.status`` (the real
platform): fast at first and after each change, backing off while nothing
changes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import aiohttp
from yarl import URL

from . import _wire
from ._core import Core
from ._errors import ClientError
from ._models import JobDescription
from ._parser import Parser
from ._utils import asyncgeneratorcontextmanager

POLL_MIN = 0.05
POLL_MAX = 2.0


def _status_key(job: JobDescription) -> tuple[Any, ...]:
    """What counts as a change: status, reason, a new transition."""
    history = job.history
    return (job.status, history.reason, history.description, len(history.transitions))


@asyncgeneratorcontextmanager
async def watch_pushed(
    core: Core, parse: Parser, id: str, base: URL
) -> AsyncGenerator[JobDescription, None]:
    url = base / id / "status_ws"
    last: tuple[Any, ...] | None = None
    async with core.ws_connect(url) as ws:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            job = _wire.job_description_from_api(json.loads(msg.data), parse)
            key = _status_key(job)
            if key != last:
                last = key
                yield job
            if job.status.is_finished:
                return
    # The socket closed before the job finished (platform restart): say so.
    raise ClientError(f"status stream of {id} ended before the job finished")


@asyncgeneratorcontextmanager
async def watch_polled(
    status: Callable[[str], Awaitable[JobDescription]], id: str
) -> AsyncGenerator[JobDescription, None]:
    last: tuple[Any, ...] | None = None
    delay = POLL_MIN
    while True:
        started = time.monotonic()
        job = await status(id)
        key = _status_key(job)
        if key != last:
            last = key
            delay = POLL_MIN
            yield job
            if job.status.is_finished:
                return
        else:
            delay = min(delay * 1.5, POLL_MAX)
        await asyncio.sleep(max(0.0, delay - (time.monotonic() - started)))
