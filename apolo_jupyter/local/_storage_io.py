"""Storage bodies: byte ranges, streaming files out and bodies in (reference §5).

Large bodies are written to disk a whole chunk at a time in a thread, and large
files are sent with ``sendfile``, so large transfers never stall the event loop;
small ones are read or written whole (see SMALL_BODY).
"""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from ._storage_fs import StorageError

CHUNK = 1 << 20
MAX_BUFFERS = 256  # below IOV_MAX (1024) for one pwritev
# A CREATE body of at most SMALL_BODY bytes (an upload's first request carries
# up to CHUNK) is read whole, then written with one call: on the event loop up to
# SMALL_FILE bytes (cheaper than a thread hop), in one thread hop above. A file of
# at most SMALL_FILE bytes is read with one call and sent with the headers.
SMALL_BODY = CHUNK
SMALL_FILE = 1 << 18


def byte_range(request: web.Request, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of a ``Range`` request, else None."""
    if "Range" not in request.headers:
        return None
    try:
        rng = request.http_range
    except ValueError:
        raise StorageError(
            400, "Range must look like 'bytes=<first>-' or 'bytes=<first>-<last>'", None
        ) from None
    start = rng.start or 0
    if start < 0:
        start = max(size + start, 0)
    end = size if rng.stop is None else min(rng.stop, size)
    if start >= size or start >= end:
        raise StorageError(
            416, f"the range {request.headers['Range']!r} is outside the file", None
        )
    return start, end


async def send(request: web.Request, fd: int, offset: int, count: int) -> None:
    """``sendfile`` the bytes: no copy through Python (asyncio falls back to reads
    in a thread where the transport cannot). A file truncated meanwhile gives a
    short body, which the client detects."""
    if count <= 0:  # an empty file: nothing to send (sendfile refuses 0)
        return
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("the client went away")
    stream = os.fdopen(fd, "rb", closefd=False)
    try:
        await asyncio.get_running_loop().sendfile(transport, stream, offset, count)
    finally:
        stream.close()


async def _piece(request: web.Request) -> bytes:
    """The body's next piece as it was received, b"" at its end (``readany``
    would join all that is buffered: one more copy of every byte). A request
    without a body shares aiohttp's one empty reader, whose ``readchunk`` says
    "end of an HTTP chunk", not "end", once anyone has read it: so ``at_eof``
    is asked first."""
    content = request.content
    while not content.at_eof():
        data, end_of_http_chunk = await content.readchunk()
        if data or not end_of_http_chunk:
            return data
    return b""


async def read_body(request: web.Request) -> list[bytes]:
    """The whole body, in the pieces it came in (the caller has checked its
    Content-Length)."""
    pieces = []
    while data := await _piece(request):
        pieces.append(data)
    return pieces


def write_all(
    fd: int, buffers: list[bytes] | list[memoryview], offset: int | None = None
) -> None:
    """All of ``buffers``, at ``offset`` or at the file position, with as few
    calls as it takes."""
    if len(buffers) > MAX_BUFFERS:
        buffers = [b"".join(buffers)]
    views = [memoryview(b) for b in buffers if b]
    while views:
        if offset is None:
            done = os.writev(fd, views)
        else:
            done = os.pwritev(fd, views, offset)
            offset += done
        while views and done >= len(views[0]):
            done -= len(views[0])
            views.pop(0)
        if views and done:
            views[0] = views[0][done:]


async def receive(request: web.Request, fd: int, offset: int) -> int:
    """Stream the body into ``fd`` at ``offset``; one chunk is written (in a
    thread) while the next one arrives. Returns the number of bytes written."""
    total = 0
    pending: list[bytes] = []
    size = 0
    writing: asyncio.Future[None] | None = None
    try:
        while True:
            data = await _piece(request)
            if data:
                pending.append(data)
                size += len(data)
            if size >= CHUNK or (not data and size):
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(
                    asyncio.to_thread(write_all, fd, pending, offset + total)
                )
                total += size
                pending, size = [], 0
            if not data:
                break
    finally:
        if writing is not None:
            await _finish(writing)
    return total


async def _finish(writing: asyncio.Future[None]) -> None:
    """Wait for the thread writing to the caller's fd, even when cancelled: the
    caller closes the fd next, and a write into a reused fd number would land
    in another file. A cancellation is passed on once the write is over."""
    cancelled = False
    while not writing.done():
        try:
            await asyncio.shield(writing)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    writing.result()
