"""The one sync <-> async bridge: a daemon thread running one event loop.

The client lives on that loop. Sync code (magics, widget callbacks) blocks on
``run()``; async code awaits ``aw()``; background watchers go through ``submit()``
in an empty ``contextvars.Context`` so that nbclient records their widget updates
(see the platform notes: ipykernel tags output by a context variable). It never uses
``asyncio.run`` or ``nest_asyncio``: it works the same in ipykernel, terminal IPython
and plain Python.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..client import Client, get

_T = TypeVar("_T")


class Runtime:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="apolo-jupyter-loop", daemon=True
        )
        self._thread.start()
        self._client: Client | None = None
        self._client_lock = threading.Lock()
        # Whether connecting says which platform it picked (``get()``'s line); the
        # CLI's commands print only what they were asked for.
        self.announce = True
        atexit.register(self._close_client)

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.run(client.close(), timeout=5)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def _check_thread(self, coro: Coroutine[Any, Any, Any]) -> None:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "Runtime.run() was called on the runtime's own loop thread, which "
                "would deadlock; await the coroutine there instead"
            )

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        """Run ``coro`` on the runtime loop and block until it is done."""
        self._check_thread(coro)
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    async def aw(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Await ``coro`` from another loop (e.g. the kernel's)."""
        return await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(coro, self._loop)
        )

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Start ``coro`` in the background, in an empty context (see module doc)."""
        result: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def start() -> None:
            task = self._loop.create_task(coro, context=contextvars.Context())

            def done(t: asyncio.Task[_T]) -> None:
                if t.cancelled():
                    result.cancel()
                elif (exc := t.exception()) is not None:
                    result.set_exception(exc)
                else:
                    result.set_result(t.result())

            task.add_done_callback(done)
            result.add_done_callback(
                lambda f: (
                    self._loop.call_soon_threadsafe(task.cancel)
                    if f.cancelled()
                    else None
                )
            )

        self._loop.call_soon_threadsafe(start, context=contextvars.Context())
        return result

    def client(self) -> Client:
        """The runtime's client, connected on first use (``get()`` resolution)."""
        with self._client_lock:
            if self._client is None or self._client.closed:
                self._client = self.run(_connect(quiet=not self.announce))
            return self._client

    def use(self, client: Client) -> None:
        """Replace the runtime's client (``%apolo_use``); the old one is closed."""
        with self._client_lock:
            old, self._client = self._client, client
        if old is not None and old is not client:
            self.run(old.close())


async def _connect(*, quiet: bool) -> Client:
    return await get(quiet=quiet)


_runtime: Runtime | None = None
_lock = threading.Lock()


def runtime() -> Runtime:
    """The process-wide runtime, started on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime()
        return _runtime
