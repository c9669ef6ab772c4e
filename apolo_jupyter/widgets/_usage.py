"""A running job's recent resource use, as its status view shows it: no widgets.

The bridge adds each ``client.jobs.top`` sample to a ``UsageLog``; snapshots carry a
frozen ``Usage`` (the last ``WINDOW`` samples, how many came in all, the peaks). The
live view draws the window as a sparkline with the current figures beside it; the
saved forms say the figures in words (``figures``), since a sparkline of a job that
has ended would say nothing a reader can use.

``spark_state`` is what the browser gets: the window as short numeric rows. The view
sends a new browser only that whole window, and one already showing it only the rows
that are new (``spark_delta``), so an update costs a sample, not the history.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from ..client._stream_models import JobTelemetry

WINDOW = 60  # samples drawn: a minute at the platform's one a second


@dataclass(frozen=True)
class Usage:
    """The samples taken while a view followed its job, as of a snapshot."""

    samples: tuple[JobTelemetry, ...] = ()  # the last WINDOW, oldest first
    count: int = 0  # samples taken in all (numbers them for the browser)
    peak: JobTelemetry | None = None  # the highest of each figure so far

    @property
    def last(self) -> JobTelemetry | None:
        return self.samples[-1] if self.samples else None


NO_USAGE = Usage()


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


class UsageLog:
    """Samples as they come: a bounded window and running peaks."""

    def __init__(self, window: int = WINDOW) -> None:
        self._samples: deque[JobTelemetry] = deque(maxlen=window)
        self._count = 0
        self._peak: JobTelemetry | None = None

    def add(self, sample: JobTelemetry) -> None:
        self._samples.append(sample)
        self._count += 1
        peak = self._peak
        if peak is None:
            self._peak = sample
            return
        self._peak = JobTelemetry(
            cpu=max(peak.cpu, sample.cpu),
            memory_bytes=max(peak.memory_bytes, sample.memory_bytes),
            timestamp=sample.timestamp,
            gpu_duty_cycle=_max(peak.gpu_duty_cycle, sample.gpu_duty_cycle),
            gpu_memory_bytes=_max(peak.gpu_memory_bytes, sample.gpu_memory_bytes),
        )

    def freeze(self) -> Usage:
        if not self._count:
            return NO_USAGE
        return Usage(tuple(self._samples), self._count, self._peak)


def size(n: int) -> str:
    """Bytes as people read them: ``212 MB``, ``3.1 GB`` (powers of 1000)."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n} B"


def figures(sample: JobTelemetry) -> str:
    """``CPU 0.93 · 212 MB``, and ``· GPU 45% · 3.1 GB`` when the sample has a GPU."""
    text = f"CPU {sample.cpu:.2f} · {size(sample.memory_bytes)}"
    if sample.gpu_duty_cycle is not None:
        text += f" · GPU {sample.gpu_duty_cycle}%"
    if sample.gpu_memory_bytes is not None:
        text += f" · {size(sample.gpu_memory_bytes)}"
    return text


def usage_text(usage: Usage, *, finished: bool) -> str:
    """The saved forms' words: the current figures while the job runs, the peaks
    once it has ended; "" without samples (no top on this platform, say)."""
    last, peak = usage.last, usage.peak
    if last is None or peak is None:
        return ""
    plural = "s" if usage.count != 1 else ""
    if finished:
        return f"peak {figures(peak)} ({usage.count} sample{plural})"
    return f"{figures(last)} (peak {figures(peak)})"


def _row(s: JobTelemetry) -> list[Any]:
    return [round(s.cpu, 3), s.memory_bytes, s.gpu_duty_cycle, s.gpu_memory_bytes]


def spark_state(usage: Usage) -> dict[str, Any]:
    """The window for the browser: ``seq`` numbers the last row, each row is
    ``[cpu cores, memory bytes, gpu % | None, gpu memory bytes | None]``; ``{}``
    when there is nothing to draw."""
    if not usage.samples:
        return {}
    return {
        "seq": usage.count,
        "window": WINDOW,
        "rows": [_row(s) for s in usage.samples],
    }


def spark_delta(state: dict[str, Any], since: int) -> dict[str, Any]:
    """``state`` with only the rows after ``since`` (the ``seq`` a browser has)."""
    if not state:
        return {}
    fresh = state["seq"] - since
    if fresh <= 0:
        return {**state, "rows": []}
    return {**state, "rows": state["rows"][-fresh:]}
