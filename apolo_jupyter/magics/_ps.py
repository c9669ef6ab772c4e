"""``%apolo_ps`` and ``apolo-jupyter ps``: jobs as a table, with `apolo ps`'s options."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from IPython.core.error import UsageError

from ..client import Client, JobDescription, JobStatus, RemoteImage
from ..kernel._options import _DURATION
from ._run import connect

CUT = 40  # without --wide, a cell is cut to this many characters


def parse_date(text: str | None, option: str) -> datetime | None:
    """An ISO-8601 date, or a time this long ago (``1d2h3m4s``), as apolo reads it."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
        return when if when.tzinfo else when.astimezone()
    except ValueError:
        pass
    match = _DURATION.match(text.strip())
    if match is None or not text.strip():
        raise UsageError(
            f"{option} {text!r}: write an ISO-8601 date (2024-05-01T12:00) or how "
            "long ago, like 1d2h3m4s"
        )
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    ago = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    return datetime.now(UTC) - ago


def _age(when: datetime | None) -> str:
    if when is None:
        return ""
    seconds = int((datetime.now(UTC) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def short_image(image: RemoteImage, client: Client) -> str:
    """``image:name:tag`` for the current project's images, as apolo prints them."""
    config = client.config
    if image.cluster_name is None:
        return str(image)
    if (image.cluster_name, image.org_name, image.project_name) == (
        config.cluster_name,
        config.org_name,
        config.project_name,
    ):
        return f"image:{image.name}" + (f":{image.tag}" if image.tag else "")
    return str(image)


def _life_span(job: JobDescription) -> str:
    if not job.life_span:
        return "no limit"
    minutes = int(job.life_span // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return "".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (mins, "m")) if n)


Column = Callable[[JobDescription, Client, bool], str]

COLUMNS: dict[str, tuple[str, Column]] = {
    "id": ("ID", lambda j, c, f: j.id),
    "name": ("NAME", lambda j, c, f: j.name or ""),
    "tags": ("TAGS", lambda j, c, f: ",".join(j.tags)),
    "status": ("STATUS", lambda j, c, f: j.status.value),
    "when": ("WHEN", lambda j, c, f: _age(j.history.changed_at)),
    "created": ("CREATED", lambda j, c, f: _age(j.history.created_at)),
    "started": ("STARTED", lambda j, c, f: _age(j.history.started_at)),
    "finished": ("FINISHED", lambda j, c, f: _age(j.history.finished_at)),
    "image": (
        "IMAGE",
        lambda j, c, f: (
            str(j.container.image) if f else short_image(j.container.image, c)
        ),
    ),
    "owner": ("OWNER", lambda j, c, f: j.owner),
    "cluster_name": ("CLUSTER", lambda j, c, f: j.cluster_name),
    "org_name": ("ORG", lambda j, c, f: j.org_name or ""),
    "description": ("DESCRIPTION", lambda j, c, f: j.description or ""),
    "command": (
        "COMMAND",
        lambda j, c, f: " ".join((j.container.command or "").split()),
    ),
    "life_span": ("LIFE-SPAN", lambda j, c, f: _life_span(j)),
    "workdir": ("WORKDIR", lambda j, c, f: j.container.working_dir or ""),
    "preset": ("PRESET", lambda j, c, f: j.preset_name or ""),
}
DEFAULT_FORMAT = "id name status preset created command"


@dataclass(frozen=True)
class ColumnSpec:
    ids: tuple[str, ...]
    title: str
    max_width: int | None = None


def parse_format(text: str) -> list[ColumnSpec]:
    """`apolo help ps-format`: ``id name``, ``id, status`` or ``{id/name;max=30;T}``."""
    specs = []
    for item in re.findall(r"\{[^}]*\}|[^\s,{}]+", text):
        body = item.strip("{}")
        parts = [p.strip() for p in body.split(";")]
        ids = tuple(p.strip() for p in parts[0].split("/"))
        unknown = [i for i in ids if i not in COLUMNS]
        if unknown or not ids[0]:
            raise UsageError(
                f"--format: unknown column {', '.join(unknown) or item!r}; the "
                f"columns are {', '.join(COLUMNS)}"
            )
        props = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        titles = [p for p in parts[1:] if "=" not in p]
        title = titles[-1] if titles else "/".join(COLUMNS[i][0] for i in ids)
        width = props.get("max")
        specs.append(ColumnSpec(ids, title, int(width) if width else None))
    if not specs:
        raise UsageError("--format names no column, e.g. --format 'id name status'")
    return specs


def _statuses(args: Any) -> set[JobStatus]:
    if args.all:
        return set()
    if args.status:
        return {JobStatus(s) for s in args.status}
    return JobStatus.active_items()


def _list_kwargs(args: Any, client: Client) -> dict[str, Any]:
    owners = {client.config.username if o == "ME" else o for o in args.owner}
    project = client.config.project_name
    return dict(
        statuses=_statuses(args),
        name=args.name or "",
        owners=owners,
        tags=set(args.tag),
        since=parse_date(args.since, "--since"),
        until=parse_date(args.until, "--until"),
        reverse=args.recent_first,
        cluster_name=args.cluster or client.config.cluster_name,
        org_names=[] if args.all_orgs else list(args.org),
        project_names=[] if args.all_projects else (list(args.project) or [project]),
    )


def _keep(jobs: Sequence[JobDescription], args: Any) -> list[JobDescription]:
    out, names = [], set()
    for job in jobs:
        if args.description and job.description != args.description:
            continue
        if args.distinct and job.name is not None:
            if job.name in names:
                continue
            names.add(job.name)
        out.append(job)
    return out


def render(
    jobs: Sequence[JobDescription], specs: list[ColumnSpec], client: Client, args: Any
) -> list[str]:
    rows = [[spec.title for spec in specs]]
    for job in jobs:
        row = []
        for spec in specs:
            text = "/".join(COLUMNS[i][1](job, client, args.full_uri) for i in spec.ids)
            width = spec.max_width or (None if args.wide else CUT)
            if width and len(text) > width:
                text = text[: width - 1] + "…"
            row.append(text)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(specs))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def list_jobs(args: Any) -> None:
    """Print the jobs ``args`` (the `apolo ps` options) select."""
    specs = parse_format(args.format or DEFAULT_FORMAT)
    rt, client = connect()
    kwargs = _list_kwargs(args, client)

    async def collect() -> list[JobDescription]:
        async with client.jobs.list(**kwargs) as it:
            return [job async for job in it]

    jobs = _keep(rt.run(collect(), timeout=60), args)
    if not jobs:
        filtered = args.all or args.status
        print("no jobs" + ("" if filtered else " running or pending (--all shows all)"))
        return
    for line in render(jobs, specs, client, args):
        print(line)
