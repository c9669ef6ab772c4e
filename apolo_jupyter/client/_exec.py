"""``client.jobs.exec`` and ``attach``: channels to a command's or a job's stdio.

Both are one WebSocket of BINARY frames whose first byte is the channel
(reference §4.4): 0 stdin and 4 resize go to the platform, 1 stdout and 2 stderr
come back, and 3 carries the exit code once an exec'd command has ended. A
:class:`StdStream` reads and writes them as ``apolo_sdk``'s does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import aiohttp
from yarl import URL

from . import _stream_wire
from ._core import Core
from ._errors import ClientError, ResourceNotFound, StdStreamError
from ._stream_models import Message


class StdStream:
    """The stdio of an exec'd command or an attached job."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._closing = False

    async def close(self) -> None:
        self._closing = True
        await self._ws.close()

    async def read_out(self) -> Message | None:
        """The next output chunk; None once the platform closed the stream.

        Raises :class:`StdStreamError` with the exit code when an exec'd command
        has ended (after all its output was read)."""
        if self._closing:
            return None
        msg = await self._ws.receive()
        if msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
        ):
            self._closing = True
            return None
        if msg.type == aiohttp.WSMsgType.ERROR:
            self._closing = True
            raise ClientError(f"the job's stream broke: {self._ws.exception()}")
        if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
            raise ClientError(f"unexpected frame on the job's stream: {msg.type.name}")
        channel, payload = msg.data[0], msg.data[1:]
        if channel == _stream_wire.EXIT:
            self._closing = True
            raise StdStreamError(*_stream_wire.exit_from_api(payload))
        return Message(channel, payload)

    async def write_in(self, data: bytes) -> None:
        """Send ``data`` to the stdin (or the terminal) of the other side."""
        if self._closing:
            return
        await self._ws.send_bytes(bytes([_stream_wire.STDIN]) + data)

    async def resize(self, h: int, w: int) -> None:
        """Tell the other side's terminal its new size (rows ``h``, columns ``w``)."""
        if self._closing:
            return
        await self._ws.send_bytes(_stream_wire.resize_frame(h, w))


@asynccontextmanager
async def open_stream(
    core: Core, url: URL, *, protocol: str | None
) -> AsyncIterator[StdStream]:
    """Connect to an exec or attach ``url``; the stream is closed on exit."""
    headers = None if protocol is None else {"Sec-WebSocket-Protocol": protocol}
    with missing_route(url):
        async with core.ws_connect(url, headers=headers) as ws:
            stream = StdStream(ws)
            try:
                yield stream
            finally:
                await ws.close()


@contextmanager
def missing_route(url: URL) -> Iterator[None]:
    """A bare 404 (no reason given) means the platform lacks the route."""
    try:
        yield
    except ResourceNotFound as exc:
        if str(exc) != "Invalid response status":
            raise
        raise ResourceNotFound(
            f"{url.origin()} does not serve {url.path}: the platform predates it "
            "(a local one: apolo-jupyter local stop, then start it again)"
        ) from None
