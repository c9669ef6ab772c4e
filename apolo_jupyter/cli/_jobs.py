"""``apolo-jupyter run|ps|logs|kill``: jobs from a terminal, as the magics do them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..client import Client, JobDescription, JobStatus, get
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


# How long a Ctrl-C waits for the platform to confirm the kill (normally ~50 ms).
KILL_TIMEOUT = 3.0


async def _kill_on_interrupt(client: Client, job_id: str) -> None:
    """Kill the job after a Ctrl-C, waiting at most KILL_TIMEOUT for the answer."""
    try:
        await asyncio.wait_for(client.jobs.kill(job_id), KILL_TIMEOUT)
    except Exception as exc:
        print(
            f"\nInterrupted, but the kill of {job_id} was not confirmed ({exc!r}); "
            f"check with apolo-jupyter ps, kill it with apolo-jupyter kill {job_id}",
            file=sys.stderr,
        )
        return
    print(f"\nInterrupted: killed {job_id}", file=sys.stderr)


async def _run(args: argparse.Namespace) -> int:
    command = shlex.join(args.command) if args.command else None
    async with get(local=args.local) as client:
        # The platform may create the job although a Ctrl-C cancels this request
        # before its answer arrives: the request runs as its own task, and a
        # Ctrl-C waits for the job's id (briefly) to kill it.
        starting = asyncio.ensure_future(
            client.jobs.start(
                image=client.parse.remote_image(args.image),
                preset_name=args.preset,
                command=command,
                name=args.name,
            )
        )
        try:
            job = await asyncio.shield(starting)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                started = await asyncio.wait_for(starting, KILL_TIMEOUT)
                await _kill_on_interrupt(client, started.id)
            raise
        print(
            f"job {job.id} started on {client.config.cluster_name} "
            f"(preset {args.preset}, image {args.image})"
        )
        created = job.history.transitions[0].transition_time
        shown = 0
        async with JobEvents(client, job.id) as events:
            try:
                while (event := await events.next()) is not None:
                    if event.job is None:
                        sys.stdout.write(event.log or "")
                        sys.stdout.flush()
                        continue
                    job = event.job
                    for line in _lines(job, shown, created):
                        print(line, flush=True)
                    shown = len(job.history.transitions)
            except asyncio.CancelledError:
                # Ctrl-C: kill the job first, while the streams are still open
                # (closing them waits for the platform's close handshakes).
                await _kill_on_interrupt(client, job.id)
                raise
    return 0 if job.status is JobStatus.SUCCEEDED else 1


def cmd_run(args: argparse.Namespace) -> int:
    # asyncio.run turns Ctrl-C (SIGINT) into a cancellation of _run, which kills
    # the job, only while SIGINT has Python's default handler. A process started
    # in the background by a shell script (or by a test runner started so)
    # inherits SIGINT *ignored*, and Python keeps it ignored: Ctrl-C and `kill
    # -INT` then did nothing, and the job ran on. `run` exists to follow one job
    # and stop it on SIGINT, so it always takes SIGINT.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
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
