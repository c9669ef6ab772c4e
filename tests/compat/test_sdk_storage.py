"""The unmodified official ``apolo_sdk`` uses our platform's storage unchanged."""

from __future__ import annotations

import asyncio
import errno
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from ..conftest import Platform

apolo_sdk: Any = pytest.importorskip("apolo_sdk")

MiB = 1 << 20


def _folder() -> str:
    return f"sdk-{uuid.uuid4().hex[:8]}"


async def _wait_finished(client: Any, job_id: str) -> Any:
    for _ in range(600):
        job = await client.jobs.status(job_id)
        if job.status in (
            apolo_sdk.JobStatus.SUCCEEDED,
            apolo_sdk.JobStatus.FAILED,
            apolo_sdk.JobStatus.CANCELLED,
        ):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


async def test_sdk_storage_round_trip(
    sdk_client: Any, platform: Platform, tmp_path: Path
) -> None:
    folder = _folder()
    await sdk_client.storage.mkdir(URL(f"storage:{folder}/sub"), parents=True)
    with pytest.raises(FileExistsError):
        await sdk_client.storage.mkdir(URL(f"storage:{folder}/sub"))
    with pytest.raises(FileNotFoundError):
        await sdk_client.storage.mkdir(URL(f"storage:{folder}/a/b"))
    await sdk_client.storage.mkdir(URL(f"storage:{folder}/sub"), exist_ok=True)

    data = os.urandom(3 * MiB + 333)
    src = tmp_path / "data.bin"
    src.write_bytes(data)
    dst = URL(f"storage:{folder}/data.bin")
    await sdk_client.storage.upload_file(URL(src.as_uri()), dst)
    stored = platform.paths.storage_dir / "local" / "default" / folder / "data.bin"
    assert stored.read_bytes() == data

    async with sdk_client.storage.list(URL(f"storage:{folder}")) as entries:
        listed = {entry.name: entry async for entry in entries}
    assert set(listed) == {"data.bin", "sub"}
    assert listed["data.bin"].is_file() and listed["data.bin"].size == len(data)
    assert listed["sub"].is_dir()
    assert str(listed["data.bin"].permission.value) == "manage"

    status = await sdk_client.storage.stat(dst)
    assert status.is_file() and status.size == len(data)
    assert status.uri == URL(f"storage://local/local/default/{folder}/data.bin")
    root = await sdk_client.storage.stat(URL("storage:"))
    assert root.is_dir()

    await sdk_client.storage.download_file(dst, URL((tmp_path / "back.bin").as_uri()))
    assert (tmp_path / "back.bin").read_bytes() == data
    part = b""
    async with sdk_client.storage.open(dst, 2 * MiB, 1000) as chunks:
        async for chunk in chunks:
            part += chunk
    assert part == data[2 * MiB : 2 * MiB + 1000]

    await sdk_client.storage.mv(dst, URL(f"storage:{folder}/sub/moved.bin"))
    with pytest.raises(apolo_sdk.ResourceNotFound):
        await sdk_client.storage.stat(dst)
    with pytest.raises(IsADirectoryError):
        await sdk_client.storage.rm(URL(f"storage:{folder}"))
    usage = await sdk_client.storage.disk_usage()
    assert usage.total > 0
    await sdk_client.storage.rm(URL(f"storage:{folder}"), recursive=True)
    assert not stored.parent.exists()
    with pytest.raises(apolo_sdk.ResourceNotFound):
        await sdk_client.storage.stat(URL(f"storage:{folder}"))


async def test_sdk_errors_are_os_errors(
    sdk_client: Any, platform: Platform, tmp_path: Path
) -> None:
    folder = _folder()
    await sdk_client.storage.mkdir(URL(f"storage:{folder}"))
    src = tmp_path / "f.txt"
    src.write_text("x")
    with pytest.raises(NotADirectoryError):
        await sdk_client.storage.upload_file(
            URL(src.as_uri()), URL(f"storage:{folder}/none/f.txt")
        )
    host = platform.paths.storage_dir / "local" / "default" / folder
    (host / "out").symlink_to(tmp_path)
    for call in (
        sdk_client.storage.stat(URL(f"storage:{folder}/out/f.txt")),
        sdk_client.storage.download_file(
            URL(f"storage:{folder}/out/f.txt"), URL((tmp_path / "g").as_uri())
        ),
        sdk_client.storage.upload_file(
            URL(src.as_uri()), URL(f"storage:{folder}/out/h")
        ),
        sdk_client.storage.rm(URL(f"storage:{folder}/out/f.txt")),
    ):
        with pytest.raises(PermissionError) as refused:
            await call
        assert refused.value.errno == errno.EACCES
        assert "outside the storage" in str(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".apolo", "f.txt"]


