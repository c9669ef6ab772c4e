"""The unmodified official ``apolo-sdk`` against our local platform."""

from __future__ import annotations

import base64
import getpass
import json
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from ..conftest import Platform

apolo_sdk: Any = pytest.importorskip("apolo_sdk")


def passed_config(platform: Platform) -> str:
    data = {
        "token": platform.token,
        "cluster": "local",
        "url": platform.url,
        "org_name": "local",
        "project_name": "default",
    }
    return base64.b64encode(json.dumps(data).encode()).decode()


async def _exercise_jobs(client: Any) -> None:
    sdk = apolo_sdk
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu:latest"),
        preset_name="cpu-small",
        command="sleep 30",
    )
    assert job.id.startswith("job-")
    assert job.status in (sdk.JobStatus.PENDING, sdk.JobStatus.RUNNING)
    assert job.preset_name == "cpu-small"
    assert job.container.resources.cpu == 1.0
    status = await client.jobs.status(job.id)
    assert status.id == job.id
    ids = []
    async with client.jobs.list(
        statuses={sdk.JobStatus.PENDING, sdk.JobStatus.RUNNING}
    ) as it:
        async for item in it:
            ids.append(item.id)
    assert job.id in ids
    await client.jobs.kill(job.id)
    killed = await client.jobs.status(job.id)
    assert killed.status == sdk.JobStatus.CANCELLED
    assert killed.history.reason == "UserRequested"
    assert killed.history.changed_at is not None

    ran = await client.jobs.run(
        sdk.Container(
            image=client.parse.remote_image("ubuntu:latest"),
            resources=sdk.Resources(memory=100 * 2**20, cpu=0.5),
            command="sh -c 'exit 4'",
            env={"A": "1"},
        ),
        name="compat-run",
        tags=["compat"],
        life_span=3600,
    )
    assert ran.name == "compat-run" and list(ran.tags) == ["compat"]
    assert ran.life_span == 3600
    while not (await client.jobs.status(ran.id)).status.is_finished:
        import asyncio

        await asyncio.sleep(0.05)
    final = await client.jobs.status(ran.id)
    assert final.status == sdk.JobStatus.FAILED
    assert final.history.exit_code == 4
    assert [t.status for t in final.history.transitions] == [
        sdk.JobStatus.PENDING,
        sdk.JobStatus.RUNNING,
        sdk.JobStatus.FAILED,
    ]
    with pytest.raises(sdk.ResourceNotFound):
        await client.jobs.status("job-00000000-0000-4000-8000-000000000000")
    with pytest.raises(sdk.IllegalArgumentError, match="Preset"):
        await client.jobs.start(
            image=client.parse.remote_image("ubuntu"),
            preset_name="nope",
            command="true",
        )


async def test_login_with_token(platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / ".apolo"
    await apolo_sdk.login_with_token(platform.token, url=URL(platform.url), path=path)
    async with apolo_sdk.get(path=path) as client:
        assert client.config.cluster_name == "local"
        assert client.config.project_name == "default"
        assert set(client.config.presets) >= {"cpu-small", "cpu-medium", "cpu-large"}
        assert client.username == getpass.getuser()  # the local platform's owner
        await _exercise_jobs(client)


async def test_passed_config(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APOLO_PASSED_CONFIG", passed_config(platform))
    async with apolo_sdk.get(path=tmp_path / "fresh") as client:
        assert client.config.org_name == "local"
        await _exercise_jobs(client)


async def test_wrong_token_is_refused_by_login(
    platform: Platform, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="401"):
        await apolo_sdk.login_with_token(
            "not-a-token", url=URL(platform.url), path=tmp_path / "x"
        )


async def test_the_sdks_save_gets_the_local_platforms_reason(
    platform: Platform, sdk_client: Any
) -> None:
    """``apolo save`` on the local platform: the SDK raises aiodocker's error
    with the platform's reason, as for a commit that failed on a cluster."""
    from aiodocker.exceptions import DockerError

    client = sdk_client
    job = await client.jobs.start(
        image=client.parse.remote_image("ubuntu:latest"),
        preset_name="cpu-small",
        command="sleep 60",
    )
    try:
        image = client.parse.remote_image("image:saved:v1")
        with pytest.raises(DockerError, match="not in containers") as caught:
            await client.jobs.save(job.id, image)
        assert caught.value.status == 900
    finally:
        await client.jobs.kill(job.id)
