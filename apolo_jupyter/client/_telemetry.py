"""``client.jobs.top``: a running job's CPU, memory and GPU, about once a second.

TEXT frames of JSON (reference §4.3). The platform sends nothing while the job
is pending and closes the socket when it stops; a socket that closes before any
frame means the job was not running.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

import aiohttp
from yarl import URL

from . import _stream_wire
from ._core import Core
from ._errors import ClientError, IllegalArgumentError
from ._exec import missing_route
from ._stream_models import JobTelemetry
from ._utils import asyncgeneratorcontextmanager


@asyncgeneratorcontextmanager
async def top(core: Core, url: URL, job_id: str) -> AsyncGenerator[JobTelemetry, None]:
    received, reason = False, ""
    # As apolo_sdk: no client heartbeat (a frame comes every second anyway).
    with missing_route(url):
        async with core.ws_connect(url, heartbeat=None) as ws:
            while True:
                msg = await ws.receive()
                if msg.type == aiohttp.WSMsgType.TEXT:
                    received = True
                    yield _stream_wire.telemetry_from_api(json.loads(msg.data))
                elif msg.type in _CLOSED:
                    reason = str(msg.extra or "") if msg.type is _CLOSE else ""
                    break
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    raise ClientError(f"top of {job_id} broke: {ws.exception()}")
                else:
                    raise ClientError(f"unexpected top frame {msg.type.name}")
    if not received:
        why = f" ({reason})" if reason else ""
        raise IllegalArgumentError(
            f"Job is not running. Job Id = {job_id}{why}: top follows running jobs; "
            "check its status with client.jobs.status"
        )


_CLOSE = aiohttp.WSMsgType.CLOSE
_CLOSED = (_CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)
