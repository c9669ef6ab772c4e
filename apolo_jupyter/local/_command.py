"""Splitting a job's command into arguments, as the real platform does, in
linear time.

The real platform splits ``command`` and ``entrypoint`` with ``shlex.split``
(POSIX rules, no comments). ``shlex`` builds each argument one character at a
time, which is quadratic in the length of a long argument: a 400 kB command kept
the daemon's event loop busy for seconds. ``split`` gives the same arguments and
the same errors (a property test compares them) with one regular-expression pass.
"""

from __future__ import annotations

import re

# One lexical piece of a POSIX shell word, as shlex (posix=True) reads it.
_PIECE = re.compile(
    r"""(?P<space>[ \t\r\n]+)
      |'(?P<single>[^']*)'
      |"(?P<double>(?:[^"\\]|\\[\s\S])*)"
      |\\(?P<escaped>[\s\S])
      |(?P<plain>[^ \t\r\n'"\\]+)
      |(?P<bad>['"\\])""",
    re.VERBOSE,
)
# Inside double quotes, a backslash escapes only a double quote or a backslash.
_DOUBLE_ESCAPE = re.compile(r"\\([\s\S])")
# An unclosed double quote whose text ends in the middle of an escape.
_DOUBLE_OPEN_ESCAPE = re.compile(r'"(?:[^"\\]|\\[\s\S])*\\\Z')


def _unescape_double(match: re.Match[str]) -> str:
    char = match[1]
    return char if char in '"\\' else match[0]


def split(text: str) -> list[str]:
    """``shlex.split(text)``: ValueError("No closing quotation") for an unclosed
    quote, ValueError("No escaped character") for a trailing backslash."""
    args: list[str] = []
    pieces: list[str] = []
    started = False  # a word has begun (an empty quoted string counts)
    for match in _PIECE.finditer(text):
        kind = match.lastgroup
        if kind == "space":
            if started:
                args.append("".join(pieces))
                pieces, started = [], False
            continue
        if kind == "bad":
            if match[0] == "\\" or (
                match[0] == '"' and _DOUBLE_OPEN_ESCAPE.match(text, match.start())
            ):
                raise ValueError("No escaped character")
            raise ValueError("No closing quotation")
        value = match[kind or "plain"]
        if kind == "double":
            value = _DOUBLE_ESCAPE.sub(_unescape_double, value)
        pieces.append(value)
        started = True
    if started:
        args.append("".join(pieces))
    return args
