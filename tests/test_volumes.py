"""Storage volumes in jobs on the local platform: rw, ro, traversal, sharing."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from apolo_jupyter import (
    Client,
    Container,
    IllegalArgumentError,
    JobDescription,
    JobStatus,
    Resources,
    Volume,
)

from .conftest import Platform, job_log, wait_finished


def _folder() -> str:
    return f"vol-{uuid.uuid4().hex[:8]}"


async def _run(client: Client, command: str, *volumes: Volume) -> JobDescription:
    job = await client.jobs.run(
        Container(
            image=client.parse.remote_image("ubuntu:latest"),
            resources=Resources(memory_mb=100, cpu=0.5),
            command=command,
            volumes=list(volumes),
        )
    )
    return await wait_finished(client, job.id)


async def _log(client: Client, job_id: str) -> str:
    return (await job_log(client, job_id)).decode()


def _host(platform: Platform, folder: str) -> Path:
    return platform.paths.storage_dir / "local" / "default" / folder


async def test_written_data_is_in_storage_after_the_job(
    client: Client, platform: Platform
) -> None:
    folder = _folder()
    volume = Volume(storage_uri=URL(f"storage:{folder}"), container_path="/mnt/data")
    job = await _run(client, "sh -c 'echo result > /mnt/data/out.txt'", volume)
    assert job.status == JobStatus.SUCCEEDED, await _log(client, job.id)
    assert (_host(platform, folder) / "out.txt").read_text() == "result\n"


async def test_read_only_volume_rejects_writes_even_after_remount(
    client: Client, platform: Platform
) -> None:
    folder = _folder()
    _host(platform, folder).mkdir(parents=True)
    (_host(platform, folder) / "given.txt").write_text("data\n")
    ro = client.parse.volume(f"storage:{folder}:/mnt/public:ro")
    job = await _run(client, "cat /mnt/public/given.txt", ro)
    assert job.status == JobStatus.SUCCEEDED
    assert await _log(client, job.id) == "data\n"
    job = await _run(client, "sh -c 'echo x > /mnt/public/new.txt'", ro)
    assert job.status == JobStatus.FAILED
    assert "Read-only file system" in await _log(client, job.id)
    remount = (
        "sh -c 'mount -o remount,rw /mnt/public; mount -o remount,bind,rw /mnt/public;"
        " echo x > /mnt/public/new.txt'"
    )
    job = await _run(client, remount, ro)
    assert job.status == JobStatus.FAILED
    assert not (_host(platform, folder) / "new.txt").exists()


async def test_read_only_volume_must_exist(client: Client) -> None:
    ro = client.parse.volume(f"storage:{_folder()}:/mnt/public:ro")
    with pytest.raises(IllegalArgumentError, match="does not exist: create the folder"):
        await _run(client, "true", ro)


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["/"], "cannot be mounted at '/'"),
        (["//"], "cannot be mounted at '//'"),
        (["/var/data", "/var/data/"], "two volumes are mounted at '/var/data/'"),
    ],
)
async def test_bad_mount_points_are_refused_when_the_job_is_created(
    client: Client, paths: list[str], message: str
) -> None:
    volumes = [client.parse.volume(f"storage:{_folder()}:{path}") for path in paths]
    with pytest.raises(IllegalArgumentError, match=message):
        await _run(client, "true", *volumes)


@pytest.mark.parametrize(
    "src",
    [
        "storage://local/local/default/../../../etc",
        "storage://local/local/default/a/../../../../tmp",
        "storage://other-cluster/local/default/x",
        "storage://local/local",
        "file:///etc",
    ],
)
async def test_traversal_is_refused_before_anything_runs(
    platform: Platform, client: Client, tmp_path: Path, src: str
) -> None:
    before = sorted(p.name for p in platform.paths.storage_dir.parent.iterdir())
    body = {
        "container": {
            "image": "ubuntu:latest",
            "command": "true",
            "resources": {"cpu": 0.1, "memory": 2**26},
            "volumes": [
                {"src_storage_uri": src, "dst_path": "/mnt", "read_only": False}
            ],
        },
        "cluster_name": "local",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{platform.url}/jobs",
            json=body,
            headers={"Authorization": f"Bearer {platform.token}"},
        ) as resp,
    ):
        assert resp.status == 400, await resp.text()
        error = (await resp.json())["error"]
    assert "storage" in error or "volume" in error
    assert sorted(p.name for p in platform.paths.storage_dir.parent.iterdir()) == before


async def test_symlink_out_of_storage_is_refused(
    client: Client, platform: Platform
) -> None:
    folder = _folder()
    _host(platform, folder).parent.mkdir(parents=True, exist_ok=True)
    _host(platform, folder).symlink_to("/etc")
    volume = Volume(storage_uri=URL(f"storage:{folder}"), container_path="/mnt/etc")
    with pytest.raises(
        IllegalArgumentError, match=r"goes through a symlink \(.* -> /etc\)"
    ):
        await _run(client, "true", volume)


async def test_concurrent_jobs_share_a_volume(client: Client) -> None:
    folder = _folder()
    shared = Volume(storage_uri=URL(f"storage:{folder}"), container_path="/var/data")
    writer = (
        "sh -c 'echo from-writer > /var/data/w.txt;"
        " while [ ! -f /var/data/r.txt ]; do sleep 0.05; done; cat /var/data/r.txt'"
    )
    reader = (
        "sh -c 'while [ ! -f /var/data/w.txt ]; do sleep 0.05; done;"
        " cat /var/data/w.txt; echo from-reader > /var/data/r.txt'"
    )
    first, second = await asyncio.gather(
        asyncio.wait_for(_run(client, writer, shared), 30),
        asyncio.wait_for(_run(client, reader, shared), 30),
    )
    assert first.status == second.status == JobStatus.SUCCEEDED
    assert await _log(client, first.id) == "from-reader\n"
    assert await _log(client, second.id) == "from-writer\n"
