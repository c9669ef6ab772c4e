"""Per-install HS256 tokens: a secret in a 0600 file, a JWT minted from it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from ..client._local_home import LocalPaths

USER_CLAIM = "https://platform.neuromation.io/user"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def mint(user: str, secret: bytes) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {USER_CLAIM: user, "identity": user, "iat": int(time.time())}
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(
        secret, f"{header}.{payload}".encode(), hashlib.sha256
    ).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def verify(token: str, secret: bytes) -> str | None:
    """The user of a valid token, else None."""
    try:
        header, payload, signature = token.split(".")
        expected = hmac.new(
            secret, f"{header}.{payload}".encode(), hashlib.sha256
        ).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            return None
        claims = json.loads(_unb64(payload))
    except ValueError:
        return None
    user = claims.get("identity") or claims.get(USER_CLAIM)
    return str(user) if user else None


def load_or_create(paths: LocalPaths, user: str) -> tuple[bytes, str]:
    """The install's secret and token, created on first use (files are 0600)."""
    paths.ensure()
    if not paths.secret_file.exists():
        _write_private(paths.secret_file, secrets.token_hex(32))
    secret = paths.secret_file.read_text().strip().encode()
    token = paths.token_file.read_text().strip() if paths.token_file.exists() else ""
    if verify(token, secret) is None:
        token = mint(user, secret)
        _write_private(paths.token_file, token)
    return secret, token


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_VERIFIED = 64


def auth_middleware(secret: bytes) -> Middleware:
    # Tokens checked already, and their users: a token never expires (verify
    # reads no time), so a folder transfer's thousand requests check it once.
    verified: dict[str, str] = {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        user = None
        if scheme.lower() == "bearer":
            token = token.strip()
            user = verified.get(token)
            if user is None and (user := verify(token, secret)) is not None:
                if len(verified) >= MAX_VERIFIED:
                    verified.clear()
                verified[token] = user
        if user is None:
            why = "missing" if not header else "not valid for this local platform"
            message = (
                f"Authorization token {why}: send 'Authorization: Bearer <token>' "
                "with the token from `apolo-jupyter local env`"
            )
            body = json.dumps({"error": message})
            raise web.HTTPUnauthorized(
                text=body, content_type="application/json", headers={"X-Error": body}
            )
        request["user"] = user
        return await handler(request)

    return middleware
