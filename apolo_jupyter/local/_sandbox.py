"""What a local job sees: its filesystem view, environment and bwrap command line.

Pure data and checks; nothing here starts a process (that is ``_executor``).

The bubblewrap view is a tmpfs root holding the host's ``/usr`` and ``/etc``
read-only, the merged-/usr aliases (``/bin``, ``/lib`` ... as read-only binds of
``/usr/bin``, ``/usr/lib`` ..., never symlinks on the job's writable root), fresh
``/proc``, ``/dev``, ``/tmp`` and ``/root``, the platform's Python interpreter
read-only at its host paths, and the job's mounts at their container paths.

What a job must never see or steer (the security model, see docs/security.md):

- **System folders take no volume.** ``SYSTEM_FOLDERS`` (``/usr``, ``/etc``,
  the aliases, ``/proc``, ``/dev``) are mount points in every job, which it
  cannot rename or replace, all read-only but ``/dev`` (the job's own tmpfs), and
  no volume of any kind goes at or under one: programs load their libraries
  from there, also the platform's own that enter a job with privileges
  (``_exec``).
- **Only the interpreter.** Of the platform's Python, only its prefixes and
  site-packages are bound, never ``sys.path`` as such (``python -m`` puts the
  working directory there, editable installs their source tree). Nothing that
  contains the platform's data directory (its ``secret`` mints tokens) or the
  working directory is bound; where such a path lies inside a bound system folder,
  a tmpfs masks it (``hidden``).
- **What was checked is what is mounted.** Every volume is bound from an open file
  descriptor (``--bind-fd``), never from a path that bwrap would resolve again: a
  job that swaps a folder of its volume for a symlink after the check cannot
  redirect the mount (``_volume_fs`` opens storage folders without following
  symlinks). bwrap resolves the *mount points* itself, following symlinks, and
  creates missing ones (``mkdir``). A mount point is therefore only ever made
  where no job can write: on the sandbox's own tmpfs, or inside read-only host
  folders no job can change. **No volume may be mounted inside another volume**:
  the outer volume is a host folder that any job with it mounted read-write can
  change at any moment (``renameat2(RENAME_EXCHANGE)`` of a folder with a symlink
  to ``/oldroot/...``), and there is no way to hand bwrap a mount point as a file
  descriptor, so no check we could make would still hold when bwrap resolves the
  path. Side-by-side volumes (``/mnt/a`` and ``/mnt/b``) work as before.
- **Lookups stay in the job's filesystem.** Before a job starts, its program
  and working directory are looked up in the view: in a volume, beneath the
  volume's fd (``_resolve``), so a symlink the job planted there never makes the
  platform look at a host path; one that leaves the volume is left to the
  sandbox to find (bwrap's error then says what is missing). What a job learns
  never depends on which host paths exist.
- **Devices by path, from root's folders only.** A GPU job gets its own
  ``/dev/nvidiaN`` and the shared control nodes (``--dev-bind``, the only bind
  that keeps a device usable: ``--bind-fd`` mounts ``nodev``). Their folder is the
  host's ``/dev`` (or the one ``config.json`` names, never inside the data
  directory), which no job can write, so the path bwrap resolves is the node
  that was checked. Every other job's ``/dev`` is the fresh minimal one.
- **A clean bwrap.** bwrap itself starts with a fixed environment; the job's
  variables are set inside the sandbox (``--clearenv``/``--setenv``) through an
  ``--args`` file descriptor, so a request's ``LD_PRELOAD`` never loads into a host
  process and no value shows in any process's command line.
"""

from __future__ import annotations

import os
import posixpath
import site
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from ._resolve import executable_beneath, folder_beneath
from ._sandbox_masks import cover, proc_covers

HOME = "/root"
SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
# Top-level directories that a merged-/usr host (Debian 12) makes symlinks into /usr.
_USR_ALIASES = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_KERNEL_FS = ("/proc", "/dev")
# Where programs, the dynamic loader and its configuration come from, and the
# kernel's folders: the host's, read-only. No volume of any kind goes there: its
# files would be what the privileged part of exec loads (see ``_exec``).
SYSTEM_FOLDERS = ("/usr", "/etc", *(f"/{name}" for name in _USR_ALIASES), *_KERNEL_FS)
_ISOLATION = (
    "--unshare-pid",
    "--unshare-uts",
    "--unshare-ipc",
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
)


@dataclass(frozen=True)
class Mount:
    """A host directory bound at ``container_path`` (absolute) inside the job.

    ``fd``, when given, is an open descriptor (``O_PATH`` is enough) of that
    directory, checked by the caller: it is what gets mounted, and ``host_path``
    only names it in messages. Without one, the executor opens ``host_path``
    itself (a path the caller trusts) and mounts that descriptor.
    """

    host_path: Path
    container_path: str
    read_only: bool
    fd: int | None = None


