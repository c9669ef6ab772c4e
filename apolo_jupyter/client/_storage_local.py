"""Folder transfers with the local platform on the same machine: open files
passed over its Unix socket (the platform's side: ``local._storage_local``).

The local platform's storage socket names its Unix socket when asked
(``LOCAL_TRANSFER``, an op only the local platform knows; a cluster answers it
with an error and nothing changes). Each file of a folder transfer is then
opened here and handed over with its storage path; the kernel copies the bytes
(``copy_file_range``), so a folder moves at about the speed of ``cp -r``. The
platform answers each file with the bytes it copied or an error, raised as the
HTTP ops' errors are (``socket_error``).

A few connections, each served by a thread of its own on both sides, run in
parallel. Their threads only open files, send and receive; each answer is handed
to the event loop (``call_soon_threadsafe``).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import functools
import json
import logging
import os
import queue
import socket
import stat
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yarl import URL

from . import _storage_frames as frames
from ._errors import ClientError, ConnectionDropped
from ._storage_progress import Reporter
from ._storage_socket import StorageSocket, open_socket, socket_error, transport
from ._unix_path import unix_address

if TYPE_CHECKING:
    from ._storage import Storage

log = logging.getLogger(__name__)
CONNECTIONS = 2
ONE_FILE_MIN = 4 << 20  # upload_file/download_file: bytes that make it worth it
WINDOW = 8  # requests a connection sends before their answers
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def usable(storage_url: URL, path: str) -> bool:
    """Whether a socket the platform named is one to hand our files to: the
    platform is on this machine, and the socket is ours (or root's)."""
    if storage_url.host not in LOOPBACK or not os.path.isabs(path):
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False
    mine = os.getuid() in (0, st.st_uid) or st.st_uid == 0
    return stat.S_ISSOCK(st.st_mode) and mine


def _connect(path: Path, token: str) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        with unix_address(path) as address:
            conn.connect(address)
        conn.send(json.dumps({"token": token}).encode())
        reply = json.loads(conn.recv(frames.LOCAL_MAX_MESSAGE) or b"{}")
        if reply.get("ok") is not True:
            raise ClientError(f"the local storage socket refused us: {reply}")
    except BaseException:
        conn.close()
        raise
    return conn


Progress = Callable[[int], None]  # bytes copied so far, called on the loop


@dataclass
class _Job:
    op: str
    local: Path
    api_path: str
    shown: str  # the storage URI, for errors
    progress: Progress
    future: asyncio.Future[int]


def _settle(future: asyncio.Future[int], outcome: int | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _call_all(calls: list[Callable[[], None]]) -> None:
    for call in calls:
        call()


class LocalFiles:
    """Connections to the platform's Unix socket, and their threads."""

    def __init__(self, conns: list[socket.socket]) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._loop = asyncio.get_running_loop()
        self._broken: ClientError | None = None
        self._conns = conns
        self._threads = [
            threading.Thread(
                target=self._work, args=(conn,), name="storage-local", daemon=True
            )
            for conn in conns
        ]
        for thread in self._threads:
            thread.start()

    @classmethod
    async def open(
        cls, path: Path, token: str, connections: int = CONNECTIONS
    ) -> LocalFiles:
        conns: list[socket.socket] = []
        try:
            for _ in range(connections):
                conns.append(await asyncio.to_thread(_connect, path, token))
        except BaseException:
            for conn in conns:
                conn.close()
            raise
        return cls(conns)

    async def copy(
        self, op: str, local: Path, api_path: str, shown: str, progress: Progress
    ) -> int:
        """Copy the local file to storage path ``/org/project/...`` (a put) or
        back (a get, into ``local``, made or emptied first); the bytes copied.
        ``shown`` names the storage file in errors; ``progress`` gets the bytes
        copied so far during a long copy."""
        if self._broken is not None:
            raise self._broken
        future: asyncio.Future[int] = self._loop.create_future()
        self._jobs.put(_Job(op, local, api_path, shown, progress, future))
        return await future

    # ------------------------------------------------------------ the threads

    def _work(self, conn: socket.socket) -> None:
        """Send the queue's jobs, up to ``WINDOW`` before their answers (the
        platform answers in order), and hand what comes back to the event loop,
        as much at a time as has arrived."""
        sent: deque[tuple[int, _Job]] = deque()
        next_id = 0
        stopping = False
        with conn:
            while True:
                while not stopping and len(sent) < WINDOW:
                    try:
                        job = self._jobs.get(block=not sent)
                    except queue.Empty:
                        break
                    if job is None:
                        stopping = True
                        break
                    if job.future.cancelled():
                        continue
                    next_id += 1
                    try:
                        self._send(conn, next_id, job)
                    except (OSError, ClientError) as exc:
                        self._hand_over([functools.partial(_settle, job.future, exc)])
                        continue
                    sent.append((next_id, job))
                if not sent:
                    if stopping:
                        return
                    continue
                self._hand_over(self._answers(conn, sent))

    def _hand_over(self, calls: list[Callable[[], None]]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone
            self._loop.call_soon_threadsafe(_call_all, calls)

    def _send(self, conn: socket.socket, rid: int, job: _Job) -> None:
        if self._broken is not None:
            raise self._broken
        # O_NONBLOCK: a FIFO in the way fails at once instead of waiting for a
        # reader (the platform takes regular files only).
        flags = (
            os.O_CLOEXEC
            | os.O_NONBLOCK
            | (
                os.O_RDONLY
                if job.op == frames.LOCAL_PUT
                else os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            )
        )
        fd = os.open(job.local, flags, 0o666)  # an error here is this file's alone
        try:
            request = {"id": rid, "op": job.op, "path": job.api_path}
            conn.sendmsg(
                [json.dumps(request).encode()],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))],
            )
        except OSError as exc:
            raise self._break(f"the local storage socket failed: {exc}") from exc
        finally:
            os.close(fd)

    def _break(self, why: str) -> ClientError:
        if self._broken is None:
            self._broken = ConnectionDropped(why)
        return self._broken

    def _answers(
        self, conn: socket.socket, sent: deque[tuple[int, _Job]]
    ) -> list[Callable[[], None]]:
        """The oldest request's next message (waited for), and the answers that
        are there already; a progress report ends the batch, so it is seen at
        once."""
        calls: list[Callable[[], None]] = []
        flags = 0
        while sent:
            rid, job = sent[0]
            try:
                data = conn.recv(frames.LOCAL_MAX_MESSAGE, flags)
            except BlockingIOError:
                break
            except OSError as exc:
                data, why = b"", f"the local storage socket failed: {exc}"
            else:
                why = "the local platform closed its storage socket"
            if not data:
                sent.popleft()
                calls.append(functools.partial(_settle, job.future, self._break(why)))
                continue
            reply = _parse(data)
            if reply is not None and reply.get("id") == rid and "progress" in reply:
                done = reply["progress"]
                if type(done) is int:
                    calls.append(functools.partial(job.progress, done))
                    break
            sent.popleft()
            outcome = self._outcome(reply, data, rid, job.shown)
            calls.append(functools.partial(_settle, job.future, outcome))
            flags = socket.MSG_DONTWAIT
        return calls

    def _outcome(
        self, reply: dict[str, Any] | None, data: bytes, rid: int, shown: str
    ) -> int | BaseException:
        if reply is None or reply.get("id") != rid:
            return self._break(
                f"an answer that is not to request {rid}: {data[:200]!r}"
            )
        if "error" in reply:
            return socket_error(reply, shown)
        size = reply.get("size")
        if type(size) is not int:
            return self._break(f"an answer without a size: {data[:200]!r}")
        return size

    # ------------------------------------------------------------ the end

    async def close(self) -> None:
        """Once every job is done: let the threads end."""
        for _ in self._threads:
            self._jobs.put(None)
        await asyncio.to_thread(self._join)

    async def abort(self) -> None:
        """The transfer stopped (an error, a cancel): cut the connections, so
        the platform stops its copies at their next step (a new file keeps
        what it has, as an interrupted HTTP upload does)."""
        self._break("the transfer was stopped")
        for conn in self._conns:
            with contextlib.suppress(OSError):  # closed already by its thread
                conn.shutdown(socket.SHUT_RDWR)
        await self.close()

    def _join(self) -> None:
        for thread in self._threads:
            thread.join()


