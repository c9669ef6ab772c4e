"""Ctrl-C always ends ``apolo-jupyter run`` and kills its job (issue 12, item
11), also when the CLI was started with SIGINT ignored (as a shell starts
background commands, and so a test runner started that way) and under load."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import cli

RUN = [sys.executable, "-m", "apolo_jupyter.cli", "run", "ubuntu", "--"]


def _as_background_job() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture
def load() -> Iterator[None]:
    """Two busy processes, so the CLI and the platform compete for the CPUs."""
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)
    ]
    yield
    for hog in hogs:
        hog.kill()
        hog.wait()


def _interrupt(env: dict[str, str], wait_for: str | None) -> tuple[int, str, float]:
    """Start `run`, wait for a line of its output (None: a moment into its
    start), SIGINT it; (exit code, stderr, seconds it took to end)."""
    proc = subprocess.Popen(
        [*RUN, "sh", "-c", "echo up; sleep 60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_as_background_job,
    )
    try:
        assert proc.stdout is not None
        if wait_for is None:
            first = proc.stdout.readline()  # "Job ID: ...": the job exists
            assert first.startswith("Job ID: job-"), first
        else:
            for line in proc.stdout:
                if line == wait_for:
                    break
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        return proc.returncode, err, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_kills_the_job_even_with_sigint_inherited_ignored(
    tmp_path: Path, load: None
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "APOLO_JUPYTER_HOME": str(home), "HOME": str(tmp_path)}
    try:
        for wait_for in ("up\n", None, "up\n", None, "up\n"):
            code, err, took = _interrupt(env, wait_for)
            assert code == 130, err
            assert "Interrupted: killed job-" in err and "Traceback" not in err, err
            assert took < 15, took  # it was 30 s and more: SIGINT was ignored
        status = cli("local", "status", env=env)
        assert re.search(r"jobs:\s+5 cancelled\n", status.stdout), status.stdout
    finally:
        cli("local", "stop", env=env)