@dataclass(frozen=True)
class JobSpec:
    """One job to run. ``argv`` is never run through a shell."""

    job_id: str
    argv: Sequence[str]
    env: Mapping[str, str]
    working_dir: str | None  # container path; None means "/"
    mounts: Sequence[Mount]
    log_path: Path  # stdout and stderr are appended here, interleaved
    tty: bool = False  # stdio is a terminal the platform holds (attach)
    devices: Sequence[Path] = ()  # host device nodes, bound at /dev/<name> (GPUs)


class SandboxMode(StrEnum):
    BWRAP = "bwrap"
    UNSHARE = "unshare"  # reserved: not implemented, never detected
    PLAIN = "plain"


class PreflightError(ValueError):
    """The job cannot start; the message says what is wrong and how to fix it."""


def _within(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root + "/")


def normalize_abs(path: str, what: str) -> str:
    """``path`` normalized, or PreflightError if it is not absolute."""
    if not path.startswith("/"):
        raise PreflightError(f"{what} {path!r} must be an absolute path (start with /)")
    return posixpath.normpath("/" + path.lstrip("/"))


def system_folder_refusal(target: str) -> str | None:
    """Why no volume can be mounted at ``target`` (normalized, absolute), or None."""
    folder = next((f for f in SYSTEM_FOLDERS if _within(target, f)), None)
    if folder is None:
        return None
    return (
        f"a volume cannot be mounted at {target}: {folder} is a system folder the "
        "job shares read-only with the host (programs and their libraries load "
        "from it, also those of the platform that enter the job); mount it "
        f"elsewhere, e.g. at /mnt/{PurePosixPath(target).name or 'data'}"
    )


def default_python_prefixes(hidden: Sequence[str | Path] = ()) -> list[Path]:
    """The running interpreter: its prefixes (``sys.prefix`` first: its ``bin``
    leads a job's PATH), its site-packages folders and the ``apolo_jupyter``
    package itself (the folder of the package only, also from an editable
    install). Never other ``sys.path`` entries (the working directory, editable
    source trees), and never a folder that contains or is a ``hidden`` one (the
    data directory, the working directory)."""
    entries = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]
    entries += site.getsitepackages()
    if site.ENABLE_USER_SITE:
        entries.append(site.getusersitepackages())
    entries.append(str(Path(__file__).resolve().parents[1]))
    secret = [os.path.normpath(os.path.abspath(h)) for h in hidden]
    out: list[Path] = []
    for entry in entries:
        if not (entry and os.path.isabs(entry) and os.path.isdir(entry)):
            continue
        path = os.path.normpath(entry)
        if any(_within(h, path) for h in secret) or Path(path) in out:
            continue
        out.append(Path(path))
    return out


def job_env(
    spec_env: Mapping[str, str], path_head: Sequence[str], home: str
) -> dict[str, str]:
    """The complete environment of the payload; nothing is inherited from the daemon."""
    default_path = ":".join([*path_head, *SYSTEM_PATH])
    env = dict(PATH=default_path, HOME=home, LANG="C.UTF-8", PYTHONUNBUFFERED="1")
    for key, value in spec_env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise PreflightError(
                f"invalid environment variable {key!r}: names must be non-empty "
                "without '=' and neither name nor value may contain NUL"
            )
        env[key] = value
    if not env["PATH"]:
        env["PATH"] = default_path
    return env


def find_executable(
    argv0: str, path: str, cwd: str, is_program: Callable[[str], bool | None]
) -> str:
    """The container path that ``argv0`` runs, as execvp inside the job would
    find it. ``is_program(container_path)`` says whether an executable file is
    there, looked up in the job's filesystem (None: it cannot tell from outside,
    and the job will find out). Raises PreflightError when it is not found."""
    if "/" in argv0:
        where = posixpath.join(cwd, argv0)
        if is_program(where) is not False:
            return where
        raise PreflightError(
            f"executable {argv0!r} does not exist in the job's filesystem or is not "
            "executable; a job sees only /usr, /etc, the platform's Python "
            "environment and its own volumes"
        )
    for folder in path.split(":"):
        if folder.startswith("/"):
            where = posixpath.join(folder, argv0)
            if is_program(where) is not False:
                return where
    raise PreflightError(
        f"executable {argv0!r} was not found on the job's PATH ({path}); the "
        "local platform runs host programs, images are not pulled"
    )


def host_program(path: str) -> bool:
    """PLAIN mode, where the job's filesystem is the host's: an executable file."""
    return os.path.isfile(path) and os.access(path, os.X_OK)


