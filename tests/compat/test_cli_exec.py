"""The unmodified official ``apolo`` CLI and SDK inside a running local job:
``apolo exec``, ``apolo attach``, ``apolo top``, ``apolo config show``."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from apolo_jupyter import Client

from ..conftest import Platform, wait_running
from ..test_exec import run, until_output
from .test_official_sdk import passed_config

apolo_sdk: Any = pytest.importorskip("apolo_sdk")
APOLO = Path(sys.executable).with_name("apolo")


def cli_env(platform: Platform, home: Path) -> dict[str, str]:
    """The official CLI's environment: our platform, as a job would see it."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "APOLO_PASSED_CONFIG": passed_config(platform),
        "NEURO_CLI_DISABLE_PYPI_VERSION_CHECK": "1",
        "LANG": "C.UTF-8",
        "COLUMNS": "200",
    }


def apolo(
    platform: Platform, home: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the official CLI against our platform (passed config)."""
    return subprocess.run(
        [str(APOLO), *args],
        env=cli_env(platform, home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def started(client: Client, command: str, ready: str = "") -> str:
    """A running job; with ``ready``, once that file exists in it (a job may
    be running a while before its first line has run, on a loaded machine)."""
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu"),
        preset_name="cpu-small",
        command=command,
    )
    await wait_running(client, job.id)
    if ready:
        await until_output(
            client, job.id, f"sh -c 'test -e {ready} && echo yes'", "yes"
        )
    return job.id


async def _apolo_streaming(
    platform: Platform, tmp_path: Path, *args: str
) -> asyncio.subprocess.Process:
    """The official ``apolo ARGS`` against the platform, no input, its output
    piped for the test to read as it comes."""
    return await asyncio.create_subprocess_exec(
        str(APOLO),
        *args,
        env=cli_env(platform, tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def test_apolo_exec_returns_the_remote_exit_code(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    job = await started(
        client, "sh -c 'echo from-the-job > /tmp/note; sleep 300'", ready="/tmp/note"
    )
    try:
        done = await asyncio.to_thread(
            apolo,
            platform,
            tmp_path,
            "exec",
            "--no-tty",
            job,
            "--",
            "sh",
            "-c",
            "cat /tmp/note; echo to-stderr >&2; exit 7",
        )
        assert done.returncode == 7, done
        assert "from-the-job" in done.stdout
        assert "to-stderr" in done.stderr
        missing = await asyncio.to_thread(
            apolo, platform, tmp_path, "exec", "--no-tty", job, "--", "no-such-tool"
        )
        assert missing.returncode != 0
        assert "'no-such-tool' was not found" in missing.stderr
    finally:
        await client.jobs.kill(job)


async def test_apolo_attach_prints_the_jobs_output(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    # The job says "waiting" until it is told to go, so the test knows that
    # `apolo attach` is connected before the line it must see is printed.
    job = await started(
        client,
        "sh -c 'while [ ! -e /tmp/go ]; do echo waiting; sleep 0.1; done; "
        "echo after-go; exit 0'",
    )
    proc = await _apolo_streaming(platform, tmp_path, "attach", job)
    assert proc.stdout is not None
    try:
        seen = b""
        while b"waiting" not in seen:
            chunk = await asyncio.wait_for(proc.stdout.read(4096), 60)
            assert chunk, seen
            seen += chunk
        await run(client, job, "touch /tmp/go")
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert b"after-go" in seen + out, (seen, out, err)
    assert proc.returncode == 0, (out, err)


async def test_apolo_top_shows_the_job(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    job = await started(client, "sh -c 'while :; do :; done'")
    try:
        proc = await _apolo_streaming(platform, tmp_path, "top", job)
        assert proc.stdout is not None
        seen = b""
        try:
            # A row for the job, with its CPU figure; `apolo top` never exits.
            while re.search(job.encode() + rb".* \d+\.\d{3} ", seen) is None:
                chunk = await asyncio.wait_for(proc.stdout.read(4096), 60)
                assert chunk, seen
                seen += chunk
        finally:
            proc.terminate()
            await proc.wait()
    finally:
        await client.jobs.kill(job)


async def test_apolo_config_show_lists_jobs_available_per_preset(
    platform: Platform, tmp_path: Path
) -> None:
    done = await asyncio.to_thread(apolo, platform, tmp_path, "config", "show")
    assert done.returncode == 0, done
    assert "Jobs Avail" in done.stdout
    assert "cpu-small" in done.stdout


async def test_sdk_exec_top_signal_and_capacity(
    client: Client, sdk_client: Any
) -> None:
    job = await started(
        client, "sh -c 'echo ready > /tmp/r; while :; do :; done'", ready="/tmp/r"
    )
    async with sdk_client.jobs.exec(
        job, "sh -c 'cat /tmp/r; exit 3'", stdout=True, stderr=True
    ) as stream:
        out = b""
        with pytest.raises(apolo_sdk.StdStreamError) as info:
            while (msg := await stream.read_out()) is not None:
                out += msg.data
    assert info.value.exit_code == 3 and out == b"ready\n"
    async with sdk_client.jobs.top(job) as it:
        async for sample in it:
            assert isinstance(sample, apolo_sdk.JobTelemetry)
            if sample.cpu > 0.5:
                break
    capacity = await sdk_client.jobs.get_capacity()
    assert set(capacity) >= {"cpu-small", "cpu-medium"}
    await sdk_client.jobs.send_signal(job)
    status = await client.jobs.status(job)
    while not status.status.is_finished:
        await asyncio.sleep(0.05)
        status = await client.jobs.status(job)
    assert status.history.exit_code == 137
