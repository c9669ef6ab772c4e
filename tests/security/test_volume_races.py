"""Volumes mount what was checked (issue 12, items 2 and 3): a job that swaps a
folder of its volume for a symlink, or plants one, never gets a host folder
mounted into another job, nor makes bwrap create anything on the host."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import uuid
from pathlib import Path

import aiohttp
import pytest

from apolo_jupyter import Client, JobStatus, get
from apolo_jupyter.local._executor import Executor, JobSpec, Mount, PreflightError
from apolo_jupyter.local._sandbox import SandboxMode

from ..conftest import Platform, start_job, wait_log, wait_running
from ._helpers import finished, job_body, output, post_job, tracebacks

# Swaps /mnt/f/d (a folder) and /mnt/f/l (a symlink to a host folder) as fast as
# it can, until /mnt/f/stop appears; then says how many swaps succeeded.
SWAPPER = """
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
print("swapping", flush=True)
end = time.monotonic() + 120
n = done = 0
while time.monotonic() < end:
    if libc.renameat2(AT_FDCWD, b"/mnt/f/d", AT_FDCWD, b"/mnt/f/l", RENAME_EXCHANGE) == 0:
        done += 1
    n += 1
    if n % 2000 == 0 and os.path.exists("/mnt/f/stop"):
        break
print("swapped", done, "of", n, flush=True)
"""
VICTIMS = 40


def _storage(platform: Platform, *parts: str) -> Path:
    return platform.paths.storage_dir.joinpath("local", "default", *parts)


async def test_a_swapped_symlink_never_mounts_a_host_folder(
    own_platform: Platform, tmp_path: Path
) -> None:
    host = tmp_path / "host-secret"
    host.mkdir()
    (host / "marker").write_text("HOST-SECRET\n")
    folder = f"race-{uuid.uuid4().hex[:8]}"
    base = _storage(own_platform, folder)
    (base / "d").mkdir(parents=True)
    (base / "d" / "inside").write_text("storage\n")
    # Relative, so that it leads to the host folder wherever it is resolved from.
    (base / "l").symlink_to(os.path.relpath(host, base))
    url, token = own_platform.url, own_platform.token
    async with get(url, token, quiet=True) as client:
        swapper = await start_job(
            client,
            image="python:3.11",
            command=f"python3 -c {shlex.quote(SWAPPER)}",
            volumes=[client.parse.volume(f"storage:{folder}:/mnt/f:rw")],
        )
        try:
            await wait_running(client, swapper.id)
            await wait_log(client, swapper.id, b"swapping")
            statuses, logs = await _victims(client, url, token, folder)
            (base / "stop").touch()
            assert (await finished(client, swapper.id)).status == JobStatus.SUCCEEDED
            said = await output(client, swapper.id)
        finally:
            (base / "stop").touch()
            await client.jobs.kill(swapper.id)
    swapped = re.search(r"swapped (\d+) of (\d+)", said)
    assert swapped and int(swapped[1]) > 0, said  # the attack really ran
    assert 500 not in statuses, statuses
    assert all(status in (202, 400) for status in statuses), statuses
    assert logs, "no victim job ran"
    for log in logs:
        assert "HOST-SECRET" not in log and "marker" not in log, log
    assert sorted(p.name for p in host.iterdir()) == ["marker"]
    assert tracebacks(own_platform.paths.log_file) == []


async def _victims(
    client: Client, url: str, token: str, folder: str
) -> tuple[list[int], list[str]]:
    """Jobs that mount storage:<folder>/d while it is being swapped."""
    statuses: list[int] = []
    logs: list[str] = []
    command = "sh -c 'ls -A /mnt/v; cat /mnt/v/marker 2>/dev/null; touch /mnt/v/victim-was-here'"
    src = f"storage://local/local/default/{folder}/d"
    body = job_body(
        command,
        volumes=[{"src_storage_uri": src, "dst_path": "/mnt/v", "read_only": False}],
    )
    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            status, answer = await post_job(session, url, token, body)
            statuses.append(status)
            if status == 202:
                job = await finished(client, answer["id"])
                log = await output(client, job.id)
                if job.status == JobStatus.SUCCEEDED:
                    logs.append(log)
                elif job.reason == "ContainerCannotRun":  # refused at its start
                    pass
                else:  # bwrap saw the swap while mounting and stopped (exit 1)
                    assert log.startswith("bwrap: "), (job.reason, log)
                    assert "HOST-SECRET" not in log

        for _ in range(VICTIMS // 4):
            await asyncio.gather(*(one() for _ in range(4)))
    return statuses, logs


async def test_a_planted_symlink_creates_nothing_on_the_host(
    own_platform: Platform, tmp_path: Path
) -> None:
    target = tmp_path / "host-dir"
    target.mkdir()
    folder = f"plant-{uuid.uuid4().hex[:8]}"
    base = _storage(own_platform, folder)
    base.mkdir(parents=True)
    _storage(own_platform, "inner").mkdir(exist_ok=True)
    # As bwrap resolves /newroot/mnt/a/rel/X while it sets the sandbox up.
    (base / "rel").symlink_to("../../../oldroot" + str(target))
    volumes = [
        {
            "src_storage_uri": f"storage://local/local/default/{folder}",
            "dst_path": "/mnt/a",
            "read_only": False,
        },
        {
            "src_storage_uri": "storage://local/local/default/inner",
            "dst_path": "/mnt/a/rel/X",
            "read_only": False,
        },
    ]
    async with (
        aiohttp.ClientSession() as session,
        get(own_platform.url, own_platform.token, quiet=True) as client,
    ):
        status, answer = await post_job(
            session,
            own_platform.url,
            own_platform.token,
            job_body("true", volumes=volumes),
        )
        if status == 202:  # it must at least not run
            job = await finished(client, answer["id"])
            assert job.status == JobStatus.FAILED, await output(client, job.id)
    assert status == 400, answer
    assert "lies inside the volume at '/mnt/a'" in answer["error"]
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("mode", [SandboxMode.BWRAP])
async def test_the_sandbox_refuses_nested_volumes_too(
    tmp_path: Path, mode: SandboxMode
) -> None:
    outer, inner = tmp_path / "outer", tmp_path / "inner"
    outer.mkdir()
    inner.mkdir()
    spec = JobSpec(
        "job-nested",
        ["true"],
        {},
        None,
        [Mount(outer, "/mnt/a", False), Mount(inner, "/mnt/a/b", False)],
        tmp_path / "log",
    )
    with pytest.raises(PreflightError, match="lies inside the volume at /mnt/a"):
        await Executor(mode=mode).start(spec)
