"""``JobsPanelView``: a table of jobs updated row by row (never re-rendered whole)."""

from __future__ import annotations

import concurrent.futures
import html
from collections.abc import Callable
from datetime import UTC, datetime

import ipywidgets as w

from ..client import JobDescription

_STYLE = {
    "pending": "#1565c0",
    "suspended": "#6a1b9a",
    "running": "#2e7d32",
    "succeeded": "#2e7d32",
    "failed": "#b00020",
    "cancelled": "#ef6c00",
}
_HEAD = ("ID", "NAME", "STATUS", "PRESET", "AGE", "")


def _age(job: JobDescription, now: datetime) -> str:
    created = job.history.created_at
    if created is None:
        return "-"
    seconds = int((now - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


class _Row:
    def __init__(self, job: JobDescription, on_kill: Callable[[str], None]) -> None:
        self.job = job
        self.status = w.HTML()
        self.age = w.HTML()
        self.kill = w.Button(
            description="Kill", button_style="danger", tooltip=f"kill {job.id}"
        )
        self.kill.on_click(lambda _: self._kill(on_kill))
        cells = [
            w.HTML(f"<code>{html.escape(job.id)}</code>"),
            w.HTML(html.escape(job.name or "")),
            self.status,
            w.HTML(html.escape(job.preset_name or "")),
            self.age,
            self.kill,
        ]
        self.box = w.HBox(cells)
        self.update(job, datetime.now(UTC))

    def _kill(self, on_kill: Callable[[str], None]) -> None:
        self.kill.disabled = True
        self.kill.description = "killing…"
        on_kill(self.job.id)

    def update(self, job: JobDescription, now: datetime) -> None:
        self.job = job
        value = job.status.value
        reason = f" · {html.escape(job.reason)}" if job.reason else ""
        self.status.value = (
            f'<b style="color:{_STYLE.get(value, "#333")}">{value}</b>{reason}'
        )
        self.age.value = _age(job, now)
        if job.status.is_finished:
            self.kill.disabled = True
            self.kill.description = "Kill"


class JobsPanelView(w.VBox):
    """Rows are added or updated one at a time from pushed snapshots."""

    def __init__(self, on_kill: Callable[[str], None]) -> None:
        self._on_kill = on_kill
        # The background task that keeps the panel current (cancel to stop it).
        self.follower: concurrent.futures.Future[None] | None = None
        self._rows: dict[str, _Row] = {}
        header = w.HBox([w.HTML(f"<b>{h}</b>") for h in _HEAD])
        self._table = w.VBox()
        self._empty = w.HTML("no jobs")
        super().__init__(children=[header, self._table, self._empty])

    def update(self, job: JobDescription) -> None:
        row = self._rows.get(job.id)
        if row is None:
            row = self._rows[job.id] = _Row(job, self._on_kill)
            self._table.children = (*self._table.children, row.box)
            self._empty.value = ""
        else:
            row.update(job, datetime.now(UTC))

    def status_of(self, job_id: str) -> str | None:
        row = self._rows.get(job_id)
        return row.job.status.value if row else None

    def kill_button(self, job_id: str) -> w.Button:
        return self._rows[job_id].kill

    def __repr__(self) -> str:
        rows = ", ".join(
            f"{r.job.id}: {r.job.status.value}" for r in self._rows.values()
        )
        return f"JobsPanel({rows or 'no jobs'})"
