"""``apolo-jupyter exec [-t]`` and ``top``, and ``%apolo_exec`` / ``%apolo_top``,
against the local platform that the runtime (and the CLI) find by themselves."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from apolo_jupyter.kernel._runtime import runtime

from .conftest import cli as run_cli
from .conftest import start_on_runtime, wait_running
from .test_exec import until_output

CLI = str(Path(sys.executable).with_name("apolo-jupyter"))


@pytest.fixture
def job() -> Iterator[str]:
    """A running job on the runtime's platform that wrote /tmp/hello."""
    job_id = start_on_runtime("sh -c 'echo hi-there > /tmp/hello; exec sleep 300'")
    rt = runtime()
    client = rt.client()
    rt.run(wait_running(client, job_id), timeout=60)
    ready = "sh -c 'test -f /tmp/hello && echo yes'"
    rt.run(until_output(client, job_id, ready, "yes"), timeout=60)
    yield job_id
    rt.run(client.jobs.kill(job_id), timeout=60)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, stdin=subprocess.DEVNULL)


class Terminal:
    """The CLI running in a pseudo-terminal, as in JupyterLab's terminal."""

    def __init__(
        self,
        *args: str,
        rows: int = 24,
        cols: int = 80,
        env: dict[str, str] | None = None,
    ) -> None:
        self.master, slave = pty.openpty()
        self.resize(rows, cols)
        self.proc = subprocess.Popen(
            [CLI, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            env=env,
        )
        os.close(slave)
        self.seen = b""

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(
            self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0)
        )

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, want: bytes, timeout: float = 30) -> bytes:
        deadline = time.monotonic() + timeout
        while want not in self.seen:
            assert time.monotonic() < deadline, f"no {want!r} in {self.seen!r}"
            self.read(0.1)
        return self.seen

    def read(self, timeout: float) -> None:
        if select.select([self.master], [], [], timeout)[0]:
            try:
                self.seen += os.read(self.master, 4096)
            except OSError:  # EIO: the CLI has exited
                time.sleep(timeout)

    def close(self) -> int:
        code = self.proc.wait(timeout=60)
        os.close(self.master)
        return code


REPORTER = (
    b'python3 -c "import signal, sys; '
    b"signal.signal(2, lambda *a: sys.exit('sigint-' + str(43))); "
    b"print('armed-' + str(42), flush=True); "
    b"print('read-' + repr(sys.stdin.readline()), flush=True); "
    b'sys.stdin.readline()"\r'
)


def test_cli_exec_t_is_an_interactive_terminal(job: str) -> None:
    term = Terminal("exec", "-t", job, "--", "sh", rows=24, cols=80)
    try:
        term.expect(b"# ")  # the remote shell's prompt
        term.write(b"cat /tmp/hello; stty size\r")
        term.expect(b"24 80")
        assert b"hi-there" in term.seen
        # A resize of the local terminal reaches the remote one.
        term.resize(30, 100)
        os.kill(term.proc.pid, signal.SIGWINCH)
        deadline = time.monotonic() + 30
        while b"30 100" not in term.seen:
            assert time.monotonic() < deadline, term.seen
            term.write(b"stty size\r")
            term.read(0.2)
        # A remote program that says when it reads, prints the bytes it read, and
        # what it got on SIGINT. Its markers are computed, so that the terminal's
        # echo of this command line (or of the keys: ^[[A, ^C) cannot show them.
        term.write(REPORTER)
        term.expect(b"armed-42")
        # Arrow keys arrive as the remote program's input, untouched.
        term.write(b"\x1b[A\r")
        term.expect(b"read-" + repr("\x1b[A\n").encode())
        # Ctrl-C interrupts the remote program, not the local CLI.
        term.write(b"\x03")
        term.expect(b"sigint-43")
        # (the remote terminal drops what was typed ahead of the interrupt)
        deadline = time.monotonic() + 30
        while b"back-42" not in term.seen:
            assert time.monotonic() < deadline, term.seen
            term.write(b"echo back-$((40+2))\r")
            term.read(0.3)
        assert term.proc.poll() is None
        term.write(b"exit 3\r")
        assert term.close() == 3  # the remote exit code, passed through
    finally:
        if term.proc.poll() is None:
            term.proc.kill()


