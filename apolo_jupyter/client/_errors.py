"""The error tree. Names mirror ``apolo_sdk``; HTTP statuses map here only."""

from __future__ import annotations

import errno as _errno
import json
from typing import Any


class ClientError(Exception):
    """Base of errors raised by the client that are not ``ValueError``s."""


class IllegalArgumentError(ValueError):
    def __init__(self, message: str, payload: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.payload = payload


class AuthError(ClientError):
    pass


class AuthenticationError(AuthError):
    pass


class AuthorizationError(AuthError):
    pass


class ResourceNotFound(ValueError):
    pass


class BadGateway(ValueError):
    pass


class ServerNotAvailable(ValueError):
    pass


class ConfigError(RuntimeError):
    pass


class NDJSONError(Exception):
    pass


class PlatformUnreachable(ClientError):
    """The platform's address could not be reached at all."""


class StdStreamError(Exception):
    """An exec'd command ended (``client.jobs.exec``): its ``exit_code``, and the
    platform's ``message`` about it when it sent one."""

    def __init__(self, exit_code: int, message: str | None = None) -> None:
        super().__init__(f"Stream finished with exit code {exit_code}")
        self.exit_code = exit_code
        self.message = message


def error_from_response(status: int, text: str) -> Exception:
    """Map an HTTP error status and body to an exception, as ``apolo_sdk`` does."""
    message = text
    payload: dict[str, Any] | None = None
    err_no: Any = None
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        if "error" in body:
            message = str(body["error"])
            payload = body
            err_no = body.get("errno")
        elif "errors" in body:
            payload = body
    if status == 400 and err_no is not None:
        code = err_no if isinstance(err_no, int) else getattr(_errno, str(err_no), None)
        if isinstance(code, int):
            return OSError(code, message)
    if status == 400:
        return IllegalArgumentError(message, payload)
    if status == 401:
        return AuthenticationError(message)
    if status == 403:
        return AuthorizationError(message)
    if status == 404:
        return ResourceNotFound(message)
    if status == 405:
        return ClientError(message)
    if status == 502:
        return BadGateway(message)
    if status == 503:
        return ServerNotAvailable(message)
    return IllegalArgumentError(message, payload)
