"""A storage transfer's progress: counted from the client's events, told as a line.

``Tracker`` is the progress object a transfer reports to (on the runtime's loop);
``snapshot()`` may be read from any thread. ``TransferSnapshot.line()`` says it as
tqdm does (``desc: 45%|█████     | 90.0/200 MB [00:01<00:02, 75.3 MB/s]``), for a
terminal and for the text of the notebook view. No Jupyter imports: the CLI uses
it too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ..client import (
    AbstractRecursiveFileProgress,
    StorageProgressComplete,
    StorageProgressEnterDir,
    StorageProgressFail,
    StorageProgressLeaveDir,
    StorageProgressStart,
    StorageProgressStep,
)

RUNNING, DONE, FAILED, INTERRUPTED = "running", "done", "failed", "interrupted"
BAR = 20


def format_size(count: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


def format_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


@dataclass(frozen=True)
class TransferSnapshot:
    description: str
    done: int  # bytes
    total: int  # bytes known so far (a hint, or what the started files add up to)
    files_done: int
    files_total: int
    elapsed: float
    state: str = RUNNING
    failures: tuple[str, ...] = ()
    unchanged: int = 0  # files skipped by update or continue (known once done)

    @property
    def fraction(self) -> float:
        if self.total <= 0:
            return 1.0 if self.state == DONE else 0.0
        return min(1.0, self.done / self.total)

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        rate = self.rate
        if rate <= 0 or self.state != RUNNING:
            return None
        return max(0.0, (self.total - self.done) / rate)

    def stats(self) -> str:
        """What follows the bar: sizes, files, times, rate."""
        several = self.files_total > 1 or self.unchanged
        files = f", {self.files_done}/{self.files_total} files" if several else ""
        if self.unchanged:
            files += f" ({self.unchanged} up to date)"
        eta = self.eta
        times = format_time(self.elapsed) + (
            f"<{format_time(eta)}" if eta is not None else ""
        )
        return (
            f"{format_size(self.done)}/{format_size(self.total)}{files} "
            f"[{times}, {format_size(self.rate)}/s]"
        )

    def line(self) -> str:
        """One line, as tqdm prints it in a terminal."""
        filled = round(self.fraction * BAR)
        bar = "█" * filled + " " * (BAR - filled)
        state = "" if self.state in (RUNNING, DONE) else f" {self.state}"
        return (
            f"{self.description}: {self.fraction * 100:3.0f}%|{bar}| "
            f"{self.stats()}{state}"
        )


class Tracker(AbstractRecursiveFileProgress):
    """The progress object of one transfer (``AbstractRecursiveFileProgress``)."""

    def __init__(
        self, description: str, total_bytes: int = 0, total_files: int = 0
    ) -> None:
        self.description = description
        self._lock = threading.Lock()
        self._hint_bytes = total_bytes
        self._hint_files = total_files
        self._started = time.monotonic()
        self._ended: float | None = None
        self._state = RUNNING
        self._current: dict[str, int] = {}  # file -> bytes done, while in flight
        self._sizes: dict[str, int] = {}  # file -> size, every file started
        self._finished_bytes = 0
        self._files_done = 0
        self._failures: list[str] = []

    # -- the transfer's events (runtime loop) -----------------------------------

    def start(self, data: StorageProgressStart) -> None:
        with self._lock:
            self._sizes[str(data.src)] = data.size
            self._current[str(data.src)] = 0

    def step(self, data: StorageProgressStep) -> None:
        with self._lock:
            self._current[str(data.src)] = data.current

    def complete(self, data: StorageProgressComplete) -> None:
        with self._lock:
            self._current.pop(str(data.src), None)
            self._finished_bytes += data.size
            self._files_done += 1

    def enter(self, data: StorageProgressEnterDir) -> None:
        pass

    def leave(self, data: StorageProgressLeaveDir) -> None:
        pass

    def fail(self, data: StorageProgressFail) -> None:
        with self._lock:
            self._failures.append(data.message)

    # -- the caller ---------------------------------------------------------------

    def end(self, state: str) -> None:
        with self._lock:
            self._state = state
            self._ended = time.monotonic()

    def snapshot(self) -> TransferSnapshot:
        with self._lock:
            done = self._finished_bytes + sum(self._current.values())
            started_bytes = sum(self._sizes.values())
            end = self._ended if self._ended is not None else time.monotonic()
            total = max(self._hint_bytes, started_bytes, done)
            files_total = max(self._hint_files, len(self._sizes))
            unchanged = 0
            if self._state == DONE:  # what was not sent was up to date
                total, files_total = done, len(self._sizes)
                unchanged = max(0, self._hint_files - files_total)
            return TransferSnapshot(
                description=self.description,
                done=done,
                total=total,
                files_done=self._files_done,
                files_total=files_total,
                elapsed=end - self._started,
                state=self._state,
                failures=tuple(self._failures),
                unchanged=unchanged,
            )
