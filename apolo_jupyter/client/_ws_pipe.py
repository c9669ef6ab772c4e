"""A TCP connection and a WebSocket joined into one pipe, with our own framing.

Port forwarding puts two relays in the path of every byte: the client's local
listener and the platform. Through aiohttp's message API each relay copied a frame
three or four times in Python, into fresh allocations. Here both sockets of a relay
are ``BufferedProtocol``s that receive into buffers allocated once per connection:

- TCP → WebSocket: bytes land after room for the longest frame header; the header
  is written in front of them and the frame leaves as one view of that buffer
  (a client masks the buffer in place first, as RFC 6455 §5.3 requires).
- WebSocket → TCP: a frame's payload goes out as a view of the receive buffer,
  however the frames fall across reads; a server copies it once, to unmask it.

Flow control is the transports' own: while one socket's send buffer is full, the
other one is not read. A data frame of any size is streamed, never assembled.

Control frames follow RFC 6455 §5.5: PING is answered, CLOSE is answered and ends
the pipe. Both ends of the port-forward protocol treat EOF from either socket as
the end of the connection (there is no half-close in it).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Callable

try:  # aiohttp's Cython XOR: tens of GB/s, against 0.4 GB/s for Python ints
    from aiohttp._websocket.mask import (  # type: ignore[import-not-found]
        _websocket_mask_cython as _mask_bytearray,
    )
except ImportError:  # pragma: no cover - aiohttp installed without extensions
    from aiohttp._websocket.helpers import websocket_mask as _mask_bytearray

# Bytes per TCP read, so at most per frame sent. Measured with
# bench/bench_port_forward.py: 256 KiB moves 5-10% less than 512 KiB, and
# 1 MiB gains nothing more but doubles what a busy connection holds.
CHUNK = 1 << 19
HEADROOM = 14  # the longest header: 2 + 8 (64-bit length) + 4 (mask key)
OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
_DATA_OPS = frozenset({OP_CONTINUATION, OP_TEXT, OP_BINARY})
_CONTROL_OPS = frozenset({OP_CLOSE, OP_PING, OP_PONG})
CLOSE_OK, CLOSE_PROTOCOL_ERROR = 1000, 1002
# Seconds a closed pipe's pending bytes get to reach a reader (a slow reader has
# over 15 kB/s for what a pipe holds): after that both sockets are dropped.
FLUSH_FOR = 30.0
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class ProtocolError(Exception):
    """The peer broke RFC 6455."""


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2)."""
    return base64.b64encode(
        hashlib.sha1(key.encode() + _GUID, usedforsecurity=False).digest()
    ).decode()


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def _header(opcode: int, length: int, masked: bool) -> bytes:
    bit = 0x80 if masked else 0
    if length < 126:
        return struct.pack("!BB", 0x80 | opcode, bit | length)
    if length < 65536:
        return struct.pack("!BBH", 0x80 | opcode, bit | 126, length)
    return struct.pack("!BBQ", 0x80 | opcode, bit | 127, length)


def _rotated(key: bytes, offset: int) -> bytes:
    """The key that masks byte ``offset + i`` of a buffer as ``key`` masks byte i."""
    shift = -offset % 4
    return key[shift:] + key[:shift]


class Pipe:
    """One forwarded connection: ``plain`` is the TCP side, ``ws`` the WebSocket.

    ``client``: we are the WebSocket's client, so we mask what we send and expect
    unmasked frames (a server the other way round). ``done`` resolves once both
    sockets are closed: to None, or to the error that ended the pipe.
    """

    def __init__(self, *, client: bool) -> None:
        self.client = client
        self.plain = _PlainSide(self)
        self.ws = _WsSide(self)
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.done: asyncio.Future[None] = loop.create_future()
        self.error: BaseException | None = None
        self.close_sent = False
        self._closing = False
        self._abort: asyncio.TimerHandle | None = None

    # -- life cycle -------------------------------------------------------------

    def start(self) -> None:
        """Both sockets are connected (and the handshake done): move bytes."""
        if self._closing:
            return
        self.plain.resume()
        self.ws.resume()

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.close(CLOSE_PROTOCOL_ERROR if isinstance(error, ProtocolError) else 1011)

    def close(self, code: int = CLOSE_OK, *, wait: float = 0.5) -> None:
        """Say CLOSE (once), stop reading the TCP side, and drop both sockets if
        they are not closed ``wait`` seconds from now.

        The deadline holds whatever happens meanwhile: the peer's CLOSE may come
        in the same read as data that a local reader never takes, and a graceful
        close would then wait on that reader for ever. Called again on a closing
        pipe, it only ever brings the deadline nearer."""
        if not self._closing:
            self._begin_close(code)
            if self.ws.gone:
                self._finish()
        self._drop_at(self._loop.time() + wait)

    def _drop_at(self, when: float) -> None:
        if self.done.done():
            return
        if self._abort is not None:
            if self._abort.when() <= when:
                return
            self._abort.cancel()
        self._abort = self._loop.call_at(when, self._finish, True)

    def _begin_close(self, code: int) -> None:
        self._closing = True
        self.plain.stop_reading()
        if not self.close_sent and not self.ws.gone:
            self.close_sent = True
            self.ws.send_control(OP_CLOSE, struct.pack("!H", code))

    def _finish(self, abort: bool = False) -> None:
        """Close both sockets; pending bytes are flushed unless ``abort``, for at
        most FLUSH_FOR seconds (or until an earlier deadline of ``close``)."""
        self._closing = True
        if abort and self._abort is not None:
            self._abort.cancel()
            self._abort = None
        for side in (self.plain, self.ws):
            if side.transport is not None and not side.lost:  # not gone, typed
                if abort:
                    side.transport.abort()
                else:
                    side.transport.close()
        if not abort:  # a reader that takes nothing must not hold the pipe open
            self._drop_at(self._loop.time() + FLUSH_FOR)
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self.plain.gone and self.ws.gone and not self.done.done():
            if self._abort is not None:
                self._abort.cancel()
                self._abort = None
            self.done.set_result(None)

    # -- events from the sides ---------------------------------------------------

    def on_close_frame(self, payload: bytes) -> None:
        if len(payload) == 1:
            self.fail(ProtocolError("a CLOSE frame with a one-byte payload"))
            return
        # Echo the code (none given: 1000); the peer has nothing more to say, so
        # close after it.
        code = struct.unpack("!H", payload[:2])[0] if payload else CLOSE_OK
        self._begin_close(code)
        self._finish()

    def on_lost(self, side: _Side, exc: BaseException | None) -> None:
        if side is self.ws and exc is not None and not self._closing:
            self.error = self.error or exc
        if not self._closing:
            # EOF or reset on either socket ends the pipe.
            self.close(CLOSE_OK)
        if side is self.ws:
            self._finish()  # nothing can answer our CLOSE now
        self._maybe_done()


