"""The small part of CBOR (RFC 8949) that storage's WebSocket headers use.

Headers are maps of text keys to integers, text, byte strings, lists, maps,
booleans, null and floats. Anything else (tags, indefinite lengths, ``undefined``,
integers past 64 bits) is refused with :class:`CBORError`, so a hostile peer
cannot make a decoder build objects, recurse without end or read past the
message. Both sides of the protocol use this module: the client and the local
platform.
"""

from __future__ import annotations

import math
import struct
from typing import Any

MAX_DEPTH = 32  # lists and maps nested in each other
_U64 = 1 << 64


class CBORError(ValueError):
    """Bytes that are not a CBOR item this module reads."""


# ---------------------------------------------------------------- encoding


def _head(major: int, value: int, out: bytearray) -> None:
    if value < 24:
        out.append(major << 5 | value)
    elif value < 0x100:
        out += bytes((major << 5 | 24, value))
    elif value < 0x10000:
        out.append(major << 5 | 25)
        out += value.to_bytes(2, "big")
    elif value < 0x100000000:
        out.append(major << 5 | 26)
        out += value.to_bytes(4, "big")
    elif value < _U64:
        out.append(major << 5 | 27)
        out += value.to_bytes(8, "big")
    else:
        raise CBORError(f"integer too large for a CBOR header: {value}")


def _encode(value: Any, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CBORError(f"nested deeper than {MAX_DEPTH} levels")
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        if value >= 0:
            _head(0, value, out)
        else:
            _head(1, -1 - value, out)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        _head(3, len(raw), out)
        out += raw
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        _head(2, len(raw), out)
        out += raw
    elif isinstance(value, float):
        out.append(0xFB)
        out += struct.pack(">d", value)
    elif isinstance(value, (list, tuple)):
        _head(4, len(value), out)
        for item in value:
            _encode(item, out, depth + 1)
    elif isinstance(value, dict):
        _head(5, len(value), out)
        for key, item in value.items():
            _encode(key, out, depth + 1)
            _encode(item, out, depth + 1)
    else:
        raise CBORError(f"cannot encode a {type(value).__name__} in CBOR")


def dumps(value: Any) -> bytes:
    out = bytearray()
    _encode(value, out, 0)
    return bytes(out)


# ---------------------------------------------------------------- decoding


class _Reader:
    def __init__(self, data: bytes | memoryview) -> None:
        self.data = memoryview(data).cast("B")
        self.pos = 0

    def take(self, count: int) -> memoryview:
        end = self.pos + count
        if end > len(self.data):
            raise CBORError("the item runs past the end of the header")
        piece = self.data[self.pos : end]
        self.pos = end
        return piece

    def argument(self, info: int) -> int:
        if info < 24:
            return info
        if info == 31:
            raise CBORError("indefinite lengths are not accepted")
        if info > 27:
            raise CBORError(f"reserved additional information {info}")
        return int.from_bytes(self.take(1 << (info - 24)), "big")

    def item(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise CBORError(f"nested deeper than {MAX_DEPTH} levels")
        first = self.take(1)[0]
        major, info = first >> 5, first & 0x1F
        if major == 7:
            return self.simple(info)
        value = self.argument(info)
        if major == 0:
            return value
        if major == 1:
            return -1 - value
        if major == 2:
            return bytes(self.take(value))
        if major == 3:
            try:
                return str(self.take(value), "utf-8")
            except UnicodeDecodeError as exc:
                raise CBORError(f"text that is not UTF-8: {exc}") from None
        if major == 4:
            self.room(value)
            return [self.item(depth + 1) for _ in range(value)]
        if major == 5:
            self.room(2 * value)
            result: dict[Any, Any] = {}
            for _ in range(value):
                key = self.item(depth + 1)
                if not isinstance(key, (str, int)):
                    raise CBORError("map keys must be text or integers")
                result[key] = self.item(depth + 1)
            return result
        raise CBORError(f"tag {value} is not accepted")

    def room(self, items: int) -> None:
        """Each item takes a byte at least: a count past what is left is a lie
        (and would make a huge list for nothing)."""
        if items > len(self.data) - self.pos:
            raise CBORError("a count larger than the header")

    def simple(self, info: int) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info == 22:
            return None
        if info == 25:
            return _half(int.from_bytes(self.take(2), "big"))
        if info == 26:
            return struct.unpack(">f", self.take(4))[0]
        if info == 27:
            return struct.unpack(">d", self.take(8))[0]
        raise CBORError(f"simple value {info} is not accepted")


def _half(bits: int) -> float:
    exponent = (bits >> 10) & 0x1F
    mantissa = bits & 0x3FF
    if exponent == 0:
        value = math.ldexp(mantissa, -24)
    elif exponent == 0x1F:
        value = math.inf if mantissa == 0 else math.nan
    else:
        value = math.ldexp(mantissa + 1024, exponent - 25)
    return -value if bits & 0x8000 else value


def loads(data: bytes | memoryview) -> Any:
    """The one item in ``data``; bytes after it are an error."""
    reader = _Reader(data)
    value = reader.item(0)
    if reader.pos != len(reader.data):
        raise CBORError("bytes left after the item")
    return value