@dataclass(frozen=True)
class _Layer:
    container: str
    host: Path | None  # None: nothing from the host (tmpfs, proc, dev, symlink)
    read_only: bool
    args: tuple[str, ...]  # the bwrap options that create it
    volume: bool = False  # one of the job's mounts
    fd: int | None = None  # a volume's open fd: looked up beneath it, never by path


def _bind(host: Path, container: str, read_only: bool, volume: bool = False) -> _Layer:
    option = "--ro-bind" if read_only else "--bind"
    return _Layer(container, host, read_only, (option, str(host), container), volume)


class SandboxView:
    """The bubblewrap filesystem of one job, and the host paths behind it."""

    def __init__(self, layers: Sequence[_Layer]) -> None:
        self._layers = tuple(layers)  # in bwrap order: later and deeper layers win
        self._dirs = {"/", *(lay.container for lay in layers)}
        for layer in self._layers:  # bwrap creates the parents of every mountpoint
            self._dirs.update(str(p) for p in PurePosixPath(layer.container).parents)

    def _locate(self, container: str) -> tuple[str, _Layer | None]:
        path = posixpath.normpath(container)
        found = [lay for lay in self._layers if _within(path, lay.container)]
        # The deepest layer wins; of equally deep ones, the last one mounted.
        return path, max(
            reversed(found), key=lambda lay: len(lay.container), default=None
        )

    def host_path(self, container: str) -> Path | None:
        """The host path behind a container path, or None for the sandbox's tmpfs."""
        path, layer = self._locate(container)
        if layer is None or layer.host is None:
            return None
        return layer.host / path[len(layer.container) :].lstrip("/")

    def _lookup(self, container: str, want_dir: bool) -> bool | None:
        """Whether a program (or a folder) is at ``container`` when the job
        starts; None when that cannot be told from outside. In a volume, the
        walk stays beneath the volume's fd (a symlink the job planted there
        never leads the platform to a host path); the other binds are host
        folders no job can change, looked up by path."""
        path, layer = self._locate(container)
        if layer is None or layer.host is None:
            return want_dir and path in self._dirs
        rest = path[len(layer.container) :].lstrip("/")
        if layer.fd is not None:
            lookup = folder_beneath if want_dir else executable_beneath
            return lookup(layer.fd, rest)
        host = layer.host / rest
        return host.is_dir() if want_dir else host_program(str(host))

    def is_program(self, container: str) -> bool | None:
        """For ``find_executable``: an executable file at ``container``?"""
        return self._lookup(container, want_dir=False)

    def workdir_args(self, working_dir: str) -> list[str]:
        """bwrap options to start in ``working_dir`` (made on the tmpfs if missing)."""
        path, layer = self._locate(working_dir)
        if path in self._dirs or self._lookup(path, want_dir=True) is not False:
            return ["--chdir", working_dir]  # None: bwrap says if it is missing
        from_host = layer is not None and layer.host is not None
        if from_host or any(_within(path, k) for k in _KERNEL_FS):
            raise PreflightError(
                f"working directory {working_dir} does not exist in the job's "
                "filesystem; create it in the volume or choose another one"
            )
        return ["--dir", working_dir, "--chdir", working_dir]

    def args(self) -> list[str]:
        """The bwrap options that build this view, in order."""
        return [arg for layer in self._layers for arg in layer.args] + list(_ISOLATION)


