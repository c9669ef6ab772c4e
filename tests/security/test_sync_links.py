"""``--sync`` sends the folder's own files only: a symlink that leads out of it
(to a credentials file, to /proc) is never followed into storage, nor is
anything that is not a regular file; the summary line names what was skipped."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from yarl import URL

from apolo_jupyter import Client
from apolo_jupyter.kernel._sync import MANIFEST, sync_folder

from ..conftest import Platform


def _stored(platform: Platform, remote: URL) -> dict[str, bytes]:
    root = platform.paths.storage_dir.joinpath("local", "default", remote.path)
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


async def test_sync_never_follows_a_symlink_out_of_the_folder(
    client: Client, platform: Platform, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "creds").write_text("AWS_SECRET=do-not-upload\n")
    local = tmp_path / "notebook"
    (local / "sub").mkdir(parents=True)
    (local / "main.py").write_text("print('hi')\n")
    (local / "same.py").symlink_to("main.py")  # inside: its contents go
    (local / "creds").symlink_to(outside / "creds")
    (local / "sub" / "up").symlink_to("../../outside/creds")
    (local / "env").symlink_to("/proc/self/environ")
    (local / "dirlink").symlink_to(outside)
    (local / "broken").symlink_to("missing.txt")
    os.mkfifo(local / "fifo")
    remote = URL(f"storage:sync-links/{uuid.uuid4().hex[:8]}")

    result = await sync_folder(client, local, remote=remote)

    assert sorted(result.uploaded) == ["main.py", "same.py"]
    stored = _stored(platform, remote)
    assert stored == {"main.py": b"print('hi')\n", "same.py": b"print('hi')\n"}
    out = "a symlink out of the folder"
    assert sorted(result.skipped) == [
        "broken (a broken symlink)",
        f"creds ({out})",
        f"dirlink ({out})",
        f"env ({out})",
        "fifo (not a regular file)",
        f"sub/up ({out})",
    ]
    summary = result.summary()  # one line: the first five, and how many more
    assert f"skipped broken (a broken symlink), creds ({out}), " in summary
    assert summary.endswith("fifo (not a regular file) and 1 more"), summary
    # Again, nothing changed: still skipped and said so, nothing sent.
    again = await sync_folder(client, local, remote=remote)
    assert again.up_to_date and "creds (a symlink out of the folder)" in (
        again.summary()
    )
    assert _stored(platform, remote) == stored
