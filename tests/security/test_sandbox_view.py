"""What a job can see of the host (issue 12, items 1 and 4): only the interpreter,
never the folder the platform was started from nor its data directory, and
nothing of a job's request reaches a host process."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from apolo_jupyter import Client, JobStatus, get
from apolo_jupyter.client._errors import StdStreamError
from apolo_jupyter.client._local_home import DaemonInfo, LocalPaths

from ..conftest import Platform, start_job, stop_daemon, wait_log, wait_running
from ._helpers import finished, output, start_daemon

SO_SOURCE = r"""
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void loaded(void) {
    char path[512];
    int n = 0;
    const char *dir = "MARKER_DIR";
    while (dir[n] && n < 400) { path[n] = dir[n]; n++; }
    const char *name = "/loaded";
    for (int i = 0; name[i]; i++) path[n++] = name[i];
    path[n] = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) { write(fd, "x", 1); close(fd); }
}
"""


@pytest.fixture
def started_in(tmp_path: Path) -> Iterator[tuple[Path, DaemonInfo]]:
    """A platform launched from a user's folder that holds a private file, with
    its data directory inside that folder (e.g. started from ~)."""
    folder = tmp_path / "user-folder"
    folder.mkdir()
    (folder / "private.txt").write_text("PRIVATE-USER-FILE\n")
    info = start_daemon(folder / "data", cwd=folder)
    yield folder, info
    stop_daemon(LocalPaths(folder / "data"), info)


async def _run(client: Client, command: str) -> tuple[JobStatus, str]:
    job = await start_job(client, command=command)
    job = await finished(client, job.id)
    return job.status, await output(client, job.id)


async def test_jobs_see_neither_the_start_folder_nor_the_data_directory(
    started_in: tuple[Path, DaemonInfo],
) -> None:
    folder, info = started_in
    secret = folder / "data" / "secret"
    assert secret.exists()
    async with get(info.url, info.token, quiet=True) as client:
        status, log = await _run(client, f"cat {folder}/private.txt")
        assert status == JobStatus.FAILED and "PRIVATE-USER-FILE" not in log, log
        status, log = await _run(client, f"cat {secret}")
        assert status == JobStatus.FAILED, log
        assert secret.read_text().strip() not in log
        status, log = await _run(client, f"ls -A {folder}")
        assert "private.txt" not in log and "data" not in log.split(), log
        # The interpreter still works, with the platform's packages.
        status, log = await _run(client, "python3 -c 'import aiohttp; print(42)'")
        assert (status, log) == (JobStatus.SUCCEEDED, "42\n")


def _build_preload(tmp_path: Path, marker_dir: Path) -> Path:
    source = tmp_path / "evil.c"
    source.write_text(SO_SOURCE.replace("MARKER_DIR", str(marker_dir)))
    library = tmp_path / "evil.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True
    )
    return library


async def test_ld_preload_from_a_request_never_loads_on_the_host(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    library = _build_preload(tmp_path, marker_dir)
    # The control: the library does write its marker when a host process loads it.
    subprocess.run(["true"], env={"LD_PRELOAD": str(library)}, check=True)
    assert (marker_dir / "loaded").exists()
    (marker_dir / "loaded").unlink()
    # A job uploads it to storage and names its host path in LD_PRELOAD.
    folder = f"preload-{uuid.uuid4().hex[:8]}"
    await client.storage.mkdir(client.parse.str_to_uri(f"storage:{folder}"))
    uri = client.parse.str_to_uri(f"storage:{folder}/evil.so")
    await client.storage.create(uri, library.read_bytes())
    host_copy = platform.paths.storage_dir / "local" / "default" / folder / "evil.so"
    assert host_copy.exists()
    job = await start_job(client, command="true", env={"LD_PRELOAD": str(host_copy)})
    job = await finished(client, job.id)
    assert job.status == JobStatus.SUCCEEDED, await output(client, job.id)
    assert not (marker_dir / "loaded").exists()


async def test_job_variables_are_in_no_command_line_or_host_environment(
    client: Client, platform: Platform
) -> None:
    value = f"s3cret-{uuid.uuid4().hex}"
    job = await start_job(
        client,
        command="sh -c 'echo $TOKEN_FOR_TEST; sleep 60'",
        env={"TOKEN_FOR_TEST": value},
    )
    try:
        await wait_running(client, job.id)
        await wait_log(client, job.id, value.encode())  # the payload has it
        daemon = psutil.Process(platform.info.pid)
        bwraps = [p for p in daemon.children() if p.name() == "bwrap"]
        assert bwraps, [p.name() for p in daemon.children()]
        for proc in bwraps:
            assert value not in " ".join(proc.cmdline())
            assert value not in str(proc.environ())
            assert "LD_PRELOAD" not in proc.environ()
    finally:
        await client.jobs.kill(job.id)


async def test_exec_into_a_job_never_loads_its_ld_preload_on_the_host(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    """exec enters the job through host programs (nsenter): they too start with a
    fixed environment; the job's variables reach the command inside the job."""
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    library = _build_preload(tmp_path, marker_dir)
    folder = f"preload-{uuid.uuid4().hex[:8]}"
    await client.storage.mkdir(client.parse.str_to_uri(f"storage:{folder}"))
    uri = client.parse.str_to_uri(f"storage:{folder}/evil.so")
    await client.storage.create(uri, library.read_bytes())
    host_copy = platform.paths.storage_dir / "local" / "default" / folder / "evil.so"
    value = "multi\nline value with spaces ' \" $HOME"
    job = await start_job(
        client,
        command="sleep 300",
        env={"LD_PRELOAD": str(host_copy), "ODD_VALUE": value},
    )
    try:
        await wait_running(client, job.id)
        script = 'printf \'%s|%s\' "$ODD_VALUE" "$LD_PRELOAD"'
        out = b""
        for _ in range(100):  # until the sandbox is up
            async with client.jobs.exec(
                job.id, f"sh -c {shlex.quote(script)}", stdout=True
            ) as stream:
                with contextlib.suppress(StdStreamError):  # raised at the end
                    while (msg := await stream.read_out()) is not None:
                        out += msg.data
            if out:
                break
            await asyncio.sleep(0.05)
        assert out.decode().split("|") == [value, str(host_copy)]
    finally:
        await client.jobs.kill(job.id)
    assert not (marker_dir / "loaded").exists()