class _Side(asyncio.BufferedProtocol):
    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self._reading = False  # started, and not stopped for good
        self._stopped = False
        self._throttled = False  # the other side's send buffer is full
        self.on_made: Callable[[], None] | None = None  # after connection_made
        # After connection_lost: for a socket taken over from another protocol,
        # which still has to learn that it is gone.
        self.on_lost: Callable[[Exception | None], None] | None = None

    @property
    def gone(self) -> bool:
        """Never connected, or closed."""
        return self.transport is None or self.lost

    @property
    def other(self) -> _Side:
        return self.pipe.ws if self is self.pipe.plain else self.pipe.plain

    def attach(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.pause_reading()  # until the pipe starts

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.attach(transport)
        if self.on_made is not None:
            self.on_made()

    def _apply(self) -> None:
        transport = self.transport
        if transport is None or self.lost or transport.is_closing():
            return
        if self._reading and not self._stopped and not self._throttled:
            transport.resume_reading()
        else:
            transport.pause_reading()

    def resume(self) -> None:
        self._reading = True
        self._apply()

    def stop_reading(self) -> None:
        self._stopped = True
        self._apply()

    @property
    def throttled(self) -> bool:
        return self._throttled

    def throttle(self, on: bool) -> None:
        self._throttled = on
        self._apply()

    # The other side's reading follows our send buffer.
    def pause_writing(self) -> None:
        self.other.throttle(True)

    def resume_writing(self) -> None:
        self.other.throttle(False)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.transport is not None and not self.lost:  # not gone, typed
            self.transport.write(data)

    def eof_received(self) -> bool:
        return False  # asyncio closes the socket; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.other.throttle(False)
        self.pipe.on_lost(self, exc)
        if self.on_lost is not None:
            self.on_lost(exc)


class _PlainSide(_Side):
    """The TCP socket: what it receives leaves as one frame per read."""

    def __init__(self, pipe: Pipe) -> None:
        super().__init__(pipe)
        self._buf = bytearray()

    def get_buffer(self, sizehint: int) -> memoryview:
        if not self._buf:
            self._buf = bytearray(HEADROOM + CHUNK)
        return memoryview(self._buf)[HEADROOM:]

    def buffer_updated(self, nbytes: int) -> None:
        if self.pipe.close_sent:
            return  # no data may follow a CLOSE
        buf, ws = self._buf, self.pipe.ws
        masked = self.pipe.client
        header = _header(OP_BINARY, nbytes, masked)
        start = HEADROOM - len(header)
        if masked:
            if nbytes * 4 < len(buf):  # a short read: mask a copy of just it
                short = bytearray(HEADROOM + nbytes)
                short[HEADROOM:] = memoryview(buf)[HEADROOM : HEADROOM + nbytes]
                buf = short
            key = os.urandom(4)
            # Masks the whole buffer, at tens of GB/s; the header room is
            # overwritten below and the unused tail is never sent.
            _mask_bytearray(_rotated(key, HEADROOM), buf)
            start -= 4
            buf[start : HEADROOM - 4] = header
            buf[HEADROOM - 4 : HEADROOM] = key
        else:
            buf[start:HEADROOM] = header
        ws.write(memoryview(buf)[start : HEADROOM + nbytes])


class _WsSide(_Side):
    """The WebSocket's socket, parsed as a stream of frame pieces."""

    def __init__(self, pipe: Pipe) -> None:
        super().__init__(pipe)
        self._buf = bytearray()
        self._fill = 0  # bytes of an incomplete header kept at the buffer's start
        self._left = 0  # payload bytes of the current frame still to come
        self._opcode = 0
        self._key: bytes | None = None  # the current frame's mask key
        self._offset = 0  # payload bytes of the current frame seen so far
        self._control = bytearray()  # a control frame's payload, gathered
        self._in_frame = False
        self._fragmented = False  # a data message awaits its continuation
        self._scratch = bytearray()  # unmasking room (server side)
        self.on_data: Callable[[], None] | None = None  # called per read (heartbeat)

    # -- sending ----------------------------------------------------------------

    def send_control(self, opcode: int, payload: bytes) -> None:
        masked = self.pipe.client
        frame = bytearray(_header(opcode, len(payload), masked))
        if masked:
            key = os.urandom(4)
            body = bytearray(payload)
            _mask_bytearray(key, body)
            frame += key + body
        else:
            frame += payload
        self.write(frame)

    # -- receiving --------------------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        if not self._buf:
            self._buf = bytearray(CHUNK)
        return memoryview(self._buf)[self._fill :]

    def feed(self, data: bytes) -> None:
        """Bytes that arrived before this protocol owned the socket."""
        while data:
            room = self.get_buffer(-1)
            n = min(len(room), len(data))
            room[:n] = data[:n]
            data = data[n:]
            self.buffer_updated(n)

    def buffer_updated(self, nbytes: int) -> None:
        if self.on_data is not None:
            self.on_data()
        end = self._fill + nbytes
        self._fill = 0
        try:
            pos = self._parse(memoryview(self._buf), 0, end)
        except ProtocolError as exc:
            self.pipe.fail(exc)
            return
        if pos < end:  # an incomplete header: keep it for the next read
            self._buf[: end - pos] = self._buf[pos:end]
            self._fill = end - pos

    def _parse(self, view: memoryview, pos: int, end: int) -> int:
        while pos < end:
            if not self._in_frame:
                head = self._read_header(view, pos, end)
                if head is None:
                    return pos
                pos = head
                if self._left == 0:
                    self._frame_done()
                continue
            n = min(self._left, end - pos)
            self._payload(view, pos, n)
            pos += n
            self._left -= n
            self._offset += n
            if self._left == 0:
                self._frame_done()
        return pos

    def _read_header(self, view: memoryview, pos: int, end: int) -> int | None:
        if end - pos < 2:
            return None
        b0, b1 = view[pos], view[pos + 1]
        if b0 & 0x70:
            raise ProtocolError("reserved bits set, no extension was negotiated")
        opcode, fin, masked = b0 & 0x0F, bool(b0 & 0x80), bool(b1 & 0x80)
        if masked == self.pipe.client:
            who = "server" if self.pipe.client else "client"
            raise ProtocolError(f"a {who} frame {'with' if masked else 'without'} mask")
        length, at = b1 & 0x7F, pos + 2
        if length == 126:
            if end - at < 2:
                return None
            length, at = struct.unpack_from("!H", view, at)[0], at + 2
        elif length == 127:
            if end - at < 8:
                return None
            length, at = struct.unpack_from("!Q", view, at)[0], at + 8
        key = None
        if masked:
            if end - at < 4:
                return None
            key, at = bytes(view[at : at + 4]), at + 4
        if opcode in _CONTROL_OPS:
            if not fin or length > 125:
                raise ProtocolError("a fragmented or oversized control frame")
            self._control = bytearray()
        elif opcode in _DATA_OPS:
            if (opcode == OP_CONTINUATION) != self._fragmented:
                raise ProtocolError("a continuation frame out of sequence")
            self._fragmented = not fin
        else:
            raise ProtocolError(f"unknown opcode {opcode:#x}")
        self._opcode, self._left, self._key, self._offset = opcode, length, key, 0
        self._in_frame = True
        return at

    def _payload(self, view: memoryview, pos: int, n: int) -> None:
        piece: memoryview | bytearray = view[pos : pos + n]
        if self._key is not None:  # unmask a copy: the buffer holds other frames
            scratch = self._scratch
            if len(scratch) < n or n * 4 < len(scratch):
                scratch = bytearray(n)
                if n > len(self._scratch):
                    self._scratch = scratch  # reused by the long pieces to come
            scratch[:n] = piece
            _mask_bytearray(_rotated(self._key, -self._offset), scratch)
            piece = memoryview(scratch)[:n]
        if self._opcode in _CONTROL_OPS:
            self._control += piece
        else:  # also after our CLOSE: what the peer sent before its own still counts
            self.other.write(piece)

    def _frame_done(self) -> None:
        self._in_frame = False
        opcode = self._opcode
        if opcode == OP_PING:
            if not self.pipe.close_sent:
                self.send_control(OP_PONG, bytes(self._control))
        elif opcode == OP_CLOSE:
            self.pipe.on_close_frame(bytes(self._control))
