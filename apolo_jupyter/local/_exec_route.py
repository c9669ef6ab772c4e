"""WS ``{monitoring_url}/{id}/exec``: a command inside a running job (§4.4).

Frames are BINARY with a channel byte first: 0 stdin and 4 resize from the
client, 1 stdout and 2 stderr to it, then 3 with ``{"exit_code": N}`` once the
command has ended, and the server closes. Everything that can be wrong (no
command, unknown program, job not running) is refused before the upgrade, with
the reason in ``X-Error``, as the real platform does.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import WSMsgType, web

from ..client import _stream_wire
from ._exec import ExecProcess
from ._exec_command import ExecError, make_target, wait_ready
from ._executor import SandboxMode
from ._port_forward import _job_stopped
from ._service import JobNotFound, JobService
from ._web import SERVICE, json_error

HEARTBEAT = 30.0  # as the real server; the SDK pings every 10 s itself


class Flags:
    """``tty``, ``stdin``, ``stdout``, ``stderr`` of an exec or attach request."""

    def __init__(self, query: Mapping[str, str]) -> None:
        self.tty = _flag(query, "tty", False)
        self.stdin = _flag(query, "stdin", False)
        self.stdout = _flag(query, "stdout", True)
        self.stderr = _flag(query, "stderr", True)
        if not (self.stdin or self.stdout or self.stderr):
            raise ValueError("Required at least one of stdin, stdout or stderr")
        if self.tty and self.stdout and self.stderr:
            raise ValueError(
                "Stdout and stderr cannot be multiplexed in tty mode: "
                "ask for stdout only (stderr=0) with tty=1"
            )


def _flag(query: Mapping[str, str], name: str, default: bool) -> bool:
    value = query.get(name)
    if value is None:
        return default
    if value.lower() in ("1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise ValueError(f'"{name}" request parameter can be "true"/"1" or "false"/"0"')


def command_argv(text: str | None) -> list[str]:
    """The exec command, split as a shell would (without running one)."""
    try:
        argv = shlex.split(text or "")
    except ValueError as exc:
        raise ValueError(f"cannot split the command {text!r}: {exc}") from None
    if not argv:
        raise ValueError(
            "Command is required: pass the program to run in the job, "
            "e.g. cmd=ls%20-l (apolo-jupyter exec JOB -- ls -l)"
        )
    return argv


def refusal(exc: Exception) -> web.Response:
    """The handshake error for ``exc`` (reason in X-Error)."""
    if isinstance(exc, JobNotFound):  # JobNotRunning too: 404, as the real server
        return json_error(404, str(exc.args[0]))
    return json_error(400, str(exc))


async def read_input(
    ws: web.WebSocketResponse,
    write: Callable[[bytes], Awaitable[None]],
    resize: Callable[[int, int], None],
) -> None:
    """Read the client's frames until it closes: stdin (0) and resize (4)."""
    async for msg in ws:
        if msg.type == WSMsgType.BINARY and msg.data:
            channel, payload = msg.data[0], msg.data[1:]
            if channel == _stream_wire.STDIN:
                await write(payload)
            elif channel == _stream_wire.RESIZE:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    resize(*_stream_wire.resize_from_api(payload))
        elif msg.type == WSMsgType.ERROR:
            return


async def exec_ws(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    try:
        flags = Flags(request.query)
        argv = command_argv(request.query.get("cmd"))
        job, running = service.running(request.match_info["id"])
        if running.mode is SandboxMode.BWRAP:
            await wait_ready(lambda: running.sandbox_init)
        target = make_target(
            job.id,
            running.mode,
            running.sandbox_init,
            running.env,
            running.workdir,
        )
        proc = await ExecProcess.spawn(
            target,
            argv,
            tty=flags.tty,
            stdin=flags.stdin,
            stdout=flags.stdout,
            stderr=flags.stderr,
        )
    except (ValueError, JobNotFound, ExecError) as exc:
        return refusal(exc)
    ws = web.WebSocketResponse(
        protocols=(_stream_wire.ATTACH_PROTOCOL,), heartbeat=HEARTBEAT, compress=False
    )
    try:
        await ws.prepare(request)
    except BaseException:
        await proc.abort()
        raise
    await _session(service, job.id, ws, proc, flags)
    return ws


async def _session(
    service: JobService,
    job_id: str,
    ws: web.WebSocketResponse,
    proc: ExecProcess,
    flags: Flags,
) -> None:
    async def send(fileno: int, data: bytes) -> None:
        if not ws.closed:
            with contextlib.suppress(ConnectionError):
                await ws.send_bytes(bytes([fileno]) + data)

    async def write(data: bytes) -> None:
        if flags.stdin:
            await proc.write(data)

    proc.start_output(send)
    reader = asyncio.create_task(read_input(ws, write, proc.resize))
    waiter = asyncio.create_task(proc.wait())
    stopped = asyncio.ensure_future(_job_stopped(service, job_id))
    try:
        await asyncio.wait({reader, waiter, stopped}, return_when="FIRST_COMPLETED")
        if not waiter.done():
            if reader.done():  # the client left: nothing of the command stays
                await proc.abort()
                return
            await proc.kill()  # the job stopped (PLAIN; BWRAP: already dead)
        code = await waiter
        message = None if code == 0 else f"command terminated with exit code {code}"
        await send(_stream_wire.EXIT, _stream_wire.exit_frame(code, message)[1:])
    finally:
        stopped.cancel()
        if not waiter.done():
            await proc.abort()
        with contextlib.suppress(Exception):
            await ws.close()
        reader.cancel()
        await asyncio.gather(reader, waiter, stopped, return_exceptions=True)
