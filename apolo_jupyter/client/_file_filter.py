"""Which files a folder transfer takes: ``.gitignore``-style rules, as ``apolo_sdk``.

A filter is an async function of a path relative to the transfer's root (folders
end with ``/``) that says whether to transfer it. ``FileFilter`` reads rules in
the ``.gitignore`` syntax: ``#`` comments, ``!`` re-includes, a trailing ``/``
matches folders only, a pattern without an inner ``/`` matches at any depth, one
with it is anchored where its file is, ``*`` and ``?`` stay inside one name,
``**`` spans folders. The last matching rule wins; when none matches, the filter
it was built on (``default``) decides.

``upload_dir(..., ignore_file_names={".gitignore"})`` reads such files in every
folder it enters, and in the folders above the source, so a repository's
top-level ``.gitignore`` applies to a sub-folder's upload.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from collections.abc import Set as AbstractSet
from pathlib import Path

AsyncFilterFunc = Callable[[str], Awaitable[bool]]
Matcher = Callable[[str], object]


async def _always_match(path: str) -> bool:
    return True


class FileFilter:
    def __init__(self, default: AsyncFilterFunc = _always_match) -> None:
        # (exclude, prefix, prefix2, matcher), in the order they were added
        self.filters: list[tuple[bool, str, str, Matcher]] = []
        self.default = default

    def read_from_buffer(
        self, data: bytes, prefix: str = "", prefix2: str = ""
    ) -> None:
        """Rules from an ignore file's bytes. ``prefix``: where that file's folder
        is inside the transfer; ``prefix2``: where the transfer's root is inside
        that file's folder (for ignore files above the root)."""
        for raw in data.decode("utf-8-sig").split("\n"):
            line = raw.removesuffix("\r")
            if not line or line.startswith("#"):
                continue
            line = _strip_trailing_spaces(line)
            if not line:
                continue
            if line.startswith("!"):
                self.include(line[1:], prefix=prefix, prefix2=prefix2)
            else:
                self.exclude(line, prefix=prefix, prefix2=prefix2)

    def read_from_file(self, path: Path, prefix: str = "", prefix2: str = "") -> None:
        self.read_from_buffer(path.read_bytes(), prefix, prefix2)

    def append(
        self, exclude: bool, pattern: str, prefix: str = "", prefix2: str = ""
    ) -> None:
        for name, value in (("prefix", prefix), ("prefix2", prefix2)):
            if value and not value.endswith("/"):
                raise ValueError(f"{name} {value!r} must end with '/'")
        # no inner "/": the name matches at any depth; else anchored here
        inner = "/" in pattern.rstrip("/")
        pattern = pattern.lstrip("/") if inner else "**/" + pattern
        matcher = re.compile(translate(pattern), re.DOTALL).fullmatch
        self.filters.append((exclude, prefix, prefix2, matcher))

    def exclude(self, pattern: str, prefix: str = "", prefix2: str = "") -> None:
        self.append(True, pattern, prefix, prefix2)

    def include(self, pattern: str, prefix: str = "", prefix2: str = "") -> None:
        self.append(False, pattern, prefix, prefix2)

    def decide(self, path: str) -> bool | None:
        """This filter's own rules on ``path``; None when no rule matches."""
        for exclude, prefix, prefix2, matcher in reversed(self.filters):
            if path.startswith(prefix) and matcher(prefix2 + path[len(prefix) :]):
                return not exclude
        return None

    async def match(self, path: str) -> bool:
        verdict = self.decide(path)
        if verdict is not None:
            return verdict
        return await self.default(path)

    def match_now(self, path: str) -> bool:
        """``match`` without awaiting, for a chain of ``FileFilter``s only (a
        walk that runs in a thread); other defaults raise ``TypeError``."""
        current: FileFilter = self
        while True:
            verdict = current.decide(path)
            if verdict is not None:
                return verdict
            default = current.default
            if default is _always_match:
                return True
            parent = getattr(default, "__self__", None)
            if not isinstance(parent, FileFilter):
                raise TypeError(f"the filter {default!r} can only be awaited")
            current = parent


def translate(pattern: str) -> str:
    """A ``.gitignore`` pattern as a regular expression over relative paths."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*" and pattern.startswith("**", i) and _whole_segment(pattern, i):
            if i + 2 >= n:  # "**" at the end: everything below
                out.append(".*")
                return "".join(out)
            out.append("(?:.+/)?")  # "**/": zero or more folders
            i += 3
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            klass, i = _char_class(pattern, i)
            out.append(klass)
            continue
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    if not pattern.endswith("/"):
        out.append("/?")  # "name" matches a file or a folder of that name
    return "".join(out)


def _whole_segment(pattern: str, i: int) -> bool:
    before = i == 0 or pattern[i - 1] == "/"
    after = i + 2 >= len(pattern) or pattern[i + 2] == "/"
    return before and after


_CLASS_SPECIAL = frozenset("\\]^-[&~|")


def _class_char(ch: str) -> str:
    return "\\" + ch if ch in _CLASS_SPECIAL else ch


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    """``[...]`` starting at ``i``: its regex and the index after it, with
    ``apolo_sdk``'s (and ``fnmatch``'s) meaning: ``[!...]`` negates, while a
    leading ``^`` is an ordinary member; ``a-z`` is a range (one running
    backwards matches nothing); a leading ``]`` is a member; a ``[`` without a
    closing ``]`` is a literal. A class never matches ``/``: the regex is
    ``[...]`` followed by ``(?<!/)``, the form the SDK's ``translate`` gives."""
    j = i + 1
    negate = j < len(pattern) and pattern[j] == "!"
    if negate:
        j += 1
    start = j
    if j < len(pattern) and pattern[j] == "]":
        j += 1  # a leading "]" is a member
    while j < len(pattern) and pattern[j] != "]":
        j += 1
    if j >= len(pattern):
        return re.escape("["), i + 1
    body, members, k = pattern[start:j], [], 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            low, high = body[k], body[k + 2]
            if low <= high:
                members.append(f"{_class_char(low)}-{_class_char(high)}")
            k += 3
        else:
            members.append(_class_char(body[k]))
            k += 1
    if not members:  # only backward ranges
        return ("[^/]" if negate else "(?!)"), j + 1
    return f"[{'^' if negate else ''}{''.join(members)}](?<!/)", j + 1


def _strip_trailing_spaces(line: str) -> str:
    """Trailing spaces go unless escaped with a backslash."""
    end = len(line)
    while end and line[end - 1] == " ":
        backslashes = 0
        k = end - 2
        while k >= 0 and line[k] == "\\":
            backslashes += 1
            k -= 1
        if backslashes % 2:
            break
        end -= 1
    return line[:end]


def load_parent_ignore_files(
    filter: AsyncFilterFunc,
    ignore_file_names: AbstractSet[str],
    path: Path,
) -> AsyncFilterFunc:
    """``filter`` extended with the ignore files of the folders above ``path``,
    outermost first, so the nearest one's rules win."""
    below = ""
    ancestors: list[tuple[Path, str]] = []
    for folder in [path, *path.parents][:-1]:
        below = f"{folder.name}/{below}"
        ancestors.append((folder.parent, below))
    for folder, rel in reversed(ancestors):
        for name in sorted(ignore_file_names):
            candidate = folder / name
            if candidate.is_file():
                rules = FileFilter(filter)
                rules.read_from_file(candidate, "", rel)
                filter = rules.match
    return filter
