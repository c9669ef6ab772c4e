"""Run a storage transfer on the runtime and show its progress to the caller.

The transfer runs on the runtime's loop and reports to a ``Tracker``; the caller's
thread (the kernel's, or the CLI's) reads snapshots every ``TICK`` and draws them:
a ``TransferProgress`` widget in a notebook with a live frontend, one rewritten
line on a terminal. Nothing is drawn for a transfer shorter than ``SHOW_AFTER``
seconds (``APOLO_JUPYTER_PROGRESS_AFTER`` overrides it): it gets its final line
only. Headless text runs (nbclient, pipes) print the final line.
Interrupting stops the transfer and says how to resume it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from ._runtime import Runtime
from ._transfer import DONE, FAILED, INTERRUPTED, Tracker, TransferSnapshot

TICK = 0.1
SHOW_AFTER = 1.0


def _show_after() -> float:
    try:
        return float(os.environ.get("APOLO_JUPYTER_PROGRESS_AFTER", SHOW_AFTER))
    except ValueError:
        return SHOW_AFTER


class _Line:
    """One line on a terminal, rewritten in place."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._width = 0

    def draw(self, snap: TransferSnapshot) -> None:
        text = snap.line()
        pad = max(0, self._width - len(text))
        self._stream.write("\r" + text + " " * pad)
        self._stream.flush()
        self._width = len(text)

    def close(self, snap: TransferSnapshot, message: str) -> None:
        self.draw(snap)
        self._stream.write("\n" + (message + "\n" if message else ""))
        self._stream.flush()


class _Widget:
    def __init__(self) -> None:
        from IPython.display import display

        from ..widgets._transfer import TransferProgress

        self.view = TransferProgress()
        display(self.view)  # type: ignore[no-untyped-call]

    def draw(self, snap: TransferSnapshot, message: str = "") -> None:
        self.view.show(
            snap.description, snap.fraction, snap.stats(), snap.state, message
        )

    def close(self, snap: TransferSnapshot, message: str) -> None:
        self.draw(snap, message)


def run_transfer(
    rt: Runtime,
    work: Callable[[Tracker], Awaitable[None]],
    tracker: Tracker,
    *,
    widgets: bool,
    resume_hint: str,
    quiet: bool = False,
) -> TransferSnapshot:
    """Run ``work(tracker)`` to its end, showing its progress; returns the last
    snapshot. Errors are raised as they are, after the view shows them.
    ``quiet``: no final line for a transfer too short to show a bar."""

    running: list[asyncio.Task[None]] = []

    async def go() -> None:
        task = asyncio.current_task()
        assert task is not None
        running.append(task)
        await work(tracker)

    async def stop() -> None:  # cancel, and wait until the requests are closed
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    future = rt.submit(go())
    live = sys.stdout.isatty() or widgets
    shown: Any = None
    after = _show_after()
    try:
        while True:
            snap = tracker.snapshot()
            if live and shown is None and snap.elapsed >= after:
                shown = _Widget() if widgets else _Line(sys.stdout)
            if shown is not None:
                shown.draw(snap)
            try:
                future.result(TICK)
                break
            except concurrent.futures.TimeoutError:
                pass
    except KeyboardInterrupt:
        future.cancel()  # not started yet: it never will
        rt.run(stop(), timeout=30)
        tracker.end(INTERRUPTED)
        _finish(shown, tracker.snapshot(), f"Interrupted. {resume_hint}")
        raise
    except BaseException as exc:
        tracker.end(FAILED)
        if shown is not None:  # else the error alone says it
            shown.close(tracker.snapshot(), f"{type(exc).__name__}: {exc}")
        raise
    tracker.end(DONE)
    snap = tracker.snapshot()
    failures = "; ".join(snap.failures)
    if shown is not None or not quiet:
        _finish(shown, snap, f"skipped: {failures}" if failures else "")
    return snap


def _finish(shown: Any, snap: TransferSnapshot, message: str) -> None:
    if shown is None:
        print(snap.line())
        if message:
            print(message)
    else:
        shown.close(snap, message)
