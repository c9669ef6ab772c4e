"""``apolo-jupyter exec [-t] JOB -- CMD`` and ``apolo-jupyter top JOB``.

``exec -t`` is an interactive terminal inside the job: the local terminal goes
into raw mode, so every key (arrows, Tab, Ctrl-C) reaches the remote process;
a window resize (SIGWINCH) resizes the remote terminal; the remote exit code
becomes this command's exit code. Without ``-t`` the command's stdout and
stderr arrive separately and nothing is read from stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import sys
import termios
import tty
from typing import Any

from ..client import (
    Client,
    IllegalArgumentError,
    ResourceNotFound,
    StdStream,
    StdStreamError,
    get,
)
from ..widgets._telemetry import line

EX_NO_EXIT_CODE = 255  # the stream ended without an exit code


async def _pump_output(stream: StdStream) -> int:
    outs = {1: sys.stdout.buffer, 2: sys.stderr.buffer}
    try:
        while (msg := await stream.read_out()) is not None:
            out = outs.get(msg.fileno, sys.stdout.buffer)
            out.write(msg.data)
            out.flush()
    except StdStreamError as exc:
        return exc.exit_code
    print("\napolo-jupyter exec: the platform closed the stream", file=sys.stderr)
    return EX_NO_EXIT_CODE


async def _interactive(stream: StdStream) -> int:
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()

    def size() -> tuple[int, int]:
        try:
            cols, rows = os.get_terminal_size(fd)
        except OSError:
            cols, rows = shutil.get_terminal_size()
        return rows, cols

    await stream.resize(*size())
    keys: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        keys.put_nowait(data)

    async def send_keys() -> None:
        while data := await keys.get():
            await stream.write_in(data)

    resizes: set[asyncio.Task[None]] = set()

    def resized() -> None:
        task = loop.create_task(stream.resize(*size()))
        resizes.add(task)
        task.add_done_callback(resizes.discard)

    saved = termios.tcgetattr(fd)
    loop.add_reader(fd, readable)
    loop.add_signal_handler(signal.SIGWINCH, resized)
    sender = loop.create_task(send_keys())
    try:
        tty.setraw(fd, termios.TCSANOW)  # keep what was typed ahead
        return await _pump_output(stream)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        loop.remove_signal_handler(signal.SIGWINCH)
        loop.remove_reader(fd)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


async def _exec(args: argparse.Namespace, command: str) -> int:
    async with (
        get(local=args.local, quiet=True) as client,
        client.jobs.exec(
            args.job,
            command,
            tty=args.tty,
            stdin=args.tty,
            stdout=True,
            stderr=not args.tty,
        ) as stream,
    ):
        if args.tty:
            return await _interactive(stream)
        return await _pump_output(stream)


def cmd_exec(args: argparse.Namespace) -> int:
    command = shlex.join(args.command)
    if not args.command:
        print(
            "apolo-jupyter exec: give the command after --, e.g. "
            "apolo-jupyter exec JOB -- ls -l /tmp",
            file=sys.stderr,
        )
        return 2
    if args.tty and not sys.stdin.isatty():
        print(
            "apolo-jupyter exec: -t needs a terminal on stdin; drop -t to run the "
            "command without one",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(_exec(args, command))
    except (ResourceNotFound, IllegalArgumentError) as exc:
        print(f"apolo-jupyter exec: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _top(client: Client, job: str, limit: int | None) -> int:
    shown = 0
    async with client.jobs.top(job) as samples:
        async for sample in samples:
            print(line(job, sample), flush=True)
            shown += 1
            if limit is not None and shown >= limit:
                break
    return 0


def cmd_top(args: argparse.Namespace) -> int:
    async def run() -> int:
        async with get(local=args.local, quiet=True) as client:
            return await _top(client, args.job, args.samples)

    try:
        return asyncio.run(run())
    except (ResourceNotFound, IllegalArgumentError) as exc:
        print(f"apolo-jupyter top: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def register(sub: Any) -> None:
    exe = sub.add_parser(
        "exec",
        help="run a command inside a running job (-t: an interactive terminal)",
    )
    exe.add_argument(
        "-t", "--tty", action="store_true", help="interactive terminal (raw mode)"
    )
    exe.add_argument("--local", action="store_true", help="use the local platform")
    exe.add_argument("job", help="job id or name")
    exe.add_argument("command", nargs=argparse.REMAINDER)
    exe.set_defaults(func=cmd_exec)
    top = sub.add_parser("top", help="print a running job's CPU and memory each second")
    top.add_argument("job", help="job id or name")
    top.add_argument("-n", "--samples", type=int, default=None, help="stop after N")
    top.add_argument("--local", action="store_true", help="use the local platform")
    top.set_defaults(func=cmd_top)