def _parse(data: bytes) -> dict[str, Any] | None:
    try:
        reply = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return reply if isinstance(reply, dict) else None


@contextlib.asynccontextmanager
async def open_local(
    storage: Storage, sock: StorageSocket | None
) -> AsyncIterator[LocalFiles | None]:
    """Same-host transfers with the platform behind ``sock``, or None: when
    the platform does not offer them (a cluster, a test double), is not on this
    machine, or ``APOLO_JUPYTER_STORAGE_TRANSPORT`` says otherwise."""
    files = None
    if sock is not None and transport() == "auto":
        files = await _discover(storage, sock.root, sock, CONNECTIONS)
    async with _used(files) as used:
        yield used


@contextlib.asynccontextmanager
async def one_file_local(
    storage: Storage, folder: URL, size: int, regular: bool
) -> AsyncIterator[LocalFiles | None]:
    """Same-host transfers for ``upload_file``/``download_file`` of ``size``
    bytes at least ``ONE_FILE_MIN`` (below that a request is quicker than a
    connection) when the local end is a ``regular`` file (or none yet), found
    through a storage socket at ``folder`` the first time (then remembered)."""
    files = None
    if size >= ONE_FILE_MIN and regular and transport() == "auto":
        files = await _discover(storage, folder, None, 1)
    async with _used(files) as used:
        yield used


