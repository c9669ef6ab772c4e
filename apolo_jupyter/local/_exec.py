"""Run a command inside a running job: ``exec`` (reference §4.4).

In BWRAP mode the command enters the namespaces of the job's sandbox (mount and
pid, and the user namespaces bubblewrap made for a normal user's platform,
``_userns``) through util-linux ``nsenter``, with the job's root and working
directory, then ``setpriv`` drops every capability as bubblewrap did for the
job. So it sees what the job sees
(its ``/tmp``, its volumes, its processes), and the kernel kills it when the
job's pid namespace goes. In PLAIN mode it is a plain process in the job's
working directory.

**Nothing the job can write runs with privileges.** When the platform runs as
root, ``nsenter`` holds every capability, and so does what it starts inside the
job until ``setpriv`` has dropped them: ``setsid`` (tty) and ``setpriv``
themselves, their ELF interpreter (``/lib64/ld-linux-x86-64.so.2``), what the
loader reads (``/etc/ld.so.preload``, ``/etc/ld.so.cache``, the libraries it
names under ``/lib``), and what libc and setpriv open (locale and gconv files
under ``/usr``, ``/proc/sys/kernel/cap_last_cap``, ``/proc/self/status``). These
are resolved in the job's root, a tmpfs the job may write. So every one of them
lies in a folder the job cannot change: the host's ``/usr`` and ``/etc`` and the
merged-/usr aliases ``/bin``, ``/sbin``, ``/lib*`` (read-only binds) or the
kernel's ``/proc`` (a fresh procfs, its knobs read-only). Each is a mount point
in every job, which cannot be renamed, removed or replaced from inside, and no
volume of any kind may be mounted at or under one, nor under ``/dev`` (the
job's own tmpfs, which nothing of the chain opens): ``_sandbox.SYSTEM_FOLDERS``,
refused with a 400 when the job is created, and by the sandbox. The aliases used
to be symlinks on the job's root: a job renamed ``/lib`` to a folder of its own,
and its ``libcap-ng`` ran inside setpriv with every capability.
``tests/security/test_exec_chain.py`` traces the chain and checks that every
path it opens before the drop lies in those folders. (A helper that drops every
capability before it touches the job's filesystem would not need this
argument, but costs a process start of its own per exec; the command line is
built in ``_exec_command``.)

**As a normal user** the platform holds no capability on the host; bubblewrap's
user namespaces give it rights over the job's namespaces only. The first
``nsenter`` runs on the host as the user: it enters the outer user namespace
(which owns the job's mounts) and the job's pid namespace. The second, the
host's binary started before any of the job's mounts is entered, enters the
job's mount namespace and root, and last the job's own user namespace, where
the user is not root: from its exec of ``setsid`` or ``setpriv`` on, nothing
holds a capability, so nothing of the job's loads with one (the same trace
runs as a normal user in ``tests/test_nonroot.py``). There ``setpriv`` cannot
empty the bounding set, which takes a capability; with ``no_new_privs`` set,
and no root mapped in the job's user namespace, no exec could raise a
capability that the bounding set would have to stop.

The program to run is looked up before anything starts, in the job's own root
(``openat2`` with ``RESOLVE_IN_ROOT`` from an fd of ``/proc/<init>/root``, in a
thread): a job's absolute symlink resolves against the job's root, never the
host's, so the answer ("not found" or not) tells nothing of the host's files.

The host programs that enter the job (``nsenter``) start with a fixed
environment, so nothing of the job's request (``LD_PRELOAD``, say) loads into a
host process. The job's environment reaches the command through a memfd that a
small loader reads inside the job's namespaces (``ENV_LOADER``), never through
arguments that other users' ``ps`` would show.

An exec session is its own session (``setsid``): when it ends, or its
connection drops, every process left in that session, and every descendant of
its leader, is killed, so nothing it started outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import pty
import signal
import struct
import termios
import time
from collections.abc import Awaitable, Callable, Sequence, Set

from ._exec_command import HOST_ENV, ExecError, ExecTarget, command_line, env_file
from ._userns import UserNs, open_owner

_PRCTL = ctypes.CDLL(None, use_errno=True).prctl
_PR_SET_PDEATHSIG = 1
_DRAIN_TIMEOUT = 2.0  # seconds to read what is left once the command has ended
READ_CHUNK = 1 << 16

# Receives output: (1, bytes) for stdout and the terminal, (2, bytes) for stderr.
Sink = Callable[[int, bytes], Awaitable[None]]


def exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _open_owner(target: ExecTarget) -> int:
    """The user namespace that owns the job's pid namespace (``_userns``)."""
    try:
        return open_owner(target.init or 0)
    except OSError:
        raise ExecError(f"job {target.job_id} is no longer running") from None


