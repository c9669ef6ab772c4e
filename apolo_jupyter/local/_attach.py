"""WS ``{monitoring_url}/{id}/attach``: the job's own stdio (reference §4.4).

A job started with ``tty`` has a terminal that the platform holds
(:mod:`._terminal`): an attached client sees its output live and types into it,
and may resize it. Other jobs have no input: a client gets their output from the
moment it attaches (the local platform's log mixes stdout and stderr, so it all
comes on the stdout channel, or stderr if only that was asked for). The socket
closes once the job has stopped and its output was sent.

As on the real platform, ``stdin`` is ignored for jobs without one, and a ``tty``
job read with ``stdin`` is read as a tty.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from aiohttp import web

from ..client import _stream_wire
from ._exec_route import HEARTBEAT, Flags, read_input, refusal
from ._port_forward import _job_stopped
from ._service import JobNotFound
from ._terminal import JobTerminal
from ._web import SERVICE

POLL_MIN, POLL_MAX = 0.01, 0.2
CHUNK = 1 << 20


async def attach_ws(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    try:
        flags = Flags(request.query)
        job, running = service.running(request.match_info["id"])
    except (ValueError, JobNotFound) as exc:
        return refusal(exc)
    terminal = running.terminal
    ws = web.WebSocketResponse(
        protocols=(_stream_wire.ATTACH_PROTOCOL,), heartbeat=HEARTBEAT, compress=False
    )
    await ws.prepare(request)
    try:
        if terminal is not None:
            await _attach_terminal(ws, terminal, flags)
        else:
            channel = _stream_wire.STDOUT if flags.stdout else _stream_wire.STDERR
            stopped = asyncio.ensure_future(_job_stopped(service, job.id))
            reader = asyncio.create_task(read_input(ws, _ignore, _no_resize))
            try:
                await _tail(ws, service.log_path(job.id), channel, stopped, reader)
            finally:
                stopped.cancel()
                reader.cancel()
                await asyncio.gather(stopped, reader, return_exceptions=True)
    finally:
        with contextlib.suppress(Exception):
            await ws.close()
    return ws


async def _ignore(data: bytes) -> None:
    del data  # the job has no stdin: as the real platform, input is dropped


def _no_resize(rows: int, cols: int) -> None:
    del rows, cols


async def _attach_terminal(
    ws: web.WebSocketResponse, terminal: JobTerminal, flags: Flags
) -> None:
    listener = terminal.listen()

    async def write(data: bytes) -> None:
        if flags.stdin:
            await terminal.write(data)

    reader = asyncio.create_task(read_input(ws, write, terminal.resize))
    try:
        while True:
            getter = asyncio.ensure_future(listener.get())
            await asyncio.wait({getter, reader}, return_when="FIRST_COMPLETED")
            if not getter.done():  # the client left
                getter.cancel()
                return
            chunk = getter.result()
            if chunk is None:
                if listener.dropped:
                    await ws.close(message=b"detached: the client fell behind")
                return
            if flags.stdout or flags.stderr:
                channel = _stream_wire.STDOUT if flags.stdout else _stream_wire.STDERR
                await ws.send_bytes(bytes([channel]) + chunk)
    except ConnectionError:
        return
    finally:
        terminal.unlisten(listener)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def _tail(
    ws: web.WebSocketResponse,
    log_path: Path,
    channel: int,
    stopped: asyncio.Future[None],
    reader: asyncio.Task[None],
) -> None:
    """Send what the job writes from now on, until it stopped and all is sent."""
    try:
        fh = open(log_path, "rb")  # noqa: SIM115, ASYNC230 (a local, cached file)
    except FileNotFoundError:
        return
    with fh:
        fh.seek(0, 2)
        delay = POLL_MIN
        while not ws.closed and not reader.done():
            ended = stopped.done()
            chunk = fh.read(CHUNK)
            if chunk:
                try:
                    await ws.send_bytes(bytes([channel]) + chunk)
                except ConnectionError:
                    return
                delay = POLL_MIN
                continue
            if ended:
                return
            await asyncio.wait({stopped, reader}, timeout=delay)
            delay = min(delay * 2, POLL_MAX)
