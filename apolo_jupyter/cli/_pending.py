"""A sign of life while ``apolo-jupyter run`` waits for its job to start.

A job can wait in ``pending`` for minutes (for room on a small machine, for a
cluster to scale up). Each change of the platform's reason is a status
transition, printed as a line of its own by the caller (in full: it names the
jobs holding the room and the command that frees it). Between changes:

- on a terminal, one line under it is rewritten in place every second
  (``pending for 12s: waiting for room (CPU): needs... - Ctrl-C kills the job``),
  fitted to the terminal's width, and erased before anything else is printed, so
  the next status line starts clean;
- elsewhere (a pipe, a CI log), nothing: a log gets a line when the reason
  changes, never a carriage return.
"""

from __future__ import annotations

import shutil
import time
from typing import TextIO

from ..client import JobDescription, JobStatus

TICK = 1.0


def fit(head: str, why: str, tail: str, width: int) -> str:
    """``head: why tail`` in at most ``width`` characters, ``why`` cut first."""
    room = width - len(head) - len(tail)
    if why and room > len(": ..."):
        text = f": {why}"
        if len(text) > room:
            text = text[: room - 3] + "..."
        return head + text + tail
    return (head + tail)[:width]


class PendingTicker:
    """Feed it each status snapshot (``update``); wait for the next event at most
    ``wait()`` seconds, and call ``tick()`` when none came; ``clear()`` before
    printing anything else."""

    def __init__(self, stream: TextIO, hint: str = "Ctrl-C kills the job") -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._hint = hint
        self._since = time.monotonic()
        self._pending = True
        self._why = ""
        self._drawn = 0  # width of the line on screen

    def update(self, job: JobDescription) -> None:
        self._pending = job.status == JobStatus.PENDING
        self._why = job.history.description or job.history.reason

    def wait(self) -> float | None:
        """How long to wait for the next event before a tick (None: no ticks)."""
        return TICK if self._tty and self._pending else None

    def tick(self) -> None:
        if not (self._tty and self._pending):
            return
        seconds = round(time.monotonic() - self._since)
        width = shutil.get_terminal_size().columns - 1
        text = fit(f"pending for {seconds}s", self._why, f" - {self._hint}", width)
        self._stream.write("\r" + text + " " * max(0, self._drawn - len(text)))
        self._stream.flush()
        self._drawn = len(text)

    def clear(self) -> None:
        """Erase the ticking line, so that what is printed next starts a line."""
        if self._drawn:
            self._stream.write("\r" + " " * self._drawn + "\r")
            self._stream.flush()
            self._drawn = 0
