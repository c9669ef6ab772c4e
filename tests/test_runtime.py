"""The sync <-> async bridge: one loop thread, usable from sync and async code."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from apolo_jupyter.kernel._runtime import Runtime, runtime

MARK: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="empty")


async def _where() -> tuple[str, str]:
    return threading.current_thread().name, MARK.get()


def test_run_blocks_on_the_loop_thread() -> None:
    rt = runtime()
    assert rt is runtime()
    name, _ = rt.run(_where())
    assert name == "apolo-jupyter-loop"


async def test_aw_from_another_running_loop() -> None:
    name, _ = await runtime().aw(_where())
    assert name == "apolo-jupyter-loop"


def test_submit_runs_in_an_empty_context() -> None:
    MARK.set("cell-42")
    assert runtime().run(_where())[1] == "cell-42"  # run() copies the caller's context
    assert runtime().submit(_where()).result(5)[1] == "empty"


def test_submit_propagates_errors_and_cancellation() -> None:
    async def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        runtime().submit(boom()).result(5)
    started, stopped = threading.Event(), threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stopped.set()
            raise

    future = runtime().submit(forever())
    assert started.wait(5)
    future.cancel()
    assert future.cancelled()
    assert stopped.wait(5), "the task on the runtime loop was not cancelled"


def test_run_on_the_loop_thread_refuses_instead_of_deadlocking() -> None:
    rt = Runtime()

    async def nested() -> None:
        rt.run(asyncio.sleep(0))

    with pytest.raises(RuntimeError, match="would deadlock"):
        rt.run(nested(), timeout=5)


def test_client_is_connected_once_and_reused() -> None:
    rt = Runtime()
    client = rt.client()
    assert client is rt.client()
    assert client.config.source == "embedded local platform"
    rt.run(client.close())
    assert rt.client() is not client
