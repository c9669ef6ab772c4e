"""The magics in real kernels: interrupt, kill, detach, re-attach after a restart,
and what a headless run (nbclient) saves: the outcome as text, whatever runs it."""

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
from apolo_jupyter.client._process import start_ticks

pytestmark = pytest.mark.timeout(180)
WIDGET = "application/vnd.jupyter.widget-view+json"


def _start(env: dict[str, str]) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


@pytest.fixture
def kernel() -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A kernel as any frontend starts it: jobs are shown as views."""
    env = dict(os.environ)
    env.pop("APOLO_JUPYTER_DISPLAY", None)
    yield from _start(env)


@pytest.fixture
def text_kernel() -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A kernel told to print text (``APOLO_JUPYTER_DISPLAY=text``)."""
    yield from _start({**os.environ, "APOLO_JUPYTER_DISPLAY": "text"})


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
    text_kernel: tuple[KernelManager, BlockingKernelClient],
) -> None:
    km, kc = text_kernel
    _execute(kc, "%load_ext apolo_jupyter")
    msg_id, out = _run_until(
        kc, "job = %apolo_run ubuntu -- sh -c 'echo up; sleep 60'", "up\n"
    )
    km.interrupt_kernel()
    text = _finish(kc, msg_id, out)
    job_id = _job_id(text)
    detached = [line for line in text.splitlines() if line.startswith("Detached:")]
    assert detached == [  # the id once, where it can be copied from
        f"Detached: the job keeps running. Kill it with %apolo_kill {job_id}; watch "
        "it again with %apolo_status and the same id"
    ]
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
    text_kernel: tuple[KernelManager, BlockingKernelClient],
) -> None:
    km, kc = text_kernel
    _execute(kc, "%load_ext apolo_jupyter")
    msg_id, out = _run_until(
        kc, "%apolo_run --kill-on-interrupt ubuntu -- sh -c 'echo up; sleep 60'", "up\n"
    )
    km.interrupt_kernel()
    text = _finish(kc, msg_id, out)
    job_id = _job_id(text)
    assert f"Interrupted: killed {job_id}" in text
    assert await _status(job_id) == JobStatus.CANCELLED


def _comm_states(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        m["content"]["data"]["state"]
        for m in msgs
        if m["msg_type"] in ("comm_open", "comm_msg")
        and "state" in m["content"].get("data", {})
    ]


def _iopub_until(
    kc: BlockingKernelClient, done: Any, timeout: float = 60
) -> list[dict[str, Any]]:
    """Every iopub message until ``done(messages)`` holds."""
    msgs: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not done(msgs):
        assert time.monotonic() < deadline, [m["msg_type"] for m in msgs]
        try:
            msgs.append(kc.get_iopub_msg(timeout=1))
        except queue.Empty:
            continue
    return msgs


async def test_in_a_kernel_a_view_detaches_on_interrupt_and_ends_in_the_outcome(
    kernel: tuple[KernelManager, BlockingKernelClient],
) -> None:
    km, kc = kernel
    _execute(kc, "%load_ext apolo_jupyter")
    kc.execute("job = %apolo_run ubuntu -- sh -c 'echo up; sleep 60'")
    msgs = _iopub_until(
        kc,
        lambda ms: any(
            "up" in s.get("log", {}).get("lines", []) for s in _comm_states(ms)
        ),
    )
    shown = [m for m in msgs if m["msg_type"] == "display_data"]
    assert len(shown) == 1
    data, transient = shown[0]["content"]["data"], shown[0]["content"]["transient"]
    assert {"text/plain", "text/html", WIDGET} <= set(data)
    # It names the kernel process holding its model: a notebook reopened once
    # that process has gone shows the fallbacks (server._reopen).
    mark = shown[0]["content"]["metadata"]["apolo_jupyter"]["kernel"]
    assert km.provisioner is not None
    assert mark["pid"] == km.provisioner.pid  # type: ignore[attr-defined]
    assert mark["started"] == start_ticks(mark["pid"])
    job_id = _job_id(data["text/plain"])
    km.interrupt_kernel()
    msgs = _iopub_until(
        kc, lambda ms: any("Detached: " in s.get("head", "") for s in _comm_states(ms))
    )
    assert not any(
        m["msg_type"] == "stream" and "Detached" in m["content"]["text"] for m in msgs
    )  # said in the view, which drops it once the job ends
    assert await _status(job_id) == JobStatus.RUNNING
    _execute(kc, "print('the kernel is free again')")
    async with get(quiet=True) as client:
        await client.jobs.kill(job_id)
    # After its cell ended, the output is replaced by the job's outcome.
    msgs = _iopub_until(
        kc, lambda ms: any(m["msg_type"] == "update_display_data" for m in ms)
    )
    (update,) = [m for m in msgs if m["msg_type"] == "update_display_data"]
    assert update["content"]["transient"] == transient
    final = update["content"]["data"]
    assert WIDGET not in final
    assert final["text/plain"].startswith(f"{job_id}  cancelled")
    assert (
        "up" in final["text/plain"].splitlines()
        and "Detached" not in final["text/plain"]
    )


