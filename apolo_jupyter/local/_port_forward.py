"""Port forwarding: WS ``{monitoring_url}/{id}/port_forward/{port}`` (reference §4.2).

Jobs share the host's network, so a job's port is ``127.0.0.1:port``. The TCP
connection is opened *before* the upgrade, so a closed port is a plain 400 that the
client can report. After the upgrade, the job's socket and the WebSocket form a
:class:`~apolo_jupyter.client._ws_pipe.Pipe`: bytes flow both ways as BINARY
frames, each socket read only while the other can take more (no unbounded
buffers), with no copies in Python but the one unmasking needs. The socket
closes when either end closes it or when the job stops running.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from ..client._models import JobStatus
from ..client._ws_pipe import Pipe
from ._service import JobNotFound, JobService
from ._web import SERVICE, json_error

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0


async def _job_stopped(service: JobService, job_id: str) -> None:
    """Return once the job is no longer running (finished, suspended, lost)."""
    queue = service.subscribe(job_id)
    try:
        try:
            if service.get(job_id).status is not JobStatus.RUNNING:
                return
        except JobNotFound:
            return
        while json.loads(await queue.get())["status"] == JobStatus.RUNNING.value:
            pass
    finally:
        service.unsubscribe(job_id, queue)


def _port(text: str) -> int | None:
    if not text.isdigit() or len(text) > 5:
        return None
    port = int(text)
    return port if 1 <= port <= 65535 else None


async def port_forward(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    port = _port(request.match_info["port"])
    if port is None:
        return json_error(400, "Invalid port number")
    try:
        job = service.get(request.match_info["id"])
    except JobNotFound as exc:
        return json_error(404, str(exc.args[0]))
    if job.status is not JobStatus.RUNNING:
        return json_error(
            400,
            f"job {job.id} is {job.status.value}, not running: port forwarding needs a "
            "running job",
        )
    # No server heartbeat: the client pings (apolo_sdk every 10 s), and a local
    # reader that pauses must not cost it the connection.
    ws = web.WebSocketResponse(compress=False)
    if not ws.can_prepare(request).ok:
        return json_error(400, "port_forward is a WebSocket: send an upgrade request")
    loop = asyncio.get_running_loop()
    pipe = Pipe(client=False)
    try:
        await asyncio.wait_for(
            loop.create_connection(lambda: pipe.plain, "127.0.0.1", port),
            CONNECT_TIMEOUT,
        )
    except OSError as exc:  # TimeoutError included
        reason = exc.strerror or str(exc) or "timed out"
        return json_error(400, f"Cannot connect to port {port}: {reason}")
    stopped = asyncio.ensure_future(_job_stopped(service, job.id))
    try:
        await _hijacked(request, ws, pipe, stopped)
    finally:
        stopped.cancel()
        pipe.close(wait=0)
    return ws


async def _hijacked(
    request: web.Request,
    ws: web.WebSocketResponse,
    pipe: Pipe,
    stopped: asyncio.Future[None],
) -> None:
    """Answer the upgrade with aiohttp, then let ``pipe`` own the socket.

    The pipe's WebSocket side takes the transport's protocol before the 101 goes
    out (clients send nothing before it), and hands the socket's end back to
    aiohttp's protocol, which then tidies the connection up as for any request.
    """
    transport = request.transport
    if transport is None or transport.is_closing():
        return
    assert isinstance(transport, asyncio.Transport)
    aiohttp_protocol = transport.get_protocol()
    transport.set_protocol(pipe.ws)
    pipe.ws.attach(transport)
    pipe.ws.on_lost = aiohttp_protocol.connection_lost
    await ws.prepare(request)
    pipe.start()
    await asyncio.wait({pipe.done, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if not pipe.done.done():  # the job stopped running
        pipe.close()
        await pipe.done


def add_port_forward_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/monitoring/{id}/port_forward/{port}", port_forward)
