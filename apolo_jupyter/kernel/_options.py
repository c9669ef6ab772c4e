"""Options of the job-starting magics, and their small parsers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from IPython.core.error import UsageError

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@dataclass(frozen=True)
class JobOptions:
    image: str = ""
    command: str | None = None
    preset: str | None = None
    volumes: Sequence[str] = ()
    env: Sequence[str] = ()
    name: str | None = None
    tags: Sequence[str] = ()
    workdir: str | None = None
    life_span: str | None = None
    preemptible: bool = False
    http_port: int | None = None
    port_forwards: Sequence[str] = ()
    detach: bool = False
    out: str | None = None
    kill_on_interrupt: bool = False
    raise_: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: Any, image: str, command: str | None) -> JobOptions:
        return cls(
            image=image,
            command=command,
            preset=args.preset,
            volumes=tuple(args.volume),
            env=tuple(args.env),
            name=args.name,
            tags=tuple(args.tag),
            workdir=args.workdir,
            life_span=args.life_span,
            preemptible=args.preemptible,
            http_port=args.http_port,
            port_forwards=tuple(args.port_forward),
            detach=args.detach,
            out=args.out,
            kill_on_interrupt=args.kill_on_interrupt,
            raise_=args.raise_,
        )


def parse_duration(text: str) -> float:
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise UsageError(
            f"--life-span {text!r} is not a duration: write e.g. 90s, 30m, 2h, 1d or 1h30m"
        )
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total < 60:
        raise UsageError(
            "--life-span must be at least 1m (the platform counts minutes)"
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
