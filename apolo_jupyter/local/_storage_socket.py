"""Storage over one WebSocket: ``GET {storage}/{org}/{project}/{path}?op=WEBSOCKET``.

platform-storage-api's socket (framing in ``client._storage_frames``): each
binary message is one request on a path relative to the folder the socket was
opened at, answered in order with ACK or ERROR. A folder of small files costs a
message per file instead of an HTTP request per file, which is why the client's
``upload_dir`` and ``download_dir`` use it.

Ops, as on the real platform: READ (``offset``, ``size`` up to 16 MiB; fewer
bytes at the end of the file), STAT, LIST, MKDIRS (with parents), CREATE
(``size``: the file, made with its folders if missing, cut or grown to ``size``
bytes) and WRITE (``offset``: the payload written there, the file and its
folders made if missing). ``op=WEBSOCKET_READ`` opens a socket that refuses the
last three; ``WEBSOCKET_WRITE`` is the same as ``WEBSOCKET``.

Every path goes through the same checks as the HTTP ops (``_storage_fs``): no
``.``/``..`` parts, folders reached by fds that follow no symlink, files written
only inside a project folder. A socket keeps the fds of the folders it reached
(``FolderCache``), and the file a CREATE opened for the WRITE after it, so a
folder of small files costs one walk to its folder, not two per file. A file op
runs on the event loop when it moves at most ``SMALL_FILE`` bytes, in a thread
above that; the thread opens and closes its own fd, so a socket closed
meanwhile never leaves a write behind.

One op is the local platform's own: ``LOCAL_TRANSFER`` answers with the path of
its Unix socket for same-host transfers (``_storage_local``); a cluster answers
it "Unknown operation", which tells the client there is none.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from ..client import _storage_frames as frames
from ._storage_fs import (
    Entry,
    FolderCache,
    StorageError,
    error_fields,
    locate,
)
from ._storage_io import SMALL_FILE, write_all
from ._storage_ops import (
    check_depth,
    file_status,
    is_dir,
    list_dir,
    make_dirs,
    open_to_write,
    read_range,
)

log = logging.getLogger(__name__)
HEARTBEAT = 30.0
READ_ONLY = "WEBSOCKET_READ"


class BadRequest(Exception):
    """A request the socket answers with an ERROR that names no errno."""


def _whole(header: dict[str, Any], name: str) -> int:
    value = header.get(name)
    if type(value) is not int or value < 0:
        raise BadRequest(f"{name!r} must be a whole number >= 0, not {value!r}")
    return value


def _entry(base: Entry, header: dict[str, Any]) -> Entry:
    rel = header.get("path", "")
    if not isinstance(rel, str):
        raise BadRequest(f"'path' must be text, not {type(rel).__name__}")
    if rel.startswith("/"):
        raise BadRequest(f"path should be relative to the socket's folder: {rel!r}")
    if not rel:
        return base
    return locate(base.root, f"{base.api_path}/{rel}")


class _Session:
    """A socket's state: its folder, whether it may write, the folder fds it
    keeps (``FolderCache``), and the file the last CREATE or WRITE opened, kept
    open for a WRITE to the same file right after it (a new file's bytes follow
    its CREATE)."""

    def __init__(self, base: Entry, writable: bool, local: str | None) -> None:
        self.base = base
        self.writable = writable
        self.local = local  # the same-host transfers' Unix socket, if any
        self.folders = FolderCache()
        self._held: tuple[tuple[str, ...], int] | None = None

    def take(self, entry: Entry) -> int | None:
        """The held fd if it is ``entry``'s (now the caller's), else None; any
        other held fd is closed."""
        held, self._held = self._held, None
        if held is None:
            return None
        if held[0] == entry.parts:
            return held[1]
        os.close(held[1])
        return None

    def hold(self, entry: Entry, fd: int) -> None:
        self.release()
        self._held = (entry.parts, fd)

    def release(self) -> None:
        if self._held is not None:
            os.close(self._held[1])
            self._held = None

    def close(self) -> None:
        self.release()
        self.folders.close()

    def open_to_write(self, entry: Entry) -> int:
        """The entry opened for writing (the held fd if it is this file's); the
        file, and folders up to it, are made when missing."""
        held = self.take(entry)
        return held if held is not None else open_to_write(entry, self.folders)

    def create(self, entry: Entry, size: int) -> None:
        fd = self.open_to_write(entry)
        try:
            os.ftruncate(fd, size)
        except BaseException:
            os.close(fd)
            raise
        self.hold(entry, fd)

    def write(self, entry: Entry, offset: int, data: memoryview) -> None:
        """On the event loop: the fd stays held for the next WRITE."""
        fd = self.open_to_write(entry)
        try:
            write_all(fd, [data], offset)
        except BaseException:
            os.close(fd)
            raise
        self.hold(entry, fd)

    def read(self, entry: Entry, offset: int, size: int) -> bytes:
        self.release()
        return read_range(entry, offset, size, self.folders)


def _write_alone(entry: Entry, offset: int, data: memoryview) -> None:
    """A large WRITE, in a thread: it opens and closes its own fd (and walks
    on its own), so nothing it uses can be closed under it."""
    fd = open_to_write(entry)
    try:
        write_all(fd, [data], offset)
    finally:
        os.close(fd)


def _mkdirs(entry: Entry) -> None:
    if not is_dir(entry):  # the project folder and above are there already
        check_depth(entry, 2)
        make_dirs(entry)


async def _answer(
    state: _Session, header: dict[str, Any], data: memoryview
) -> tuple[dict[str, Any], bytes]:
    """What to put in the ACK: extra header fields and the payload."""
    op = header["op"]
    entry = _entry(state.base, header)
    if op != frames.WRITE:
        state.release()
    if op == frames.STAT:
        return {"FileStatus": file_status(entry)}, b""
    if op == frames.DISCOVER_OP and state.local is not None:
        return {"socket": state.local}, b""
    if op == frames.LIST:
        items = await asyncio.to_thread(list_dir, entry)
        return {"FileStatuses": {"FileStatus": items}}, b""
    if op == frames.READ:
        offset, size = _whole(header, "offset"), _whole(header, "size")
        if size > frames.MAX_READ:
            raise BadRequest(f"Too large read size: at most {frames.MAX_READ} bytes")
        if size <= SMALL_FILE:
            return {}, state.read(entry, offset, size)
        return {}, await asyncio.to_thread(read_range, entry, offset, size)
    if op not in frames.WRITE_OPS:
        known = ", ".join(sorted(frames.WRITE_OPS | {frames.READ, frames.STAT, "LIST"}))
        raise BadRequest(f"Unknown operation {op!r}: use one of {known}")
    if not state.writable:
        raise BadRequest(
            "Requires writing permission: open the socket with op=WEBSOCKET"
        )
    if op == frames.MKDIRS:
        _mkdirs(entry)
    elif op == frames.CREATE:
        state.create(entry, _whole(header, "size"))  # a truncate: never long
    else:
        offset = _whole(header, "offset")
        if len(data) <= SMALL_FILE:
            state.write(entry, offset, data)
        else:
            state.release()
            await asyncio.to_thread(_write_alone, entry, offset, data)
    return {}, b""


async def _handle(ws: web.WebSocketResponse, state: _Session, message: bytes) -> None:
    try:
        header, data = frames.unpack(message)
        op, rid = header["op"], header["id"]
        if not isinstance(op, str) or type(rid) not in (int, str):
            raise KeyError
    except frames.FrameError as exc:
        await _send(ws, {"op": frames.ERROR, "error": str(exc)})
        return
    except KeyError:
        error = "the header needs 'op' (text) and 'id' (an integer)"
        await _send(ws, {"op": frames.ERROR, "error": error})
        return
    reply: dict[str, Any] = {"rop": op, "rid": rid}
    try:
        fields, payload = await _answer(state, header, data)
    except (StorageError, OSError, BadRequest, ValueError) as exc:
        state.release()
        base = state.base.api_path
        path = header.get("path")
        shown = f"{base}/{path}" if isinstance(path, str) and path else base
        await _send(ws, {"op": frames.ERROR, **reply, **error_fields(exc, shown)})
        return
    await _send(ws, {"op": frames.ACK, **reply, **fields}, payload)


async def _send(
    ws: web.WebSocketResponse, header: dict[str, Any], payload: bytes = b""
) -> None:
    header["timestamp"] = int(time.time())
    await ws.send_bytes(frames.pack(header, payload))


async def session(
    request: web.Request,
    base: Entry,
    op: str,
    started: Callable[[web.StreamResponse], None],
    local: str | None = None,
) -> web.WebSocketResponse:
    """Answer the socket's messages one at a time, in order, until it closes.
    ``started`` gets the response once the upgrade is sent (no HTTP error may
    follow it). ``local``: the Unix socket of same-host transfers, which the
    ``LOCAL_TRANSFER`` op names (``_storage_local``)."""
    ws = web.WebSocketResponse(
        heartbeat=HEARTBEAT, max_msg_size=frames.MAX_MESSAGE, compress=False
    )
    await ws.prepare(request)
    started(ws)
    state = _Session(base, writable=op != READ_ONLY, local=local)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await _handle(ws, state, msg.data)
            elif msg.type == WSMsgType.TEXT:
                error = "send binary messages: a length, a CBOR header, the bytes"
                await _send(ws, {"op": frames.ERROR, "error": error})
            elif msg.type == WSMsgType.ERROR:
                log.info("storage socket closed: %s", ws.exception())
                break
    except ConnectionError:
        pass  # the client went away mid-answer
    finally:
        state.close()
        await ws.close()
    return ws


def refuse_plain_get(op: str) -> StorageError:
    return StorageError(
        400, f"op={op} opens a WebSocket: send an Upgrade request", None
    )
