"""Port forwarding: WS ``{monitoring_url}/{id}/port_forward/{port}`` (reference §4.2).

Jobs share the host's network, so a job's port is ``127.0.0.1:port``. The TCP
connection is opened *before* the upgrade, so a closed port is a plain 400 that the
client can report. After the upgrade, bytes flow both ways as BINARY frames; each
side waits for the other to take what it sent (no unbounded buffers). The socket
closes when either end closes it or when the job stops running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from aiohttp import WSMsgType, web

from ..client._models import JobStatus
from ._service import JobNotFound, JobService
from ._web import SERVICE, json_error

log = logging.getLogger(__name__)

FRAME = 1 << 20  # the most bytes per frame we send; the SDK accepts up to 4 MiB
READ_LIMIT = 1 << 18  # reading the job pauses above twice this many unsent bytes
MAX_INCOMING = 1 << 23  # the SDK sends frames of up to 4 MiB
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


async def _tcp_to_ws(reader: asyncio.StreamReader, ws: web.WebSocketResponse) -> None:
    """Job → client; ends on the job's EOF (``send_bytes`` waits for the client)."""
    with contextlib.suppress(OSError):  # the client went away
        while data := await reader.read(FRAME):
            await ws.send_bytes(data)


async def _ws_to_tcp(ws: web.WebSocketResponse, writer: asyncio.StreamWriter) -> None:
    """Client → job; reading the socket also answers PING and CLOSE.

    The next frame is read only once the job has taken the previous one.
    """
    with contextlib.suppress(OSError):  # the job's socket went away
        async for msg in ws:
            if msg.type is WSMsgType.BINARY:
                writer.write(msg.data)
            elif msg.type is WSMsgType.TEXT:
                writer.write(msg.data.encode())
            elif msg.type is WSMsgType.ERROR:
                log.debug("port forward: client socket error: %s", ws.exception())
                return
            await writer.drain()


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
    ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_INCOMING)
    if not ws.can_prepare(request).ok:
        return json_error(400, "port_forward is a WebSocket: send an upgrade request")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, limit=READ_LIMIT),
            CONNECT_TIMEOUT,
        )
    except OSError as exc:  # TimeoutError included
        reason = exc.strerror or str(exc) or "timed out"
        return json_error(400, f"Cannot connect to port {port}: {reason}")
    try:
        await ws.prepare(request)
    except BaseException:
        writer.close()
        raise
    tasks = {
        asyncio.create_task(_tcp_to_ws(reader, ws)),
        asyncio.create_task(_ws_to_tcp(ws, writer)),
        asyncio.create_task(_job_stopped(service, job.id)),
    }
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        writer.close()
        await ws.close()
    return ws


def add_port_forward_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/monitoring/{id}/port_forward/{port}", port_forward)
