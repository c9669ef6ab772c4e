"""Secret keys as long as the real platform allows (253 characters) are stored
and served; a longer one is a 400 that names the limit, never a 500."""

from __future__ import annotations

import uuid

import pytest

from apolo_jupyter import Client, IllegalArgumentError

from ..conftest import Platform
from ._helpers import tracebacks


async def test_the_longest_keys_work_and_longer_ones_name_the_limit(
    client: Client, platform: Platform
) -> None:
    before = len(tracebacks(platform.paths.log_file))
    for length in (250, 252, 253):
        key = f"k{uuid.uuid4().hex}".ljust(length, "x")
        await client.secrets.add(key, b"value-" + str(length).encode())
        assert await client.secrets.get(key) == b"value-" + str(length).encode()
        async with client.secrets.list() as secrets:
            keys = [s.key async for s in secrets]
        assert key in keys
        assert all(k[0] != "." for k in keys), keys  # no temporary file shows
        await client.secrets.rm(key)
    with pytest.raises(IllegalArgumentError, match=r"254 characters.*at most 253"):
        await client.secrets.add("k" * 254, b"value")
    assert len(tracebacks(platform.paths.log_file)) == before
