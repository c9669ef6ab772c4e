"""Same-host storage transfers: file descriptors over a Unix socket.

The local platform's storage is a folder on the user's own disk, so a folder
upload or download from the same machine need not move its bytes through HTTP
at all. The client opens each local file itself and passes the open file
(``SCM_RIGHTS``) with the storage path it goes to or comes from; the platform
checks the path as every storage op does (``_storage_fs``), opens the storage
file, and the kernel copies between the two (``copy_file_range``, else
``sendfile``). The platform never opens a path of the client's: it can only
read a file the client could read and write one the client opened for writing.

The socket (``<home>/storage.sock``, in the 0700 home, made 0600) speaks
``SOCK_SEQPACKET``: one message per request or answer, JSON, at most
``frames.LOCAL_MAX_MESSAGE`` bytes. The first message is ``{"token": ...}``; then each
request is ``{"id", "op": "put"|"get", "path": "/<org>/<project>/<path>"}`` with
exactly one file descriptor, answered ``{"id", "size"}`` (bytes copied) or
``{"id", "error", "errno"?}``. A put writes a new version beside the file and
renames it over the old one only once complete, as an HTTP CREATE does.

Each connection is served by a thread of its own (blocking calls, outside the
event loop), at most ``MAX_CONNECTIONS`` at once.
"""

from __future__ import annotations

import array
import contextlib
import errno
import json
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..client import _storage_frames as frames
from ..client._unix_path import unix_address
from ._auth import verify
from ._storage_fs import (
    Entry,
    FolderCache,
    StorageError,
    error_fields,
    locate,
)
from ._storage_ops import (
    check_depth,
    in_its_folder,
    new_version,
    open_file,
    regular_size,
)

log = logging.getLogger(__name__)
MAX_CONNECTIONS = 32
HELLO_TIMEOUT = 10.0  # seconds a new connection has to send its token
COPY_STEP = 1 << 30  # bytes per copy call
# A longer file's copy reports its progress, and sees whether the client is
# still there, after each step.
PROGRESS_STEP = 8 << 20


_NOT_HERE = (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)


class _Refused(Exception):
    """A request answered with an error that names no errno."""


class _Gone(Exception):
    """The client closed the connection during a copy."""


def copy_range(
    src: int, dst: int, count: int, step: Callable[[int], None] | None = None
) -> int:
    """``count`` bytes from offset 0 of ``src`` to offset 0 of ``dst`` (fewer if
    ``src`` is shorter): in the kernel where it can, else through a buffer.
    ``step`` (if given) is called with the bytes copied so far after each
    ``PROGRESS_STEP`` of a longer copy; it may raise to stop the copy."""
    done = 0
    modes = ["copy_file_range", "sendfile", "buffer"]
    while done < count:
        size = min(count - done, PROGRESS_STEP if step else COPY_STEP)
        try:
            if modes[0] == "copy_file_range":
                moved = os.copy_file_range(src, dst, size, done, done)
            elif modes[0] == "sendfile":
                os.lseek(dst, done, os.SEEK_SET)
                moved = os.sendfile(dst, src, done, size)
            else:
                data = os.pread(src, min(size, 1 << 20), done)
                moved = os.pwrite(dst, data, done) if data else 0
        except OSError as exc:
            if exc.errno in _NOT_HERE and len(modes) > 1:
                modes.pop(0)  # this way of copying does not work for these files
                continue
            raise
        if moved == 0:
            break  # the source is shorter than it was
        done += moved
        if step is not None and done < count:
            step(done)
    return done


def _regular_fd(fd: int, what: str) -> os.stat_result:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise _Refused(f"the {what} must be a regular file")
    return st


class _Request:
    """One put or get: the root, the connection's folder fds, and the step
    callback that reports progress to the client and stops when it is gone."""

    def __init__(
        self, conn: socket.socket, rid: int, root: str, folders: FolderCache
    ) -> None:
        self.conn, self.rid, self.root, self.folders = conn, rid, root, folders

    def step(self, done: int) -> None:
        try:
            gone = self.conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            gone = False  # nothing to read: it is there, waiting for us
        if gone:
            raise _Gone
        _send(self.conn, {"id": self.rid, "progress": done})

    def put(self, api_path: str, src: int) -> int:
        """The client's open file ``src`` becomes the storage file ``api_path``."""
        size = _regular_fd(src, "file sent").st_size
        entry = locate(self.root, api_path)
        check_depth(entry)
        return in_its_folder(entry, lambda: self._put_version(entry, src, size))

    def _put_version(self, entry: Entry, src: int, size: int) -> int:
        with new_version(entry, self.folders, direct_if_new=True) as (fd, commit):
            copied = copy_range(src, fd, size, self.step)
            commit()
        return copied

    def get(self, api_path: str, dst: int) -> int:
        """The storage file ``api_path`` is copied into the client's open file."""
        _regular_fd(dst, "file to write")
        entry = locate(self.root, api_path)
        fd = open_file(entry, os.O_RDONLY, self.folders)
        try:
            size = regular_size(fd, entry)
            os.ftruncate(dst, 0)
            return copy_range(fd, dst, size, self.step)
        finally:
            os.close(fd)


