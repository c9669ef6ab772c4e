"""A job cannot change the host's kernel through /proc, nor read what /proc
tells of the host's kernel, keys and devices.

When the platform runs as root (as in CI), a job is kernel uid 0 without
capabilities: the permissions of /proc's files alone would let it write global
sysctls (``kernel/core_pattern``, run by the host's root on the next crash).
The probes below only ever write back the value they just read."""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
from pathlib import Path

from apolo_jupyter import Client, JobStatus

from ..conftest import start_job
from ._helpers import finished, output

# Writes each sysctl's current value back to it; says what happened.
WRITE_BACK = """
import sys
for path in sys.argv[1:]:
    try:
        with open(path, "rb") as f:
            value = f.read()
        with open(path, "wb") as f:
            f.write(value)
        print("WROTE", path)
    except OSError as exc:
        print("refused", path, exc.strerror)
"""
SYSCTLS = ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname")
READ_ONLY = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs")
MASKED = (
    "/proc/kcore",
    "/proc/keys",
    "/proc/key-users",
    "/proc/timer_list",
    "/proc/sched_debug",
    "/proc/latency_stats",
    "/proc/acpi",
    "/proc/scsi",
)


async def _job(client: Client, argv: list[str]) -> str:
    job = await start_job(client, command=shlex.join(argv))
    job = await finished(client, job.id)
    log = await output(client, job.id)
    assert job.status == JobStatus.SUCCEEDED, log
    return log


async def test_a_job_cannot_write_global_sysctls(client: Client) -> None:
    for path in SYSCTLS:
        assert Path(path).exists(), path
    log = await _job(client, ["python3", "-c", WRITE_BACK, *SYSCTLS])
    for path in SYSCTLS:
        assert f"refused {path}" in log, log
    assert "WROTE" not in log, log


async def test_the_kernels_knobs_are_read_only_and_its_secrets_masked(
    client: Client,
) -> None:
    present = [p for p in READ_ONLY if os.path.exists(p)]
    masked = [p for p in MASKED if os.path.exists(p)]
    assert "/proc/sys" in present and masked, (present, masked)
    # test -w asks access(2), which says EROFS for a read-only mount: nothing
    # is written. Masked files read as nothing, masked folders are empty.
    script = (
        'for p in "$@"; do if test -w "$p"; then echo "writable $p"; fi; done; '
        f"for p in {' '.join(masked)}; do "
        '  if test -d "$p"; then n=$(ls -A "$p" | wc -l); '
        '  else n=$(cat "$p" 2>/dev/null | wc -c); fi; echo "shows $n $p"; done; '
        "readlink /proc/self/ns/uts /proc/self/ns/ipc"
    )
    log = await _job(client, ["sh", "-c", script, "sh", *present])
    assert "writable" not in log, log
    for path in masked:
        assert f"shows 0 {path}" in log, log
    for kind in ("uts", "ipc"):
        host = os.readlink(f"/proc/self/ns/{kind}")
        assert kind in log and host not in log, (kind, host, log)


def _private_files(root: str = "/etc") -> list[str]:
    """Files under /etc that the host's other users may not read."""
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode) and not st.st_mode & 0o004:
                    found.append(path)
    return found


async def test_a_job_reads_of_etc_what_any_user_of_the_host_may(
    client: Client,
) -> None:
    """A root platform's job is uid 0: /etc/shadow, SSH host keys and TLS
    private keys would be plain reading without the masks."""
    private = _private_files()
    assert "/etc/shadow" in private, private
    script = (
        'for p in "$@"; do if cat "$p" >/dev/null 2>&1; then echo "read $p"; fi; '
        "done; head -c 5 /etc/passwd"
    )
    log = await _job(client, ["sh", "-c", script, "sh", *private])
    assert "read /" not in log, log
    assert log.endswith(Path("/etc/passwd").read_text()[:5]), log
