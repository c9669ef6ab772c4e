"""``storage.glob``: storage paths matching a shell pattern, as ``apolo_sdk``.

``*``, ``?`` and ``[...]`` match within one name; a ``**`` name matches the folder
itself and everything below it. Names starting with ``.`` match only a pattern
that starts with ``.``. A URI without a pattern is yielded as it is (unchecked);
the matches keep the form of the pattern's folder (``storage:data/*.csv`` yields
``storage:data/a.csv``) and its trailing ``/``, which, as in a shell and in
``apolo_sdk``, matches folders only (``storage:data/*/``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from yarl import URL

from ._errors import ResourceNotFound

if TYPE_CHECKING:
    from ._storage import Storage

_MAGIC = re.compile(r"[*?[]")


def has_magic(text: str) -> bool:
    return _MAGIC.search(text) is not None


def _hidden(name: str) -> bool:
    return name.startswith(".")


async def glob(storage: Storage, uri: URL, dironly: bool) -> AsyncGenerator[URL, None]:
    if not has_magic(uri.path):
        yield uri
        return
    trailing = uri.path.endswith("/")
    base = URL(str(uri).rstrip("/")) if trailing else uri
    pattern = base.name
    async for parent in glob(storage, base.parent, True):
        async for found in _in_folder(storage, parent, pattern, dironly or trailing):
            text = str(found)
            yield URL(text + "/") if trailing and not text.endswith("/") else found


async def _in_folder(
    storage: Storage, parent: URL, pattern: str, dironly: bool
) -> AsyncGenerator[URL, None]:
    if not has_magic(pattern):
        try:
            await storage.stat(parent / pattern)
        except ResourceNotFound:
            return
        yield parent / pattern
    elif pattern == "**":
        yield parent
        async for found in _below(storage, parent, dironly):
            yield found
    else:
        match = re.compile(fnmatch.translate(pattern)).fullmatch
        dotted = _hidden(pattern)
        async with storage.ls(parent) as entries:
            names = [e.name async for e in entries if e.is_dir() or not dironly]
        for name in names:
            if (dotted or not _hidden(name)) and match(name):
                yield parent / name


async def _below(
    storage: Storage, folder: URL, dironly: bool
) -> AsyncGenerator[URL, None]:
    async with storage.ls(folder) as entries:
        listed = [e async for e in entries if e.is_dir() or not dironly]
    for entry in listed:
        if _hidden(entry.name):
            continue
        yield folder / entry.name
        if entry.is_dir():
            async for found in _below(storage, folder / entry.name, dironly):
                yield found