def test_cli_exec_without_tty_splits_streams_and_passes_the_exit_code(job: str) -> None:
    done = cli("exec", job, "--", "sh", "-c", "cat /tmp/hello; echo oops >&2; exit 4")
    assert done.returncode == 4
    assert done.stdout == "hi-there\n"
    assert done.stderr == "oops\n"


def test_cli_exec_bad_input(job: str) -> None:
    done = cli("exec", job)
    assert done.returncode == 2 and "give the command after --" in done.stderr
    done = cli("exec", job, "--", "no-such-tool")
    assert done.returncode == 2 and "'no-such-tool' was not found" in done.stderr
    done = cli("exec", "-t", job, "--", "sh")
    assert done.returncode == 2 and "-t needs a terminal" in done.stderr
    done = cli("exec", "job-00000000-0000-4000-8000-000000000000", "--", "true")
    assert done.returncode == 2 and "not found" in done.stderr


def test_cli_top_prints_a_line_per_sample(job: str) -> None:
    done = cli("top", job, "-n", "2")
    assert done.returncode == 0, done
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(f"{job} cpu" in x and "MiB" in x for x in lines)


def test_exec_magic_streams_output_and_returns_the_exit_code(
    shell: InteractiveShell, job: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = shell.run_line_magic(
        "apolo_exec", f"{job} -- sh -c 'cat /tmp/hello; echo err >&2; exit 6'"
    )
    out = capsys.readouterr()
    assert code == 6
    assert (out.out, out.err) == ("hi-there\n", "err\n")
    assert shell.run_line_magic("apolo_exec", f"{job} -- true") == 0
    with pytest.raises(UsageError, match="needs a command after --"):
        shell.run_line_magic("apolo_exec", f"{job} --")
    with pytest.raises(UsageError, match="'nope' was not found"):
        shell.run_line_magic("apolo_exec", f"{job} -- nope")


def test_magics_say_unknown_and_ended_jobs_in_their_own_words(
    shell: InteractiveShell,
) -> None:
    """Whatever the platform's words (the local one names its CLI), the magics
    point to %apolo_ps, and say which state a job that is not running is in."""
    for magic, rest in (("apolo_exec", " -- true"), ("apolo_top", "")):
        with pytest.raises(
            UsageError,
            match=r"^unknown job 'no-such-job': list jobs with %apolo_ps --all$",
        ):
            shell.run_line_magic(magic, f"no-such-job{rest}")
    ended = start_on_runtime("true", finish=True)
    for magic, rest in (("apolo_exec", " -- true"), ("apolo_top", "")):
        with pytest.raises(UsageError) as caught:
            shell.run_line_magic(magic, f"{ended}{rest}")
        assert str(caught.value) == (
            f"job {ended} is succeeded, not running: %{magic} needs a running job "
            "(%apolo_ps lists them)"
        )


def test_top_magic_prints_bounded_lines_without_a_frontend(
    shell: InteractiveShell, job: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert shell.run_line_magic("apolo_top", f"{job} -n 2") is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("cpu" in x and "mem" in x for x in lines)
    with pytest.raises(UsageError, match=">= 1"):
        shell.run_line_magic("apolo_top", f"{job} -n 0")
    with pytest.raises(UsageError, match="unknown job"):
        shell.run_line_magic("apolo_top", "job-00000000-0000-4000-8000-000000000000")


def test_top_magic_feeds_a_live_chart_in_widget_mode(
    shell: InteractiveShell, job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APOLO_JUPYTER_DISPLAY", "widget")
    # In-process IPython has no kernel: use_widgets() needs one, so fake only the
    # frontend detection by giving the shell a kernel attribute.
    monkeypatch.setattr(shell, "kernel", object(), raising=False)
    chart = shell.run_line_magic("apolo_top", job)
    deadline = time.monotonic() + 30
    while len(chart.points) < 2:
        assert time.monotonic() < deadline, chart.points
        time.sleep(0.05)
    assert chart.job_id == job and chart.state == "live"
    assert repr(chart).startswith(f"top {job}: ")
    runtime().run(runtime().client().jobs.kill(job), timeout=60)
    while not chart.state.startswith("the job is"):
        assert time.monotonic() < deadline + 30, chart.state
        time.sleep(0.05)
    assert chart.state == "the job is cancelled"
