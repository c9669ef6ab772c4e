"""The client's side of opening a pipe's WebSocket (RFC 6455 §4.1), and the
heartbeat that keeps a silent server from holding a pipe for ever."""

from __future__ import annotations

import asyncio
import ssl as _ssl

from ._ws_pipe import OP_PING, Pipe, ProtocolError, accept_key, new_key

MAX_HEAD = 1 << 16  # bytes of response head we accept before giving up


class HandshakeRefused(Exception):
    """The server answered the upgrade with something other than 101."""

    def __init__(self, status: int, reason: str, headers: dict[str, str]) -> None:
        super().__init__(f"{status} {reason}")
        self.status, self.reason, self.headers = status, reason, headers


class _Handshake(asyncio.Protocol):
    """Collects the response head; the bytes after it belong to the pipe."""

    def __init__(self) -> None:
        self.head: asyncio.Future[tuple[bytes, bytes]] = (
            asyncio.get_running_loop().create_future()
        )
        self._data = bytearray()

    def data_received(self, data: bytes) -> None:
        self._data += data
        end = self._data.find(b"\r\n\r\n")
        if end >= 0 and not self.head.done():
            self.head.set_result(
                (bytes(self._data[:end]), bytes(self._data[end + 4 :]))
            )
        elif len(self._data) > MAX_HEAD and not self.head.done():
            self.head.set_exception(ProtocolError("an endless response head"))

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.head.done():
            self.head.set_exception(
                ConnectionResetError(
                    "the server closed the connection during the upgrade"
                )
            )


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP response: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().title()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


async def connect(
    pipe: Pipe,
    *,
    host: str,
    port: int,
    host_header: str,
    target: str,
    headers: dict[str, str],
    ssl: _ssl.SSLContext | None,
) -> None:
    """Open the WebSocket side of a client ``pipe`` and start it.

    Raises ``OSError`` when the server is unreachable, ``HandshakeRefused`` for any
    status but 101, and ``ProtocolError`` for a 101 that is not a valid upgrade.
    """
    loop = asyncio.get_running_loop()
    handshake = _Handshake()
    transport, _ = await loop.create_connection(
        lambda: handshake,
        host,
        port,
        ssl=ssl,
        server_hostname=host if ssl else None,
    )
    try:
        key = new_key()
        lines = [
            f"GET {target} HTTP/1.1",
            f"Host: {host_header}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head, rest = await handshake.head
        status, reason, got = _parse_head(head)
        if status != 101:
            raise HandshakeRefused(status, reason, got)
        if (
            got.get("Upgrade", "").lower() != "websocket"
            or "upgrade" not in got.get("Connection", "").lower()
            or got.get("Sec-Websocket-Accept") != accept_key(key)
        ):
            raise ProtocolError("the server's 101 is not a valid WebSocket upgrade")
    except BaseException:
        transport.abort()
        raise
    transport.set_protocol(pipe.ws)
    pipe.ws.attach(transport)
    if rest:
        pipe.ws.feed(rest)
    pipe.start()


def keep_alive(pipe: Pipe, interval: float) -> None:
    """PING the server after ``interval`` seconds of silence; fail the pipe if the
    next ``interval / 2`` seconds bring nothing back. Not while we hold reading
    back ourselves (then silence says nothing about the server)."""
    loop = asyncio.get_running_loop()
    state = {"heard": loop.time(), "pinged": 0.0}
    tick = interval / 2

    def heard() -> None:
        state["heard"] = loop.time()
        state["pinged"] = 0.0

    def check() -> None:
        if pipe.done.done() or pipe.close_sent:
            return
        now = loop.time()
        if pipe.ws.throttled:
            heard()
        elif state["pinged"] and now - state["pinged"] >= tick:
            pipe.fail(TimeoutError(f"no answer to a ping within {tick:g} s"))
            return
        elif not state["pinged"] and now - state["heard"] >= interval:
            state["pinged"] = now
            pipe.ws.send_control(OP_PING, b"")
        loop.call_later(tick / 2, check)

    pipe.ws.on_data = heard
    loop.call_later(tick / 2, check)
