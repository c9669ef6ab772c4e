"""A notebook opened after its kernel has gone shows our views' saved fallbacks.

A real ``jupyter server`` subprocess serves a notebook whose outputs name kernel
processes: one that has exited, this test process (alive), and none (a widget
that is not ours). Opened through the contents API, as JupyterLab opens it, the
gone kernel's output has lost its widget view (so JupyterLab renders its HTML,
not "Error displaying widget: model not found"); the others keep theirs.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from apolo_jupyter.client._process import start_ticks, this_process
from apolo_jupyter.server._reopen import drop_gone_views

from ._jupyter import Server, launch

pytestmark = pytest.mark.timeout(60)
WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("jupyter-reopen")
    env = dict(os.environ)
    env.update(
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
    )
    s = launch("jupyter_server", env, tmp / "server.log", f"--ServerApp.root_dir={tmp}")
    yield s
    s.stop()


def _gone_process() -> dict[str, int | None]:
    """The pid and start time of a process that has exited."""
    proc = subprocess.Popen(["sleep", "60"])
    mark = {"pid": proc.pid, "started": start_ticks(proc.pid)}
    proc.kill()
    proc.wait(10)
    assert mark["started"] is not None
    return mark


def _view(model_id: str, kernel: dict[str, Any] | None) -> dict[str, Any]:
    metadata = {"apolo_jupyter": {"kernel": kernel}} if kernel is not None else {}
    return {
        "output_type": "display_data",
        "data": {
            "text/plain": f"view {model_id}",
            "text/html": f"<div>view {model_id}</div>",
            WIDGET: {"version_major": 2, "version_minor": 0, "model_id": model_id},
        },
        "metadata": metadata,
    }


def test_the_gone_kernels_views_open_as_their_fallbacks(server: Server) -> None:
    root = server.log.parent
    cell = {
        "cell_type": "code",
        "execution_count": 1,
        "id": "c1",
        "metadata": {},
        "source": "%apolo_run …",
        "outputs": [
            _view("gone", _gone_process()),
            _view("alive", this_process()),  # a page reload while the kernel runs
            _view("not-ours", None),
        ],
    }
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    on_disk = json.dumps(nb)
    (root / "saved.ipynb").write_text(on_disk)
    request = urllib.request.Request(
        f"{server.url}/api/contents/saved.ipynb?content=1", headers=server.auth
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        model = json.loads(response.read())
    outputs = model["content"]["cells"][0]["outputs"]
    gone, alive, not_ours = (o["data"] for o in outputs)
    assert WIDGET not in gone and gone["text/html"] == "<div>view gone</div>"
    assert alive[WIDGET]["model_id"] == "alive"
    assert not_ours[WIDGET]["model_id"] == "not-ours"
    assert (root / "saved.ipynb").read_text() == on_disk  # the file is as it was


def test_malformed_marks_leave_the_output_as_it_is() -> None:
    outputs = [
        _view("a", None),
        _view("b", {"pid": "12", "started": 1}),
        _view("c", {"pid": 1}),  # pid 1 runs: no start time to compare
        {"output_type": "display_data", "data": {WIDGET: {}}, "metadata": "x"},
        {"output_type": "stream", "text": "hi"},
    ]
    outputs[0]["metadata"] = {"apolo_jupyter": "not a dict"}
    nb = {"cells": [{"outputs": outputs}, {"source": "no outputs"}, "junk"]}
    assert drop_gone_views(nb) == 0
    assert drop_gone_views({"cells": "junk"}) == drop_gone_views(None) == 0
    gone = _view("gone", _gone_process())
    gone["data"] = {WIDGET: {}}  # nothing else to show: the widget stays
    assert drop_gone_views({"cells": [{"outputs": [gone]}]}) == 0
