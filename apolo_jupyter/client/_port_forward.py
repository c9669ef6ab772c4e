"""``client.jobs.port_forward``: a job's TCP port on a local 127.0.0.1 port.

Every accepted local connection gets its own WebSocket to
``{monitoring_url}/{id}/port_forward/{job_port}``; raw bytes travel as BINARY
frames. The connection and its WebSocket form a :class:`._ws_pipe.Pipe`: each
socket is read only while the other can take more, so a slow reader never makes
memory grow, and bytes are not copied in Python on the way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

from yarl import URL

from ._core import Core
from ._errors import ClientError
from ._ws_pipe import Pipe

log = logging.getLogger(__name__)

LOCAL_HOST = "127.0.0.1"
ABORT_AFTER = 0.5  # seconds a closing forward waits for each close handshake


@dataclass
class Forward:
    """A running port forward."""

    port: int  # the bound local port (useful with ``local_port=0``)
    errors: list[BaseException] = field(default_factory=list)  # per connection


async def _connection(core: Core, url: URL, pipe: Pipe, fwd: Forward) -> None:
    transport = pipe.plain.transport
    assert transport is not None
    peer = transport.get_extra_info("peername")
    try:
        try:
            await core.open_pipe(url, pipe)
            await asyncio.shield(pipe.done)
        except asyncio.CancelledError:
            # The forward is closing: say so, but don't wait long on a peer that
            # is not reading.
            pipe.close(wait=ABORT_AFTER)
            await pipe.done
            raise
        if pipe.error is not None:
            raise ClientError(f"{url} broke: {pipe.error}") from pipe.error
    except asyncio.CancelledError:
        pass  # 3.11 would log a cancelled connection task as an error
    except Exception as exc:
        fwd.errors.append(exc)
        log.warning(
            "port forward 127.0.0.1:%s -> %s: connection from %s closed: %s",
            fwd.port,
            url,
            peer,
            exc,
        )
    finally:
        pipe.close(wait=0)  # also closes the local connection


@asynccontextmanager
async def _forward(core: Core, url: URL, local_port: int) -> AsyncIterator[Forward]:
    loop = asyncio.get_running_loop()
    fwd = Forward(port=local_port)
    live: set[asyncio.Task[None]] = set()
    closing = False

    def accepted() -> asyncio.BaseProtocol:
        pipe = Pipe(client=True)
        pipe.plain.on_made = lambda: start(pipe)
        return pipe.plain

    def start(pipe: Pipe) -> None:
        if closing:
            assert pipe.plain.transport is not None
            pipe.plain.transport.close()
            return
        task = loop.create_task(_connection(core, url, pipe, fwd))
        live.add(task)
        task.add_done_callback(live.discard)

    server = await loop.create_server(accepted, LOCAL_HOST, local_port)
    fwd.port = server.sockets[0].getsockname()[1]
    try:
        yield fwd
    finally:
        closing = True
        server.close()
        while live:
            for task in live:
                task.cancel()
            await asyncio.gather(*live, return_exceptions=True)
        await server.wait_closed()


def forward(
    core: Core, ws_url: URL, local_port: int
) -> AbstractAsyncContextManager[Forward]:
    """Listen on 127.0.0.1:``local_port`` (0: any free port, see ``Forward.port``)
    and forward each connection over its own WebSocket to ``ws_url``.

    A failed connection (e.g. nothing listens on the job's port) is logged and kept
    in ``Forward.errors``; its local socket is closed and the others go on. Leaving
    the context closes the listener and every live connection.
    """
    return _forward(core, ws_url, local_port)
