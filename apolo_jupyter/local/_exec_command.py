"""The target of an exec and the host command line that enters it (see
``_exec`` for why the command line is safe against a hostile job)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ._memfd import nul_memfd
from ._resolve import executable_in_root, open_root
from ._sandbox import PreflightError, SandboxMode, find_executable, host_program
from ._userns import UserNs, layout


class ExecError(ValueError):
    """The command cannot run in the job; the message says why and what to do."""


@dataclass(frozen=True)
class ExecTarget:
    """Where an exec'd command runs: the job's namespaces, env and directory."""

    job_id: str
    mode: SandboxMode
    init: int | None  # host pid of the sandbox's init (BWRAP)
    user_ns: UserNs  # how its user namespaces hang from the platform's
    env: Mapping[str, str]
    workdir: str


def sandbox_ready(init: int) -> bool:
    """Whether bubblewrap finished building the sandbox of ``init``: its init
    forks the payload only after every mount is in place (bwrap reports the
    init's pid before that)."""
    try:
        with open(f"/proc/{init}/task/{init}/children", "rb") as fh:
            return bool(fh.read().split())
    except OSError:
        return False


async def wait_ready(init: Callable[[], int | None], timeout: float = 10.0) -> None:
    """Wait until the job's sandbox is built (BWRAP: a payload exists)."""
    deadline = time.monotonic() + timeout
    while (pid := init()) is None or not sandbox_ready(pid):
        if time.monotonic() > deadline:
            return  # make_target says what is wrong
        await asyncio.sleep(0.005)


def make_target(
    job_id: str,
    mode: SandboxMode,
    init: int | None,
    env: Mapping[str, str],
    workdir: str,
) -> ExecTarget:
    """The target of a running job; ExecError if its sandbox is not up yet."""
    if mode is SandboxMode.BWRAP:
        user_ns = layout(init) if init is not None else None
        if init is None or user_ns is None or not sandbox_ready(init):
            raise ExecError(
                f"job {job_id} is still setting up its sandbox; try again in a moment"
            )
        return ExecTarget(job_id, mode, init, user_ns, dict(env), workdir)
    return ExecTarget(job_id, mode, None, UserNs.SHARED, dict(env), workdir)


@contextlib.contextmanager
def _program_finder(target: ExecTarget) -> Iterator[Callable[[str], bool | None]]:
    """Whether a path of the job holds an executable file, looked up in the
    job's own root (``_resolve``): a symlink the job planted never leads to a
    host path (no answer depends on which host files exist). A job that is
    gone has nothing."""
    if target.init is None:
        yield host_program
        return
    try:
        root = open_root(target.init)
    except OSError:
        yield lambda path: False
        return
    try:
        yield lambda path: executable_in_root(root, path)
    finally:
        os.close(root)


# The environment of the programs that enter a job: nothing from the job.
HOST_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
# Inside the job, before the command: enter the working directory ($0, else the
# root), close the fd $2 if given (the namespace ``nsenter`` entered first),
# export each NAME=value read (NUL-separated) from the fd $1, close it, and
# become the command with the job's environment. No shell parses argv.
ENV_LOADER = (
    'cd -- "$0" 2>/dev/null || cd /; fd=$1; ns=$2; shift 2; '
    '[ -z "$ns" ] || exec {ns}<&-; '
    'while IFS= read -r -d "" -u "$fd" kv; do export "$kv" 2>/dev/null; done; '
    'exec {fd}<&-; exec "$@"'
)
_PY_LOADER = (
    "import os, sys\n"
    "try:\n    os.chdir(sys.argv[1])\nexcept OSError:\n    os.chdir('/')\n"
    "if sys.argv[3]:\n    os.close(int(sys.argv[3]))\n"
    "f = os.fdopen(int(sys.argv[2]), 'rb')\n"
    "env = dict(e.split(b'=', 1) for e in f.read().split(b'\\0') if e)\n"
    "f.close()\nos.execvpe(sys.argv[4], sys.argv[4:], env)\n"
)


def _loader(env_fd: int, owner_fd: int | None, workdir: str) -> list[str]:
    """The loader's command line (bash from the host's /usr, seen read-only by
    the job; else the platform's Python, also bound into every job)."""
    fds = [str(env_fd), "" if owner_fd is None else str(owner_fd)]
    if os.path.exists("/usr/bin/bash"):
        return ["/usr/bin/bash", "-c", ENV_LOADER, workdir, *fds]
    return [sys.executable, "-I", "-S", "-c", _PY_LOADER, workdir, *fds]


def env_file(env: Mapping[str, str]) -> int:
    """A memfd of ``NAME=value`` entries, NUL-separated, at offset 0."""
    return nul_memfd("exec-env", (f"{k}={v}" for k, v in env.items()))


def command_line(
    target: ExecTarget,
    argv: Sequence[str],
    *,
    env_fd: int | None = None,
    owner_fd: int | None = None,
    tty: bool = False,
) -> list[str]:
    """The host command line that runs ``argv`` in the job; ExecError if the
    program is not found there or the working directory is gone. In BWRAP mode
    ``env_fd`` (an ``env_file``, required) gives the command the job's
    environment, and ``owner_fd`` (``_userns.open_owner``) is the user
    namespace to enter first unless the target's is ``SHARED``. Both must be
    passed to the process that runs the command line; inside the job, before
    the command runs, both are closed."""
    if not argv or not argv[0]:
        raise ExecError("the command is empty: give the program to run, e.g. `ls -l`")
    workdir = target.workdir
    if target.init is None and not os.path.isdir(workdir):
        workdir = "/"  # removed by the job since it started: begin at its root
    try:
        with _program_finder(target) as is_program:
            find_executable(argv[0], target.env.get("PATH", ""), workdir, is_program)
    except PreflightError as exc:
        raise ExecError(f"cannot exec in job {target.job_id}: {exc}") from None
    if target.init is None:
        return list(argv)
    if env_fd is None:
        raise ValueError("a job's sandbox is entered with its env_fd")
    nsenter, setpriv = shutil.which("nsenter"), shutil.which("setpriv")
    if nsenter is None or setpriv is None:
        raise ExecError(
            "exec needs nsenter and setpriv from util-linux on the platform's host "
            "(apt-get install util-linux), then restart the local platform"
        )
    # Inside the job's mount namespace: its /usr/bin/setpriv (the host's, bound
    # read-only). No capabilities, none regained by exec, as the job itself.
    # Until it has dropped them, setsid and setpriv load only from the system
    # folders, which the job cannot change (see the module's docstring).
    drop = [
        "/usr/bin/setpriv",
        "--no-new-privs",
        "--inh-caps=-all",
        "--ambient-caps=-all",
        "--bounding-set=-all",
    ]
    # With a tty, the session (and its terminal) begins inside the job's pid
    # namespace, as a container runtime's exec does: shells restore the
    # terminal's process group on exit, and nsenter's is not visible there.
    session = ["/usr/bin/setsid", "--ctty", "--"] if tty else []
    start = _loader(env_fd, owner_fd, workdir)
    return [*enter_job(nsenter, target, owner_fd), *session, *drop, "--", *start, *argv]


def enter_job(nsenter: str, target: ExecTarget, owner_fd: int | None) -> list[str]:
    """The nsenter command line(s) that put what follows into the job: its
    pid and mount namespaces, its root, and its user namespace (``_userns``).

    nsenter opens --wd on the host before it enters the job, following any
    symlink the job planted there to a host folder; so it starts at the job's
    root (the magic link /proc/<init>/root) and the loader changes to the
    working directory inside the job, where paths resolve in the job's view."""
    proc = f"/proc/{target.init}"
    place = [f"--mount={proc}/ns/mnt", f"--root={proc}/root", f"--wd={proc}/root/"]
    if target.user_ns is UserNs.SHARED:
        return [nsenter, f"--pid={proc}/ns/pid", *place, "--"]
    if owner_fd is None:
        raise ValueError("a job in a user namespace of its own needs owner_fd")
    # A normal user's platform: first the user namespace that owns the job's
    # pid and mount namespaces, with the rights it gives there, and the pid
    # namespace (this nsenter forks into it). Then a second nsenter, the host's
    # (the first entered no mount namespace), enters the job's mount namespace
    # and root and, when the job's processes live in a user namespace below
    # (NESTED), that one last: what it runs inside the job is the user's uid
    # in the job's own user namespace, with no capabilities, as the job.
    owner = [f"--user=/proc/self/fd/{owner_fd}", "--preserve-credentials"]
    inner = (
        [f"--user={proc}/ns/user", "--preserve-credentials"]
        if target.user_ns is UserNs.NESTED
        else []
    )
    return [
        *[nsenter, *owner, f"--pid={proc}/ns/pid", "--"],
        *[nsenter, *place, *inner, "--"],
    ]
