"""``apolo-jupyter run|ps|logs|kill``: jobs from a terminal, as the magics do them."""

from __future__ import annotations

import argparse
import asyncio
import re
import shlex
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..client import JobDescription, JobStatus, get
from ..client._connect import LOCAL_SOURCE
from ..kernel._follow import JobEvents


def _lines(job: JobDescription, shown: int, created: datetime) -> list[str]:
    """One line per status transition not shown yet, timed from creation."""
    lines = []
    for item in job.history.transitions[shown:]:
        detail = " ".join(p for p in (item.reason, item.description) if p)
        code = f" (exit code {item.exit_code})" if item.exit_code is not None else ""
        offset = (item.transition_time - created).total_seconds()
        lines.append(
            f"[{offset:6.2f}s] {item.status.value}{code}"
            + (f": {detail}" if detail else "")
        )
    return lines


async def _run(args: argparse.Namespace) -> int:
    command = shlex.join(args.command) if args.command else None
    async with get(local=args.local) as client:
        job = await client.jobs.start(
            image=client.parse.remote_image(args.image),
            preset_name=args.preset,
            command=command,
            name=args.name,
        )
        print(
            f"job {job.id} started on {client.config.cluster_name} "
            f"(preset {args.preset}, image {args.image})"
        )
        created = job.history.transitions[0].transition_time
        shown = 0
        try:
            async with JobEvents(client, job.id) as events:
                while (event := await events.next()) is not None:
                    if event.job is None:
                        sys.stdout.write(event.log or "")
                        sys.stdout.flush()
                        continue
                    job = event.job
                    for line in _lines(job, shown, created):
                        print(line, flush=True)
                    shown = len(job.history.transitions)
        except asyncio.CancelledError:  # Ctrl-C: don't leave the job running
            await client.jobs.kill(job.id)
            print(f"\nInterrupted: killed {job.id}", file=sys.stderr)
            raise
    return 0 if job.status is JobStatus.SUCCEEDED else 1


def cmd_run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except (ValueError, RuntimeError) as exc:
        print(f"apolo-jupyter run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _as_cli(func: Callable[[], None]) -> int:
    """Run one of the magics' commands from the shell: the same resolution of
    the platform (a login, else the local platform) and the same messages, with
    the magic names turned into commands."""
    from IPython.core.error import UsageError

    try:
        func()
    except UsageError as exc:
        text = re.sub(r"%apolo_(ps|logs|kill)\b\??", r"apolo-jupyter \1", str(exc))
        print(f"apolo-jupyter: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    from ..magics._jobs import list_jobs

    return _as_cli(lambda: list_jobs(args.status, args.all, args.name, args.tag))


def cmd_logs(args: argparse.Namespace) -> int:
    from ..magics._jobs import print_logs

    return _as_cli(lambda: print_logs(args.job, args.follow))


def cmd_kill(args: argparse.Namespace) -> int:
    from ..magics._jobs import kill_jobs

    return _as_cli(lambda: kill_jobs(args.jobs))


def register(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="start a job, print its status changes and output until it ends "
        "(Ctrl-C kills it)",
    )
    run.add_argument("-s", "--preset", default="cpu-small")
    run.add_argument("-n", "--name", default=None)
    run.add_argument(
        "--local",
        action="store_true",
        help=f"use the {LOCAL_SOURCE} even if a login exists",
    )
    run.add_argument("image")
    run.add_argument("command", nargs=argparse.REMAINDER)
    run.set_defaults(func=cmd_run)
    ps = sub.add_parser("ps", help="list jobs (running and pending unless -a)")
    ps.add_argument("-a", "--all", action="store_true", help="finished jobs too")
    ps.add_argument("--status", action="append", default=[], help="e.g. failed")
    ps.add_argument("-n", "--name", default=None)
    ps.add_argument("--tag", action="append", default=[])
    ps.set_defaults(func=cmd_ps)
    logs = sub.add_parser("logs", help="print a job's output (-f: follow it)")
    logs.add_argument("job", help="job id or name")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.set_defaults(func=cmd_logs)
    kill = sub.add_parser("kill", help="kill jobs")
    kill.add_argument("jobs", nargs="+", metavar="job", help="job ids or names")
    kill.set_defaults(func=cmd_kill)
