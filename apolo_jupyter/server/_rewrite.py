"""What the proxy removes from requests and responses (pure functions).

Requests lose the user's Jupyter credentials (all cookies, ``Authorization``,
the XSRF headers, the ``token`` and ``_xsrf`` query parameters) and hop-by-hop
headers; ``Host`` becomes the loopback upstream. Nothing else is rewritten.
Responses lose hop-by-hop headers and ``Set-Cookie`` (the job must not set
cookies on the Jupyter origin, and it never receives any back anyway).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote_plus

from multidict import CIMultiDict

__all__ = [
    "SANDBOX_CSP",
    "request_headers",
    "response_headers",
    "strip_query",
    "ws_request_headers",
]

# Job content runs in an opaque origin: it cannot reach JupyterLab's cookies,
# storage or API as the user (no ``allow-same-origin``).
SANDBOX_CSP = "sandbox allow-scripts allow-forms allow-popups"

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_CREDENTIALS = frozenset({"authorization", "cookie", "x-xsrftoken", "x-csrftoken"})
# The client negotiates its own handshake with the upstream.
_WS_HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)
_CREDENTIAL_PARAMS = frozenset({"token", "_xsrf"})


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def request_headers(
    headers: Iterable[tuple[str, str]], port: int, *, websocket: bool = False
) -> CIMultiDict[str]:
    """The headers to send upstream: credentials and hop-by-hop ones removed."""
    pairs = list(headers)
    drop = _HOP_BY_HOP | _CREDENTIALS | _connection_tokens(pairs) | {"host"}
    if websocket:
        drop = drop | _WS_HANDSHAKE
    out: CIMultiDict[str] = CIMultiDict()
    out["Host"] = f"127.0.0.1:{port}"
    for name, value in pairs:
        if name.lower() not in drop:
            out.add(name, value)
    return out


def ws_request_headers(
    headers: Iterable[tuple[str, str]], port: int
) -> CIMultiDict[str]:
    """Like :func:`request_headers`, for a WebSocket handshake."""
    return request_headers(headers, port, websocket=True)


def response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The upstream response headers to pass to the browser."""
    pairs = list(headers)
    drop = _HOP_BY_HOP | _connection_tokens(pairs) | {"set-cookie", "set-cookie2"}
    return [(n, v) for n, v in pairs if n.lower() not in drop]


def strip_query(query: str) -> str:
    """Remove the ``token`` and ``_xsrf`` parameters; keep the rest byte-exact."""
    if not query:
        return ""
    kept = []
    for part in query.split("&"):
        key = part.split("=", 1)[0]
        if unquote_plus(key) in _CREDENTIAL_PARAMS:
            continue
        kept.append(part)
    return "&".join(kept)
