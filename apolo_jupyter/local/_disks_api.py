"""The disks routes (``disks_url`` in ``/config``), as ``apolo_sdk`` calls them."""

from __future__ import annotations

from aiohttp import web

from ._disks import DiskNotFound, DiskStore
from ._project import check_project
from ._requests import BadRequest
from ._web import SERVICE, json_body, json_error


def _store(request: web.Request) -> DiskStore:
    return request.app[SERVICE].disks


async def list_disks(request: web.Request) -> web.Response:
    check_project(request.query.get("org_name"), request.query.get("project_name"))
    return web.json_response(_store(request).all())


async def create_disk(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest('send {"storage": BYTES, "name": ..., "project_name": ...}')
    check_project(body.get("org_name"), body.get("project_name"))
    disk = _store(request).create(
        body.get("storage"), body.get("name"), body.get("life_span")
    )
    return web.json_response(disk, status=201)


async def get_disk(request: web.Request) -> web.Response:
    check_project(request.query.get("org_name"), request.query.get("project_name"))
    try:
        disk = await _store(request).with_usage(request.match_info["disk"])
        return web.json_response(disk)
    except DiskNotFound as exc:
        return json_error(404, str(exc))


async def remove_disk(request: web.Request) -> web.Response:
    check_project(request.query.get("org_name"), request.query.get("project_name"))
    try:
        await _store(request).remove(request.match_info["disk"])
    except DiskNotFound as exc:
        return json_error(404, str(exc))
    return web.Response(status=204)


def add_disk_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/disk", list_disks)
    app.router.add_post("/api/v1/disk", create_disk)
    app.router.add_get("/api/v1/disk/{disk}", get_disk)
    app.router.add_delete("/api/v1/disk/{disk}", remove_disk)
