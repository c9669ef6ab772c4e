"""The log model behind ``JobStatusView``: bounded lines and tqdm progress, no widgets.

Job output arrives in arbitrary chunks. Lines may be split across chunks, and a
progress bar rewrites its line with ``\\r``; only the last rewrite of a line is kept,
as a terminal would show it. Only the last ``max_lines`` lines are kept, so a noisy
job costs the same as a quiet one.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

MAX_LINE_CHARS = 10_000  # longer lines are cut, so one endless line stays cheap

# tqdm's default format: "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [...]"
_TQDM = re.compile(
    r"(?<![\d.])(?P<pct>\d{1,3})%\|[^|]*\|\s*(?:(?P<n>\d+)/(?P<total>\d+))?(?P<rest>.*)"
)


@dataclass(frozen=True)
class Progress:
    """A tqdm bar found in the job's output."""

    percent: float
    description: str
    detail: str  # e.g. "45/100 [00:01<00:01, 30.12it/s]"


def parse_progress(line: str) -> Progress | None:
    """The progress a tqdm-style line shows, or None if it is not one."""
    if "%|" not in line:
        return None
    match = _TQDM.search(line)
    if match is None:
        return None
    percent = float(match["pct"])
    n, total = match["n"], match["total"]
    if n is not None and total is not None and int(total) > 0:
        percent = 100.0 * int(n) / int(total)  # finer than tqdm's rounded percent
    detail = (f"{n}/{total}" if n is not None else "") + match["rest"]
    return Progress(
        percent=min(max(percent, 0.0), 100.0),
        description=line[: match.start()].strip().removesuffix(":").strip(),
        detail=detail.strip(),
    )


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " …"


def _collapse(raw: str) -> str:
    """The last rewrite of a line: its last non-empty ``\\r`` segment."""
    if "\r" not in raw:
        return _clip(raw)
    for segment in reversed(raw.split("\r")):
        if segment:
            return _clip(segment)
    return ""


def _unfinished(raw: str) -> str:
    """Normalize an unfinished line: at most one ``\\r``, and only at its end.

    ``"a\\rb"`` becomes ``"b"`` (more text continues it); ``"a\\r"`` stays ``"a\\r"``
    (it is still shown, but the next text replaces it).
    """
    if "\r" not in raw:
        return _clip(raw)
    head, _, tail = raw.rpartition("\r")
    if tail:
        return _clip(tail)
    shown = _collapse(head)
    return shown + "\r" if shown else ""


class LogBuffer:
    """The last ``max_lines`` lines of a job's output."""

    def __init__(self, max_lines: int) -> None:
        if max_lines < 1:
            raise ValueError(f"max_log_lines must be at least 1, got {max_lines}")
        self._max = max_lines
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._unfinished = ""  # raw text after the last "\n", normalized
        self._complete = 0  # complete lines seen, shown or not

    def feed(self, text: str) -> Progress | None:
        """Add a chunk; return the latest tqdm progress it shows, if any."""
        if not text:
            return None
        pieces = (self._unfinished + text).split("\n")
        self._unfinished = _unfinished(pieces.pop())
        self._complete += len(pieces)
        self._lines.extend(_collapse(p) for p in pieces[-self._max :])
        progress = parse_progress(self._unfinished.rstrip("\r"))
        for piece in reversed(pieces):
            if progress is not None:
                break
            if "%|" in piece:
                progress = parse_progress(_collapse(piece))
        return progress

    def _shown(self) -> list[str]:
        if not self._unfinished:
            return list(self._lines)
        keep = self._max - 1
        lines = list(self._lines)[-keep:] if keep else []
        return [*lines, self._unfinished.rstrip("\r")]

    @property
    def dropped(self) -> int:
        """Lines received but no longer shown."""
        total = self._complete + (1 if self._unfinished else 0)
        return total - len(self._shown())

    def text(self, hint: str = "") -> str:
        """The lines shown, after a note on how many were dropped and ``hint``.

        Lines end with a newline, except an unfinished last line.
        """
        shown = "\n".join(self._shown())
        if shown and not self._unfinished:
            shown += "\n"
        dropped = self.dropped
        if not dropped:
            return shown
        lines = "line" if dropped == 1 else "lines"
        where = f" — all of them: {hint}" if hint else ""
        return f"{dropped} earlier {lines} not shown{where}\n{shown}"
