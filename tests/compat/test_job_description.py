"""A job read by our client equals the same job read by apolo-sdk 26.9.0.

Both clients read the same records of the local platform; the descriptions are
compared field by field, down to the kind of each sequence (``job.tags == ["a"]``
holds with the SDK, so it must with ours) and the private bookkeeping flags the
SDK keeps under ``JobDescription._internal``.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from typing import Any

import aiohttp
import pytest
from yarl import URL

from apolo_jupyter import Client
from apolo_jupyter.client import _wire

from ..conftest import Platform, start_job, wait_finished

sdk_jobs: Any = pytest.importorskip("apolo_sdk._jobs")


def _plain(value: Any) -> Any:
    """A comparable form of either client's model: class names drop out, field
    names, enum names and the kind of each sequence stay."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, URL):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_plain(v) for v in value])
    return value


async def _raw(platform: Platform, job_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {platform.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{platform.url}/jobs/{job_id}", headers=headers) as resp,
    ):
        resp.raise_for_status()
        data: dict[str, Any] = await resp.json()
        return data


async def _finished_job(client: Client) -> str:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    job = await start_job(client, "true", tags=[tag, "second"], name=f"d{tag[2:]}")
    await wait_finished(client, job.id)
    return job.id


async def test_status_and_list_equal_the_sdks(client: Client, sdk_client: Any) -> None:
    job_id = await _finished_job(client)
    ours = await client.jobs.status(job_id)
    theirs = await sdk_client.jobs.status(job_id)
    assert _plain(ours) == _plain(theirs)
    assert ours.tags == theirs.tags == list(ours.tags)
    async with client.jobs.list(tags=ours.tags[:1]) as jobs:
        listed = [_plain(j) async for j in jobs]
    async with sdk_client.jobs.list(tags=ours.tags[:1]) as jobs:
        assert listed == [_plain(j) async for j in jobs] != []


async def test_bookkeeping_flags_and_absent_tags_read_as_the_sdk_does(
    platform: Platform, client: Client, sdk_client: Any
) -> None:
    raw = await _raw(platform, await _finished_job(client))
    for flags in [
        {"materialized": True, "being_dropped": True, "logs_removed": True},
        {"being_dropped": True},
        {"materialized": False, "being_dropped": False, "logs_removed": False},
    ]:
        data = {**raw, **flags}
        ours = _wire.job_description_from_api(data, client.parse)
        theirs = sdk_jobs._job_description_from_api(data, sdk_client.parse)
        assert _plain(ours) == _plain(theirs)
        assert ours._internal.being_dropped is flags["being_dropped"]
    untagged = {k: v for k, v in raw.items() if k != "tags"}
    ours = _wire.job_description_from_api(untagged, client.parse)
    theirs = sdk_jobs._job_description_from_api(untagged, sdk_client.parse)
    assert _plain(ours) == _plain(theirs)
    assert ours.tags == ()


async def test_a_bare_http_entry_and_the_restart_policy_read_as_the_sdk_does(
    platform: Platform, client: Client, sdk_client: Any
) -> None:
    raw = await _raw(platform, await _finished_job(client))
    container = {k: v for k, v in raw["container"].items() if k != "http"}
    for http in [{}, {"port": 8080}, {"requires_auth": True}, None]:
        data = {
            **raw,
            "container": container if http is None else {**container, "http": http},
        }
        ours = _wire.job_description_from_api(data, client.parse)
        theirs = sdk_jobs._job_description_from_api(data, sdk_client.parse)
        assert _plain(ours) == _plain(theirs), http
    # an empty entry is a port the platform did not name, as the SDK reads it
    bare = {**raw, "container": {**container, "http": {}}}
    assert _wire.job_description_from_api(bare, client.parse).container.http is not None
    for policy in ("never", "on-failure", "always"):
        data = {**raw, "restart_policy": policy}
        ours = _wire.job_description_from_api(data, client.parse)
        theirs = sdk_jobs._job_description_from_api(data, sdk_client.parse)
        assert repr(ours.restart_policy) == repr(theirs.restart_policy) == repr(policy)
        assert str(ours.restart_policy) == str(theirs.restart_policy) == policy
