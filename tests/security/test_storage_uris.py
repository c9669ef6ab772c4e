"""``storage:`` paths stay in the project (issue 12, item 12): ``..`` resolves as
in the SDK while it stays inside; what would climb out is refused with a
message that shows what was typed."""

from __future__ import annotations

import pytest

from apolo_jupyter import Client


@pytest.mark.parametrize(
    "typed",
    [
        "storage:../etc",
        "storage:../../../../etc",
        "storage:a/../../b",
        "storage:..",
        "storage:/proj/../../x",
    ],
)
async def test_dot_dot_out_of_the_project_is_refused(
    client: Client, typed: str
) -> None:
    with pytest.raises(ValueError, match="leads outside") as info:
        client.parse.volume(f"{typed}:/mnt/bad")
    assert typed in str(info.value)
    with pytest.raises(ValueError, match="leads outside"):
        client.parse.str_to_uri(typed)


@pytest.mark.parametrize(
    ("typed", "uri"),
    [
        ("storage:a/../b", "storage://local/local/default/b"),
        ("storage:./a/./b", "storage://local/local/default/a/b"),
        ("storage:/other/data", "storage://local/local/other/data"),
        ("storage:/other/x/../y", "storage://local/local/other/y"),
    ],
)
async def test_dot_segments_that_stay_inside_resolve(
    client: Client, typed: str, uri: str
) -> None:
    assert str(client.parse.volume(f"{typed}:/mnt/ok").storage_uri) == uri
