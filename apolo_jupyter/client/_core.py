"""The aiohttp session and the one place where aiohttp errors become ours."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import aiohttp
from yarl import URL

from ._errors import ClientError, PlatformUnreachable, error_from_response

__version__ = "0.1.0"
USER_AGENT = f"apolo-jupyter/{__version__} ({sys.platform})"

# As apolo_sdk: streamed responses must deliver bytes at least once a minute.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(
    total=None, connect=None, sock_read=60, sock_connect=60
)
WS_HEARTBEAT = 10.0


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
        raise PlatformUnreachable(
            f"cannot connect to {url.origin()}: {exc.os_error.strerror or exc}. "
            "Is the platform running? For the local one: apolo-jupyter local status"
        ) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise ClientError(f"{url.origin()} closed the connection early: {exc}") from exc
    except aiohttp.ClientError as exc:
        raise ClientError(f"request to {url} failed: {exc}") from exc
    except TimeoutError as exc:
        raise ClientError(f"request to {url} timed out") from exc


class Core:
    """Owns the HTTP session; adds auth to every request and WebSocket."""

    def __init__(
        self, token: str, trace_configs: list[aiohttp.TraceConfig] | None = None
    ) -> None:
        self._token = token
        self._trace_configs = trace_configs
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=DEFAULT_TIMEOUT,
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
                headers=self._auth(headers),
                timeout=timeout or DEFAULT_TIMEOUT,
                read_bufsize=2**22,
            ) as resp:
                if resp.status >= 400:
                    raise error_from_response(resp.status, await resp.text())
                yield resp

    @asynccontextmanager
    async def ws_connect(
        self, url: URL, *, heartbeat: float | None = WS_HEARTBEAT
    ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        with translate_errors(url):
            async with self.session.ws_connect(
                url,
                headers=self._auth(None),
                heartbeat=heartbeat,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0),
                max_msg_size=2**22,
            ) as ws:
                yield ws