def _set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _child_setup_tty() -> None:
    """In the child (a new session already): take the pty as controlling
    terminal; die with the platform."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _child_setup() -> None:
    """PLAIN mode, in the child: die with the platform. (BWRAP needs none: the
    command lives in the job's pid namespace, which dies with the platform, and
    without a preexec_fn the platform spawns it with vfork, not a full fork.)"""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class ExecProcess:
    """One exec'd command. Output arrives through ``on_output(fileno, data)``;
    ``wait`` returns its exit code once all output was delivered and nothing
    of the session is left."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int | None) -> None:
        self._proc = proc
        self._master = master
        self.pid = proc.pid
        self._readers: list[asyncio.Task[None]] = []
        self._write_lock = asyncio.Lock()
        self.sessions = {proc.pid}  # session ids of this exec (host pids)

    @classmethod
    async def spawn(
        cls,
        target: ExecTarget,
        argv: Sequence[str],
        *,
        tty: bool,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> ExecProcess:
        env = dict(target.env)
        if tty:
            env.setdefault("TERM", "xterm")
        env_fd = owner_fd = None
        try:
            if target.init is not None:  # the env goes in through a memfd
                env_fd = env_file(env)
                env = dict(HOST_ENV)
                if target.user_ns is not UserNs.SHARED:
                    owner_fd = _open_owner(target)
            keep = tuple(fd for fd in (env_fd, owner_fd) if fd is not None)
            # In a thread: the lookups in the job's filesystem may wait on a
            # slow volume, never the platform's event loop.
            cmd = await asyncio.to_thread(
                command_line, target, argv, tty=tty, env_fd=env_fd, owner_fd=owner_fd
            )
            return await cls._spawn(
                target, argv, cmd, env, keep, tty, stdin, stdout, stderr
            )
        finally:
            for fd in (env_fd, owner_fd):
                if fd is not None:
                    os.close(fd)

    @classmethod
    async def _spawn(
        cls,
        target: ExecTarget,
        argv: Sequence[str],
        cmd: Sequence[str],
        env: dict[str, str],
        keep: tuple[int, ...],
        tty: bool,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> ExecProcess:
        cwd = "/" if target.init is not None else target.workdir
        if not os.path.isdir(cwd):  # noqa: ASYNC240 (one stat)
            cwd = "/"
        if tty:
            master, slave = pty.openpty()
            _set_winsize(slave, 24, 80)
            try:
                proc = await asyncio.create_subprocess_exec(
                    *cmd,
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                    pass_fds=keep,
                    preexec_fn=None if target.init else _child_setup_tty,
                )
            except OSError as exc:
                os.close(master)
                raise ExecError(f"cannot exec {argv[0]!r}: {exc.strerror}") from exc
            finally:
                os.close(slave)
            os.set_blocking(master, False)
            exec_proc = cls(proc, master)
            if target.init is not None:  # the inner session: nsenter's child
                exec_proc.sessions.add(await _first_child(proc.pid))
            return exec_proc
        devnull = asyncio.subprocess.DEVNULL
        pipe = asyncio.subprocess.PIPE
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=pipe if stdin else devnull,
                stdout=pipe if stdout else devnull,
                stderr=pipe if stderr else devnull,
                env=env,
                cwd=cwd,
                start_new_session=True,
                pass_fds=keep,
                preexec_fn=None if target.init else _child_setup,
            )
        except OSError as exc:
            raise ExecError(f"cannot exec {argv[0]!r}: {exc.strerror}") from exc
        return cls(proc, None)

    def start_output(self, on_output: Sink) -> None:
        """Start delivering output: (1, bytes) for stdout and the tty, (2, bytes)
        for stderr."""
        if self._master is not None:
            self._readers.append(asyncio.create_task(self._read_pty(on_output)))
            return
        for fileno, stream in ((1, self._proc.stdout), (2, self._proc.stderr)):
            if stream is not None:
                task = asyncio.create_task(self._read_pipe(stream, fileno, on_output))
                self._readers.append(task)

    async def _read_pipe(
        self, stream: asyncio.StreamReader, fileno: int, on_output: Sink
    ) -> None:
        while chunk := await stream.read(READ_CHUNK):
            await on_output(fileno, chunk)

    async def _read_pty(self, on_output: Sink) -> None:
        master = self._master
        assert master is not None
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(master, ready.set)
        try:
            while True:
                try:
                    chunk = os.read(master, READ_CHUNK)
                except BlockingIOError:
                    ready.clear()
                    await ready.wait()
                    continue
                except OSError:  # EIO: every holder of the terminal is gone
                    return
                if not chunk:
                    return
                await on_output(1, chunk)
        finally:
            loop.remove_reader(master)

    async def write(self, data: bytes) -> None:
        """Send ``data`` to the command's stdin (or its terminal)."""
        async with self._write_lock:
            if self._master is not None:
                await _write_all(self._master, data)
            elif self._proc.stdin is not None and not self._proc.stdin.is_closing():
                self._proc.stdin.write(data)
                with contextlib.suppress(ConnectionError):
                    await self._proc.stdin.drain()

    def resize(self, rows: int, cols: int) -> None:
        if self._master is not None and rows > 0 and cols > 0:
            with contextlib.suppress(OSError):
                _set_winsize(self._master, rows, cols)

    async def wait(self) -> int:
        """The exit code, once the command has ended, what it left behind is
        killed and its output was delivered."""
        code = await self._proc.wait()
        await self.kill()
        if self._readers:
            _, pending = await asyncio.wait(self._readers, timeout=_DRAIN_TIMEOUT)
            for task in pending:
                task.cancel()
        self._close_master()
        return exit_code(code)

    async def kill(self) -> None:
        """SIGKILL every process of this exec session; wait until they are gone."""
        leader = self.pid
        for _ in range(50):
            victims = await asyncio.to_thread(session_processes, leader, self.sessions)
            if not victims:
                break
            for pid in victims:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.01)
        if self._proc.returncode is None:
            await self._proc.wait()

    async def abort(self) -> None:
        """The connection is gone: kill the session and release everything."""
        await self.kill()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        self._close_master()

    def _close_master(self) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = None


async def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await asyncio.sleep(0.005)
            continue
        except OSError:
            return  # the terminal is gone
        view = view[written:]


def _stat(pid: int) -> tuple[int, int, bool] | None:
    """(parent, session, zombie) of ``pid``, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[1]), int(fields[3]), fields[0] in (b"Z", b"X")


async def _first_child(pid: int, timeout: float = 5.0) -> int:
    """The first child of ``pid`` (``pid`` itself if none shows up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/task/{pid}/children", "rb") as fh:  # noqa: ASYNC230
                children = fh.read().split()
        except OSError:
            return pid
        if children:
            return int(children[0])
        await asyncio.sleep(0.001)
    return pid


def session_processes(leader: int, sessions: Set[int] = frozenset()) -> list[int]:
    """Live processes in ``leader``'s session or ``sessions``, or descended
    from ``leader``."""
    table: dict[int, tuple[int, int, bool]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := _stat(int(name))) is not None:
            table[int(name)] = st
    sids = {leader, *sessions}
    found = {pid for pid, (_, sid, zombie) in table.items() if sid in sids}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _, _) in table.items():
            if pid not in found and (ppid in found or ppid == leader):
                found.add(pid)
                grew = True
    return sorted(pid for pid in found if not table[pid][2])
