"""Connection resolution: explicit, APOLO_PASSED_CONFIG, apolo-cli login, local."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from apolo_jupyter import ConfigError, JobStatus, PlatformUnreachable, get
from apolo_jupyter.cli import passed_config

from .conftest import Platform, start_job, wait_finished


async def test_explicit_url_and_token(platform: Platform) -> None:
    async with get(platform.url, platform.token, quiet=True) as client:
        assert client.config.source == "explicit url"
        assert client.config.api_url == URL(platform.url)
        assert client.cluster_name == "local"
        assert set(client.presets) == {
            "cpu-small",
            "cpu-medium",
            "cpu-large",
            "cpu-small-p",
        }


async def test_passed_config_wins_over_local(
    isolated_env: Path,
    platform: Platform,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(
        "APOLO_PASSED_CONFIG", passed_config(platform.url, platform.token)
    )
    async with get() as client:
        assert client.config.source == "APOLO_PASSED_CONFIG"
        assert client.config.project_name == "default"
    line = capsys.readouterr().err.strip()
    assert line.startswith("apolo_jupyter: APOLO_PASSED_CONFIG at http://127.0.0.1:")


async def test_malformed_passed_config(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APOLO_PASSED_CONFIG", "not base64 json")
    with pytest.raises(ConfigError, match="malformed"):
        await get(quiet=True)


def _digest(path: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.iterdir())
    }


async def test_apolo_cli_login_is_used_read_only(
    isolated_env: Path, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    apolo_sdk: Any = pytest.importorskip("apolo_sdk")
    cli_dir = isolated_env / ".apolo"
    await apolo_sdk.login_with_token(
        platform.token, url=URL(platform.url), path=cli_dir
    )
    before = _digest(cli_dir)
    mtimes = {p.name: p.stat().st_mtime_ns for p in cli_dir.iterdir()}
    async with get() as client:
        assert client.config.source == f"apolo-cli login ({cli_dir})"
        assert client.config.cluster_name == "local"
        assert set(client.presets) == {
            "cpu-small",
            "cpu-medium",
            "cpu-large",
            "cpu-small-p",
        }
        job = await start_job(client, command="true")
        job = await wait_finished(client, job.id)
        assert job.status == JobStatus.SUCCEEDED
    assert _digest(cli_dir) == before
    assert {p.name: p.stat().st_mtime_ns for p in cli_dir.iterdir()} == mtimes
    # $APOLO_CONFIG points somewhere else: that login is used.
    other = isolated_env / "elsewhere"
    await apolo_sdk.login_with_token(platform.token, url=URL(platform.url), path=other)
    monkeypatch.setenv("APOLO_CONFIG", str(other))
    async with get(quiet=True) as client:
        assert client.config.source == f"apolo-cli login ({other})"


async def test_falls_back_to_the_local_platform(
    isolated_env: Path, platform: Platform
) -> None:
    async with get(quiet=True) as client:
        assert client.config.source == "embedded local platform"
        assert client.config.api_url == URL(platform.url)


async def test_unreachable_platform_says_so() -> None:
    with pytest.raises(
        PlatformUnreachable, match=r"cannot connect to http://127\.0\.0\.1:9"
    ):
        await get("http://127.0.0.1:9/api/v1", "t", quiet=True)


async def test_half_explicit_is_an_error() -> None:
    with pytest.raises(ConfigError, match="both url= and token="):
        await get("http://127.0.0.1:9/api/v1", quiet=True)
