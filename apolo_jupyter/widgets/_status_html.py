"""A status snapshot as HTML and as text.

``head_html`` and ``bars_html`` are what the live view shows (it adds the Kill
button, the resource sparkline and the log pane in the browser); ``status_html``
and ``status_text`` are the saved forms: what GitHub, nbviewer, nbconvert, a
reopened notebook or a terminal show. They say the resource figures in words in
place of the sparkline. Every value from the job is escaped.

The saved HTML reads well with no CSS at all: an untrusted notebook in
JupyterLab, GitHub and nbviewer drop its ``<style>``. Parts of a row are
separated by real text (``plain`` separators, which the CSS hides where it
applies), the log tail is a ``<pre>``, each tqdm bar is a line, and every state
is said in words beside its colour.
"""

from __future__ import annotations

import html

from ._log_pane import LogTail, Progress
from ._static import style
from ._status_model import StatusSnapshot
from ._status_text import GLYPH, clock, outcome_line, status_line, steps
from ._usage import usage_text

e = html.escape


def plain(text: str) -> str:
    """Text that only a page without our CSS shows: a separator or a space that
    the live view's layout (flex and grid gaps) gives instead."""
    return f'<span class="apolo-plain">{e(text)}</span>'


def badge(status: str) -> str:
    glyph = GLYPH.get(status, "?")
    return (
        f'<span class="apolo-badge apolo-st-{e(status)}">'
        f'<span class="apolo-glyph" aria-hidden="true">{glyph}</span> {e(status)}</span>'
    )


def _steps_html(s: StatusSnapshot) -> str:
    parts = []
    for label, state in steps(s.job):
        if state == "current":
            parts.append(badge(label))
        else:
            parts.append(f'<span class="apolo-step-{state}">{e(label)}</span>')
    sep = '<span class="apolo-sep" aria-hidden="true"> &rsaquo; </span>'
    return f'<span class="apolo-steps">{sep.join(parts)}</span>'


def _clock_html(s: StatusSnapshot) -> str:
    if s.job is None:
        return ""
    c = clock(s.job, s.now)
    data = f'data-kind="{c.kind}"'
    if c.since_ms is not None:
        data += f' data-since="{c.since_ms:.0f}"'
    if c.life_ms is not None:
        data += f' data-life="{c.life_ms:.0f}"'
    return f'<span class="apolo-clock" {data}>{e(c.text)}</span>'


def _meta_html(s: StatusSnapshot) -> str:
    job = s.job
    if job is None:
        return '<div class="apolo-meta">waiting for the platform…</div>'
    parts = [
        f"<code>{e(job.id)}</code>" + (f" <b>{e(job.name)}</b>" if job.name else "")
    ]
    if job.preset_name:
        parts.append(f"preset {e(job.preset_name)}")
    parts.append(f"image <code>{e(str(job.container.image))}</code>")
    if job.price_credits_per_hour:
        parts.append(f"{e(str(job.price_credits_per_hour))} credits/h")
    if job.preemptible_node:
        parts.append("preemptible")
    if job.history.restarts:
        parts.append(f"restarts: {job.history.restarts}")
    return f'<div class="apolo-meta">{" · ".join(parts)}</div>'


def _usage_html(s: StatusSnapshot) -> str:
    text = usage_text(s.usage, finished=s.finished)
    if not text:
        return ""
    title = "sampled about once a second while this view followed the job"
    return f'<span class="apolo-usage" title="{title}">{e(text)}</span>'


def head_html(s: StatusSnapshot, *, saved: bool = False) -> str:
    """The status row, identity, reason, note and error: all but bars and logs.
    ``saved``: with the resource figures in words (the live view draws them)."""
    usage = _usage_html(s) if saved else ""
    parts = [part for part in (_steps_html(s), _clock_html(s), usage) if part]
    row = (
        f'<div class="apolo-head">{plain(" · ").join(parts)}'
        '<span class="apolo-actions"></span></div>'
    )
    out = [row, _meta_html(s)]
    if s.job is not None and (reason := outcome_line(s.job)):
        failed = s.job.status.value == "failed"
        css = "apolo-reason apolo-error" if failed else "apolo-reason"
        out.append(f'<div class="{css}">{e(reason)}</div>')
    if s.note:
        out.append(f'<div class="apolo-note">{e(s.note)}</div>')
    if s.error:
        out.append(f'<div class="apolo-error" role="alert">{e(s.error)}</div>')
    return "".join(out)


