"""Monitoring routes under the cluster's monitoring_url: job logs (``log_ws``)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ._logs import drain, finished_body, follow, parse_since
from ._service import JobNotFound
from ._web import SERVICE, json_error

LOG_HEARTBEAT = 30.0


async def log_ws(request: web.Request) -> web.StreamResponse:
    """Stream a job's output from ``since``; follow it; close once it has finished."""
    service = request.app[SERVICE]
    try:
        job = service.get(request.match_info["id"])
        since = parse_since(request.query.get("since"))
    except JobNotFound as exc:
        return json_error(404, str(exc.args[0]))
    except ValueError as exc:
        return json_error(400, str(exc))
    timestamps = request.query.get("timestamps", "").lower() in ("1", "true")
    ws = web.WebSocketResponse(heartbeat=LOG_HEARTBEAT)
    await ws.prepare(request)
    finished, changed = asyncio.Event(), asyncio.Event()
    queue = service.subscribe(job.id)

    async def track() -> None:
        if service.get(job.id).status.is_finished:
            finished.set()
        while not finished.is_set():
            if finished_body(await queue.get()):
                finished.set()
            changed.set()
        changed.set()

    reader = asyncio.create_task(drain(ws))
    tracker = asyncio.create_task(track())
    try:
        await follow(ws, service.log_path(job.id), finished, changed, since, timestamps)
    finally:
        service.unsubscribe(job.id, queue)
        tracker.cancel()
        reader.cancel()
        await ws.close()
    return ws


def add_monitoring_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/monitoring/{id}/log_ws", log_ws)
