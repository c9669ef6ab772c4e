"""The forms (MountPicker, the launcher, the forward toggle) are stock ipywidgets
containers; their outputs name the kernel process that holds their models, so a
notebook reopened after that kernel has gone shows their text and HTML, not
"Error displaying widget: model not found" (``server._reopen``).

A child Python process plays the kernel: it builds each form and prints the
output IPython would save; once it has exited, the server's load hook drops the
widget views from a notebook holding those outputs, and keeps their fallbacks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from apolo_jupyter.server._reopen import drop_gone_views

WIDGET = "application/vnd.jupyter.widget-view+json"

KERNEL = textwrap.dedent(
    """
    import json

    from apolo_jupyter.widgets import MountPicker
    from apolo_jupyter.widgets._forward_toggle import PortForwardToggle
    from apolo_jupyter.widgets._launcher import JobLauncherView


    def picker():
        return MountPicker(
            list_folders=lambda path: ["data"],
            create_folder=lambda path: None,
            parse_volume=lambda spec: None,
        )


    def ok(text):
        return None


    forms = {
        "picker": picker(),
        "launcher": JobLauncherView(
            presets=["cpu-small"],
            picker=picker(),
            check_image=ok,
            check_env=ok,
            check_port_pair=ok,
            check_life_span=ok,
            on_run=ok,
        ),
        "toggle": PortForwardToggle("job-1", 8080, on_change=ok),
    }
    outputs = {}
    for key, form in forms.items():
        data, metadata = form._repr_mimebundle_()
        outputs[key] = {
            "output_type": "display_data",
            "data": data,
            "metadata": metadata,
        }
    print(json.dumps(outputs))
    """
)


def _outputs_of_a_gone_kernel() -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", KERNEL],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    outputs: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return outputs


def test_a_gone_kernels_forms_open_as_their_fallbacks() -> None:
    outputs = _outputs_of_a_gone_kernel()
    for key, output in outputs.items():
        assert WIDGET in output["data"], key
        assert output["metadata"]["apolo_jupyter"]["kernel"]["pid"] > 0, key
    notebook = {
        "cells": [
            {"cell_type": "code", "source": "", "outputs": [output]}
            for output in outputs.values()
        ]
    }
    assert drop_gone_views(notebook) == 3
    for key, output in outputs.items():
        assert WIDGET not in output["data"], key
    assert outputs["picker"]["data"]["text/plain"] == "MountPicker(no mounts)"
    assert outputs["launcher"]["data"]["text/plain"].startswith("JobLauncher(")
    toggle = outputs["toggle"]["data"]["text/html"]
    assert "Forward of port 8080 of <code>job-1</code>: off" in toggle
