"""The magics in real kernels: interrupt, kill, detach, re-attach after a restart,
and the widget state a headless run (nbclient) saves."""

from __future__ import annotations

import json
import os
import queue
import re
import time
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel
from nbclient import NotebookClient

from apolo_jupyter import JobStatus, get

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def kernel() -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    km, kc = start_new_kernel(kernel_name="python3", env=dict(os.environ))
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _execute(kc: BlockingKernelClient, code: str, timeout: float = 90) -> str:
    out: list[str] = []
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=_collector(out))
    assert reply["content"]["status"] == "ok", (reply["content"], "".join(out))
    return "".join(out)


def _collector(out: list[str]) -> Any:
    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    return hook


def _run_until(
    kc: BlockingKernelClient, code: str, marker: str
) -> tuple[str, list[str]]:
    """Start ``code``; return (msg_id, output so far) once ``marker`` was printed."""
    msg_id = kc.execute(code)
    out: list[str] = []
    deadline = time.monotonic() + 60
    while marker not in "".join(out):
        assert time.monotonic() < deadline, "".join(out)
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
    return msg_id, out


def _finish(kc: BlockingKernelClient, msg_id: str, out: list[str]) -> str:
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)


def _job_id(text: str) -> str:
    match = re.search(r"job-[0-9a-f-]{36}", text)
    assert match, text
    return match.group(0)


async def _status(job_id: str) -> JobStatus:
    async with get(quiet=True) as client:
        return (await client.jobs.status(job_id)).status


async def test_interrupt_detaches_and_reattach_after_restart(
    kernel: tuple[KernelManager, BlockingKernelClient],
) -> None:
    km, kc = kernel
    _execute(kc, "%load_ext apolo_jupyter")
    msg_id, out = _run_until(
        kc, "job = %apolo_run ubuntu -- sh -c 'echo up; sleep 60'", "up\n"
    )
    km.interrupt_kernel()
    text = _finish(kc, msg_id, out)
    job_id = _job_id(text)
    assert (
        f"Detached: {job_id} keeps running. Kill it with %apolo_kill {job_id}" in text
    )
    assert await _status(job_id) == JobStatus.RUNNING

    km.restart_kernel(now=True)
    kc.wait_for_ready(timeout=60)
    _execute(kc, "%load_ext apolo_jupyter")
    msg_id, out = _run_until(kc, f"%apolo_status {job_id}", "running")
    async with get(quiet=True) as client:
        await client.jobs.kill(job_id)
    text = _finish(kc, msg_id, out)
    assert "up\n" in text  # the log from the start, again
    lines = [line for line in text.splitlines() if line.startswith(job_id)]
    assert lines[-1].split()[:2] == [job_id, "cancelled"]


async def test_kill_on_interrupt(
    kernel: tuple[KernelManager, BlockingKernelClient],
) -> None:
    km, kc = kernel
    _execute(kc, "%load_ext apolo_jupyter")
    msg_id, out = _run_until(
        kc, "%apolo_run --kill-on-interrupt ubuntu -- sh -c 'echo up; sleep 60'", "up\n"
    )
    km.interrupt_kernel()
    text = _finish(kc, msg_id, out)
    job_id = _job_id(text)
    assert f"Interrupted: killed {job_id}" in text
    assert await _status(job_id) == JobStatus.CANCELLED


def _widget_states(nb: Any) -> list[dict[str, Any]]:
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    return [model["state"] for model in state.values()]


def test_headless_run_saves_final_widget_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APOLO_JUPYTER_DISPLAY", "widget")
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%load_ext apolo_jupyter"),
            nbformat.v4.new_code_cell(
                "job = %apolo_run ubuntu -- sh -c 'echo hi; exit 2'"
            ),
            nbformat.v4.new_code_cell("print(job.status, job.history.exit_code)"),
            nbformat.v4.new_code_cell(
                "d = %apolo_run --detach ubuntu -- sleep 60\n"
                "from apolo_jupyter.kernel._attach import VIEWS\n"
                "VIEWS[d.id]._kill.click()"
            ),
            nbformat.v4.new_code_cell("k = %apolo_status {d.id}\nprint(k.status)"),
        ],
        metadata={
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3",
                "language": "python",
            }
        },
    )
    NotebookClient(
        nb, timeout=120, kernel_name="python3", store_widget_state=True
    ).execute()
    assert nb.cells[2].outputs[0]["text"] == "failed 2\n"
    assert nb.cells[4].outputs[-1]["text"] == "cancelled\n"
    states = _widget_states(nb)
    bars = [s for s in states if s.get("_model_name") == "IntProgressModel"]
    assert {(b["value"], b["bar_style"]) for b in bars} >= {
        (3, "danger"),
        (3, "warning"),
    }
    texts = json.dumps(
        [s.get("value") for s in states if isinstance(s.get("value"), str)]
    )
    assert "exit code 2" in texts
