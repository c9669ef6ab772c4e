"""Short blocking calls in a thread, many per hop (``Hops``).

For many small items that each need one blocking call (a small file's
open-read-close or create-write-close), where a thread hop of its own would
cost more than the call.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Hops:
    """Short blocking calls run in a thread, many per hop: the calls made while a
    hop runs all go in the next one. A folder's small files each need one such
    call (open-read-close up, create-write-close down), and a thread hop of its
    own would cost more than the file (two wake-ups and a handover of the GIL);
    with a few files in flight, one hop serves several of them."""

    def __init__(self) -> None:
        self._pending: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._running = False
        self.hops = 0  # thread hops so far (each ran one or more calls)

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((functools.partial(func, *args), future))
        if not self._running:
            self._running = True
            _background(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                self.hops += 1
                try:
                    outcomes = await asyncio.to_thread(
                        _run_each, [call for call, _ in batch]
                    )
                except BaseException:  # cancelled (the loop is closing)
                    for _, future in batch + self._pending:
                        future.cancel()
                    self._pending = []
                    raise
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():  # its caller was cancelled
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._running = False


def _run_each(calls: list[Callable[[], Any]]) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = []
    for call in calls:
        try:
            outcomes.append((True, call()))
        except BaseException as exc:  # raised again by its caller
            outcomes.append((False, exc))
    return outcomes


_TASKS: set[asyncio.Task[None]] = set()


def _background(coro: Awaitable[None]) -> None:
    """A task kept alive until it ends (the loop holds only weak references)."""
    task: asyncio.Task[None] = asyncio.ensure_future(coro)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
