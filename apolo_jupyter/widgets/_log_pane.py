"""The log model behind ``JobStatusView``: a bounded tail and tqdm bars, no widgets.

Job output arrives in arbitrary chunks. The buffer keeps what a terminal would show
at the bottom of its screen: lines split across chunks are joined, ``\\r`` rewrites
a line from its start (overwriting, as a terminal does), and the cursor moves that
tqdm uses for nested bars (``ESC[A``) move between the kept lines; other escape
sequences (colours) are dropped. Only the last ``max_lines`` lines are kept, so a
noisy job costs the same as a quiet one: plain output (no ``\\r``, no escapes) is
handled with a few string operations per chunk, whatever its size.

tqdm bars are read from the last lines at snapshot time (``bars``), as tqdm's own
text format gives them: description, percentage, n/total, elapsed, remaining, rate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_LINE_CHARS = 10_000  # longer lines are cut, so one endless line stays cheap
BAR_LINES = 12  # bars are looked for among this many last lines

_TOKEN = re.compile(r"\r|\n|\x1b\[[0-9;?]*[A-Za-z]|\x1b|[^\r\n\x1b]+")
_CUT_ESCAPE = re.compile(r"\x1b(?:\[[0-9;?]*)?\Z")  # an escape split by a chunk
_UNIT = r"\d+(?:\.\d+)?[kMGTPEZY]?"
_TQDM = re.compile(
    r"^(?P<desc>.*?)(?::\s*)?"
    r"(?:(?P<pct>\d{1,3})%\|[^|]*\|\s*)?"
    rf"(?P<n>{_UNIT})(?:/(?P<total>{_UNIT}))?(?P<unit>[A-Za-z]*)\s*"
    r"\[(?P<elapsed>[\d:]+)(?:<(?P<remaining>[\d:?]+))?,\s*"
    r"(?P<rate>[^,\]]*?(?:/s|s/[A-Za-z]+))(?P<postfix>[^\]]*)\]\s*$"
)


@dataclass(frozen=True)
class Progress:
    """A tqdm bar found in the job's output, as tqdm printed it."""

    description: str
    percent: float | None  # None when tqdm does not know the total
    n: str
    total: str  # "" when unknown
    elapsed: str
    remaining: str  # "" when unknown
    rate: str
    postfix: str
    line: int  # the output line it is drawn on (orders nested bars)

    @property
    def detail(self) -> str:
        """``45/100 [00:01<00:01, 30.12it/s]``, tqdm's right-hand side."""
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}it"
        timing = self.elapsed + (f"<{self.remaining}" if self.remaining else "")
        return f"{count} [{timing}, {self.rate}{self.postfix}]"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # "1.23M": tqdm's unit_scale; its percentage is used instead


def parse_progress(line: str, index: int = 0) -> Progress | None:
    """The progress a tqdm-style line shows, or None if it is not one."""
    if "/s" not in line and "s/" not in line:
        return None
    match = _TQDM.match(line.strip())
    if match is None:
        return None
    n, total = match["n"], match["total"] or ""
    percent: float | None = None
    if match["pct"] is not None:
        percent = float(match["pct"])
        n_value, total_value = _number(n), _number(total)
        if n_value is not None and total_value:
            percent = 100.0 * n_value / total_value  # finer than tqdm's rounding
        percent = min(max(percent, 0.0), 100.0)
    remaining = match["remaining"] or ""
    return Progress(
        description=match["desc"].strip(),
        percent=percent,
        n=n,
        total=total,
        elapsed=match["elapsed"],
        remaining="" if "?" in remaining else remaining,
        rate=match["rate"].strip(),
        postfix=match["postfix"],
        line=index,
    )


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " …"


def _overwrite(line: str, col: int, text: str) -> str:
    """``text`` written over ``line`` from column ``col``, as a terminal does."""
    if col >= len(line):
        return line + " " * (col - len(line)) + text
    return line[:col] + text + line[col + len(text) :]


@dataclass(frozen=True)
class LogTail:
    """The lines a log pane shows: ``lines`` are numbers ``first`` on, of ``total``."""

    first: int
    lines: tuple[str, ...]
    total: int

    @property
    def dropped(self) -> int:
        return self.first


