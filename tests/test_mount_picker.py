"""MountPicker driven as a user would, against the real local platform's storage."""

from __future__ import annotations

import uuid

import pytest
from yarl import URL

from apolo_jupyter import Container, JobStatus, Resources, Volume
from apolo_jupyter.kernel._runtime import runtime
from apolo_jupyter.widgets import MountPicker

from .conftest import wait_finished


def _name() -> str:
    return f"pick-{uuid.uuid4().hex[:8]}"


def _type_new_folder(picker: MountPicker, name: str) -> None:
    picker._new_name.value = name  # Enter in the text box creates it


def test_create_choose_and_add_a_mount() -> None:
    picker = MountPicker()
    name = _name()
    _type_new_folder(picker, name)
    assert picker._error.value == ""
    assert name in picker._folders.options
    assert picker._folders.value == name  # the new folder is selected
    assert picker._path.value == f"/mnt/{name}"  # a container path is suggested
    picker._read_only.value = True
    picker._add.click()
    assert picker.value == [f"storage:{name}:/mnt/{name}:ro"]
    assert picker.volumes == [
        Volume(
            storage_uri=URL(f"storage://local/local/default/{name}"),
            container_path=f"/mnt/{name}",
            read_only=True,
        )
    ]
    assert repr(picker) == f"MountPicker(storage:{name}:/mnt/{name}:ro)"


def test_browse_into_folders_and_back() -> None:
    parent, child = _name(), "child"
    client = runtime().client()
    runtime().run(client.storage.mkdir(URL(f"storage:{parent}/{child}"), parents=True))
    picker = MountPicker()
    picker._folders.value = parent
    picker._open.click()
    assert "storage:" + parent in picker._location.value
    assert child in picker._folders.options
    picker._folders.value = child
    picker._path.value = "/var/data"
    picker._add.click()
    assert picker.value == [f"storage:{parent}/{child}:/var/data"]
    picker._folders.value = picker._folders.options[0]  # ".. (parent folder)"
    picker._open.click()
    assert parent in picker._folders.options


def test_errors_show_inline_and_change_nothing() -> None:
    name = _name()
    picker = MountPicker()
    _type_new_folder(picker, name)
    picker._path.value = "relative/path"
    picker._add.click()
    assert "must be absolute" in picker._error.value
    assert picker.value == []
    picker._path.value = "/data"
    picker._add.click()
    assert picker._error.value == ""
    picker._add.click()  # the same container path again
    assert "already used" in picker._error.value
    assert picker.value == [f"storage:{name}:/data"]
    _type_new_folder(picker, "bad#name")
    assert "Fragment" in picker._error.value or "not allowed" in picker._error.value
    assert "<script>" not in MountPicker(mounts=[])._error.value


def test_remove_a_mount_with_its_button() -> None:
    first, second = _name(), _name()
    picker = MountPicker(mounts=[f"storage:{first}:/a", f"storage:{second}:/b:ro"])
    assert picker.value == [f"storage:{first}:/a", f"storage:{second}:/b:ro"]
    remove_first = picker._rows.children[0].children[1]
    remove_first.click()
    assert picker.value == [f"storage:{second}:/b:ro"]
    assert repr(MountPicker(mounts=[])) == "MountPicker(no mounts)"


def test_bad_initial_mount_is_refused() -> None:
    with pytest.raises(ValueError, match="storage:<folder>:<path>"):
        MountPicker(mounts=["/tmp:/data"])


def test_picked_volumes_work_in_a_job() -> None:
    name = _name()
    picker = MountPicker()
    _type_new_folder(picker, name)
    picker._path.value = "/var/out"
    picker._add.click()
    client = runtime().client()

    async def run() -> JobStatus:
        job = await client.jobs.run(
            Container(
                image=client.parse.remote_image("ubuntu"),
                resources=Resources(memory_mb=64, cpu=0.1),
                command="sh -c 'echo picked > /var/out/f.txt'",
                volumes=picker.volumes,
            )
        )
        return (await wait_finished(client, job.id)).status

    assert runtime().run(run()) == JobStatus.SUCCEEDED

    async def read() -> bytes:
        data = b""
        async with client.storage.open(URL(f"storage:{name}/f.txt")) as chunks:
            async for chunk in chunks:
                data += chunk
        return data

    assert runtime().run(read()) == b"picked\n"
