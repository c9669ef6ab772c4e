"""``client.jobs.port_forward``: a job's TCP port on a local 127.0.0.1 port.

Every accepted local connection gets its own WebSocket to
``{monitoring_url}/{id}/port_forward/{job_port}``; raw bytes travel as BINARY
frames. Each direction reads the next chunk only once the other side took the
previous one, so a slow reader never makes memory grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from ._core import Core
from ._errors import ClientError

log = logging.getLogger(__name__)

LOCAL_HOST = "127.0.0.1"
# Bytes per read and frame: a connection reads into two buffers of this size. The
# size of asyncio's own reads; larger frames cost the platform more than they save
# (measured with bench/bench_port_forward.py).
CHUNK = 1 << 18
ABORT_AFTER = 0.5  # seconds a closing forward waits for each close handshake


@dataclass
class Forward:
    """A running port forward."""

    port: int  # the bound local port (useful with ``local_port=0``)
    errors: list[BaseException] = field(default_factory=list)  # per connection


class _Local(asyncio.BufferedProtocol):
    """One accepted local connection, with flow control both ways.

    Bytes are received straight into one of two fixed buffers (no allocation per
    read); reading pauses while that buffer is full, i.e. while the WebSocket lags.
    ``write`` waits while the socket's send buffer is full.
    """

    def __init__(self, start: Callable[[_Local], None]) -> None:
        self._start = start
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()  # both allocated on first use
        self._spare = bytearray()
        self._fill = 0
        self._paused = False
        self._eof = False
        self._lost = False
        self._data: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._start(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        if not self._buf:
            self._buf = bytearray(CHUNK)
        return memoryview(self._buf)[self._fill :]

    def buffer_updated(self, nbytes: int) -> None:
        self._fill += nbytes
        if self._fill == len(self._buf) and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        return True  # we close the socket once the WebSocket is down

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = self._lost = True
        self._wake_reader()
        self.resume_writing()

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drained is not None:
            if not self._drained.done():
                self._drained.set_result(None)
            self._drained = None

    def _wake_reader(self) -> None:
        if self._data is not None and not self._data.done():
            self._data.set_result(None)

    async def read(self) -> memoryview:
        """The bytes received so far; empty at EOF. Valid until the next call."""
        while not self._fill:
            if self._eof:
                return memoryview(b"")
            self._data = self._loop.create_future()
            await self._data
        full, size = self._buf, self._fill
        self._buf, self._spare, self._fill = self._spare, full, 0
        if self._paused and self.transport:
            self._paused = False
            self.transport.resume_reading()
        return memoryview(full)[:size]

    async def write(self, data: bytes) -> None:
        if self._lost or self.transport is None:
            raise ConnectionResetError("the local connection is closed")
        self.transport.write(data)
        if self._drained is not None:
            await self._drained
        if self._lost:
            raise ConnectionResetError("the local connection is closed")


async def _local_to_ws(local: _Local, ws: aiohttp.ClientWebSocketResponse) -> None:
    """Until the local peer's EOF (``send_bytes`` waits for the wire)."""
    while data := await local.read():
        # aiohttp takes memoryviews and copies (to mask) before its first await.
        await ws.send_bytes(data)  # type: ignore[arg-type]


async def _ws_to_local(
    ws: aiohttp.ClientWebSocketResponse, local: _Local, url: URL
) -> None:
    """Until the platform closes; the next frame is read once this one is taken."""
    async for msg in ws:
        if msg.type is aiohttp.WSMsgType.BINARY:
            await local.write(msg.data)
        elif msg.type is aiohttp.WSMsgType.ERROR:
            exc = ws.exception()
            raise exc if exc is not None else ClientError(f"{url} broke")
        else:
            raise ClientError(f"unexpected {msg.type.name} frame from {url}")


async def _pump(ws: aiohttp.ClientWebSocketResponse, local: _Local, url: URL) -> None:
    """Both directions until one ends. A direction that ended cleanly (EOF or the
    platform's CLOSE) makes it a normal end; otherwise re-raise what broke it,
    unless that was the local peer resetting."""
    tasks = [
        asyncio.create_task(_local_to_ws(local, ws)),
        asyncio.create_task(_ws_to_local(ws, local, url)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    if any(result is None for result in results):
        return
    for result in results:
        local_reset = isinstance(result, ConnectionError) and not isinstance(
            result, aiohttp.ClientError
        )
        if isinstance(result, Exception) and not local_reset:
            raise result


async def _connection(core: Core, url: URL, local: _Local, fwd: Forward) -> None:
    assert local.transport is not None
    peer = local.transport.get_extra_info("peername")
    try:
        async with core.ws_connect(url) as ws:  # translates aiohttp's errors
            try:
                await _pump(ws, local, url)
            except asyncio.CancelledError:
                # The forward is closing: don't wait on a peer that is not reading
                # (aiohttp drops the connection when its close is cancelled).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.close(), ABORT_AFTER)
                raise
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
        local.transport.close()


@asynccontextmanager
async def _forward(core: Core, url: URL, local_port: int) -> AsyncIterator[Forward]:
    loop = asyncio.get_running_loop()
    fwd = Forward(port=local_port)
    live: set[asyncio.Task[None]] = set()
    closing = False

    def start(local: _Local) -> None:
        if closing:
            assert local.transport is not None
            local.transport.close()
            return
        task = loop.create_task(_connection(core, url, local, fwd))
        live.add(task)
        task.add_done_callback(live.discard)

    server = await loop.create_server(lambda: _Local(start), LOCAL_HOST, local_port)
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
