"""``TelemetryChart``: a running job's CPU, memory (and GPU) over time.

An anywidget view: the Python side keeps the last ``window`` samples in one
synced trait; the ES module (``static/telemetry.js``) draws them as SVG lines
styled with JupyterLab's theme variables only. It is fed ``JobTelemetry``
samples through ``add`` and told the end through ``end``, from one thread.
``line`` renders a sample as one line of text, for terminals and headless runs;
``text/plain`` and ``text/html`` fallbacks summarise the chart.
"""

from __future__ import annotations

import html
import time
from typing import Any

import anywidget
import traitlets as t

from ..client._stream_models import JobTelemetry
from ._static import asset, live_metadata

WINDOW = 300  # samples kept: five minutes at one a second


def line(job_id: str, sample: JobTelemetry) -> str:
    """One sample as a line of text."""
    when = time.strftime("%H:%M:%S", time.localtime(sample.timestamp))
    text = f"{when} {job_id} cpu {sample.cpu:5.2f}  mem {sample.memory:8.1f} MiB"
    if sample.gpu_duty_cycle is not None:
        text += f"  gpu {sample.gpu_duty_cycle:3d}%"
    if sample.gpu_memory is not None:
        text += f"  gpu mem {sample.gpu_memory:8.1f} MiB"
    return text


class TelemetryChart(anywidget.AnyWidget):
    _esm = asset("common.js", "telemetry.js")
    _css = asset("telemetry.css")

    job_id = t.Unicode("").tag(sync=True)
    # [timestamp, cpu cores, memory bytes, gpu duty % | None, gpu memory | None]
    points: t.List[list[Any]] = t.List().tag(sync=True)
    state = t.Unicode("waiting for the first sample").tag(sync=True)
    window = t.Int(WINDOW).tag(sync=True)

    def __init__(self, job_id: str, window: int = WINDOW, **kwargs: Any) -> None:
        super().__init__(job_id=job_id, window=window, **kwargs)
        self._last: JobTelemetry | None = None
        self._count = 0

    def add(self, sample: JobTelemetry) -> None:
        """Append a sample (the oldest go beyond ``window``)."""
        point = [
            sample.timestamp,
            sample.cpu,
            sample.memory_bytes,
            sample.gpu_duty_cycle,
            sample.gpu_memory_bytes,
        ]
        self.points = [*self.points[-(self.window - 1) :], point]
        self._last = sample
        self._count += 1
        self.state = "live"

    def end(self, reason: str) -> None:
        """No more samples will come (the job stopped, or top was left)."""
        self.state = reason

    @property
    def samples(self) -> int:
        return self._count

    def summary(self) -> str:
        if self._last is None:
            return f"top {self.job_id}: no samples ({self.state})"
        return (
            f"top {self.job_id}: {self._count} samples ({self.state}); last: "
            + line(self.job_id, self._last).split(" ", 2)[2]
        )

    def __repr__(self) -> str:  # the text/plain fallback (terminal, nbval)
        return self.summary()

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        bundle = super()._repr_mimebundle_(**kwargs)
        assert bundle is not None
        data, metadata = bundle
        data["text/html"] = f"<pre>{html.escape(self.summary())}</pre>"
        return data, {**metadata, **live_metadata()}
