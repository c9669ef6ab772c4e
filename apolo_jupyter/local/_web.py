"""What every route module shares: app keys and the error response shape."""

from __future__ import annotations

import json

from aiohttp import web

from ._service import JobService
from ._settings import Settings

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
