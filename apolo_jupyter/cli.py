"""``apolo-jupyter``: manage the local platform and run a job from a terminal."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from .client import JobDescription, JobStatus, get
from .client._connect import LOCAL_SOURCE
from .client._local_home import LocalPaths, ensure_running, is_running, read_info
from .kernel._follow import JobEvents

STOP_TIMEOUT = 30.0


def _paths(args: argparse.Namespace) -> LocalPaths:
    return LocalPaths(Path(args.home)) if args.home else LocalPaths.default()


def cmd_start(args: argparse.Namespace) -> int:
    info = ensure_running(_paths(args))
    print(
        f"local platform running at {info.url} (pid {info.pid}; sandbox: {info.sandbox})"
    )
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    paths = _paths(args)
    info = read_info(paths)
    if info is None:
        print("local platform is not running")
        return 0
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while is_running(paths):
        if time.monotonic() > deadline:
            print(
                f"local platform (pid {info.pid}) did not stop within {STOP_TIMEOUT:.0f} s",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.05)
    print(f"local platform stopped (pid {info.pid}); running jobs were cancelled")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    paths = _paths(args)
    info = read_info(paths)
    if info is None:
        print(
            f"local platform is not running (data in {paths.home}); "
            "start it with: apolo-jupyter local start"
        )
        return 3
    counts = asyncio.run(_count_jobs(info.url, info.token))
    summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no jobs yet"
    print(
        f"local platform running at {info.url}\n"
        f"  pid:     {info.pid}\n"
        f"  sandbox: {info.sandbox}\n"
        f"  data:    {paths.home}\n"
        f"  jobs:    {summary}"
    )
    return 0


async def _count_jobs(url: str, token: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with get(url, token, quiet=True) as client, client.jobs.list() as jobs:
        async for job in jobs:
            counts[job.status.value] = counts.get(job.status.value, 0) + 1
    return counts


def passed_config(info_url: str, token: str) -> str:
    from .local._settings import CLUSTER, ORG, PROJECT

    data = {
        "token": token,
        "cluster": CLUSTER,
        "url": info_url,
        "org_name": ORG,
        "project_name": PROJECT,
    }
    return base64.b64encode(json.dumps(data).encode()).decode()


def cmd_env(args: argparse.Namespace) -> int:
    info = ensure_running(_paths(args))
    print(f"APOLO_PASSED_CONFIG={passed_config(info.url, info.token)}")
    return 0


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
    from .magics._jobs import list_jobs

    return _as_cli(lambda: list_jobs(args.status, args.all, args.name, args.tag))


def cmd_logs(args: argparse.Namespace) -> int:
    from .magics._jobs import print_logs

    return _as_cli(lambda: print_logs(args.job, args.follow))


def cmd_kill(args: argparse.Namespace) -> int:
    from .magics._jobs import kill_jobs

    return _as_cli(lambda: kill_jobs(args.jobs))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apolo-jupyter",
        description="Run Apolo jobs from Jupyter; manage the embedded local platform.",
    )
    sub = parser.add_subparsers(dest="group", required=True)
    local = sub.add_parser("local", help="the embedded local platform (a daemon)")
    local_sub = local.add_subparsers(dest="action", required=True)
    for name, func, text in (
        ("start", cmd_start, "start the daemon (no-op if it runs)"),
        ("stop", cmd_stop, "stop the daemon; running jobs are cancelled"),
        ("status", cmd_status, "say whether it runs, where, with which sandbox"),
        (
            "env",
            cmd_env,
            "print APOLO_PASSED_CONFIG=... for the official apolo CLI/SDK",
        ),
    ):
        p = local_sub.add_parser(name, help=text)
        p.add_argument(
            "--home", default=None, help="data directory ($APOLO_JUPYTER_HOME)"
        )
        p.set_defaults(func=func)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) and args.command[:1] == ["--"]:
        args.command = args.command[1:]
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
