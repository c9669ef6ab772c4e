"""Monitoring routes under the cluster's monitoring_url (reference §4).

Logs (``log_ws``) here, with signals (``kill``) and ``capacity``; the streams
inside a running job have modules of their own: ``exec`` (:mod:`._exec_route`),
``attach`` (:mod:`._attach`) and ``top`` (:mod:`._telemetry`).
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from ._attach import attach_ws
from ._exec_route import exec_ws
from ._logs import drain, finished_body, follow, parse_since
from ._service import JobNotFound
from ._telemetry import top_ws
from ._validate import BadRequest
from ._web import SERVICE, SETTINGS, json_body, json_error

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


async def send_signal(request: web.Request) -> web.Response:
    """SIGKILL a running job's processes (the real platform stops its container
    at once); 404 if it is not running, as the real platform."""
    try:
        await request.app[SERVICE].send_signal(request.match_info["id"])
    except JobNotFound as exc:
        return json_error(404, str(exc.args[0]))
    return web.Response(status=204)


async def capacity(request: web.Request) -> web.Response:
    """Per preset, how many more such jobs would start now (none wait): CPU,
    memory and, for GPU presets, free GPUs of the preset's model."""
    free = request.app[SERVICE].free_capacity()
    models = request.app[SETTINGS].capacity.gpus
    counts = {}
    for preset in request.app[SETTINGS].presets:
        fits = [
            int(free.cpu // preset.cpu) if preset.cpu > 0 else 0,
            int(free.memory // preset.memory) if preset.memory > 0 else 0,
        ]
        if preset.nvidia_gpu:
            gpus = sum(
                1 for s in free.gpus if preset.nvidia_gpu_model in (None, models[s])
            )
            fits.append(gpus // preset.nvidia_gpu)
        counts[preset.name] = max(0, min(fits))
    return web.json_response(counts)


NO_CONTAINER = (
    "the local platform runs jobs as processes on this machine, not in containers: "
    "there is no container to save as an image. Write what the job makes to storage "
    "(mount a volume, e.g. -v storage:results:/var/results) or save the image on a "
    "cluster"
)


async def save(request: web.Request) -> web.StreamResponse:
    """``jobs.save`` (commit the job's container, push it as an image). Refused,
    as the monitoring service reports a failed commit: an ndjson ``error`` line,
    which clients raise with its message (``DockerError``)."""
    try:
        job = request.app[SERVICE].get(request.match_info["id"])
    except JobNotFound as exc:
        return json_error(404, str(exc.args[0]))
    expected = 'send {"container": {"image": "<registry>/<image>:<tag>"}}'
    try:
        body = await json_body(request)
    except BadRequest as exc:
        raise BadRequest(f"{exc}: {expected}") from None
    try:
        image = body["container"]["image"]
    except (KeyError, TypeError):
        image = None
    if not isinstance(image, str) or not image:
        return json_error(400, f"no image to save: {expected}")
    message = NO_CONTAINER
    if not job.status.is_running:
        message = f"job {job.id} is {job.status.value}, not running; and {message}"
    line = {"error": message, "errorDetail": {"message": message}}
    return web.Response(
        body=json.dumps(line).encode() + b"\n", content_type="application/x-ndjson"
    )


def add_monitoring_routes(app: web.Application) -> None:
    mon = "/api/v1/monitoring"
    app.router.add_get(f"{mon}/capacity", capacity)
    app.router.add_get(f"{mon}/{{id}}/log_ws", log_ws)
    app.router.add_get(f"{mon}/{{id}}/top", top_ws)
    app.router.add_get(f"{mon}/{{id}}/exec", exec_ws)
    app.router.add_post(f"{mon}/{{id}}/exec", exec_ws)
    app.router.add_get(f"{mon}/{{id}}/attach", attach_ws)
    app.router.add_post(f"{mon}/{{id}}/attach", attach_ws)
    app.router.add_post(f"{mon}/{{id}}/kill", send_signal)
    app.router.add_post(f"{mon}/{{id}}/save", save)
