"""The wire of the streams inside a running job: exec, attach and top
(reference §4.3-4.5), for the client and the local platform alike."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._stream_models import JobTelemetry

ATTACH_PROTOCOL = "v2.channels.neu.ro"
# The first byte of every exec/attach frame (Kubernetes channel.k8s.io style).
STDIN, STDOUT, STDERR, EXIT, RESIZE = 0, 1, 2, 3, 4
STREAM_FLAGS = ("tty", "stdin", "stdout", "stderr")


def stream_query(
    *, tty: bool, stdin: bool, stdout: bool, stderr: bool, cmd: str | None = None
) -> dict[str, str]:
    """The query of ``exec`` (with ``cmd``) and ``attach``, in the SDK's order."""
    query = {} if cmd is None else {"cmd": cmd}
    flags = (tty, stdin, stdout, stderr)
    query.update(
        {name: str(int(on)) for name, on in zip(STREAM_FLAGS, flags, strict=True)}
    )
    return query


def resize_frame(height: int, width: int) -> bytes:
    return bytes([RESIZE]) + f'{{"height":{height},"width":{width}}}'.encode()


def resize_from_api(payload: bytes) -> tuple[int, int]:
    """(height, width) of a resize frame's payload; ValueError if malformed."""
    data = json.loads(payload)
    return int(data["height"]), int(data["width"])


def exit_frame(exit_code: int, message: str | None = None) -> bytes:
    body: dict[str, Any] = {"exit_code": exit_code}
    if message:
        body["message"] = message
    return bytes([EXIT]) + json.dumps(body).encode()


def exit_from_api(payload: bytes) -> tuple[int, str | None]:
    """(exit code, message) of the exit channel; exit code 1 if unreadable,
    as the SDK does."""
    try:
        data = json.loads(payload)
        return int(data["exit_code"]), data.get("message")
    except (ValueError, KeyError, TypeError):
        return 1, payload.decode(errors="replace") or None


def telemetry_to_api(sample: JobTelemetry) -> dict[str, Any]:
    """A ``top`` frame as the real platform sends it (sizes also in MiB)."""
    data: dict[str, Any] = {
        "cpu": sample.cpu,
        "memory": sample.memory_bytes // 2**20,
        "memory_bytes": sample.memory_bytes,
        "timestamp": sample.timestamp,
    }
    if sample.gpu_duty_cycle is not None:
        data["gpu_duty_cycle"] = sample.gpu_duty_cycle
    if sample.gpu_memory_bytes is not None:
        data["gpu_memory"] = sample.gpu_memory_bytes // 2**20
        data["gpu_memory_bytes"] = sample.gpu_memory_bytes
    return data


def telemetry_from_api(data: Mapping[str, Any]) -> JobTelemetry:
    return JobTelemetry(
        cpu=float(data["cpu"]),
        memory_bytes=int(data["memory_bytes"]),
        timestamp=float(data["timestamp"]),
        gpu_duty_cycle=data.get("gpu_duty_cycle"),
        gpu_memory_bytes=data.get("gpu_memory_bytes"),
    )
