"""``JobsPanelView``: a table of jobs, one row per job, updated row by row.

An anywidget view fed by ``update(job)``: each pushed ``JobDescription`` becomes
one frozen row, and the browser (``static/panel.js``) updates that row in place,
keyed by job id; ages tick there. Kill posts to the Jupyter server's kill route
(``kill_base``), so it works while a cell runs; without one the click comes back
here through ``on_kill``. ``text/plain`` and ``text/html`` say the same as the
table, as of the moment they were made.

Rows are newest first, at most ``limit`` of them; a line under the table says
how many more there are and where to see them all (``%apolo_ps``).
"""

from __future__ import annotations

import concurrent.futures
import html
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import anywidget
import traitlets as t

from ..client import JobDescription
from ._static import WIDGET_MIME, asset, live_metadata, style, widget_view
from ._status_html import badge
from ._status_text import age, epoch_ms, reason_text

LIMIT = 20  # rows shown; the rest are counted under the table

EMPTY = {
    False: "No running or pending jobs. Start one with %apolo_run IMAGE -- COMMAND "
    "or JobLauncher(); JobsPanel(all_jobs=True) also lists finished ones.",
    True: "No jobs yet. Start one with %apolo_run IMAGE -- COMMAND or JobLauncher().",
}


# (key, header) of the table's columns; the browser's are the same (panel.js).
COLUMNS = (
    ("id", "ID"),
    ("name", "Name"),
    ("status", "Status"),
    ("image", "Image"),
    ("preset", "Preset"),
    ("age", "Age"),
    ("act", ""),
)


def short_id(job_id: str) -> str:
    """``job-0b0b1c52…``: enough to tell jobs apart; the full id is one click away."""
    head = job_id[:12]
    return head + "…" if len(job_id) > 12 else head


@dataclass(frozen=True)
class Row:
    id: str
    short: str
    name: str
    status: str
    reason: str
    image: str
    command: str
    preset: str
    created_ms: float | None
    live: bool

    @classmethod
    def of(cls, job: JobDescription) -> Row:
        container = job.container
        return cls(
            id=job.id,
            short=short_id(job.id),
            name=job.name or "",
            status=job.status.value,
            reason=reason_text(job),
            image=str(container.image),
            command=" ".join(p for p in (container.entrypoint, container.command) if p),
            preset=job.preset_name or "",
            created_ms=epoch_ms(job.history.created_at),
            live=not job.status.is_finished,
        )


def more_text(hidden: int, all_jobs: bool) -> str:
    """The line under a table that shows only the newest rows."""
    if not hidden:
        return ""
    where = "%apolo_ps --all" if all_jobs else "%apolo_ps"
    return f"{hidden} more — {where} lists them all"


class JobsPanelView(anywidget.AnyWidget):
    """Rows are added or updated one at a time from pushed snapshots."""

    _esm = asset("common.js", "panel.js")
    _css = asset("common.css", "status.css", "panel.css")
    rows = t.List(t.Dict()).tag(sync=True)
    kill_base = t.Unicode("").tag(sync=True)
    now_ms = t.Float(0.0).tag(sync=True)
    empty_text = t.Unicode("").tag(sync=True)
    more = t.Unicode("").tag(sync=True)  # "N more — %apolo_ps …", or ""

    def __init__(
        self,
        on_kill: Callable[[str], None],
        *,
        all_jobs: bool = False,
        kill_base: str = "",
        limit: int = LIMIT,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit={limit!r}: show at least 1 row, e.g. limit=20")
        super().__init__(kill_base=kill_base, empty_text=EMPTY[all_jobs])
        self._on_kill = on_kill
        self._all_jobs = all_jobs
        self._limit = limit
        # The background task that keeps the panel current (cancel to stop it).
        self.follower: concurrent.futures.Future[None] | None = None
        self._rows: dict[str, Row] = {}
        self.on_msg(self._on_custom_msg)

    def update(self, job: JobDescription) -> None:
        """Show a job's latest snapshot in its row (a new row for a new job)."""
        row = Row.of(job)
        if self._rows.get(job.id) == row:
            return
        self._rows[job.id] = row
        shown = self.shown_rows
        with self.hold_sync():
            self.now_ms = datetime.now(UTC).timestamp() * 1000
            self.rows = [asdict(r) for r in shown]
            self.more = more_text(len(self._rows) - len(shown), self._all_jobs)

    @property
    def shown_rows(self) -> tuple[Row, ...]:
        """The newest ``limit`` rows, newest first."""
        newest = sorted(
            self._rows.values(), key=lambda r: r.created_ms or 0.0, reverse=True
        )
        return tuple(newest[: self._limit])

    def _on_custom_msg(self, _: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "kill":
            job_id = content.get("job_id")
            if isinstance(job_id, str) and job_id in self._rows:
                self.click_kill(job_id)

    def click_kill(self, job_id: str) -> None:
        """What a row's Kill does where the server route is not used."""
        if self._rows[job_id].live:
            self._on_kill(job_id)

    def status_of(self, job_id: str) -> str | None:
        row = self._rows.get(job_id)
        return row.status if row else None

    @property
    def job_rows(self) -> tuple[Row, ...]:
        return tuple(self._rows.values())

    # -- what a notebook saves --------------------------------------------------------

    def _table_text(self) -> str:
        if not self._rows:
            return self.empty_text
        now = datetime.now(UTC).timestamp()
        table = [("ID", "NAME", "STATUS", "IMAGE", "PRESET", "AGE")]
        for r in self.shown_rows:
            when = age(now - r.created_ms / 1000) if r.created_ms else "-"
            table.append((r.id, r.name, r.status, r.image, r.preset, when))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in table
        ]
        if self.more:
            lines.append(self.more)
        return "\n".join(lines)

    def _table_html(self) -> str:
        e = html.escape
        now = datetime.now(UTC)
        as_of = f"as of {now:%Y-%m-%d %H:%M:%S} UTC"
        if not self._rows:
            body = f'<div class="apolo-empty">{e(self.empty_text)}</div>'
        else:
            cols = "".join(f'<col class="apolo-c-{c}">' for c, _ in COLUMNS)
            head = "".join(f'<th scope="col">{h}</th>' for _, h in COLUMNS)
            rows = []
            for r in self.shown_rows:
                when = (
                    age(now.timestamp() - r.created_ms / 1000) if r.created_ms else "-"
                )
                rows.append(
                    f'<tr><td><code title="{e(r.id)}">{e(r.id)}</code></td>'
                    f"<td>{e(r.name)}</td><td>{badge(r.status)}</td>"
                    f'<td><code title="{e(r.command)}">{e(r.image)}</code></td>'
                    f'<td>{e(r.preset)}</td><td class="apolo-age">{e(when)}</td><td></td></tr>'
                )
            more = f'<div class="apolo-more">{e(self.more)}</div>' if self.more else ""
            body = (
                f"<table><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>{more}"
            )
        return (
            f'<div class="apolo-w apolo-panel">{style("status.css", "panel.css")}{body}'
            f'<div class="apolo-asof">jobs {e(as_of)}</div></div>'
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[Any, Any], dict[Any, Any]]:
        data = {
            "text/plain": self._table_text(),
            "text/html": self._table_html(),
            WIDGET_MIME: widget_view(self.model_id),
        }
        return data, live_metadata()

    def __repr__(self) -> str:
        rows = ", ".join(f"{r.id}: {r.status}" for r in self._rows.values())
        return f"JobsPanel({rows or 'no jobs'})"
