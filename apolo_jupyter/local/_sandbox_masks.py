"""What a job's view freezes or hides of the host: the kernel's global knobs
and secrets in /proc, and (for a platform that runs as root) the files of /etc
that the host's users may not read.

A job of a root platform is kernel uid 0 without capabilities. File modes
alone would let it write global sysctls (``kernel/core_pattern`` names a
command the host's root runs on the next crash) and read ``/etc/shadow``, the
host's SSH keys and TLS private keys. So, as container runtimes do, /proc's
knobs are read-only binds and what it tells of the host's kernel is masked, and
/etc shows a job what any user of the host may read. Pure data: bwrap options.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# Kernel knobs in /proc that are global to the host: read-only in every job, as
# container runtimes do (a job of a root platform is kernel uid 0, which the
# files' permissions let write e.g. kernel/core_pattern, run by the host's root
# on the next crash, or sysrq-trigger). bubblewrap covers some of them itself,
# but skips /proc/sys when its own write probe fails.
_PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs")
# What /proc tells of the host's kernel, devices and keys: masked (an empty
# read-only tmpfs over folders, the null device over files).
_PROC_MASKED = (
    "kcore",
    "keys",
    "key-users",
    "timer_list",
    "sched_debug",
    "latency_stats",
    "acpi",
    "scsi",
)


def cover(path: str, folder: bool) -> tuple[str, ...]:
    """bwrap options that mask ``path``: an empty read-only tmpfs over a
    folder, the null device over a file (bound ``nodev``: it cannot be opened)."""
    if folder:
        return ("--perms", "0555", "--tmpfs", path, "--remount-ro", path)
    return ("--ro-bind", "/dev/null", path)


def proc_covers(proc: Path = Path("/proc")) -> list[tuple[str, tuple[str, ...]]]:
    """Read-only binds and masks over the job's fresh /proc, for what exists in
    the host's (the same kernel's). A bind's source is the host's procfs: what
    /proc/sys shows depends on the reader's namespaces, not on the mount."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for name in _PROC_READ_ONLY:
        if (proc / name).exists():
            target = f"/proc/{name}"
            out.append((target, ("--ro-bind", target, target)))
    for name in _PROC_MASKED:
        if (proc / name).exists():
            target = f"/proc/{name}"
            out.append((target, cover(target, (proc / name).is_dir())))
    return out


def private_entries(root: str = "/etc") -> list[tuple[str, bool]]:
    """(path, is a folder) of what under ``root`` the host's other users may not
    read: files without the others' read bit, folders without their read or
    search bit (masked whole, not entered). Symlinks are left alone (their
    targets are checked where they are). A blocking walk: call it once."""
    out: list[tuple[str, bool]] = []
    for folder, dirs, files in os.walk(root):
        for name in list(dirs):
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and st.st_mode & 0o005 != 0o005:
                out.append((path, True))
                dirs.remove(name)
        for name in files:
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and not st.st_mode & 0o004:
                out.append((path, False))
    return sorted(out)