class LogBuffer:
    """The last ``max_lines`` lines of a job's output, as a terminal shows them."""

    def __init__(self, max_lines: int) -> None:
        if max_lines < 1:
            raise ValueError(f"max_log_lines must be at least 1, got {max_lines}")
        self._max = max_lines
        self._lines: list[str] = [""]  # kept lines; the last is the current one
        self._started = 1  # lines begun so far (the kept ones are the last)
        self._col = 0  # the cursor's column
        self._up = 0  # how many lines above the last one the cursor is
        self._raw_bytes = 0
        self._held = ""  # the start of an escape sequence the next chunk ends

    @property
    def chars(self) -> int:
        """Characters fed so far."""
        return self._raw_bytes

    def feed(self, text: str) -> None:
        """Add a chunk of output (any split, rewrites and escapes allowed)."""
        if not text:
            return
        self._raw_bytes += len(text)
        if self._held:
            text, self._held = self._held + text, ""
        if "\x1b" in text[-16:] and (cut := _CUT_ESCAPE.search(text)):
            text, self._held = text[: cut.start()], cut.group()
        plain = "\r" not in text and "\x1b" not in text
        if plain and self._up == 0 and self._col == len(self._lines[-1]):
            self._feed_plain(text)
        else:
            self._feed_terminal(text)

    def _trim(self) -> None:
        excess = len(self._lines) - (self._max + 1)
        if excess > 0:
            del self._lines[:excess]
            self._up = min(self._up, len(self._lines) - 1)

    def _feed_plain(self, text: str) -> None:
        newlines = text.count("\n")
        lines = self._lines
        if newlines == 0:
            if len(lines[-1]) < MAX_LINE_CHARS:
                lines[-1] = _clip(lines[-1] + text)
            self._col = len(lines[-1])
            return
        if newlines > self._max:  # the kept lines all come from this chunk
            self._lines = text.rsplit("\n", self._max + 1)[1:]
        else:
            head, *rest = text.split("\n")
            if len(lines[-1]) < MAX_LINE_CHARS:
                lines[-1] = _clip(lines[-1] + head)
            lines.extend(rest)
            self._trim()
        self._started += newlines
        current = self._lines[-1]
        if len(current) > MAX_LINE_CHARS:
            self._lines[-1] = current = _clip(current)
        self._col = len(current)

    def _feed_terminal(self, text: str) -> None:
        newlines = text.count("\n")
        if newlines > 2 * self._max:
            # Only what follows the cut can still be on screen.
            cut = text.rsplit("\n", self._max + 1)[0]
            self._started += cut.count("\n") + 1
            self._lines, self._col, self._up = [""], 0, 0
            text = text[len(cut) + 1 :]
        lines = self._lines
        for piece in _TOKEN.findall(text):
            row = len(lines) - 1 - self._up
            if piece == "\n":
                if self._up > 0:
                    self._up -= 1
                else:
                    lines.append("")
                    self._started += 1
                self._col = 0
            elif piece == "\r":
                self._col = 0
            elif piece[0] != "\x1b":
                if self._col < MAX_LINE_CHARS:
                    lines[row] = _clip(_overwrite(lines[row], self._col, piece))
                self._col += len(piece)
            elif piece.endswith("A"):  # cursor up
                count = piece[2:-1]
                self._up = min(
                    self._up + (int(count) if count.isdigit() else 1), len(lines) - 1
                )
            elif piece.endswith("B"):  # cursor down
                count = piece[2:-1]
                self._up = max(self._up - (int(count) if count.isdigit() else 1), 0)
            elif piece.endswith("K"):  # erase in line
                mode = piece[2:-1]
                lines[row] = "" if mode == "2" else lines[row][: self._col]
        self._lines = lines
        self._trim()

    def tail(self) -> LogTail:
        """The lines shown: trailing spaces dropped, an empty last line left out."""
        lines = self._lines
        total = self._started
        if not lines[-1]:
            lines = lines[:-1]
            total -= 1
        shown = tuple(_clip(line).rstrip() for line in lines[-self._max :])
        return LogTail(first=total - len(shown), lines=shown, total=total)

    def bars(self) -> tuple[Progress, ...]:
        """tqdm bars among the last lines, top to bottom (outer bars first)."""
        tail = self._lines[-BAR_LINES:]
        start = self._started - len(tail)  # the line number of tail[0]
        found = []
        for offset, line in enumerate(tail):
            progress = parse_progress(line, start + offset)
            if progress is not None:
                found.append(progress)
        return tuple(found)

    def text(self, hint: str = "") -> str:
        """The lines shown, after a note on how many were dropped and ``hint``."""
        tail = self.tail()
        shown = "".join(f"{line}\n" for line in tail.lines)
        if not tail.dropped:
            return shown
        lines = "line" if tail.dropped == 1 else "lines"
        where = f" — all of them: {hint}" if hint else ""
        return f"{tail.dropped} earlier {lines} not shown{where}\n{shown}"
