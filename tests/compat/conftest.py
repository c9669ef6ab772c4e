"""Fixtures for the official apolo-sdk against our local platform."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from ..conftest import Platform


@pytest.fixture
async def sdk_client(platform: Platform, tmp_path: Path) -> AsyncIterator[Any]:
    """The official client, logged in with our token into a fresh config dir."""
    apolo_sdk: Any = pytest.importorskip("apolo_sdk")
    path = tmp_path / ".apolo"
    await apolo_sdk.login_with_token(platform.token, url=URL(platform.url), path=path)
    async with apolo_sdk.get(path=path) as client:
        yield client
