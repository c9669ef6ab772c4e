"""What every route module shares: app keys and the error response shape."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ._service import JobService
from ._settings import Settings
from ._validate import BadRequest

SERVICE: web.AppKey[JobService] = web.AppKey("service", JobService)
SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)


def json_error(status: int, message: str) -> web.Response:
    """An error as apolo_sdk reads it: JSON body, and X-Error for WS handshakes."""
    body = json.dumps({"error": message})
    return web.Response(
        status=status,
        text=body,
        content_type="application/json",
        headers={"X-Error": body},
    )


async def json_body(request: web.Request) -> Any:
    """The request's JSON (at most 1 MiB, aiohttp's limit); ``BadRequest`` (a
    400) if it is none, or nested deeper than Python's parser recurses."""
    try:
        return await request.json()
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None
    except RecursionError:
        raise BadRequest(
            "the request body is nested too deeply (JSON of at most ~1000 levels "
            "is read)"
        ) from None
