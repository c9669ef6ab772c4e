"""A folder transfer's files over the storage socket (``_storage_socket``).

Up: a new file is a CREATE of size 0 and its bytes in WRITEs, sent without
waiting in between. Requests are handled in the order sent, so the storage copy
only ever grows by whole pieces from its start: an interrupted upload leaves a
prefix, which ``continue_`` resumes as it does an HTTP upload's (it never
leaves a file of the full size with a hole in it). Down: a READ for a small
file, pipelined READs of a few MiB for a large one, written to disk in order.
Either way a small file's one blocking call on the local disk shares a thread
hop with other files' (``Hops``).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from pathlib import Path

from yarl import URL

from . import _storage_frames as frames
from ._hops import Hops
from ._storage_files import open_for_upload, write_whole
from ._storage_progress import Reporter
from ._storage_socket import Answer, StorageSocket
from ._storage_transfer import CHUNK, OnBytes, write_blocks

PIECE = 4 << 20  # a large file's bytes per WRITE or READ
WINDOW = 4  # a large file's pieces in flight


async def send_new(
    sock: StorageSocket,
    rel: str,
    path: Path,
    dst: URL,
    report: Reporter,
    hops: Hops,
) -> None:
    """Upload ``path`` as the storage file ``rel`` (under the socket's folder,
    URI ``dst``), which does not exist yet."""
    src = URL(path.as_uri()) if report.active else dst
    stream, size, data = await hops.run(open_for_upload, path)
    report.start(src, dst, size)
    if data is not None:  # all of it at hand
        await sock.room()
        waits = [sock.submit(frames.CREATE, rel, size=0)]
        if data:
            waits.append(sock.submit(frames.WRITE, rel, data, offset=0))
        for wait in waits:
            await wait
        if data:  # an empty file has no step, as in apolo_sdk
            report.step(src, dst, size, size)
        report.complete(src, dst, size)
        return
    try:
        on_bytes = report.counter(src, dst, 0, size)
        sent: deque[tuple[asyncio.Future[Answer], int]] = deque()
        sent.append((sock.submit(frames.CREATE, rel, size=0), 0))
        offset = 0
        while piece := await asyncio.to_thread(stream.read, PIECE):
            await sock.room()
            sent.append(
                (sock.submit(frames.WRITE, rel, piece, offset=offset), len(piece))
            )
            offset += len(piece)
            while len(sent) > WINDOW:
                await _landed(sent, on_bytes)
        while sent:
            await _landed(sent, on_bytes)
        report.complete(src, dst, size)
    finally:
        await asyncio.to_thread(stream.close)


async def _landed(
    sent: deque[tuple[asyncio.Future[Answer], int]], on_bytes: OnBytes
) -> None:
    wait, count = sent.popleft()
    await wait
    if count:
        on_bytes(count)


def _open_new(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)


async def fetch_new(
    sock: StorageSocket,
    rel: str,
    src: URL,
    path: Path,
    size: int,
    report: Reporter,
    hops: Hops,
) -> None:
    """Download the storage file ``rel`` (URI ``src``, ``size`` bytes when it was
    listed) into ``path``, replacing what is there. A file that grew since it
    was listed comes whole, as an HTTP OPEN would bring it."""
    dst = URL(path.as_uri()) if report.active else src  # path is absolute
    report.start(src, dst, size)
    first = min(size + 1, CHUNK)  # one byte more: did it grow?
    _, data = await sock.call(frames.READ, rel, offset=0, size=first)
    if len(data) < first:  # the whole file
        await hops.run(write_whole, path, [data])
        if data:
            report.step(src, dst, len(data), size)
        report.complete(src, dst, size)
        return
    fd = await asyncio.to_thread(_open_new, path)
    try:
        on_bytes = report.counter(src, dst, 0, size)
        await asyncio.to_thread(write_blocks, fd, [data])
        on_bytes(len(data))
        await _fetch_pieces(sock, rel, fd, len(data), on_bytes)
        report.complete(src, dst, size)
    finally:
        await asyncio.to_thread(os.close, fd)


async def _fetch_pieces(
    sock: StorageSocket, rel: str, fd: int, offset: int, on_bytes: OnBytes
) -> None:
    """READs from ``offset`` on, ``WINDOW`` in flight, written in order until
    one comes back short (the end of the file)."""
    asked: deque[asyncio.Future[Answer]] = deque()
    ask_at = offset
    try:
        while True:
            while len(asked) < WINDOW:
                await sock.room()
                asked.append(sock.submit(frames.READ, rel, offset=ask_at, size=PIECE))
                ask_at += PIECE
            _, data = await asked.popleft()
            if data:
                await asyncio.to_thread(write_blocks, fd, [data])
                on_bytes(len(data))
            if len(data) < PIECE:
                return
    finally:
        for wait in asked:
            wait.cancel()
