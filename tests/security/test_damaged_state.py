"""A damaged data directory never makes the platform start over silently
(issue 12, item 9): it names the file, what is wrong and how to recover, and a
damaged log index never hides a job's output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from apolo_jupyter import JobStatus, get
from apolo_jupyter.client._local_home import LocalPaths, read_info

from ..conftest import Platform, cli, job_log, start_job
from ._helpers import finished, output


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "APOLO_JUPYTER_HOME": str(home)}


async def _finished_job(plat: Platform) -> str:
    async with get(plat.url, plat.token, quiet=True) as client:
        job = await start_job(
            client,
            command="sh -c 'echo one; sleep 0.3; echo two; sleep 0.3; echo three'",
        )
        assert (await finished(client, job.id)).status == JobStatus.SUCCEEDED
        return job.id


@pytest.mark.parametrize(
    ("damage", "what"),
    [
        (lambda db: db.write_bytes(b""), "is empty (0 bytes)"),
        (
            lambda db: db.write_bytes(b"\0" * 100 + db.read_bytes()[100:]),
            "is damaged (file is not a database)",
        ),
    ],
    ids=["truncated", "header"],
)
async def test_damaged_state_stops_the_start_until_asked(
    tmp_path: Path, damage: object, what: str
) -> None:
    plat = Platform(tmp_path / "home")
    job_id = await _finished_job(plat)
    plat.stop()
    db = plat.paths.db_file
    for extra in ("-wal", "-shm"):
        db.with_name(db.name + extra).unlink(missing_ok=True)
    damage(db)  # type: ignore[operator]
    before = db.read_bytes()
    env = _env(plat.paths.home)
    try:  # a start that wrongly succeeds must not leave its daemon running
        started = cli("local", "start", env=env)
        assert started.returncode == 1, started.stdout
        assert f"the job history {db} {what}" in started.stderr, started.stderr
        assert "apolo-jupyter local start --reset-state" in started.stderr
        assert "Traceback" not in started.stderr + plat.paths.log_file.read_text()
        assert db.read_bytes() == before  # nothing was written over it
        reset = cli("local", "start", "--reset-state", env=env)
        assert reset.returncode == 0, reset.stderr
        kept = [
            p for p in db.parent.iterdir() if p.name.startswith("state.db.damaged-")
        ]
        assert [p.read_bytes() for p in kept] == [before]
        assert f"kept the previous job history as {kept[0]}" in reset.stdout
        info = read_info(plat.paths)
        assert info is not None
        plat.info = info
        async with get(plat.url, plat.token, quiet=True) as client:
            assert [j.id async for j in client.jobs.list()] == []
            assert job_id  # the old history is in the kept file only
    finally:
        cli("local", "stop", env=env)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('{"capacity": {"cpu": 4,}', "is not valid JSON"),
        ('{"capacity": {"cpu": "four"}}', "capacity.cpu must be a number"),
        ('{"presets": [{"name": "x", "cpu": 1}]}', "presets[0].memory"),
        ("[]", "must be an object"),
    ],
)
def test_a_bad_config_is_named_with_the_fix(
    tmp_path: Path, config: str, message: str
) -> None:
    paths = LocalPaths(tmp_path / "home")
    paths.ensure()
    paths.settings_file.write_text(config)
    try:
        started = cli("local", "start", env=_env(paths.home))
    finally:  # a start that wrongly succeeds must not leave its daemon running
        cli("local", "stop", env=_env(paths.home))
    assert started.returncode == 1
    assert str(paths.settings_file) in started.stderr and message in started.stderr
    assert "move it aside to use the defaults" in started.stderr
    assert "Traceback" not in started.stderr


async def test_a_damaged_log_index_still_gives_the_whole_log(
    own_platform: Platform,
) -> None:
    job_id = await _finished_job(own_platform)
    index = own_platform.paths.jobs_dir / job_id / "log.idx"
    good = index.read_text().splitlines()
    assert len(good) >= 2
    for damage in (
        b"\xff\xfe garbage\n\0\0\n",
        (good[0] + "\nnot a line\n" + good[-1] + "\n").encode(),
        (good[-1] + "\n" + good[0] + "\n").encode(),  # out of order
    ):
        index.write_bytes(damage)
        async with get(own_platform.url, own_platform.token, quiet=True) as client:
            assert await output(client, job_id) == "one\ntwo\nthree\n"
            stamped = await job_log(client, job_id, timestamps=True)
            lines = stamped.decode().splitlines()
            assert [line.split(" ", 1)[1] for line in lines] == ["one", "two", "three"]
    log = own_platform.paths.log_file.read_text()
    assert f"{index} is damaged" in log and "Traceback" not in log