def build_view(
    mounts: Sequence[Mount],
    python_prefixes: Sequence[Path],
    hidden: Sequence[str | Path] = (),
    devices: Sequence[Path] = (),
    private: Sequence[tuple[str, bool]] = (),
) -> SandboxView:
    """The view of a job with ``mounts`` (each with its ``fd``) and ``devices``
    (character device nodes, bound at ``/dev/<name>``); PreflightError for
    mounts or devices that cannot work. ``hidden`` host folders are masked
    wherever a bound host folder would show them; so are the ``private``
    entries of /etc ((path, is a folder), see ``_sandbox_masks``)."""
    layers = [_bind(Path("/usr"), "/usr", True)]
    for name in _USR_ALIASES:
        host = Path("/", name)
        if host.is_symlink():
            # A read-only bind of the folder it leads to, never a symlink: the
            # root is the job's tmpfs, where a symlink could be renamed away and
            # replaced (and the loader of every program, also of the platform's
            # own that enter the job, follows /lib64 and /lib). A mount point
            # cannot be renamed or removed from inside.
            target = os.path.realpath(host)
            if os.path.isdir(target):
                layers.append(_bind(Path(target), str(host), True))
        elif host.is_dir():
            layers.append(_bind(host, str(host), True))
    layers += [
        _bind(Path("/etc"), "/etc", True),
        *(_Layer(path, None, True, cover(path, d)) for path, d in private),
        _Layer("/proc", None, True, ("--proc", "/proc")),
        *(_Layer(path, None, True, args) for path, args in proc_covers()),
        _Layer("/dev", None, True, ("--dev", "/dev")),
        *_devices(devices),
        _Layer("/tmp", None, False, ("--tmpfs", "/tmp")),  # noqa: S108 (in the job)
        _Layer(HOME, None, False, ("--dir", HOME)),
    ]
    volumes = _volumes(mounts)
    # Python paths already visible (system binds), hidden, or shadowed by a volume:
    covered = [lay.container for lay in (*layers, *volumes) if lay.host is not None]
    covered += list(SYSTEM_FOLDERS)
    for prefix in sorted({os.path.normpath(p) for p in python_prefixes}):
        if (
            prefix.startswith("/")
            and prefix != "/"
            and not any(_within(prefix, c) for c in covered)
        ):
            volumes.append(_bind(Path(prefix), prefix, True))
            covered.append(prefix)
    ordered = sorted(
        volumes, key=lambda lay: (PurePosixPath(lay.container).parts, lay.volume)
    )
    for index, layer in enumerate(ordered):
        below = [
            b
            for b in (*layers, *ordered[:index])
            if _within(layer.container, b.container)
        ]
        parent = max(below, key=lambda b: len(b.container), default=None)
        if layer.volume and parent and parent.volume:
            raise PreflightError(
                f"a volume cannot be mounted at {layer.container}: it lies inside "
                f"the volume at {parent.container}, and the local platform mounts "
                "volumes side by side only (a job writing to the outer volume "
                "could redirect the inner mount point); mount it elsewhere, e.g. "
                f"at /mnt/{PurePosixPath(layer.container).name or 'data'}"
            )
        # bwrap cannot make a mountpoint inside a read-only bind: it must exist.
        if layer.volume and parent and parent.host and parent.read_only:
            rest = layer.container[len(parent.container) :].lstrip("/")
            inside = parent.host / rest
            is_file = layer.host is not None and layer.host.is_file()
            if not (inside.is_file() if is_file else inside.is_dir()):
                raise PreflightError(
                    f"a volume cannot be mounted at {layer.container}: "
                    f"{parent.container} is read-only in the job and has no such "
                    "directory; choose another path"
                )
    masks = _masks([*layers, *ordered], hidden)
    return SandboxView([*layers, *ordered, *masks])


def _masks(layers: Sequence[_Layer], hidden: Sequence[str | Path]) -> list[_Layer]:
    """A read-only tmpfs over each hidden folder that a host bind (not a volume)
    would otherwise show; the folder exists there, so no mount point is made."""
    out: list[_Layer] = []
    for path in sorted({os.path.normpath(os.path.abspath(h)) for h in hidden}):
        binds = [
            lay
            for lay in layers
            if lay.host is not None
            and not lay.volume
            and lay.container != path
            and _within(path, lay.container)
        ]
        if binds and os.path.isdir(path):
            args = ("--perms", "0555", "--tmpfs", path, "--remount-ro", path)
            out.append(_Layer(path, None, True, args))
    return out


def _devices(devices: Sequence[Path]) -> list[_Layer]:
    out: list[_Layer] = []
    for host in devices:
        try:
            is_device = stat.S_ISCHR(os.stat(host).st_mode)
        except OSError:
            is_device = False
        if not is_device:
            raise PreflightError(
                f"the GPU device node {host} is missing or not a device: is the "
                "NVIDIA driver loaded? `apolo-jupyter local status` shows the GPUs "
                "found at start; restart the platform after a driver change"
            )
        target = f"/dev/{host.name}"
        out.append(_Layer(target, host, False, ("--dev-bind", str(host), target)))
    return out


def _volumes(mounts: Sequence[Mount]) -> list[_Layer]:
    out: list[_Layer] = []
    targets: set[str] = set()
    for mount in mounts:
        target = normalize_abs(mount.container_path, "volume mount path")
        if target == "/":
            raise PreflightError(
                f"a volume cannot be mounted at {target}; use a path like /var/data"
            )
        refusal = system_folder_refusal(target)
        if refusal is not None:
            raise PreflightError(refusal)
        if target in targets:
            raise PreflightError(f"two volumes are mounted at {target}")
        targets.add(target)
        if mount.fd is None:
            raise PreflightError(f"volume source {mount.host_path} is not open")
        option = "--ro-bind-fd" if mount.read_only else "--bind-fd"
        host = Path(f"/proc/self/fd/{mount.fd}")  # the very folder that was opened
        args = (option, str(mount.fd), target)
        layer = _Layer(target, host, mount.read_only, args, True, mount.fd)
        out.append(layer)
    return out
