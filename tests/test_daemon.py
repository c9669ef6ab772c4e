"""The local platform as a daemon: files, restarts, the CLI."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil

from apolo_jupyter import JobStatus, get
from apolo_jupyter.client._local_home import (
    LocalPaths,
    ensure_running,
    is_running,
    read_info,
)

from .conftest import Platform, cli, start_job, wait_finished, wait_log, wait_running


def test_secret_and_token_are_private(platform: Platform) -> None:
    for path in (platform.paths.secret_file, platform.paths.token_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(platform.paths.home.stat().st_mode) == 0o700


def test_binds_loopback_only(platform: Platform) -> None:
    conns = psutil.Process(platform.info.pid).net_connections(kind="tcp")
    listening = [c.laddr for c in conns if c.status == psutil.CONN_LISTEN]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening)


def test_second_start_reuses_the_daemon(platform: Platform) -> None:
    again = ensure_running(platform.paths)
    assert again == platform.info


async def test_history_survives_a_restart(own_platform: Platform) -> None:
    async with get(own_platform.url, own_platform.token, quiet=True) as client:
        done = await start_job(client, command="true")
        finished = await wait_finished(client, done.id)
        assert finished.status == JobStatus.SUCCEEDED
        running = await start_job(client, command="sleep 100")
        assert (await wait_running(client, running.id)).status == JobStatus.RUNNING
    job_pids = [
        p.pid for p in psutil.Process(own_platform.info.pid).children(recursive=True)
    ]
    # A crash: the daemon dies without cleaning up; its jobs die with it.
    os.kill(own_platform.info.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_running(own_platform.paths) and time.monotonic() < deadline:
        time.sleep(0.02)
    own_platform.info = ensure_running(own_platform.paths)
    async with get(own_platform.url, own_platform.token, quiet=True) as client:
        kept = await client.jobs.status(done.id)
        assert kept.status == JobStatus.SUCCEEDED
        assert kept.history.transitions == finished.history.transitions
        lost = await client.jobs.status(running.id)
        assert lost.status == JobStatus.FAILED
        assert lost.reason == "PlatformRestarted"
        assert "could not re-adopt" in lost.history.description

    def alive() -> list[int]:
        out = []
        for pid in job_pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    out.append(pid)
            except psutil.NoSuchProcess:
                pass
        return out

    deadline = time.monotonic() + 10
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive()


RUN = [sys.executable, "-m", "apolo_jupyter.cli", "run"]


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, "--home", str(home))


def test_cli_start_status_env_stop(tmp_path: Path) -> None:
    home = tmp_path / "cli-home"
    paths = LocalPaths(home)
    try:
        started = _cli(home, "local", "start")
        assert started.returncode == 0, started.stderr
        assert "local platform running at http://127.0.0.1:" in started.stdout
        status = _cli(home, "local", "status")
        assert status.returncode == 0, status.stderr
        assert "sandbox:" in status.stdout and "no jobs yet" in status.stdout
        env = _cli(home, "local", "env")
        key, _, value = env.stdout.strip().partition("=")
        assert key == "APOLO_PASSED_CONFIG"
        passed = json.loads(base64.b64decode(value))
        info = read_info(paths)
        assert info is not None
        assert passed["url"] == info.url and passed["token"] == info.token
        assert passed["cluster"] == "local" and passed["project_name"] == "default"
        stopped = _cli(home, "local", "stop")
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert not is_running(paths)
        assert _cli(home, "local", "status").returncode == 3
    finally:
        if is_running(paths):
            _cli(home, "local", "stop")


def test_cli_run_shows_the_job_go_through(tmp_path: Path) -> None:
    home = tmp_path / "run-home"
    env = {**os.environ, "APOLO_JUPYTER_HOME": str(home), "HOME": str(tmp_path)}
    env.pop("APOLO_PASSED_CONFIG", None)
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "apolo_jupyter.cli",
                "run",
                "ubuntu:latest",
                "--",
                "sh",
                "-c",
                "sleep 0.5; echo done",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0].startswith("Job ID: job-")
        status_lines = [line for line in lines[1:] if line.startswith("[")]
        order = [line.split("] ")[1].split(" ")[0].rstrip(":") for line in status_lines]
        assert order == ["pending", "running", "succeeded"]
        # The job's output streams in, before the final status line.
        assert lines.index("done") < lines.index(status_lines[-1])
        failing = subprocess.run(
            [sys.executable, "-m", "apolo_jupyter.cli", "run", "ubuntu", "--", "false"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert failing.returncode == 1 and "failed (exit code 1)" in failing.stdout
        # A job that is over before the first status arrives: still in order.
        instant = subprocess.run(
            [*RUN, "ubuntu", "--", "echo", "now"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        lines = instant.stdout.splitlines()
        status_lines = [line for line in lines if line.startswith("[")]
        order = [line.split("] ")[1].split(" ")[0].rstrip(":") for line in status_lines]
        assert order == ["pending", "running", "succeeded"], instant.stdout
        assert (
            lines.index(status_lines[1])
            < lines.index("now")
            < lines.index(status_lines[2])
        ), instant.stdout
    finally:
        _cli(home, "local", "stop")


def test_cli_run_interrupted_kills_the_job(tmp_path: Path) -> None:
    home = tmp_path / "run-home"
    env = {**os.environ, "APOLO_JUPYTER_HOME": str(home), "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [*RUN, "ubuntu", "--", "sh", "-c", "echo up; sleep 60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Job ID: job-"), first
        job_id = first.split()[2]
        for line in proc.stdout:
            if line == "up\n":
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130
        assert f"Interrupted: killed {job_id}" in err and "Traceback" not in err, err
        status = _cli(home, "local", "status")
        assert re.search(r"jobs:\s+1 cancelled\n", status.stdout), status.stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _cli(home, "local", "stop")


async def test_cli_ps_logs_kill(own_platform: Platform, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "APOLO_JUPYTER_HOME": str(own_platform.paths.home),
        "HOME": str(tmp_path),
    }

    async with get(own_platform.url, own_platform.token, quiet=True) as client:
        job = await start_job(
            client,
            command="sh -c 'echo from-the-job; sleep 60'",
            name="cli-listed",
        )
        try:
            await wait_running(client, job.id)
            await wait_log(client, job.id, b"from-the-job")
            listed = cli("ps", env=env)
            assert listed.returncode == 0, listed.stderr
            assert re.search(rf"{job.id}\s+cli-listed\s+running", listed.stdout)
            logs = cli("logs", "cli-listed", env=env)
            assert logs.returncode == 0 and logs.stdout.strip() == "from-the-job"
            killed = cli("kill", job.id, env=env)
            assert killed.stdout.strip() == f"{job.id}: cancelled", killed
            assert "no jobs running or pending" in cli("ps", env=env).stdout
            assert re.search(
                rf"{job.id}\s+cli-listed\s+cancelled", cli("ps", "-a", env=env).stdout
            )
            unknown = cli("kill", "job-00000000-0000-4000-8000-000000000000", env=env)
            assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
            assert "list jobs with apolo-jupyter ps --all" in unknown.stderr, unknown
        finally:
            await client.jobs.kill(job.id)