async def test_a_running_job_s_view_gets_its_usage_one_sample_at_a_time(
    kernel: tuple[KernelManager, BlockingKernelClient],
) -> None:
    """What the browser is sent for the sparkline: the new samples only, about
    once a second, nothing else with them; then the end, with no sparkline."""
    _, kc = kernel
    _execute(kc, "%load_ext apolo_jupyter")
    kc.execute("job = %apolo_run --detach ubuntu -- sh -c 'while :; do :; done'")

    def sparks(ms: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [s for s in _comm_states(ms) if s.get("spark")]

    def busy(ms: list[dict[str, Any]]) -> bool:
        rows = [r for s in sparks(ms) for r in s["spark"]["rows"]]
        return len(rows) >= 3 and any(r[0] > 0.5 for r in rows)

    msgs = _iopub_until(kc, busy)
    shown = [m for m in msgs if m["msg_type"] == "display_data"]
    job_id = _job_id(shown[0]["content"]["data"]["text/plain"])
    updates = [
        m["content"]["data"]["state"]
        for m in msgs
        if m["msg_type"] == "comm_msg" and "spark" in m["content"]["data"]["state"]
    ]
    seqs = [u["spark"]["seq"] for u in updates]
    assert seqs == sorted(set(seqs)) and len(updates) >= 2, seqs
    previous = 0
    for update in updates:  # each update brings only the samples since the last
        assert len(update["spark"]["rows"]) == update["spark"]["seq"] - previous
        assert len(update["spark"]["rows"]) <= 2, update
        previous = update["spark"]["seq"]
    alone = [u for u in updates if set(u) == {"spark"}]
    assert len(alone) >= len(updates) - 1  # a sample re-sends no status or log
    assert max(len(json.dumps(u)) for u in alone) < 200
    async with get(quiet=True) as client:
        await client.jobs.kill(job_id)
    msgs = _iopub_until(
        kc, lambda ms: any(m["msg_type"] == "update_display_data" for m in ms)
    )
    assert {} in [s["spark"] for s in _comm_states(msgs) if "spark" in s]
    (final,) = [m for m in msgs if m["msg_type"] == "update_display_data"]
    plain = final["content"]["data"]["text/plain"]
    assert plain.startswith(f"{job_id}  cancelled") and "  peak CPU " in plain


def test_headless_runs_save_the_outcome_as_text() -> None:
    """nbclient, as papermill, nbconvert and jupyter-scheduler run it, from any
    parent process: no guessing, every job output ends in its final state."""
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%load_ext apolo_jupyter"),
            nbformat.v4.new_code_cell(
                "job = %apolo_run ubuntu -- sh -c 'echo hi; exit 2'"
            ),
            nbformat.v4.new_code_cell("print(job.status, job.history.exit_code)"),
            nbformat.v4.new_code_cell(
                "d = %apolo_run --detach ubuntu -- sleep 60\n"
                "from apolo_jupyter.kernel._attach import ATTACHMENTS, VIEWS\n"
                "VIEWS[d.id].click_kill()  # what Kill does without a Jupyter server\n"
                "# Its final output is published while this cell runs (recorded).\n"
                "_ = ATTACHMENTS[d.id].future.result(60)"
            ),
            nbformat.v4.new_code_cell("k = %apolo_status {d.id}\nprint(k.status)"),
            nbformat.v4.new_code_cell(
                "late = %apolo_run --detach ubuntu -- sh -c 'sleep 1; echo late'"
            ),
            nbformat.v4.new_code_cell(
                "from apolo_jupyter.kernel._attach import ATTACHMENTS\n"
                "_ = ATTACHMENTS[late.id].future.result(60)"
            ),
            # Last: nothing runs after it to record a late update.
            nbformat.v4.new_code_cell("again = %apolo_status --detach {job.id}"),
        ],
        metadata={
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3",
                "language": "python",
            }
        },
    )
    env_display = os.environ.pop("APOLO_JUPYTER_DISPLAY", None)
    try:
        NotebookClient(
            nb, timeout=120, kernel_name="python3", store_widget_state=True
        ).execute()
    finally:
        if env_display is not None:
            os.environ["APOLO_JUPYTER_DISPLAY"] = env_display

    def outcome(index: int) -> str:
        shown = [o for o in nb.cells[index].outputs if "data" in o]
        assert len(shown) == 1, nb.cells[index].outputs
        assert WIDGET not in shown[0]["data"]
        assert "apolo-status" in shown[0]["data"]["text/html"]
        return str(shown[0]["data"]["text/plain"])

    failed = outcome(1).splitlines()
    assert failed[0].split()[1] == "failed" and "code 2" in failed[0]
    assert "hi" in failed
    assert nb.cells[2].outputs[0]["text"] == "failed 2\n"
    assert outcome(3).splitlines()[0].split()[1] == "cancelled"
    assert nb.cells[4].outputs[-1]["text"] == "cancelled\n"
    late = outcome(5).splitlines()
    assert late[0].split()[1] == "succeeded" and "late" in late
    # A finished job, shown detached: the same, but for the peak figures of its
    # run, which only a view that followed it while it ran has.
    assert outcome(7).splitlines() == [
        line for line in failed if not line.startswith("  peak CPU ")
    ]
    # The widget state nbclient saved also ends in the final states.
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    heads = json.dumps([m["state"].get("head", "") for m in state.values()])
    assert heads.count("apolo-st-failed") == 2  # the run, then %apolo_status -d
    assert heads.count("apolo-st-cancelled") == 2  # -d, then %apolo_status of it
    assert heads.count("apolo-st-succeeded") == 1
