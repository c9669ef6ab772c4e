"""The folder sync engine on the real local platform, and real jobs that use it:
only changes travel, ignore files hold, the size limit says how to raise it, and
the job sees the folder read-only at its working directory."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from yarl import URL

from apolo_jupyter import (
    Client,
    JobDescription,
    ResourceNotFound,
    StorageProgressStart,
)
from apolo_jupyter.kernel._sync import (
    LIMIT_VAR,
    MANIFEST,
    SyncError,
    parse_size,
    remote_folder,
    sync_folder,
)
from apolo_jupyter.kernel._transfer import Tracker

from .conftest import Platform, job_log, start_job, wait_finished


def _host(platform: Platform, uri: URL) -> Path:
    rel = uri.path.lstrip("/")
    return platform.paths.storage_dir.joinpath("local", "default", rel)


def _remote(tmp_path: Path) -> URL:
    return URL(f"storage:sync-tests/{uuid.uuid4().hex[:8]}")


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


class Starts:
    def __init__(self) -> None:
        self.names: list[str] = []

    def start(self, data: StorageProgressStart) -> None:
        self.names.append(data.src.name)


def _project(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "helpers.py").write_text("def greet(name):\n    return f'hi {name}'\n")
    (root / "config.yaml").write_text("epochs: 3\n")
    (root / "data" / "small.csv").write_text("a,b\n1,2\n")
    return root


async def test_only_changes_travel_and_removals_follow(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    local = _project(tmp_path / "proj")
    (local / "data" / "old").mkdir()
    (local / "data" / "old" / "x.txt").write_text("x")
    remote = _remote(tmp_path)

    first = await sync_folder(client, local, remote=remote)
    assert sorted(first.uploaded) == [
        "config.yaml",
        "data/old/x.txt",
        "data/small.csv",
        "helpers.py",
    ]
    assert _files(_host(platform, remote)) == _files(local)
    assert "4 files uploaded" in first.summary()

    again = await sync_folder(client, local, remote=remote)
    assert again.up_to_date and again.uploaded == ()
    assert "up to date, 0 files uploaded" in again.summary()

    (local / "helpers.py").write_text("def greet(name):\n    return f'hello {name}'\n")
    (local / "config.yaml").unlink()
    (local / "new").mkdir()
    (local / "new" / "empty").mkdir()
    shutil.rmtree(local / "data" / "old")
    starts = Starts()
    third = await sync_folder(client, local, remote=remote, progress=starts)
    assert third.uploaded == ("helpers.py",) and starts.names == ["helpers.py"]
    assert sorted(third.removed) == ["config.yaml", "data/old"]
    assert _files(_host(platform, remote)) == _files(local)
    assert (_host(platform, remote) / "new" / "empty").is_dir()
    assert not (_host(platform, remote) / "data" / "old").exists()

    # the same size but a new time is a change too
    stat = (local / "data" / "small.csv").stat()
    os.utime(local / "data" / "small.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10))
    assert (await sync_folder(client, local, remote=remote)).uploaded == (
        "data/small.csv",
    )


async def test_a_deleted_storage_folder_is_synced_again_whole(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    local = _project(tmp_path / "proj")
    remote = _remote(tmp_path)
    await sync_folder(client, local, remote=remote)
    await client.storage.rm(remote, recursive=True)  # the manifest goes with it
    again = await sync_folder(client, local, remote=remote)
    assert len(again.uploaded) == 3
    assert _files(_host(platform, remote)) == _files(local)


async def test_ignore_files_and_default_excludes(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    local = _project(repo / "proj")
    (repo / ".gitignore").write_text("*.log\n")  # above the folder: still applies
    (local / ".apoloignore").write_text("data/\n!keep.ckpt\n*.ckpt\n")
    (local / ".gitignore").write_text("secret.txt\n")
    for rel in (
        "run.log",
        "secret.txt",
        "model.ckpt",
        ".git/HEAD",
        "__pycache__/helpers.cpython-311.pyc",
        ".ipynb_checkpoints/x-checkpoint.ipynb",
        ".venv/bin/python",
        "sub/notes.txt",
    ):
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_text(rel)
    (local / "link-to-parent").symlink_to(repo, target_is_directory=True)
    remote = _remote(tmp_path)
    result = await sync_folder(client, local, remote=remote)
    assert sorted(_files(_host(platform, remote))) == [
        ".apoloignore",
        ".gitignore",
        "config.yaml",
        "helpers.py",
        "sub/notes.txt",
    ]
    assert result.files == 5


async def test_size_limit_says_how_to_raise_it(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = _project(tmp_path / "proj")
    (local / "data" / "big.bin").write_bytes(os.urandom(300_000))
    remote = _remote(tmp_path)
    with pytest.raises(SyncError) as refused:
        await sync_folder(client, local, remote=remote, limit=100_000)
    message = str(refused.value)
    assert "100.0 kB" in message and "data/ (300.0 kB)" in message
    assert ".apoloignore" in message and f"%env {LIMIT_VAR}=2G" in message
    with pytest.raises(ResourceNotFound):
        await client.storage.stat(remote)  # nothing was sent

    monkeypatch.setenv(LIMIT_VAR, "1M")
    assert len((await sync_folder(client, local, remote=remote)).uploaded) == 4
    monkeypatch.setenv(LIMIT_VAR, "lots")
    with pytest.raises(SyncError, match="not a size"):
        await sync_folder(client, local, remote=remote)


def test_sizes_and_names() -> None:
    assert parse_size("500M") == 500 * 10**6
    assert parse_size("2G") == 2 * 10**9
    assert parse_size("1.5gb") == 1_500_000_000
    assert parse_size("123") == 123
    a, b = Path("/x/one/proj"), Path("/x/two/proj")
    assert remote_folder(a) != remote_folder(b)
    assert remote_folder(a) == remote_folder(a)
    assert str(remote_folder(a)).startswith("storage:.apolo-jupyter/sync/proj-")
    assert str(remote_folder(Path("/x/we ird!"))).split("/")[-1].startswith("we_ird_")


async def test_a_job_runs_the_synced_code_read_only_in_its_working_directory(
    client: Client, tmp_path: Path
) -> None:
    local = _project(tmp_path / "proj")
    result = await sync_folder(client, local, remote=_remote(tmp_path))
    path = result.mount_path()
    assert path == "/apolo/sync/proj"
    script = (
        "import os, helpers; print(helpers.greet('job'), os.getcwd()); "
        "print(open('config.yaml').read().strip()); "
        "open('out.txt', 'w')"
    )
    job = await start_job(
        client,
        image="python:3.11",
        command=f'python3 -c "{script}"',
        volumes=[client.parse.volume(f"{result.remote}:{path}:ro")],
        working_dir=path,
    )
    final: JobDescription = await wait_finished(client, job.id)
    text = (await job_log(client, job.id)).decode()
    assert "hi job /apolo/sync/proj" in text and "epochs: 3" in text
    assert "Read-only file system" in text  # the job cannot change the code
    assert final.history.exit_code == 1

    # the tracker a magic would show counts what was sent
    tracker = Tracker("sync")
    (local / "helpers.py").write_text("def greet(name):\n    return 'changed'\n")
    await sync_folder(client, local, remote=result.remote, progress=tracker)
    assert tracker.snapshot().files_done == 1


# ------------------------------------------------------------------ the magics


def test_apolo_run_sync_mounts_the_folder_and_a_second_run_sends_nothing(
    shell: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = _project(tmp_path / "proj")
    job = shell.run_line_magic(
        "apolo_run", f"--sync {local} ubuntu -- sh -c 'pwd; cat config.yaml; ls'"
    )
    out = capsys.readouterr().out
    assert job.status.value == "succeeded"
    assert "3 files uploaded" in out and "in the job at /apolo/sync/proj" in out
    assert "/apolo/sync/proj\nepochs: 3\n" in out and "helpers.py" in out

    monkeypatch.chdir(local)  # DIR defaults to the notebook's folder
    shell.run_line_magic("apolo_run", "--sync ubuntu -- true")
    assert "up to date, 0 files uploaded" in capsys.readouterr().out

    # -w names where the folder goes (and the working directory)
    shell.run_line_magic("apolo_run", "--sync -w /work/code ubuntu -- pwd")
    out = capsys.readouterr().out
    assert "in the job at /work/code" in out and "\n/work/code\n" in out

    with pytest.raises(UsageError, match="not a folder"):
        shell.run_line_magic("apolo_run", f"--sync {local}/helpers.py ubuntu -- true")
    monkeypatch.setenv("APOLO_JUPYTER_SYNC_LIMIT", "10")
    with pytest.raises(
        UsageError, match=r"sync limit of 10 B.*APOLO_JUPYTER_SYNC_LIMIT"
    ):
        shell.run_line_magic("apolo_run", "--sync ubuntu -- true")
