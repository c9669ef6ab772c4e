"""MountPicker driven as a user would, against the real local platform's storage."""

from __future__ import annotations

import uuid

import pytest
from yarl import URL

from apolo_jupyter import Container, JobStatus, Resources, Volume
from apolo_jupyter.kernel._runtime import runtime
from apolo_jupyter.widgets import MountPicker
from apolo_jupyter.widgets._mount_picker import UP

from .conftest import wait_finished


def _name() -> str:
    return f"pick-{uuid.uuid4().hex[:8]}"


def _type_new_folder(picker: MountPicker, name: str) -> None:
    picker._new_name.value = name  # Enter in the text box creates it


def test_create_choose_and_add_a_mount() -> None:
    picker = MountPicker()
    name = _name()
    _type_new_folder(picker, name)
    assert picker._create_error.value == ""
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


def test_internal_folders_are_listed_only_when_asked() -> None:
    """``--sync`` copies and ``--result`` values live in ``.apolo-jupyter``."""
    parent = _name()
    client = runtime().client()
    for folder in (".apolo-jupyter/sync", "data"):
        runtime().run(
            client.storage.mkdir(URL(f"storage:{parent}/{folder}"), parents=True)
        )
    assert MountPicker(start=parent)._folders.options == (UP, "data")
    shown = MountPicker(start=parent, show_hidden=True)._folders.options
    assert shown == (UP, ".apolo-jupyter", "data")


def test_errors_show_under_their_field_and_change_nothing() -> None:
    name = _name()
    picker = MountPicker()
    _type_new_folder(picker, name)
    picker._path.value = "relative/path"
    picker._add.click()
    assert "must be absolute" in picker._path_error.value
    assert picker._create_error.value == ""
    assert picker.value == []
    picker._path.value = "/data"
    picker._add.click()
    assert picker._path_error.value == ""
    picker._add.click()  # the same container path again
    assert "already used" in picker._path_error.value
    assert picker.value == [f"storage:{name}:/data"]
    _type_new_folder(picker, "bad#name")
    error = picker._create_error.value
    assert "Fragment" in error or "not allowed" in error
    assert picker._path_error.value != ""  # each error stays with its own field
    assert "<script>" not in MountPicker(mounts=[])._create_error.value


def test_remove_a_mount_with_its_button() -> None:
    first, second = _name(), _name()
    picker = MountPicker(mounts=[f"storage:{first}:/a", f"storage:{second}:/b:ro"])
    assert picker.value == [f"storage:{first}:/a", f"storage:{second}:/b:ro"]
    label, _, remove_first = picker.mount_rows()[0]
    assert f"storage:{first}" in label.value
    remove_first.click()
    assert picker.value == [f"storage:{second}:/b:ro"]
    assert repr(MountPicker(mounts=[])) == "MountPicker(no mounts)"


def test_an_added_mounts_read_only_flag_can_change() -> None:
    name = _name()
    picker = MountPicker(mounts=[f"storage:{name}:/var/data"])
    _, read_only, _ = picker.mount_rows()[0]
    assert read_only.value is False
    read_only.value = True
    assert picker.value == [f"storage:{name}:/var/data:ro"]
    assert picker.volumes[0].read_only
    read_only.value = False
    assert picker.value == [f"storage:{name}:/var/data"]
    picker.set_read_only("/var/data", True)
    assert picker.mount_rows()[0][1].value is True


def test_empty_lists_say_what_to_do() -> None:
    parent = _name()
    runtime().run(
        runtime().client().storage.mkdir(URL(f"storage:{parent}"), parents=True)
    )
    picker = MountPicker(start=parent)
    assert picker._folders.options == (".. (parent folder)",)
    assert "No folders here yet" in picker._folders_note.value
    assert "No mounts yet" in picker._rows.children[0].value
    _type_new_folder(picker, "child")
    assert picker._folders_note.value == ""


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