async def test_sdk_job_reads_an_uploaded_file_from_a_read_only_volume(
    sdk_client: Any, tmp_path: Path
) -> None:
    folder = _folder()
    await sdk_client.storage.mkdir(URL(f"storage:{folder}"), parents=True)
    src = tmp_path / "hello.txt"
    src.write_text("hello from storage\n")
    await sdk_client.storage.upload_file(
        URL(src.as_uri()), URL(f"storage:{folder}/hello.txt")
    )

    job = await sdk_client.jobs.run(
        apolo_sdk.Container(
            image=sdk_client.parse.remote_image("ubuntu:latest"),
            resources=apolo_sdk.Resources(memory=100 * MiB, cpu=0.5),
            command="sh -c 'cat /mnt/d/hello.txt; touch /mnt/d/new || echo read-only'",
            volumes=[sdk_client.parse.volume(f"storage:{folder}:/mnt/d:ro")],
        )
    )
    finished = await _wait_finished(sdk_client, job.id)
    logs = b""
    async with sdk_client.jobs.monitor(job.id) as chunks:
        async for chunk in chunks:
            logs += chunk
    assert finished.status == apolo_sdk.JobStatus.SUCCEEDED, logs
    assert finished.history.exit_code == 0
    assert logs.decode().startswith("hello from storage\n")
    assert "read-only" in logs.decode()
    async with sdk_client.storage.list(URL(f"storage:{folder}")) as entries:
        assert [entry.name async for entry in entries] == ["hello.txt"]


async def test_folders_cross_between_the_sdk_and_our_client(
    sdk_client: Any, client: Any, platform: Platform, tmp_path: Path
) -> None:
    """A tree the official SDK uploads, ours downloads byte for byte, and back;
    both read the same .gitignore the same way."""
    src = tmp_path / "src"
    (src / "sub" / "deep").mkdir(parents=True)
    (src / ".gitignore").write_text("*.log\n!keep.log\nsub/deep/\n")
    files = {
        "a.txt": b"a",
        "big.bin": os.urandom(2 * MiB + 5),
        "run.log": b"ignored",
        "keep.log": b"kept",
        "sub/b.txt": b"b",
        "sub/deep/c.txt": b"ignored too",
    }
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    folder = _folder()
    ignore = frozenset({".gitignore"})
    await sdk_client.storage.mkdir(URL(f"storage:{folder}"))  # both need the parent

    await sdk_client.storage.upload_dir(
        URL(src.as_uri()), URL(f"storage:{folder}/sdk"), ignore_file_names=ignore
    )
    await client.storage.upload_dir(
        src, URL(f"storage:{folder}/ours"), ignore_file_names=ignore
    )
    root = platform.paths.storage_dir / "local" / "default" / folder

    def tree(base: Path) -> dict[str, bytes]:
        return {
            p.relative_to(base).as_posix(): p.read_bytes()
            for p in sorted(base.rglob("*"))
            if p.is_file()
        }

    assert tree(root / "sdk") == tree(root / "ours")
    assert set(tree(root / "ours")) == {".gitignore", "a.txt", "big.bin", "keep.log", "sub/b.txt"}  # fmt: skip

    await client.storage.download_dir(URL(f"storage:{folder}/sdk"), tmp_path / "d1")
    await sdk_client.storage.download_dir(
        URL(f"storage:{folder}/ours"), URL((tmp_path / "d2").as_uri())
    )
    assert tree(tmp_path / "d1") == tree(tmp_path / "d2") == tree(root / "ours")

    async with sdk_client.storage.glob(URL(f"storage:{folder}/*/*.txt")) as it:
        theirs = sorted(str(u) for u in [u async for u in it])
    async with client.storage.glob(URL(f"storage:{folder}/*/*.txt")) as it:
        ours = sorted(str(u) for u in [u async for u in it])
    assert (
        ours
        == theirs
        == [
            f"storage:{folder}/ours/a.txt",
            f"storage:{folder}/sdk/a.txt",
        ]
    )
