"""The local platform's HTTP and WebSocket routes (reference §2-§3)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from ..client._wire import LOCAL_KEY, STATUS_WS_KEY
from ._auth import auth_middleware
from ._disks_api import add_disk_routes
from ._monitoring import add_monitoring_routes
from ._port_forward import add_port_forward_routes
from ._requests import BadRequest, parse_job_request
from ._secrets_api import add_secret_routes
from ._service import JobNotFound, JobService
from ._settings import CLUSTER, ORG, PROJECT, REGISTRY_URL, Settings
from ._storage import add_storage_routes
from ._store import JobFilter
from ._validate import MAX_LIFE_SPAN, whole
from ._web import SERVICE, SETTINGS, json_body, json_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadRequest as exc:
        return json_error(400, str(exc))
    except JobNotFound as exc:
        return json_error(404, str(exc.args[0]))


def _base(request: web.Request) -> str:
    return f"http://{request.host}/api/v1"


def _pools(settings: Settings) -> list[dict[str, Any]]:
    """This machine as the SDK's resource pools: CPU ones, and GPU ones when it
    has NVIDIA GPUs (``nvidia_gpu``: how many, the model, memory of one)."""
    pools = []
    gpu = settings.gpus.common() or next(iter(settings.gpus.found), None)
    kinds = ("cpu", "gpu") if gpu is not None else ("cpu",)
    for kind in kinds:
        for preemptible in (False, True):
            pool: dict[str, Any] = {
                "name": f"local-{kind}" + ("-p" if preemptible else ""),
                "min_size": 1,
                "max_size": 1,
                "cpu": settings.capacity.cpu,
                "memory": settings.capacity.memory,
                "disk_size": 0,
                "is_preemptible": preemptible,
            }
            if kind == "gpu" and gpu is not None:
                pool["nvidia_gpu"] = {
                    "count": settings.gpus.count,
                    "model": gpu.model,
                    "memory": gpu.memory,
                }
            pools.append(pool)
    return pools


async def get_config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    api = _base(request)
    cluster = {
        "name": CLUSTER,
        "orgs": [ORG],
        "registry_url": REGISTRY_URL,
        "storage_url": f"{api}/storage",
        "monitoring_url": f"{api}/monitoring",
        "users_url": f"{api}/users",
        "secrets_url": f"{api}/secrets",
        "disks_url": f"{api}/disk",
        "buckets_url": f"{api}/buckets",
        "resource_pool_types": _pools(settings),
        "resource_presets": [p.to_api() for p in settings.presets],
    }
    data: dict[str, Any] = {
        "authorized": True,
        "auth_url": f"{api}/oauth/authorize",
        "token_url": f"{api}/oauth/token",
        "logout_url": f"{api}/oauth/logout",
        "client_id": "apolo-jupyter-local",
        "audience": "apolo-jupyter-local",
        "headless_callback_url": f"{api}/oauth/show-code",
        "clusters": [cluster],
        "projects": [
            {"name": PROJECT, "cluster_name": CLUSTER, "org_name": ORG, "role": "admin"}
        ],
        STATUS_WS_KEY: f"{api}/jobs",
        LOCAL_KEY: True,
    }
    return web.json_response(data)


async def create_job(request: web.Request) -> web.Response:
    body = await json_body(request)
    job = parse_job_request(
        request.app[SETTINGS],
        body,
        from_preset="from_preset" in request.query,
        owner=request["user"],
    )
    text = request.app[SERVICE].create(job)
    return web.Response(status=202, text=text, content_type="application/json")


def _utc(value: str, key: str) -> str:
    try:
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.astimezone(UTC).isoformat(timespec="microseconds")
    except (ValueError, OverflowError):
        raise BadRequest(f"{key}={value[:100]!r} is not an ISO-8601 time") from None


def _filter(request: web.Request) -> JobFilter:
    q = request.query
    limit = q.get("limit")
    if limit is not None and (
        not limit.isascii() or not limit.isdigit() or not 1 <= int(limit) <= 10**9
    ):
        raise BadRequest("limit must be a whole number from 1 to 10**9")
    cluster = q.get("cluster_name")
    if cluster not in (None, CLUSTER):
        # Another cluster has no jobs here; an impossible status makes that explicit.
        return JobFilter(statuses=("-",))
    return JobFilter(
        statuses=tuple(q.getall("status", ())),
        name=q.get("name") or None,
        owners=tuple(q.getall("owner", ())),
        tags=tuple(q.getall("tag", ())),
        since=_utc(q["since"], "since") if "since" in q else None,
        until=_utc(q["until"], "until") if "until" in q else None,
        reverse=q.get("reverse", "").lower() in ("1", "true"),
        limit=int(limit) if limit else None,
    )


async def list_jobs(request: web.Request) -> web.StreamResponse:
    flt = _filter(request)
    store = request.app[SERVICE].store
    if not request.headers.get("Accept", "").startswith("application/x-ndjson"):
        jobs = [json.loads(b) for batch in store.iter_bodies(flt) for b in batch]
        return web.json_response({"jobs": jobs})
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    for batch in store.iter_bodies(flt):
        await resp.write(("\n".join(batch) + "\n").encode())
    await resp.write_eof()
    return resp


async def get_job(request: web.Request) -> web.Response:
    job = request.app[SERVICE].get(request.match_info["id"])
    return web.json_response(job.to_api())


async def kill_job(request: web.Request) -> web.Response:
    await request.app[SERVICE].kill(request.match_info["id"])
    return web.Response(status=204)


async def bump_life_span(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    job = service.get(request.match_info["id"])
    body = await json_body(request)
    keys = ("additional_max_run_time_minutes", "max_run_time_minutes")
    if not isinstance(body, dict) or len(body) != 1 or next(iter(body)) not in keys:
        raise BadRequest(
            "send exactly one of additional_max_run_time_minutes or max_run_time_minutes"
        )
    ((key, value),) = body.items()
    minutes = whole(value, f"{key} (minutes)", 1, MAX_LIFE_SPAN)
    service.set_life_span(job.id, minutes, additional=key.startswith("additional"))
    return web.Response(status=204)


async def status_ws(request: web.Request) -> web.StreamResponse:
    """Push the job's JSON now and on every change; close once it has finished."""
    service = request.app[SERVICE]
    job = service.get(request.match_info["id"])
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    queue = service.subscribe(job.id)
    reader = request.loop.create_task(_drain(ws))
    try:
        body = json.dumps(service.get(job.id).to_api())
        while not ws.closed:
            await ws.send_str(body)
            if json.loads(body)["status"] in ("succeeded", "failed", "cancelled"):
                break
            body = await queue.get()
    except ConnectionResetError:
        pass  # the watcher left early (e.g. it only waited for "running")
    finally:
        service.unsubscribe(job.id, queue)
        reader.cancel()
        await ws.close()
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    """Keep reading so PING/PONG and CLOSE are handled."""
    async for msg in ws:
        if msg.type == WSMsgType.ERROR:
            break


def make_app(settings: Settings, service: JobService, secret: bytes) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware(secret)])
    app[SETTINGS] = settings
    app[SERVICE] = service
    app.router.add_get("/api/v1/config", get_config)
    app.router.add_post("/api/v1/jobs", create_job)
    app.router.add_get("/api/v1/jobs", list_jobs)
    app.router.add_get("/api/v1/jobs/{id}", get_job)
    app.router.add_delete("/api/v1/jobs/{id}", kill_job)
    app.router.add_put("/api/v1/jobs/{id}/max_run_time_minutes", bump_life_span)
    app.router.add_get("/api/v1/jobs/{id}/status_ws", status_ws)
    add_monitoring_routes(app)
    add_port_forward_routes(app)
    add_storage_routes(app, secret)
    add_secret_routes(app)
    add_disk_routes(app)
    app.router.add_post("/api/v1/users/{user}/permissions", refuse_share)
    return app


async def refuse_share(request: web.Request) -> web.Response:
    """``apolo run --share`` / ``apolo share``: one user here, nobody to share with."""
    return json_error(
        400,
        "sharing is refused by the local platform: it has a single user, there is "
        "nobody to share with (a real cluster honours --share)",
    )
