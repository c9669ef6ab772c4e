"""The secrets routes (``secrets_url`` in ``/config``), as ``apolo_sdk`` calls them."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from ._project import check_project
from ._requests import BadRequest
from ._secrets import MAX_VALUE, SecretStore
from ._settings import ORG, PROJECT
from ._web import SERVICE, json_body, json_error


def _scope(request: web.Request) -> None:
    org = request.query.get("org_name") or ORG
    project = request.query.get("project_name") or PROJECT
    check_project(org, project)


def _store(request: web.Request) -> SecretStore:
    return request.app[SERVICE].secrets


async def list_secrets(request: web.Request) -> web.Response:
    _scope(request)
    store = _store(request)
    return web.json_response([store.item(key) for key in store.list_keys()])


async def add_secret(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        key, encoded = str(body["key"]), str(body["value"])
        value = base64.b64decode(encoded, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise BadRequest(
            'send {"key": KEY, "value": <base64 of the value>, "project_name": ...}'
        ) from None
    if (body.get("org_name") or ORG, body.get("project_name") or PROJECT) != (
        ORG,
        PROJECT,
    ):
        raise BadRequest(f"the local platform serves {ORG}/{PROJECT} only")
    if len(value) > MAX_VALUE:
        raise BadRequest(f"a secret holds at most {MAX_VALUE} bytes")
    store = _store(request)
    store.add(key, value)
    return web.json_response(store.item(key), status=201)


async def get_secret(request: web.Request) -> web.Response:
    _scope(request)
    key = request.match_info["key"]
    value = _store(request).get(key)
    if value is None:
        return json_error(404, f"Secret {key!r} not found")
    item = _store(request).item(key)
    item["value"] = base64.b64encode(value).decode("ascii")
    return web.json_response(item)


async def remove_secret(request: web.Request) -> web.Response:
    _scope(request)
    key = request.match_info["key"]
    if not _store(request).remove(key):
        return json_error(404, f"Secret {key!r} not found")
    return web.Response(status=204)


def add_secret_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/secrets", list_secrets)
    app.router.add_post("/api/v1/secrets", add_secret)
    app.router.add_get("/api/v1/secrets/{key}", get_secret)
    app.router.add_delete("/api/v1/secrets/{key}", remove_secret)
