"""Disks: client.disks as the SDK has it, and disk: volumes that outlive jobs."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from yarl import URL

from apolo_jupyter import Client, Disk, ResourceNotFound
from apolo_jupyter.kernel._options import JobOptions
from apolo_jupyter.kernel._run_request import plan_run

from .conftest import wait_finished


async def _run(client: Client, volume: str, command: str) -> str:
    plan = await plan_run(client, JobOptions(image="ubuntu", volumes=(volume,),
                                             command=command))  # fmt: skip
    job = await client.jobs.start(**plan.start)
    assert (await wait_finished(client, job.id)).exit_code == 0
    async with client.jobs.monitor(job.id) as it:
        return b"".join([c async for c in it]).decode()


async def test_create_get_list_rm_and_persist_across_jobs(client: Client) -> None:
    name = f"d{uuid.uuid4().hex[:8]}"
    disk = await client.disks.create(2**30, timedelta(hours=1), name=name)
    assert disk.status is Disk.Status.READY and disk.name == name
    assert disk.uri == URL(f"disk://local/local/default/{disk.id}")
    assert (await client.disks.get(name)).id == disk.id
    assert (await client.disks.get(disk.id)).timeout_unused == timedelta(hours=1)
    async with client.disks.list() as it:
        assert disk.id in [d.id async for d in it]

    await _run(client, f"disk:{name}:/mnt/d", "sh -c 'echo kept > /mnt/d/f'")
    out = await _run(client, f"disk:{name}:/mnt/d:ro",
                     "sh -c 'cat /mnt/d/f; touch /mnt/d/g 2>/dev/null || echo read-only'")  # fmt: skip
    assert out.split() == ["kept", "read-only"]
    assert (await client.disks.get(name)).used_bytes == 5
    # The request names the disk by id, as apolo run resolves it.
    plan = await plan_run(client, JobOptions(image="ubuntu", command="true",
                                             volumes=(f"disk:{name}:/mnt/d",)))  # fmt: skip
    assert plan.start["disk_volumes"][0].disk_uri.name == disk.id

    await client.disks.rm(name)
    with pytest.raises(ResourceNotFound):
        await client.disks.get(disk.id)


async def test_bad_disks_say_how_to_fix(client: Client) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="disk create"):
        await plan_run(client, JobOptions(image="ubuntu", command="true",
                                          volumes=("disk:no-such:/mnt",)))  # fmt: skip
    with pytest.raises(Exception, match="positive"):
        await client.disks.create(0)
    with pytest.raises(Exception, match="invalid"):
        await client.disks.create(10, name="Bad Name")
