"""Many storage requests over one WebSocket (``?op=WEBSOCKET``, see
``_storage_frames``): how folder transfers move many files cheaply.

An HTTP request per file costs both sides far more than the bytes of a small
file. Over the socket a file is a message or two: requests are sent in the order
they were submitted, without waiting for answers, and the server answers them in
that order. So a file's CREATE and WRITEs reach the server in order, and a file
stopped half way has a storage copy of the bytes before the stop, never a hole.

A server that does not open the socket (an older platform, a proxy that does
not pass WebSockets, a test double) makes :func:`open_socket` give ``None``,
and the caller uses HTTP; the refusal is remembered for that storage URL.

The environment variable ``APOLO_JUPYTER_STORAGE_TRANSPORT`` chooses what
folder transfers use: ``auto`` (the default: same-host transfers with the local
platform, see ``_storage_local``, else this socket, else HTTP), ``websocket``
(this socket, else HTTP) or ``http`` (an HTTP request per file, as apolo_sdk).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno as _errno
import logging
import os
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from . import _storage_frames as frames
from ._errors import ClientError, ConnectionDropped, ResourceNotFound

if TYPE_CHECKING:
    from ._storage import Storage

log = logging.getLogger(__name__)
ENV_TRANSPORT = "APOLO_JUPYTER_STORAGE_TRANSPORT"
TRANSPORTS = ("auto", "websocket", "http")
# Bytes of requests queued and not yet handed to the connection.
QUEUE_BYTES = 8 << 20
HANDSHAKE_TIMEOUT = 30.0

Answer = tuple[dict[str, Any], memoryview]


def _retrieve(future: asyncio.Future[Answer]) -> None:
    """A request whose caller stopped waiting (the transfer failed elsewhere)
    must not log "exception never retrieved"."""
    if not future.cancelled():
        future.exception()


def socket_error(header: dict[str, Any], where: str) -> Exception:
    """An ERROR answer as the HTTP ops' errors are raised: ENOENT is
    ``ResourceNotFound`` (HTTP 404), another errno an ``OSError`` of that errno,
    no errno a ``ClientError``."""
    message = str(header.get("error", "the storage socket refused the request"))
    name = header.get("errno")
    code = getattr(_errno, name, None) if isinstance(name, str) else name
    if code == _errno.ENOENT:
        return ResourceNotFound(f"{message}: {where}")
    if isinstance(code, int):
        return OSError(code, message, where)
    return ClientError(f"{message}: {where}")


class StorageSocket:
    """One socket, opened at the storage folder ``root``; paths are relative
    to it."""

    def __init__(
        self, ws: aiohttp.ClientWebSocketResponse, root: URL, storage: Storage
    ) -> None:
        self.root = root
        self._ws = ws
        self._storage = storage
        self._next_id = 0
        self._waiting: dict[int, tuple[asyncio.Future[Answer], float, str]] = {}
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._room = asyncio.Event()
        self._room.set()
        self._wake = asyncio.Event()
        self._broken: Exception | None = None
        self._tasks = [
            asyncio.ensure_future(self._receive()),
            asyncio.ensure_future(self._send()),
        ]

    def _where(self, path: str) -> str:
        return str(self.root / path) if path else str(self.root)

    async def room(self) -> None:
        """Wait until the queue of requests not yet sent has room."""
        while not self._room.is_set():
            await self._room.wait()
        if self._broken is not None:
            raise self._broken

    def submit(
        self, op: str, path: str, data: bytes | memoryview = b"", **fields: int
    ) -> asyncio.Future[Answer]:
        """Queue a request (sent after all those queued before it); the future
        is its ACK's header and payload, or the error it was answered with."""
        if self._broken is not None:
            raise self._broken
        rid = self._next_id
        self._next_id += 1
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._waiting[rid] = (future, time.time(), path)
        message = frames.pack({"op": op, "id": rid, "path": path, **fields}, data)
        self._queue.append(message)
        self._queued += len(message)
        if self._queued >= QUEUE_BYTES:
            self._room.clear()
        self._wake.set()
        return future

    async def call(
        self, op: str, path: str, data: bytes | memoryview = b"", **fields: int
    ) -> Answer:
        await self.room()
        return await self.submit(op, path, data, **fields)

    async def _send(self) -> None:
        try:
            while True:
                while not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                message = self._queue.popleft()
                await self._ws.send_bytes(message)
                self._queued -= len(message)
                if self._queued < QUEUE_BYTES:
                    self._room.set()
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            self._fail(ConnectionDropped(f"the storage socket closed: {exc}"))

    async def _receive(self) -> None:
        reason = "the server closed it"
        try:
            async for msg in self._ws:
                if msg.type == aiohttp.WSMsgType.ERROR:
                    reason = str(self._ws.exception())
                    break
                if msg.type != aiohttp.WSMsgType.BINARY:
                    continue
                self._answer(msg.data)
        except (aiohttp.ClientError, ConnectionError, frames.FrameError) as exc:
            reason = str(exc)
        self._fail(ConnectionDropped(f"the storage socket closed: {reason}"))

    def _answer(self, message: bytes) -> None:
        header, payload = frames.unpack(message)
        rid = header.get("rid")
        waiting = self._waiting.pop(rid, None) if isinstance(rid, int) else None
        if waiting is None:
            # An error about a message it could not read: a bug on one side.
            raise frames.FrameError(f"an answer to no request: {header!r}")
        future, sent, path = waiting
        stamp = header.get("timestamp")
        if isinstance(stamp, int):
            self._storage._clock.observe_stamp(sent, stamp)
        if future.done():
            return
        if header.get("op") == frames.ACK:
            future.set_result((header, payload))
        else:
            future.set_exception(socket_error(header, self._where(path)))

    def _fail(self, exc: Exception) -> None:
        if self._broken is None:
            self._broken = exc
        for future, _, _ in self._waiting.values():
            if not future.done():
                future.set_exception(self._broken)
        self._waiting.clear()
        self._room.set()  # wake anyone waiting for room: they raise

    async def close(self) -> None:
        self._fail(ClientError("the storage socket was closed"))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._ws.close()


def transport() -> str:
    """What folder transfers may use, from ``APOLO_JUPYTER_STORAGE_TRANSPORT``."""
    chosen = os.environ.get(ENV_TRANSPORT, "").strip().lower() or "auto"
    if chosen not in TRANSPORTS:
        raise ValueError(
            f"{ENV_TRANSPORT}={chosen!r} is not one of {', '.join(TRANSPORTS)}: "
            "set it to one of those or unset it"
        )
    return chosen


@contextlib.asynccontextmanager
async def open_socket(
    storage: Storage, root: URL
) -> AsyncIterator[StorageSocket | None]:
    """A socket at the (normalized) storage folder ``root``, or None when this
    storage does not open one (use HTTP then)."""
    url = storage._url(root)
    origin = str(url.origin())
    if transport() == "http" or origin in storage._no_socket:
        yield None
        return
    try:
        ws = await asyncio.wait_for(
            storage._core.session.ws_connect(
                url.with_query(op="WEBSOCKET"),
                headers=storage._core._auth(None),
                max_msg_size=frames.MAX_MESSAGE,
                compress=0,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0),
            ),
            HANDSHAKE_TIMEOUT,
        )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.debug("storage socket at %s refused (%s): HTTP instead", url, exc)
        storage._no_socket.add(origin)
        yield None
        return
    sock = StorageSocket(ws, root, storage)
    try:
        yield sock
    finally:
        await sock.close()