def _receive(conn: socket.socket) -> tuple[bytes, list[int], str | None]:
    """One message, the fds that came with it, and what is wrong with it."""
    fds = array.array("i")
    data, ancillary, flags, _ = conn.recvmsg(
        frames.LOCAL_MAX_MESSAGE,
        socket.CMSG_SPACE(frames.LOCAL_MAX_FDS * fds.itemsize),
        socket.MSG_CMSG_CLOEXEC,  # a job started meanwhile inherits none of them
    )
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            whole = len(payload) - len(payload) % fds.itemsize
            fds.frombytes(payload[:whole])
    problem = None
    if flags & socket.MSG_TRUNC:
        problem = f"a message longer than {frames.LOCAL_MAX_MESSAGE} bytes"
    elif flags & socket.MSG_CTRUNC:
        problem = f"more than {frames.LOCAL_MAX_FDS} file descriptors in one message"
    return data, list(fds), problem


def _send(conn: socket.socket, reply: dict[str, Any]) -> None:
    conn.send(json.dumps(reply).encode())


def _answer(
    conn: socket.socket, root: str, data: bytes, fds: list[int], folders: FolderCache
) -> dict[str, Any]:
    try:
        request = json.loads(data)
    except (ValueError, RecursionError):
        return {"error": "a request must be a JSON object"}
    if not isinstance(request, dict):
        return {"error": "a request must be a JSON object"}
    rid = request.get("id")
    reply: dict[str, Any] = {"id": rid if type(rid) is int else None}
    op, path = request.get("op"), request.get("path")
    try:
        if type(rid) is not int:
            raise _Refused("'id' must be an integer")
        if op not in (frames.LOCAL_PUT, frames.LOCAL_GET):
            raise _Refused(
                f"'op' must be {frames.LOCAL_PUT!r} or {frames.LOCAL_GET!r}, not {op!r}"
            )
        if not isinstance(path, str) or not path.startswith("/"):
            raise _Refused("'path' must be /<org>/<project>/<path>")
        if len(fds) != 1:
            raise _Refused(f"send exactly one open file with a request, not {len(fds)}")
        request = _Request(conn, rid, root, folders)
        if op == frames.LOCAL_PUT:
            reply["size"] = request.put(path, fds[0])
        else:
            reply["size"] = request.get(path, fds[0])
    except (StorageError, OSError, _Refused, ValueError) as exc:
        shown = path if isinstance(path, str) else "/"
        reply.update(error_fields(exc, shown))
    return reply


class LocalTransfer:
    """The socket's server: ``start`` binds and listens, ``stop`` ends it."""

    def __init__(self, home: Path, root: str, secret: bytes) -> None:
        self.path = home / frames.LOCAL_SOCKET_NAME
        self._root = root
        self._secret = secret
        self._listener: socket.socket | None = None
        self.running = False
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a crashed run's (the daemon lock is ours)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with unix_address(self.path) as address:
                old = os.umask(0o177)
                try:
                    listener.bind(address)
                finally:
                    os.umask(old)
            listener.listen(MAX_CONNECTIONS)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self.running = True
        threading.Thread(target=self._accept, name="storage-local", daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        self.running = False
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def _accept(self) -> None:
        while (listener := self._listener) is not None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # stopped
            if not self._slots.acquire(blocking=False):
                with contextlib.suppress(OSError):
                    _send(conn, {"error": f"more than {MAX_CONNECTIONS} connections"})
                conn.close()
                continue
            threading.Thread(
                target=self._serve, args=(conn,), name="storage-local-conn", daemon=True
            ).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                if self._hello(conn):
                    self._requests(conn)
        except OSError as exc:
            log.info("local storage transfer connection ended: %s", exc)
        finally:
            self._slots.release()

    def _hello(self, conn: socket.socket) -> bool:
        conn.settimeout(HELLO_TIMEOUT)
        try:
            data, fds, problem = _receive(conn)
        except TimeoutError:
            return False
        for fd in fds:
            os.close(fd)
        conn.settimeout(None)
        token = None
        with contextlib.suppress(ValueError, AttributeError, RecursionError):
            token = json.loads(data).get("token")
        if problem is None and isinstance(token, str) and verify(token, self._secret):
            _send(conn, {"ok": True})
            return True
        _send(conn, {"error": 'send {"token": <the platform\'s token>} first'})
        return False

    def _requests(self, conn: socket.socket) -> None:
        folders = FolderCache()  # this connection's, closed with it
        try:
            while True:
                data, fds, problem = _receive(conn)
                try:
                    if not data and not fds:
                        return  # the client closed the connection
                    if problem is not None:
                        _send(conn, {"id": None, "error": problem})
                        continue
                    try:
                        reply = _answer(conn, self._root, data, fds, folders)
                    except _Gone:
                        return  # it left during a copy: nobody to answer
                    _send(conn, reply)
                finally:
                    for fd in fds:
                        os.close(fd)
        finally:
            folders.close()
