"""``apolo-jupyter local start|stop|status|env``: the embedded platform's daemon."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..client import get
from ..client._local_home import LocalPaths, ensure_running, is_running, read_info

STOP_TIMEOUT = 30.0


def _paths(args: argparse.Namespace) -> LocalPaths:
    return LocalPaths(Path(args.home)) if args.home else LocalPaths.default()


def cmd_start(args: argparse.Namespace) -> int:
    paths = _paths(args)
    if getattr(args, "reset_state", False):
        from ..local._store import set_aside

        if is_running(paths):
            print(
                "apolo-jupyter local start: the local platform is running; stop it "
                "first (apolo-jupyter local stop), then reset its state",
                file=sys.stderr,
            )
            return 1
        kept = set_aside(paths.db_file)
        if kept is not None:
            print(f"kept the previous job history as {kept}; starting with none")
    try:
        info = ensure_running(paths)
    except RuntimeError as exc:
        print(f"apolo-jupyter local start: {exc}", file=sys.stderr)
        return 1
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
        f"  gpus:    {info.gpus or 'unknown'}\n"
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
    from ..local._settings import CLUSTER, ORG, PROJECT

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


def register(sub: Any) -> None:
    local = sub.add_parser("local", help="the embedded local platform (a daemon)")
    local_sub = local.add_subparsers(dest="action", required=True)
    for name, func, text in (
        ("start", cmd_start, "start the daemon (no-op if it runs)"),
        ("stop", cmd_stop, "stop the daemon; running jobs are cancelled"),
        (
            "status",
            cmd_status,
            "say whether it runs, where, with which sandbox and GPUs",
        ),
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
        if name == "start":
            p.add_argument(
                "--reset-state",
                action="store_true",
                help="keep the job history (state.db) aside as "
                "state.db.damaged-<time> and start with none, e.g. after the "
                "platform reported it damaged",
            )
        p.set_defaults(func=func)
