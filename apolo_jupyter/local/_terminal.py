"""The terminal of a job started with ``tty``: the platform holds its master side.

The job's stdin, stdout and stderr are the slave side of a pseudo-terminal, its
controlling terminal, as a container runtime gives a ``tty`` container. The
platform reads everything the job writes, appends it to the job's log and fans
it out to attached clients; what attached clients type goes to the job's input.
A client that cannot keep up is detached rather than letting memory grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import struct
import termios

# In BWRAP mode the sandbox makes its own session (bwrap --new-session); this
# wrapper, from util-linux and bound read-only in every sandbox, starts the
# payload in a session of its own whose controlling terminal is the job's
# terminal, so Ctrl-C reaches the payload and not bubblewrap.
CTTY_WRAPPER = ("/usr/bin/setsid", "--ctty", "--wait", "--")
READ_CHUNK = 1 << 16
MAX_BACKLOG = 4 << 20  # bytes queued for one attached client before it is dropped


def open_pty(rows: int = 24, cols: int = 80) -> tuple[int, int]:
    """(master, slave) of a new pseudo-terminal of ``rows`` x ``cols``."""
    master, slave = pty.openpty()
    set_size(slave, rows, cols)
    return master, slave


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Listener:
    """One attached client's view of the output."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.backlog = 0
        self.dropped = False

    async def get(self) -> bytes | None:
        """The next output chunk; None once the terminal closed (or we fell
        too far behind: see ``dropped``)."""
        chunk = await self.queue.get()
        if chunk is not None:
            self.backlog -= len(chunk)
        return chunk


class JobTerminal:
    """Pumps the job's terminal output into its log and to listeners."""

    def __init__(self, master: int, log_fd: int) -> None:
        self._master = master
        self._log_fd = log_fd
        self._listeners: set[Listener] = set()
        self.closed = asyncio.Event()
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._readable)

    def _readable(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:  # EIO: the job and everything it started are gone
                chunk = b""
            if not chunk:
                self._close()
                return
            _write_log(self._log_fd, chunk)
            for listener in list(self._listeners):
                if listener.backlog + len(chunk) > MAX_BACKLOG:
                    listener.dropped = True
                    self._listeners.discard(listener)
                    listener.queue.put_nowait(None)
                    continue
                listener.backlog += len(chunk)
                listener.queue.put_nowait(chunk)

    def _close(self) -> None:
        if self.closed.is_set():
            return
        asyncio.get_running_loop().remove_reader(self._master)
        for listener in self._listeners:
            listener.queue.put_nowait(None)
        self._listeners.clear()
        os.close(self._master)
        os.close(self._log_fd)
        self.closed.set()

    def listen(self) -> Listener:
        listener = Listener()
        if self.closed.is_set():
            listener.queue.put_nowait(None)
        else:
            self._listeners.add(listener)
        return listener

    def unlisten(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    async def write(self, data: bytes) -> None:
        """Type ``data`` into the job's terminal."""
        view = memoryview(data)
        while view and not self.closed.is_set():
            try:
                view = view[os.write(self._master, view) :]
            except BlockingIOError:
                await asyncio.sleep(0.005)
            except OSError:
                return

    def resize(self, rows: int, cols: int) -> None:
        if rows > 0 and cols > 0 and not self.closed.is_set():
            with contextlib.suppress(OSError):
                set_size(self._master, rows, cols)

    async def drained(self, timeout: float) -> None:
        """Wait until all output was read (the job's side is closed)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), timeout)
        self._close()


def _write_log(fd: int, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except OSError:
            return  # the disk is full: the job goes on, its log stops