def _bar_text(p: Progress) -> str:
    parts = []
    if p.percent is not None:
        parts.append(f"{p.percent:3.0f}%")
    parts.append(f"{p.n}/{p.total}" if p.total else f"{p.n}it")
    parts.append(p.rate)
    if p.remaining:
        parts.append(f"ETA {p.remaining}")
    elif p.percent is None or p.percent >= 100:
        parts.append(p.elapsed)
    postfix = p.postfix.strip(" ,")
    if postfix:
        parts.append(postfix)
    return "  ".join(parts)


def bars_html(bars: tuple[Progress, ...]) -> str:
    """One row per bar (``display: contents`` in the grid; a line without CSS)."""
    if not bars:
        return ""
    rows = []
    for p in bars:
        desc = e(p.description)
        if p.percent is None:
            track = '<span class="apolo-bar-none"></span>'
        else:
            done = " apolo-bar-done" if p.percent >= 100 else ""
            track = (
                f'<span class="apolo-bar-track{done}" role="progressbar" '
                f'aria-label="{desc or "progress"}" aria-valuemin="0" '
                f'aria-valuemax="100" aria-valuenow="{p.percent:.0f}">'
                f'<span class="apolo-bar-fill" style="width:{p.percent:.1f}%"></span>'
                "</span>"
            )
        label = plain(": ") if desc else ""
        rows.append(
            f'<div class="apolo-bar-row"><span class="apolo-bar-desc">{desc}</span>'
            f'{label}{track}{plain(" ")}<span class="apolo-bar-text">'
            f"{e(_bar_text(p))}</span></div>"
        )
    return f'<div class="apolo-bars">{"".join(rows)}</div>'


def log_header(tail: LogTail, hint: str) -> str:
    if tail.total > len(tail.lines):
        return f"last {len(tail.lines)} of {tail.total:,} lines — {hint} for all"
    return f"{tail.total} line{'s' if tail.total != 1 else ''} of output"


def _log_html(tail: LogTail, hint: str) -> str:
    if not tail.total:
        return ""
    header = e(log_header(tail, hint)).replace(e(hint), f"<code>{e(hint)}</code>", 1)
    body = e("\n".join(tail.lines))
    return (
        f'<div class="apolo-log"><div class="apolo-log-head">{header}</div>'
        f'<div class="apolo-log-body apolo-log-static"><pre>{body}</pre></div></div>'
    )


def _as_of(s: StatusSnapshot) -> str:
    when = s.now.strftime("%Y-%m-%d %H:%M:%S UTC")
    if s.job is None or s.finished:
        return ""
    return f"as of {when}; %apolo_status {s.job.id} shows it live"


def status_html(s: StatusSnapshot) -> str:
    """The saved form: the view as static HTML, styled by the same CSS."""
    as_of = _as_of(s)
    foot = f'<div class="apolo-asof">{e(as_of)}</div>' if as_of else ""
    return (
        f'<div class="apolo-w apolo-status">{style("status.css")}'
        f"{head_html(s, saved=True)}{bars_html(s.bars)}"
        f"{_log_html(s.tail, s.hint)}{foot}</div>"
    )


def status_text(s: StatusSnapshot) -> str:
    """The saved form as plain text (terminals, text viewers, nbval)."""
    job = s.job
    if job is None:
        return "job: waiting for the platform…"
    lines = [status_line(job)]
    c = clock(job, s.now)
    if c.text:
        lines.append(f"  {c.text}")
    if usage := usage_text(s.usage, finished=s.finished):
        lines.append(f"  {usage}")
    if as_of := _as_of(s):
        lines.append(f"  ({as_of})")
    for extra in (s.note, s.error):
        if extra:
            lines.append(f"  {extra}")
    for p in s.bars:
        lines.append(f"  {p.description + ': ' if p.description else ''}{_bar_text(p)}")
    if s.tail.total:
        lines.append(f"--- {log_header(s.tail, s.hint)} ---")
        lines.extend(s.tail.lines)
    return "\n".join(lines)
