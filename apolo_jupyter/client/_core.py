"""The aiohttp session and the one place where aiohttp errors become ours."""

from __future__ import annotations

import asyncio
import functools
import os
import random
import ssl
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import aiohttp
from yarl import URL

from . import _ws_connect, _ws_pipe
from ._errors import (
    ClientError,
    ConnectionDropped,
    PlatformUnreachable,
    error_from_response,
)

__version__ = "0.1.0"
USER_AGENT = f"apolo-jupyter/{__version__} ({sys.platform})"

# As apolo_sdk: streamed responses must deliver bytes at least once a minute.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(
    total=None, connect=None, sock_read=60, sock_connect=60
)
WS_HEARTBEAT = 10.0
HANDSHAKE_TIMEOUT = 60.0  # as sock_connect above


def trace_headers() -> dict[str, str]:
    """The tracing headers apolo_sdk puts on each request (not on WebSocket
    handshakes): a zipkin ``b3`` single header and a ``sentry-trace`` one, with
    a trace id whose high 32 bits are the time (as AWS X-Ray reads them), a
    random span id, and the sampling left to the server."""
    trace = f"{(int(time.time()) << 96) | random.getrandbits(96):032x}"
    span = os.urandom(8).hex()
    return {"b3": f"{trace}-{span}", "sentry-trace": f"{trace}-{span}-"}


def _unreachable(url: URL, reason: str) -> PlatformUnreachable:
    return PlatformUnreachable(
        f"cannot connect to {url.origin()}: {reason}. "
        "Is the platform running? For the local one: apolo-jupyter local status"
    )


@contextmanager
def translate_errors(url: URL) -> Iterator[None]:
    """Turn aiohttp's exceptions into the client's error tree."""
    try:
        yield
    except aiohttp.WSServerHandshakeError as exc:
        headers = exc.headers
        text = (headers.get("X-Error") if headers is not None else None) or exc.message
        raise error_from_response(exc.status, text) from exc
    except aiohttp.ClientConnectorError as exc:
        raise _unreachable(url, exc.os_error.strerror or str(exc)) from exc
    except (
        aiohttp.ServerDisconnectedError,
        aiohttp.ClientPayloadError,
        aiohttp.ClientOSError,
    ) as exc:
        raise ConnectionDropped(
            f"{url.origin()} closed the connection early: {exc}"
        ) from exc
    except aiohttp.ClientError as exc:
        raise ClientError(f"request to {url} failed: {exc}") from exc
    except TimeoutError as exc:
        raise ClientError(f"request to {url} timed out") from exc


class Core:
    """Owns the HTTP session; adds auth to every request and WebSocket."""

    def __init__(
        self,
        token: str,
        trace_configs: list[aiohttp.TraceConfig] | None = None,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._token = token
        self._trace_configs = trace_configs
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                trust_env=False,
                headers={"User-Agent": USER_AGENT},
                trace_configs=self._trace_configs,
            )
        return self._session

    def _auth(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        merged = dict(headers or {})
        merged["Authorization"] = f"Bearer {self._token}"
        return merged

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: URL,
        *,
        json: Any = None,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        with translate_errors(url):
            async with self.session.request(
                method,
                url,
                json=json,
                params=params,
                data=data,
                headers={**self._auth(headers), **trace_headers()},
                timeout=timeout or self._timeout,
                read_bufsize=2**22,
            ) as resp:
                if resp.status >= 400:
                    raise error_from_response(resp.status, await resp.text())
                yield resp

    @asynccontextmanager
    async def ws_connect(
        self,
        url: URL,
        *,
        heartbeat: float | None = WS_HEARTBEAT,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        with translate_errors(url):
            async with self.session.ws_connect(
                url,
                headers=self._auth(headers),
                heartbeat=heartbeat,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0),
                max_msg_size=2**22,
            ) as ws:
                yield ws

    async def open_pipe(
        self, url: URL, pipe: _ws_pipe.Pipe, *, heartbeat: float = WS_HEARTBEAT
    ) -> None:
        """Connect ``pipe``'s WebSocket side to ``url`` (ws:// or wss://) and start
        it: port forwarding's fast path, framed by :mod:`._ws_pipe`. Errors are
        those of :meth:`ws_connect`."""
        secure = url.scheme in ("wss", "https")
        host = url.raw_host or ""
        host_header = f"[{host}]" if ":" in host else host
        if not url.is_default_port():
            host_header += f":{url.port}"
        headers = self._auth({"User-Agent": USER_AGENT})
        try:
            await asyncio.wait_for(
                _ws_connect.connect(
                    pipe,
                    host=host,
                    port=url.port or (443 if secure else 80),
                    host_header=host_header,
                    target=url.raw_path_qs,
                    headers=headers,
                    ssl=_ssl_context() if secure else None,
                ),
                HANDSHAKE_TIMEOUT,
            )
        except _ws_connect.HandshakeRefused as exc:
            text = exc.headers.get("X-Error") or exc.reason
            raise error_from_response(exc.status, text) from exc
        except TimeoutError as exc:
            raise ClientError(f"WebSocket upgrade at {url} timed out") from exc
        except (ConnectionResetError, _ws_pipe.ProtocolError) as exc:
            raise ClientError(f"WebSocket upgrade at {url} failed: {exc}") from exc
        except OSError as exc:
            raise _unreachable(url, exc.strerror or str(exc)) from exc
        _ws_connect.keep_alive(pipe, heartbeat)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()  # what aiohttp verifies with by default
