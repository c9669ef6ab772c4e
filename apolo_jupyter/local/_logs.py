"""Job logs: a time index beside each log file, and the ``log_ws`` route.

Jobs write stdout/stderr straight into ``jobs/<id>/log`` (no daemon in the data
path, so a noisy job costs the platform nothing). While a job runs, the platform
samples the file size every ``INDEX_PERIOD`` seconds into ``log.idx`` (``time
offset`` lines); ``since=`` and ``timestamps=true`` are answered from that index, to
within one period.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from aiohttp import WSMsgType, web

INDEX_PERIOD = 0.1
CHUNK = 1 << 20  # bytes per frame; the SDK accepts up to 4 MiB
POLL_MIN, POLL_MAX = 0.01, 0.2


log = logging.getLogger(__name__)
_REPORTED: set[str] = set()


def _entry(line: bytes) -> tuple[float, int] | None:
    """``(time, offset)`` of one index line, None if it is not one."""
    fields = line.split(b" ")
    if len(fields) != 2:
        return None
    try:
        when, offset = float(fields[0]), int(fields[1])
    except ValueError:
        return None
    if not math.isfinite(when) or offset < 0:
        return None
    return when, offset


def index_path(log_path: Path) -> Path:
    return log_path.with_name(log_path.name + ".idx")


class LogIndex:
    """(time, offset) checkpoints: bytes before ``offset`` existed at ``time``.

    A damaged index (garbage, lines out of order, a crash mid-line) never hides
    the log: the entries that still make sense are kept, and the log file itself
    gives the last one (its size at its modification time), so ``since=`` and
    timestamps stay approximately right and the whole output is still sent. The
    damage is logged once per file.
    """

    def __init__(self, log_path: Path) -> None:
        self._path = index_path(log_path)
        self.times: list[float] = []
        self.offsets: list[int] = []
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return
        lines = data.split(b"\n")
        damaged = False
        for number, line in enumerate(lines):
            entry = _entry(line)
            if entry is None or (
                self.times
                and (entry[0] < self.times[-1] or entry[1] < self.offsets[-1])
            ):
                # An unfinished last line is a crash mid-write, not damage.
                damaged = damaged or (bool(line) and number < len(lines) - 1)
                continue
            self.times.append(entry[0])
            self.offsets.append(entry[1])
        if damaged:
            self._rebuild(log_path)

    def _rebuild(self, log_path: Path) -> None:
        try:
            st = log_path.stat()
        except OSError:
            return
        if not self.offsets or st.st_size > self.offsets[-1]:
            self.times.append(max(st.st_mtime, self.times[-1] if self.times else 0))
            self.offsets.append(st.st_size)
        if str(self._path) not in _REPORTED:
            _REPORTED.add(str(self._path))
            log.warning(
                "%s is damaged: its intact entries and the log's size and time are "
                "used instead (since= and timestamps are approximate for this job)",
                self._path,
            )

    def offset_since(self, since: float) -> int:
        """Where output written at or after ``since`` starts (to one period)."""
        i = bisect.bisect_right(self.times, since) - 1
        return self.offsets[i] if i >= 0 else 0

    def time_of(self, offset: int) -> float | None:
        """When the byte at ``offset`` was seen first (None: not indexed yet)."""
        i = bisect.bisect_right(self.offsets, offset)
        return self.times[i] if i < len(self.times) else None


async def index_log(log_path: Path, done: asyncio.Event) -> None:
    """Record the log's growth until ``done`` is set (then one last entry)."""
    last = -1
    with open(index_path(log_path), "a") as out:
        while True:
            finished = done.is_set()
            try:
                size = log_path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size != last:
                out.write(f"{datetime.now(UTC).timestamp():.6f} {size}\n")
                out.flush()
                last = size
            if finished:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), INDEX_PERIOD)


def _stamp(when: float | None) -> bytes:
    moment = datetime.fromtimestamp(when, UTC) if when else datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ ").encode()


class _Stamper:
    """Prefixes each line with the time it was written (``timestamps=true``)."""

    def __init__(self, index: LogIndex, offset: int) -> None:
        self._index = index
        self._offset = offset
        self._at_line_start = True

    def __call__(self, chunk: bytes) -> bytes:
        out = bytearray()
        start = 0
        while start < len(chunk):
            if self._at_line_start:
                out += _stamp(self._index.time_of(self._offset + start))
            end = chunk.find(b"\n", start)
            stop = len(chunk) if end < 0 else end + 1
            out += chunk[start:stop]
            self._at_line_start = end >= 0
            start = stop
        self._offset += len(chunk)
        return bytes(out)


def parse_since(text: str | None) -> float | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"since={text!r} is not an ISO-8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _seek_line(fh: BinaryIO, offset: int) -> int:
    """Start at ``offset`` or, if that is mid-line, at the next line."""
    if offset <= 0:
        return 0
    fh.seek(offset - 1)
    if fh.read(1) == b"\n":
        return offset
    rest = fh.readline()
    return offset + len(rest) - 1


async def follow(
    ws: web.WebSocketResponse,
    log_path: Path,
    is_finished: asyncio.Event,
    changed: asyncio.Event,
    since: float | None,
    timestamps: bool,
) -> None:
    """Send the log from ``since``; follow it until the job finished and all is sent."""
    while not log_path.exists():  # pending: nothing written yet
        if is_finished.is_set():
            return
        changed.clear()
        await _wait(changed, POLL_MAX)
    index = LogIndex(log_path)
    with open(log_path, "rb") as fh:
        offset = _seek_line(fh, index.offset_since(since)) if since else 0
        fh.seek(offset)
        stamper = _Stamper(index, offset) if timestamps else None
        delay = POLL_MIN
        while not ws.closed:
            finished = is_finished.is_set()
            chunk = fh.read(CHUNK)
            if chunk:
                if stamper is not None:
                    index = stamper._index = LogIndex(log_path)
                    chunk = stamper(chunk)
                await ws.send_bytes(chunk)
                delay = POLL_MIN
                continue
            if finished:
                return
            changed.clear()
            await _wait(changed, delay)
            delay = min(delay * 2, POLL_MAX)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


async def drain(ws: web.WebSocketResponse) -> None:
    """Keep reading so PING/PONG and CLOSE are handled."""
    async for msg in ws:
        if msg.type == WSMsgType.ERROR:
            break


def finished_body(body: str) -> bool:
    return json.loads(body)["status"] in ("succeeded", "failed", "cancelled")
