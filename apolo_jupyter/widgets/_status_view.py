"""``JobStatusView``: a job's live status, elapsed time, resource sparkline, tqdm
bars, output and Kill.

A thin anywidget view with no I/O and no threads: the bridge hands it frozen
``StatusSnapshot`` values through ``show``, from one thread. The browser side
(``static/status.js``) ticks the clock, follows the log's tail and sends Kill to
the Jupyter server's kill route, so Kill works while a cell waits; where no
server route is available it reports the click here, through ``on_kill``.

While the job runs, the view draws its last minute of CPU and memory (and GPU) as a
sparkline beside the status, from the snapshot's ``usage``. Each update carries
only the new samples; a browser that opens the view gets the whole window (see
``get_state``), and the browser keeps the window whole (``static/status.js``).

``bundle()`` is what a notebook saves: the live widget plus ``text/plain`` and
``text/html`` of the same snapshot, or, once the job has finished, only those
two, so a saved, exported or reopened notebook shows the outcome without the
widget's state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import traitlets as t

from ..client import JobStatus
from ._static import WIDGET_MIME, asset, live_metadata, widget_view
from ._status_html import bars_html, head_html, status_html, status_text
from ._status_model import StatusSnapshot, empty_snapshot
from ._status_text import status_line
from ._usage import spark_delta, spark_state

__all__ = ["JobStatusView", "status_line"]


def _log_state(s: StatusSnapshot) -> dict[str, Any]:
    tail = s.tail
    return {
        "first": tail.first,
        "lines": list(tail.lines),
        "total": tail.total,
        "hint": s.hint,
    }


def log_state_size(state: dict[str, Any]) -> int:
    """About how many bytes a log state costs on the wire."""
    return sum(len(line) + 4 for line in state["lines"]) + 64


class JobStatusView(anywidget.AnyWidget):
    """The live status of one job, fed by snapshots; see the module docstring."""

    _esm = asset("common.js", "status.js")
    _css = asset("common.css", "status.css")
    head = t.Unicode("").tag(sync=True)
    bars = t.Unicode("").tag(sync=True)
    log = t.Dict().tag(sync=True)
    ui = t.Dict().tag(sync=True)
    spark = t.Dict().tag(sync=True)  # _usage.spark_state; {} when not drawn

    def __init__(self, *, on_kill: Callable[[], None] | None = None) -> None:
        self._spark_seq = 0  # the samples the browser has, before this update
        super().__init__()
        self._on_kill = on_kill
        self._snapshot = empty_snapshot()
        self.on_msg(self._on_custom_msg)
        self.show(self._snapshot)

    # -- the one input ----------------------------------------------------------------

    def show(self, snapshot: StatusSnapshot) -> None:
        """Show a snapshot (called from one thread: the bridge's)."""
        self._snapshot = snapshot
        ui = {
            "can_kill": snapshot.can_kill,
            "killing": snapshot.killing,
            "kill_path": snapshot.kill_path,
            "finished": snapshot.finished,
            "running": snapshot.running,
            "now_ms": snapshot.now.timestamp() * 1000,
        }
        # The sparkline is for a running job only; an ended one says its peaks
        # in words (the saved forms).
        spark = spark_state(snapshot.usage) if snapshot.running else {}
        with self.hold_sync():
            self._spark_seq = self.spark.get("seq", 0)
            self.head = head_html(snapshot)
            self.bars = bars_html(snapshot.bars)
            self.log = _log_state(snapshot)
            self.ui = ui
            self.spark = spark

    def get_state(
        self, key: str | list[str] | set[str] | None = None, drop_defaults: bool = False
    ) -> dict[str, Any]:
        """ipywidgets asks for the whole state (``key`` None) when a browser opens
        the view and for the changed traits on an update: an update of ``spark``
        carries only the samples the browser does not have yet."""
        state: dict[str, Any] = super().get_state(key, drop_defaults)
        if key is not None and "spark" in state:
            state["spark"] = spark_delta(self.spark, self._spark_seq)
        return state

    # -- user actions -----------------------------------------------------------------

    def _on_custom_msg(self, _: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "kill":
            self.click_kill()

    def click_kill(self) -> None:
        """What a Kill click does where the server route is not used."""
        if self._on_kill is not None and self._snapshot.can_kill:
            self._on_kill()

    # -- read-only state --------------------------------------------------------------

    @property
    def snapshot(self) -> StatusSnapshot:
        return self._snapshot

    @property
    def status(self) -> JobStatus | None:
        return self._snapshot.status

    @property
    def exit_code(self) -> int | None:
        return self._snapshot.exit_code

    @property
    def log_text(self) -> str:
        return "\n".join(self._snapshot.tail.lines)

    # -- what a notebook saves --------------------------------------------------------

    def bundle(self, *, live: bool = True) -> dict[str, Any]:
        """The mimebundle: the widget (if ``live``) plus text and HTML fallbacks.
        A live one goes out with ``_static.live_metadata()``, so that a notebook
        reopened after this kernel has gone shows the fallbacks."""
        data: dict[str, Any] = {
            "text/plain": status_text(self._snapshot),
            "text/html": status_html(self._snapshot),
        }
        if live:
            data[WIDGET_MIME] = widget_view(self.model_id)
        return data

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[Any, Any], dict[Any, Any]]:
        live = not self._snapshot.finished
        return self.bundle(live=live), live_metadata() if live else {}

    def __repr__(self) -> str:
        job = self._snapshot.job
        if job is None:
            return "JobStatusView(no job yet)"
        code = self._snapshot.exit_code
        suffix = f", exit code {code}" if code is not None else ""
        return f"JobStatusView({job.id}: {job.status.value}{suffix})"
