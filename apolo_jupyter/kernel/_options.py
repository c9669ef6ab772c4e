"""Options of the job-starting magics, and their small parsers."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from IPython.core.error import UsageError

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@dataclass(frozen=True)
class JobOptions:
    """What to start and how to follow it: one field per option of ``apolo run``
    (see ``_run_options.RUN_OPTIONS``) plus ours. Defaults are those of a
    Python caller (the launcher); the magics and the CLI fill in ``apolo run``'s
    own defaults (``--http-port 80``, ``--life-span 1d``) from the option table."""

    image: str = ""
    command: str | None = None
    preset: str | None = None
    volumes: Sequence[str] = ()
    env: Sequence[str] = ()
    env_files: Sequence[str] = ()
    name: str | None = None
    tags: Sequence[str] = ()
    description: str | None = None
    entrypoint: str | None = None
    workdir: str | None = None
    extshm: bool = True
    http_port: int | None = None
    http_auth: bool | None = None
    life_span: str | None = None
    schedule_timeout: str | None = None
    restart: str = "never"
    priority: str | None = None
    energy_schedule: str | None = None
    privileged: bool = False
    tty: bool | None = None
    pass_config: bool = False
    wait_for_seat: bool = False
    wait_start: bool = True
    detach: bool = False
    port_forwards: Sequence[str] = ()
    browse: bool = False
    share: Sequence[str] = ()
    project: str | None = None
    org: str | None = None
    cluster: str | None = None
    preemptible: bool = False
    kill_on_interrupt: bool = False
    raise_: bool = False
    out: str | None = None
    local: bool = False
    sync: str | None = None  # a folder; "." is the notebook's (see magics._code)
    result: str | None = None
    push: str | None = None
    keep: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: Any, image: str, command: str | None) -> JobOptions:
        """From a namespace parsed with the option table's arguments."""
        from ._run_options import RUN_OPTIONS

        values: dict[str, Any] = {}
        for option in RUN_OPTIONS:
            if not hasattr(args, option.dest):
                continue
            value = getattr(args, option.dest)
            values[option.dest] = tuple(value) if isinstance(value, list) else value
        if "http_port" in values:
            values["http_port"] = parse_port(values["http_port"])
        return cls(image=image, command=command, **values)


def command_from_argv(argv: Sequence[str]) -> str | None:
    """The job's command from the words after ``--``, as ``apolo run`` makes it:
    one word is taken as it is (``-- "python3 train.py"``), several are quoted
    and joined."""
    if not argv:
        return None
    if len(argv) == 1:
        return argv[0]
    return shlex.join(argv)


def parse_port(value: Any) -> int | None:
    """``--http-port``: a port, or 0 for none."""
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = -1
    if not 0 <= port < 65536:
        raise UsageError(
            f"--http-port {value!r} is not a port: write 1-65535, or 0 for none"
        )
    return port or None


def parse_duration(
    text: str, option: str = "--life-span", minimum: float = 60.0
) -> float:
    """``1d2h3m4s`` (some parts may be missing) in seconds, as ``apolo run`` reads
    it; ``0`` means none (0.0). Below ``minimum`` is refused: the platform counts
    life spans in whole minutes."""
    text = text.strip()
    if text == "0":
        return 0.0
    match = _DURATION.match(text)
    if not text or match is None:
        raise UsageError(
            f"{option} {text!r} is not a duration: write e.g. 90s, 30m, 2h, 1d or "
            "1h30m (0: none)"
        )
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total < minimum:
        raise UsageError(
            f"{option} must be at least {minimum:g}s (the platform counts minutes)"
        )
    return float(total)


def parse_port_pair(text: str) -> tuple[int, int]:
    local, sep, remote = text.partition(":")
    try:
        pair = int(local), int(remote)
    except ValueError:
        pair = (0, 0)
    if not sep or not all(0 < p < 65536 for p in pair):
        raise UsageError(
            f"--port-forward {text!r}: write LOCAL:REMOTE with ports 1-65535, e.g. 8080:80"
        )
    return pair