def regular_or_missing(path: Path) -> bool:
    """Whether ``path`` is a regular file or nothing (a FIFO, a device, a folder
    keep the HTTP path)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


@contextlib.asynccontextmanager
async def _used(files: LocalFiles | None) -> AsyncIterator[LocalFiles | None]:
    if files is None:
        yield None
        return
    try:
        yield files
    except BaseException:
        await asyncio.shield(files.abort())
        raise
    await files.close()


async def _discover(
    storage: Storage, root: URL, sock: StorageSocket | None, connections: int
) -> LocalFiles | None:
    """Connections to the platform's Unix socket: its path asked through
    ``sock`` (or a socket opened at ``root``) once per platform."""
    url = storage._url(root)
    origin = str(url.origin())
    if url.host not in LOOPBACK or origin in storage._no_local:
        return None
    try:
        path = storage._local_socket.get(origin)
        if path is None:
            if sock is not None:
                path = await _ask(sock)
            else:
                async with open_socket(storage, root) as asked:
                    path = await _ask(asked) if asked is not None else None
        if path is not None and await asyncio.to_thread(usable, url, path):
            files = await LocalFiles.open(Path(path), storage._core._token, connections)
            storage._local_socket[origin] = path
            return files
    except (ClientError, OSError, ValueError) as exc:
        log.debug("no same-host transfers with %s: %s", origin, exc)
    storage._no_local.add(origin)
    storage._local_socket.pop(origin, None)
    return None


async def _ask(sock: StorageSocket) -> str | None:
    header, _ = await sock.call(frames.DISCOVER_OP, "")
    path = header.get("socket")
    return path if isinstance(path, str) else None


async def put_local(
    files: LocalFiles, path: Path, dst: URL, size: int, report: Reporter
) -> None:
    """Upload ``path`` (``size`` bytes when it was listed) to storage ``dst``."""
    local = URL(path.as_uri()) if report.active else dst
    await _reported(files, frames.LOCAL_PUT, path, dst, size, report, (local, dst))


async def get_local(
    files: LocalFiles, src: URL, path: Path, size: int, report: Reporter
) -> None:
    """Download storage file ``src`` into ``path`` (absolute)."""
    local = URL(path.as_uri()) if report.active else src
    await _reported(files, frames.LOCAL_GET, path, src, size, report, (src, local))


async def _reported(
    files: LocalFiles,
    op: str,
    path: Path,
    remote: URL,
    size: int,
    report: Reporter,
    ends: tuple[URL, URL],
) -> None:
    """One file's copy, with the progress events of the transfer's ``ends``."""
    src, dst = ends

    def step(done: int) -> None:
        report.step(src, dst, done, size)

    report.start(src, dst, size)
    copied = await files.copy(op, path, remote.path, str(remote), step)
    if copied:
        step(copied)
    report.complete(src, dst, size)
