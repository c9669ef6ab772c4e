"""``apolo-jupyter run|ps|logs|status|kill|bump-life-span|generate-run-command``:
jobs from a terminal, with `apolo`'s options, as the magics do them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..client import Client, ClientError, JobDescription, JobStatus, get
from ..client._users import Action, Permission
from ..kernel._follow import Event, JobEvents
from ..kernel._job_options import COMMANDS, add_options
from ..kernel._options import JobOptions, command_from_argv
from ..kernel._run_options import CLI, add_run_options
from ..kernel._run_request import RunPlan, plan_run, submit
from ._pending import PendingTicker


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


def _options(args: argparse.Namespace) -> JobOptions:
    argv = list(args.command)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    options = JobOptions.from_args(args, args.image, command_from_argv(argv))
    if options.tty is None:  # as apolo run: a TTY when run from a terminal
        options = replace(options, tty=sys.stdin.isatty() and sys.stdout.isatty())
    return options


async def _next(events: JobEvents, ticker: PendingTicker) -> Event | None:
    """The next event; while the job is pending, the ticker ticks meanwhile."""
    while True:
        try:
            event = await events.next(ticker.wait())
        except TimeoutError:
            ticker.tick()
            continue
        ticker.clear()
        if event is not None and event.job is not None:
            ticker.update(event.job)
        return event


async def _wait_start(client: Client, job: JobDescription) -> JobDescription:
    ticker = PendingTicker(sys.stdout, "Ctrl-C stops waiting; the job stays")
    async with JobEvents(client, job.id, logs=False) as events:
        while (event := await _next(events, ticker)) is not None:
            job = event.job or job
            if not job.status.is_pending:
                break
    return job


async def _follow(client: Client, job: JobDescription) -> JobDescription:
    created = job.history.transitions[0].transition_time
    shown = 0
    ticker = PendingTicker(sys.stdout)
    async with JobEvents(client, job.id) as events:
        try:
            while (event := await _next(events, ticker)) is not None:
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
            ticker.clear()
            await _kill_on_interrupt(client, job.id)
            raise
    return job


async def _start(client: Client, plan: RunPlan) -> JobDescription:
    """Submit the job. The platform may create it although a Ctrl-C cancels the
    request before its answer arrives: the request runs as its own task, and a
    Ctrl-C waits for the job's id (briefly) to kill it."""
    starting = asyncio.ensure_future(submit(client, plan))
    try:
        return await asyncio.shield(starting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            started = await asyncio.wait_for(starting, KILL_TIMEOUT)
            await _kill_on_interrupt(client, started.id)
        raise


async def _run(args: argparse.Namespace) -> int:
    options = _options(args)
    async with get(local=options.local) as client:
        plan = await plan_run(client, options)
        job = await _start(client, plan)
        for user in plan.share:
            await client.users.share(user, Permission(job.uri, Action.WRITE))
        print(
            f"Job ID: {job.id} on {client.config.cluster_name} "
            f"(preset {job.preset_name}, image {options.image})",
            flush=True,
        )
        if plan.detach:
            if options.wait_start:
                job = await _wait_start(client, job)
            print(f"Status: {job.status.value}")
            failed = job.status is JobStatus.FAILED
            return (job.history.exit_code or 1) if failed else 0
        async with AsyncExitStack() as stack:
            for local, remote in plan.port_forwards:
                await stack.enter_async_context(
                    client.jobs.port_forward(job.id, local, remote)
                )
                print(f"forwarding 127.0.0.1:{local} to port {remote} of {job.id}")
            job = await _follow(client, job)
    if job.status is JobStatus.SUCCEEDED:
        return 0
    return job.history.exit_code or 1


def cmd_run(args: argparse.Namespace) -> int:
    from IPython.core.error import UsageError

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
    except (UsageError, ValueError, RuntimeError, ClientError) as exc:
        print(f"apolo-jupyter run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def quiet_runtime() -> None:
    """The platform in use is said by `run` only: other commands print what they
    were asked for (a job list, a log), nothing else."""
    from ..kernel._runtime import runtime

    runtime().announce = False


def _as_cli(func: Callable[[], None]) -> int:
    """Run one of the magics' commands from the shell: the same resolution of
    the platform (a login, else the local platform) and the same messages, with
    the magic names turned into commands."""
    from IPython.core.error import UsageError

    quiet_runtime()
    try:
        func()
    except UsageError as exc:
        text = re.sub(
            r"%apolo_(\w+)\b\??",
            lambda m: "apolo-jupyter " + m.group(1).replace("_", "-"),
            str(exc),
        )
        print(f"apolo-jupyter: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    from ..magics._ps import list_jobs

    return _as_cli(lambda: list_jobs(args))


def cmd_logs(args: argparse.Namespace) -> int:
    from ..magics._jobs import print_logs

    return _as_cli(
        lambda: print_logs(args.job, args.follow, args.since, args.timestamps)
    )


def cmd_kill(args: argparse.Namespace) -> int:
    from ..magics._jobs import kill_jobs

    return _as_cli(lambda: kill_jobs(args.jobs))


def cmd_status(args: argparse.Namespace) -> int:
    from ..magics._jobs import describe_job

    return _as_cli(lambda: describe_job(args.job, args.full_uri))


def cmd_bump_life_span(args: argparse.Namespace) -> int:
    from ..magics._jobs import bump_life_span

    return _as_cli(lambda: bump_life_span(args.job, args.additional_life_span))


def cmd_generate_run_command(args: argparse.Namespace) -> int:
    from ..magics._jobs import generate_run_command

    return _as_cli(lambda: print(generate_run_command(args.job)))


_SHORTCUTS = {
    "ps": (cmd_ps, "List all jobs"),
    "logs": (cmd_logs, "Print the logs for a job"),
    "status": (cmd_status, "Display status of a job"),
    "kill": (cmd_kill, "Kill job(s)"),
    "bump-life-span": (cmd_bump_life_span, "Increase job life span"),
    "generate-run-command": (
        cmd_generate_run_command,
        "Generate command that will rerun given job",
    ),
}


def register(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="Run a job",
        usage="apolo-jupyter run [OPTIONS] IMAGE [-- CMD...]",
        description="Run a job: every option of `apolo run`, same spelling and "
        "meaning. It prints the job's status changes and output until it ends "
        "(Ctrl-C kills it), or returns once it has started with --detach.",
        epilog="example: apolo-jupyter run -s cpu-small -v storage:data:/var/data "
        "-e MODE=fast ubuntu:latest -- python3 train.py",
    )
    add_run_options(run.add_argument, CLI)
    run.add_argument("image", metavar="IMAGE", help="image to run, e.g. ubuntu:latest")
    run.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- CMD...",
        help="the job's command, run without a shell",
    )
    run.set_defaults(func=cmd_run)
    for name, (func, text) in _SHORTCUTS.items():
        parser = sub.add_parser(name, help=text, description=f"{text}.")
        add_options(COMMANDS[name], parser.add_argument, CLI)
        parser.set_defaults(func=func)
