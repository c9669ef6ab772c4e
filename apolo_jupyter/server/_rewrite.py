"""What the proxy removes from requests and responses (pure functions).

Requests lose the user's Jupyter credentials (all cookies, ``Authorization``,
the XSRF headers, the ``token`` and ``_xsrf`` query parameters) and hop-by-hop
headers; ``Host`` becomes the loopback upstream. Nothing else is rewritten.
Responses keep only the headers a page needs (an allowlist): anything that
acts on the whole Jupyter origin (``Set-Cookie``, ``Clear-Site-Data``, HSTS,
``NEL``/reporting, CORS grants, ``Service-Worker-Allowed``, ``Refresh``...) never
reaches the browser. ``Location`` is kept only when it stays inside the forward.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote_plus, urlsplit

from multidict import CIMultiDict

__all__ = [
    "SANDBOX_CSP",
    "location",
    "request_headers",
    "response_headers",
    "strip_query",
    "ws_request_headers",
]

# Job content runs in an opaque origin: it cannot reach JupyterLab's cookies,
# storage or API as the user (no ``allow-same-origin``).
# Only JupyterLab itself may frame it.
SANDBOX_CSP = "sandbox allow-scripts allow-forms allow-popups; frame-ancestors 'self'"

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
# Tornado has answered ``Expect: 100-continue`` itself; the upstream must not
# wait for a second one (a plain HTTP/1.0 server never sends it).
_REQUEST_ONLY_HERE = frozenset({"expect"})
# What a page needs from its server; the job's own CSP may only add restrictions.
_RESPONSE_ALLOWED = frozenset(
    {
        "accept-ranges",
        "age",
        "cache-control",
        "content-disposition",
        "content-encoding",
        "content-language",
        "content-length",
        "content-range",
        "content-security-policy",
        "content-type",
        "date",
        "etag",
        "expires",
        "last-modified",
        "pragma",
        "vary",
    }
)
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
    drop = (
        _HOP_BY_HOP
        | _CREDENTIALS
        | _REQUEST_ONLY_HERE
        | _connection_tokens(pairs)
        | {"host"}
    )
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
    """The upstream response headers to pass to the browser (``Location`` aside)."""
    pairs = list(headers)
    drop = _HOP_BY_HOP | _connection_tokens(pairs)
    return [(n, v) for n, v in pairs if n.lower() in _RESPONSE_ALLOWED - drop]


def location(value: str, port: int, prefix: str) -> str | None:
    """A redirect target made to stay inside the forward, or None (dropped).

    ``prefix`` is the forward's path on the Jupyter server (``.../forward/<id>``,
    no trailing slash). A relative target is kept; a path-absolute one, or an
    absolute URL to the job's own ``127.0.0.1``/``localhost:<port>``, is moved
    under the prefix; anything else (another site) is dropped.
    """
    if any(c in value for c in "\r\n\0\\"):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        own = parts.scheme in ("http", "https") and parts.hostname in (
            "127.0.0.1",
            "localhost",
        )
        try:
            same_port = parts.port == port
        except ValueError:
            return None
        if not (own and same_port):
            return None
        path = parts.path or "/"
    elif value.startswith("/"):
        path = parts.path
    else:
        return value  # relative to the current page, which is inside the forward
    query = f"?{parts.query}" if parts.query else ""
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return f"{prefix}{path}{query}{fragment}"


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
