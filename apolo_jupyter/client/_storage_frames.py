"""Messages of the storage API's WebSocket (``?op=WEBSOCKET``), both sides.

One binary WebSocket message is one request or one answer: a 4-byte big-endian
length ``n``, then ``n - 4`` bytes of a CBOR map (the header), then the payload
(a WRITE's bytes, a READ's answer). A request's header holds ``op``, ``id`` and
the ``path`` relative to the folder the socket was opened at, plus ``offset`` and
``size`` where the op takes them. Answers are ``ACK`` or ``ERROR`` with ``rop``
and ``rid`` (the request's op and id), the server's ``timestamp`` (whole
seconds), and ``error``/``errno`` for an error. This is platform-storage-api's
protocol; the local platform speaks it too.
"""

from __future__ import annotations

import struct
from typing import Any

from . import _cbor

ACK, ERROR = "ACK", "ERROR"
READ, STAT, LIST = "READ", "STAT", "LIST"
CREATE, WRITE, MKDIRS = "CREATE", "WRITE", "MKDIRS"
WRITE_OPS = frozenset({CREATE, WRITE, MKDIRS})

MAX_READ = 16 << 20  # the most one READ may ask for
# A message: a READ's answer or a WRITE of MAX_READ bytes, and its header.
MAX_MESSAGE = MAX_READ + (1 << 16) + 100
_LENGTH = struct.Struct("!I")

# Same-host transfers with the local platform (``_storage_local``, both sides):
# the socket op that names its Unix socket, the socket's file name in the
# platform's home, its two requests, and the most one of its messages holds.
DISCOVER_OP = "LOCAL_TRANSFER"
LOCAL_SOCKET_NAME = "storage.sock"
LOCAL_PUT, LOCAL_GET = "put", "get"
LOCAL_MAX_MESSAGE = 1 << 16
LOCAL_MAX_FDS = 4


class FrameError(ValueError):
    """A message that is not a storage frame."""


def pack(header: dict[str, Any], data: bytes | memoryview = b"") -> bytes:
    raw = _cbor.dumps(header)
    return b"".join((_LENGTH.pack(len(raw) + 4), raw, data))


def unpack(message: bytes) -> tuple[dict[str, Any], memoryview]:
    """The header and the payload (a view into ``message``, not a copy)."""
    if len(message) < 4:
        raise FrameError("a message shorter than its 4-byte length")
    (end,) = _LENGTH.unpack_from(message)
    if not 4 <= end <= len(message):
        raise FrameError(f"a header length of {end} in a {len(message)}-byte message")
    view = memoryview(message)
    try:
        header = _cbor.loads(view[4:end])
    except _cbor.CBORError as exc:
        raise FrameError(f"the header is not valid: {exc}") from None
    if not isinstance(header, dict):
        raise FrameError("the header is not a CBOR map")
    return header, view[end:]
