"""What the security tests share: raw requests, a daemon started by hand, logs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from apolo_jupyter import Client, JobDescription
from apolo_jupyter.client._local_home import DaemonInfo, LocalPaths, read_info

from ..conftest import job_log, wait_finished


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def job_body(command: Any, **container: Any) -> dict[str, Any]:
    """A POST /jobs body for a small job."""
    return {
        "container": {
            "image": "ubuntu:latest",
            "command": command,
            "resources": {"cpu": 0.1, "memory": 2**26},
            **container,
        },
        "cluster_name": "local",
    }


async def post_job(
    session: aiohttp.ClientSession, url: str, token: str, body: Any
) -> tuple[int, dict[str, Any]]:
    """POST /jobs; (status, JSON answer)."""
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    async with session.post(
        f"{url}/jobs",
        data=data,
        headers={**auth(token), "Content-Type": "application/json"},
    ) as resp:
        text = await resp.text()
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {"error": text}
        return resp.status, answer


async def output(client: Client, job_id: str) -> str:
    return (await job_log(client, job_id)).decode(errors="replace")


async def finished(client: Client, job_id: str, timeout: float = 60) -> JobDescription:
    return await asyncio.wait_for(wait_finished(client, job_id), timeout)


def start_daemon(
    home: Path, cwd: Path, env: dict[str, str] | None = None
) -> DaemonInfo:
    """``python -m apolo_jupyter.local serve`` run from ``cwd``, as a user's
    shell or an older launcher would (``-m`` puts the working directory first
    on ``sys.path``)."""
    paths = LocalPaths(home)
    paths.ensure()
    (home / "config.json").write_text(
        json.dumps({"kill_grace": 2.0, "capacity": {"cpu": 1000, "memory": 2**50}})
    )
    with open(paths.log_file, "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "apolo_jupyter.local", "serve", "--home", str(home)],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=env,
        )
    deadline = time.monotonic() + 60
    while (info := read_info(paths)) is None:
        assert time.monotonic() < deadline, paths.log_file.read_text()
        time.sleep(0.05)
    return info


def tracebacks(log_file: Path) -> list[str]:
    """Lines of the daemon's log that show an unhandled error."""
    text = log_file.read_text(errors="replace")
    return [
        line
        for line in text.splitlines()
        if "Traceback" in line or "Error handling request" in line
    ]
