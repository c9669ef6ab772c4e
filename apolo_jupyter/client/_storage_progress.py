"""Progress of storage transfers: ``apolo_sdk``'s events and callback protocol.

A transfer reports to the ``progress`` object it was given: ``start``, ``step``
(bytes done so far, including a resumed file's skipped part) and ``complete`` for
each file; ``enter`` and ``leave`` for each folder of a recursive transfer, and
``fail`` for an entry it cannot transfer (a socket, a device). ``storage.rm``
reports ``delete`` for each entry it removed. Each event is a
frozen dataclass, so new fields never break a callback. Callbacks are plain
methods, called on the event loop that runs the transfer; any object with those
methods will do, subclassing the ABCs is optional.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from yarl import URL


@dataclass(frozen=True)
class StorageProgressStart:
    src: URL
    dst: URL
    size: int


@dataclass(frozen=True)
class StorageProgressComplete:
    src: URL
    dst: URL
    size: int


@dataclass(frozen=True)
class StorageProgressStep:
    src: URL
    dst: URL
    current: int
    size: int


@dataclass(frozen=True)
class StorageProgressEnterDir:
    src: URL
    dst: URL


@dataclass(frozen=True)
class StorageProgressLeaveDir:
    src: URL
    dst: URL


@dataclass(frozen=True)
class StorageProgressFail:
    src: URL
    dst: URL
    message: str


@dataclass(frozen=True)
class StorageProgressDelete:
    uri: URL
    is_dir: bool


class AbstractFileProgress(abc.ABC):
    """Callbacks of a one-file transfer."""

    @abc.abstractmethod
    def start(self, data: StorageProgressStart) -> None: ...

    @abc.abstractmethod
    def complete(self, data: StorageProgressComplete) -> None: ...

    @abc.abstractmethod
    def step(self, data: StorageProgressStep) -> None: ...


class AbstractRecursiveFileProgress(AbstractFileProgress):
    """Callbacks of a folder transfer: the file ones, plus folders and failures."""

    @abc.abstractmethod
    def enter(self, data: StorageProgressEnterDir) -> None: ...

    @abc.abstractmethod
    def leave(self, data: StorageProgressLeaveDir) -> None: ...

    @abc.abstractmethod
    def fail(self, data: StorageProgressFail) -> None: ...


class AbstractDeleteProgress(abc.ABC):
    """The callback of ``storage.rm``: one call per removed entry."""

    @abc.abstractmethod
    def delete(self, data: StorageProgressDelete) -> None: ...


class Reporter:
    """Calls the user's progress object, or nothing when there is none.

    Folder events go only to objects that have the method, so a file-only progress
    (``AbstractFileProgress``) may also be given to a folder transfer."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        # Without a progress object nothing is built per file (callers may skip
        # making the URLs of the events, too).
        self.active = progress is not None

    def _call(self, name: str, data: Any) -> None:
        method = getattr(self._progress, name, None)
        if method is not None:
            method(data)

    def start(self, src: URL, dst: URL, size: int) -> None:
        if self.active:
            self._call("start", StorageProgressStart(src, dst, size))

    def step(self, src: URL, dst: URL, current: int, size: int) -> None:
        if self.active:
            self._call("step", StorageProgressStep(src, dst, current, size))

    def counter(
        self, src: URL, dst: URL, done: int, size: int
    ) -> Callable[[int], None]:
        """An ``on_bytes`` callback for a file's transfer: adds each count to
        ``done`` (from a resumed file's skipped part) and reports it as a step."""

        def count(more: int) -> None:
            nonlocal done
            done += more
            self.step(src, dst, done, size)

        return count

    def complete(self, src: URL, dst: URL, size: int) -> None:
        if self.active:
            self._call("complete", StorageProgressComplete(src, dst, size))

    def enter(self, src: URL, dst: URL) -> None:
        if self.active:
            self._call("enter", StorageProgressEnterDir(src, dst))

    def leave(self, src: URL, dst: URL) -> None:
        if self.active:
            self._call("leave", StorageProgressLeaveDir(src, dst))

    def fail(self, src: URL, dst: URL, message: str) -> None:
        if self.active:
            self._call("fail", StorageProgressFail(src, dst, message))
