"""Checks of single request values, and the limits the local platform enforces.

The real platform's request validators (trafaret) fix the types and the minimums
(``cpu`` >= 0.1, ``memory`` >= 16 MiB, ports 0-65535, tags of at most 256
non-blank characters, names of at most 40); the local platform adds upper bounds
on every size, so that no request can hold the daemon's event loop: each 400
names the limit it hit. The body itself is at most 1 MiB (aiohttp's default).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class BadRequest(ValueError):
    """A job request the platform refuses; the message is shown to the user."""


KiB = 1024
MAX_COMMAND = 64 * KiB  # characters, each of command and entrypoint
MAX_IMAGE = 512  # characters (Docker: 255 for the name, 128 for the tag)
MAX_ENV = 1000  # variables
MAX_ENV_VALUE = 64 * KiB  # characters
MAX_VOLUMES = 100
MAX_PATH = 4096  # characters of a path or a storage URI (PATH_MAX)
MAX_TAGS = 100
MAX_TAG = 256  # characters, as on the real platform
MAX_TEXT = 4096  # characters of a description, a preset or a cluster name
MIN_CPU = 0.1  # cores, as on the real platform
MIN_MEMORY = 16 * 2**20  # bytes, as on the real platform
MAX_MEMORY = 2**62
MAX_CPU = 1e6
MAX_LIFE_SPAN = 10**7  # minutes (19 years)


def no_nul(value: str, what: str) -> str:
    if "\0" in value:
        raise BadRequest(f"{what} contains a NUL character; remove it")
    return value


def text(
    body: Mapping[str, Any], key: str, limit: int = MAX_TEXT, what: str = ""
) -> str | None:
    """An optional string of at most ``limit`` characters."""
    value = body.get(key)
    if value is None:
        return None
    return string(value, what or key, limit)


def string(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise BadRequest(
            f"{what} is {len(value)} characters long; the limit is {limit}"
        )
    return value


def flag(body: Mapping[str, Any], key: str, default: bool, what: str = "") -> bool:
    """An optional JSON boolean (``"false"`` is not one)."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(
            f"{what or key} must be true or false, got {type(value).__name__}"
        )
    return value


def whole(value: Any, what: str, low: int, high: int) -> int:
    """A JSON integer in ``[low, high]`` (not a boolean, not a float)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{what} must be a whole number, got {type(value).__name__}")
    if not low <= value <= high:
        shown = str(value) if value.bit_length() < 64 else "a larger number"
        raise BadRequest(f"{what} must be between {low} and {high}, got {shown}")
    return value


def number(value: Any, what: str, low: float, high: float) -> float:
    """A finite JSON number in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{what} must be a number, got {type(value).__name__}")
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result) or not low <= result <= high:
        raise BadRequest(
            f"{what} must be between {_shown(low)} and {_shown(high)}, "
            f"got {_shown(result)}"
        )
    return result


def _shown(x: float) -> str:
    """A bound as typed: whole numbers in full (2591999, not 2.592e+06)."""
    return (
        str(int(x)) if math.isfinite(x) and x == int(x) and abs(x) < 1e15 else f"{x:g}"
    )


def mapping(value: Any, what: str, example: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be an object, e.g. {example}")
    return value
