"""The handler behind ``<base_url>/apolo/forward/<id>/<path>``.

One handler serves HTTP (every method, bodies streamed both ways with
backpressure) and the WebSocket upgrade on the same URL. The id is looked up in
:mod:`apolo_jupyter.kernel._forward_registry`; the upstream is always
``127.0.0.1:<registered port>``, never a host or port taken from the URL.

Authentication: every method is decorated with ``@ws_authenticated`` (403, no
login redirect) and ``prepare`` refuses an anonymous user itself, before the
registry is consulted or anything is sent upstream; this holds even with
``ServerApp.allow_unauthenticated_access=True`` (the default). Jupyter's own
``prepare`` checks XSRF for unsafe methods (skipped for token-header auth) and
the WebSocket origin. Errors are fixed plain text; nothing from the request is
reflected.

Why not subclass jupyter-server-proxy's ``ProxyHandler``: (1) it forwards the
user's ``Cookie``, ``Authorization`` and ``?token=`` to the backend (measured, see
advisory #590), and the backend here is arbitrary job code; (2) its routes
``/proxy/<port>`` and ``/proxy/<host>:<port>`` are always installed and any local
port is reachable, while we allow only registered forwards; (3) it disables
XSRF checks for proxied requests and buffers request bodies; (4) it would pull in
simpervisor and a launcher we do not need. Overriding all of that would leave
little of it, so this is a small handler of our own on ``aiohttp`` (already a
dependency), which gives streaming with backpressure in both directions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from http.client import responses
from typing import Any

import aiohttp
import yarl
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from apolo_jupyter.kernel._forward_registry import Forward, lookup

from ._rewrite import (
    SANDBOX_CSP,
    location,
    request_headers,
    response_headers,
    strip_query,
    ws_request_headers,
)

__all__ = ["ForwardProxyHandler"]

_MESSAGES = {
    400: "not a WebSocket upgrade",
    403: "forbidden",
    404: "unknown or expired forward",
    426: "unsupported WebSocket version",
    502: "the forwarded port did not answer",
}
_BODY_QUEUE = 8  # chunks in flight between the browser and the upstream
_CSP = "Content-Security-Policy"
_CLOSE_CODES_OK = frozenset({1000, 1001, 1003, 1007, 1008, 1009, 1010, 1011})
_pending: set[asyncio.Future[Any]] = set()  # cleanups scheduled from sync hooks


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
    )


def _close_later(session: aiohttp.ClientSession | None) -> None:
    if session is not None and not session.closed:
        fut = asyncio.ensure_future(session.close())
        _pending.add(fut)
        fut.add_done_callback(_pending.discard)


@web.stream_request_body
class ForwardProxyHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):
    """Proxy HTTP and WebSocket to a registered loopback forward."""

    def initialize(self) -> None:
        self._forward: Forward | None = None
        self._session: aiohttp.ClientSession | None = None
        self._body: asyncio.Queue[bytes | None] | None = None
        self._exchange: asyncio.Task[aiohttp.ClientResponse] | None = None
        self._upstream_ws: aiohttp.ClientWebSocketResponse | None = None
        self._relay: asyncio.Task[None] | None = None

    # -- shared ---------------------------------------------------------------

    def _is_upgrade(self) -> bool:
        return (
            self.request.method == "GET"
            and self.request.headers.get("Upgrade", "").lower() == "websocket"
        )

    def _upstream_url(self, forward: Forward, scheme: str) -> yarl.URL:
        prefix = url_path_join(self.base_url, "apolo/forward", forward.id)
        rest = self.request.path[len(prefix) :] or "/"
        return yarl.URL.build(
            scheme=scheme,
            host="127.0.0.1",
            port=forward.port,
            path=rest,
            query_string=strip_query(self.request.query),
            encoded=True,
        )

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self._finished:
            return
        if self.current_user is None:
            self.log.warning("Refused unauthenticated request to an apolo forward")
            raise web.HTTPError(403)
        self._forward = lookup(self.path_args[0])
        if self._forward is None:
            raise web.HTTPError(404)
        if self._is_upgrade():
            return
        # Start the upstream request now: the body arrives in data_received.
        length = self.request.headers.get("Content-Length", "0")
        chunked = "chunked" in self.request.headers.get("Transfer-Encoding", "").lower()
        if chunked or (length.isdigit() and int(length) > 0):
            self._body = asyncio.Queue(maxsize=_BODY_QUEUE)
        self._session = _session()
        self._exchange = asyncio.ensure_future(self._start_exchange(self._forward))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header(_CSP, SANDBOX_CSP)
        # Refused in prepare, the body is never read and tornado drops the
        # connection afterwards: say so, lest the client reuse it.
        self.set_header("Connection", "close")
        text = _MESSAGES.get(status_code) or responses.get(status_code, "error")
        self.finish(text.lower() + "\n")

    def on_finish(self) -> None:
        if self.ws_connection is None:  # an accepted WebSocket lives until on_close
            self._cleanup()

    def _cleanup(self) -> None:
        if self._exchange is not None:
            if not self._exchange.done():
                self._exchange.cancel()
            elif not self._exchange.cancelled():
                self._exchange.exception()  # retrieved: it was reported as 502
        if self._relay is not None and not self._relay.done():
            self._relay.cancel()
        if self._upstream_ws is not None and not self._upstream_ws.closed:
            fut = asyncio.ensure_future(self._upstream_ws.close())
            _pending.add(fut)
            fut.add_done_callback(_pending.discard)
        _close_later(self._session)

    # -- HTTP -----------------------------------------------------------------

    async def _body_chunks(
        self, queue: asyncio.Queue[bytes | None]
    ) -> AsyncIterator[bytes]:
        while (chunk := await queue.get()) is not None:
            yield chunk

    async def _start_exchange(self, forward: Forward) -> aiohttp.ClientResponse:
        assert self._session is not None
        body = self._body
        return await self._session.request(
            self.request.method or "GET",
            self._upstream_url(forward, "http"),
            headers=request_headers(self.request.headers.get_all(), forward.port),
            data=self._body_chunks(body) if body is not None else None,
            allow_redirects=False,
            compress=None,
        )

    async def _feed(self, chunk: bytes | None) -> None:
        queue, exchange = self._body, self._exchange
        if queue is None or exchange is None or exchange.done():
            return  # no body expected, or the upstream already gave up
        put = asyncio.ensure_future(queue.put(chunk))
        await asyncio.wait({put, exchange}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()

    async def data_received(self, chunk: bytes) -> None:
        await self._feed(chunk)

    async def _proxy_http(self) -> None:
        await self._feed(None)
        assert self._exchange is not None
        try:
            resp = await self._exchange
        except asyncio.CancelledError:
            if self._exchange.cancelled():  # the browser went away: nothing to say
                return
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.log.info("apolo forward upstream failed: %s", type(exc).__name__)
            raise web.HTTPError(502) from None
        async with resp:
            if resp.status < 200:  # e.g. 101 to a plain request: not a response
                raise web.HTTPError(502)
            self.set_status(resp.status)
            self.clear_header(_CSP)
            target = resp.headers.get("Location")
            if target is not None and self._forward is not None:
                prefix = url_path_join(self.base_url, "apolo/forward", self._forward.id)
                kept = location(target, self._forward.port, prefix)
                if kept is not None:
                    self.set_header("Location", kept)
            seen: set[str] = set()
            for name, value in response_headers(resp.headers.items()):
                lower = name.lower()
                with contextlib.suppress(ValueError):
                    if lower in seen or lower == "content-security-policy":
                        self.add_header(name, value)
                    else:
                        self.set_header(name, value)
                seen.add(lower)
            self.add_header(_CSP, SANDBOX_CSP)
            if self.request.method == "HEAD" or resp.status in (204, 304):
                return
            try:
                async for chunk in resp.content.iter_any():
                    self.write(chunk)
                    await self.flush()
            except (TimeoutError, aiohttp.ClientError, OSError):
                # Headers are out; cut the connection so the truncation shows.
                self.log.info("apolo forward upstream broke mid-response")
                stream = getattr(self.request.connection, "stream", None)
                if stream is not None:
                    stream.close()
            except StreamClosedError:
                pass

    @ws_authenticated
    async def head(self, *args: str) -> None:
        await self._proxy_http()

    @ws_authenticated
    async def post(self, *args: str) -> None:
        await self._proxy_http()

    @ws_authenticated
    async def put(self, *args: str) -> None:
        await self._proxy_http()

    @ws_authenticated
    async def patch(self, *args: str) -> None:
        await self._proxy_http()

    @ws_authenticated
    async def delete(self, *args: str) -> None:
        await self._proxy_http()

    @ws_authenticated
    async def options(self, *args: str) -> None:
        await self._proxy_http()

    # -- WebSocket --------------------------------------------------------------

    @ws_authenticated
    async def get(self, *args: str) -> None:
        if not self._is_upgrade():
            await self._proxy_http()
            return
        forward = self._forward
        assert forward is not None
        # Tornado checks these only in super().get(); the job must not see a
        # handshake (on a path an attacker chose) that Jupyter then refuses.
        headers = self.request.headers
        if "upgrade" not in headers.get("Connection", "").lower():
            raise web.HTTPError(400)
        if headers.get("Sec-WebSocket-Version") not in ("7", "8", "13"):
            raise web.HTTPError(426)
        origin = headers.get("Origin", headers.get("Sec-Websocket-Origin"))
        if origin is not None and not self.check_origin(origin):
            raise web.HTTPError(403)
        protocols = [
            p.strip()
            for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        self._session = _session()
        try:
            self._upstream_ws = await self._session.ws_connect(
                self._upstream_url(forward, "ws"),
                headers=ws_request_headers(
                    self.request.headers.get_all(), forward.port
                ),
                protocols=protocols,
                # As big as tornado accepts from the browser; beyond it the
                # upstream is closed with 1009 instead of growing this server.
                max_msg_size=self.settings.get(
                    "websocket_max_message_size", 10 * 1024 * 1024
                ),
                compress=0,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.log.info(
                "apolo forward WebSocket upstream failed: %s", type(exc).__name__
            )
            raise web.HTTPError(502) from None
        await super().get(*args)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        chosen = self._upstream_ws.protocol if self._upstream_ws is not None else None
        return chosen if chosen in subprotocols else None

    def open(self, *args: str, **kwargs: str) -> None:
        super().open(*args, **kwargs)
        self._relay = asyncio.ensure_future(self._relay_upstream())

    async def _relay_upstream(self) -> None:
        ws = self._upstream_ws
        assert ws is not None
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await self.write_message(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    await self.write_message(msg.data, binary=True)
                else:
                    break
        except (WebSocketClosedError, StreamClosedError):
            return
        code = ws.close_code
        self.close(code if code in _CLOSE_CODES_OK or (code or 0) >= 3000 else 1011)

    async def on_message(self, message: str | bytes) -> None:
        ws = self._upstream_ws
        if ws is None or ws.closed:
            return
        try:
            if isinstance(message, bytes):
                await ws.send_bytes(message)
            else:
                await ws.send_str(message)
        except (aiohttp.ClientError, OSError):
            self.close(1011)

    def on_close(self) -> None:
        self._cleanup()
