"""PortForwardToggle driven as a user would: on, fetch, off, job end, errors."""

from __future__ import annotations

import contextlib
import re
import shlex
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from apolo_jupyter.client import JobStatus
from apolo_jupyter.kernel import _forward_registry as registry
from apolo_jupyter.kernel._forward_control import ForwardControl
from apolo_jupyter.kernel._runtime import runtime

from .conftest import (
    free_port,
    start_job,
    start_on_runtime,
    until,
    wait_log,
    wait_running,
)

SERVER = """
import http.server, sys
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/stream":  # endless, for a client that never reads
            self.send_response(200)
            self.end_headers()
            while True:
                self.wfile.write(b"x" * 65536)
        body = b"hello through the toggle"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
print("listening", flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hello).serve_forever()
"""


@pytest.fixture(autouse=True)
def forwards_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(registry.ENV_DIR, str(tmp_path / "forwards"))
    return tmp_path / "forwards"


@pytest.fixture
def server_job() -> Iterator[tuple[str, int]]:
    rt = runtime()
    client = rt.client()
    port = free_port()

    async def start() -> str:
        job = await start_job(
            client,
            image="python:3.11",
            command=f"python3 -u -c {shlex.quote(SERVER)} {port}",
        )
        await wait_running(client, job.id)
        await wait_log(client, job.id, b"listening")
        return job.id

    job_id = rt.run(start(), timeout=60)
    yield job_id, port
    rt.run(client.jobs.kill(job_id), timeout=60)


def _fetch(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
        return bytes(resp.read())


def test_toggle_on_serves_the_job_and_off_removes_the_route(
    server_job: tuple[str, int],
) -> None:
    job_id, port = server_job
    rt = runtime()
    control = ForwardControl(rt, rt.client(), job_id, port)
    view = control.view
    assert (
        view.state == "off" and repr(view) == f"PortForwardToggle({job_id}:{port}: off)"
    )
    view.turn_on()
    until(lambda: view.state == "on")
    assert view.url is not None and view.url.endswith("/")
    forward_id = view.url.rstrip("/").rsplit("/", 1)[1]
    record = registry.lookup(forward_id)
    assert record is not None and record.job_id == job_id
    assert _fetch(record.port) == b"hello through the toggle"
    assert "<iframe" in view._frame.value
    # A real link to open the page in a new tab, and what the frame cannot load.
    assert (
        f'<a href="{view.url}" target="_blank" rel="noopener">open in a new tab'
        in view._status.value
    )
    assert "may not load" in view._note.value
    assert f"127.0.0.1:{record.port}" in view._note.value
    assert view._button.description == f"Forward port {port}"
    assert view._button.layout.width == "auto"  # the whole label shows
    view.turn_off()
    until(lambda: view.state == "off")
    assert view._note.value == "" and view._frame.value == ""
    assert registry.lookup(forward_id) is None
    with pytest.raises(OSError):
        _fetch(record.port)


def test_quick_off_then_on_leaves_one_route_and_one_forward(
    server_job: tuple[str, int], forwards_dir: Path
) -> None:
    job_id, port = server_job
    rt = runtime()
    control = ForwardControl(rt, rt.client(), job_id, port)
    view = control.view
    view.turn_on()
    until(lambda: view.state == "on")
    first = registry.lookup((view.url or "").rstrip("/").rsplit("/", 1)[1])
    first_task = control._task
    assert first is not None and first_task is not None
    # A client that stops reading a stream: the first forward's close handshake
    # waits behind the data, so its teardown takes its full grace (0.5 s).
    stalled = socket.create_connection(("127.0.0.1", first.port), timeout=60)
    stalled.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
    assert stalled.recv(1 << 16)  # the stream flows; from now on nobody reads it
    view.turn_off()
    view.turn_on()  # before the first forward has closed
    until(
        lambda: view.state == "on" and view.url is not None and first.id not in view.url
    )
    second = registry.lookup((view.url or "").rstrip("/").rsplit("/", 1)[1])
    assert second is not None and second.id != first.id
    assert registry.lookup(first.id) is None
    assert [p.name for p in forwards_dir.iterdir()] == [f"{second.id}.json"]
    assert _fetch(second.port) == b"hello through the toggle"
    # The first forward's late teardown must not touch the second: wait for its
    # end, the stalled connection closed (EOF after what was buffered) and its
    # task returned, then look.
    with contextlib.suppress(ConnectionResetError):
        while stalled.recv(1 << 16):
            pass
    stalled.close()
    first_task.result(timeout=60)
    assert view.state == "on" and registry.lookup(second.id) == second
    view.turn_off()
    until(lambda: view.state == "off")
    assert list(forwards_dir.iterdir()) == []
    with pytest.raises(OSError):
        _fetch(second.port)


def test_job_end_turns_the_toggle_off(server_job: tuple[str, int]) -> None:
    job_id, port = server_job
    rt = runtime()
    client = rt.client()
    control = ForwardControl(rt, client, job_id, port)
    control.view.turn_on()
    until(lambda: control.view.state == "on")
    forward_id = (control.view.url or "").rstrip("/").rsplit("/", 1)[1]
    rt.run(client.jobs.kill(job_id), timeout=60)
    until(lambda: control.view.state == "off")
    assert "finished" in control.view._status.value
    assert registry.lookup(forward_id) is None


@pytest.fixture
def finished_job() -> str:
    return start_on_runtime("true", finish=True)


def test_finished_job_shows_an_error(finished_job: str) -> None:
    rt = runtime()
    job_id = finished_job
    control = ForwardControl(rt, rt.client(), job_id, 8080)
    control.view.turn_on()
    until(lambda: control.view.state == "error")
    assert f"{JobStatus.SUCCEEDED}" in control.view._status.value
    assert 'class="apolo-error" role="alert"' in control.view._status.value
    assert "#" not in control.view._status.value  # theme colours, not hard-coded ones
    assert control.view._button.value is False


def test_magic_in_a_terminal_says_where_the_forward_is(
    server_job: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    job_id, port = server_job
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "apolo_jupyter")
    try:
        view = shell.run_line_magic("apolo_forward", f"{job_id} {port} --on")
        try:
            line = capsys.readouterr().out.strip()
            match = re.fullmatch(
                rf"{job_id}:{port}: on at (/apolo/forward/\S+/) \(through Jupyter\) "
                r"and 127\.0\.0\.1:(\d+)",
                line,
            )
            assert match, line
            assert match[1] == view.url
            assert _fetch(int(match[2])) == b"hello through the toggle"
        finally:
            view.turn_off()
            until(lambda: view.state == "off")
        shell.run_line_magic("apolo_forward", f"{job_id} {port}")
        assert (
            capsys.readouterr().out.strip()
            == f"{job_id}:{port}: off (add --on to forward it)"
        )
    finally:
        shell.run_line_magic("unload_ext", "apolo_jupyter")


def test_magic_refuses_a_finished_job(finished_job: str) -> None:
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    job_id = finished_job
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "apolo_jupyter")
    try:
        with pytest.raises(
            UsageError, match="is succeeded; port forwarding needs a running"
        ):
            shell.run_line_magic("apolo_forward", f"{job_id} 8080 --on")
    finally:
        shell.run_line_magic("unload_ext", "apolo_jupyter")
