"""The transfer bar in a real browser: JupyterLab + Debian Chromium.

A notebook copies a folder to storage with ``%apolo_cp`` (the bar shown from the
start: ``APOLO_JUPYTER_PROGRESS_AFTER=0``) and shows the bar's other end states.
The anywidget view renders: description, a bar at 100%, the stats, a colour per
outcome taken from the theme. Screenshots go to ``artifacts/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("playwright")

from playwright.sync_api import Browser, Page, expect

from .._jupyter import Server, launch
from ._lab import ARTIFACTS, chromium, run_all

pytestmark = [pytest.mark.timeout(150)]

NOTEBOOK = "transfer.ipynb"
CELLS = [
    "%load_ext apolo_jupyter",
    "from pathlib import Path\n"
    "data = Path('data')\n"
    "data.mkdir(exist_ok=True)\n"
    "for i in range(12):\n"
    "    (data / f'part-{i}.bin').write_bytes(bytes(200_000))",
    "%apolo_cp -r data storage:lab-transfer-test",
    "from apolo_jupyter.widgets._transfer import TransferProgress\n"
    "views = []\n"
    "for state, fraction in (('running', 0.45), ('failed', 0.3), "
    "('interrupted', 0.6)):\n"
    "    v = TransferProgress()\n"
    "    v.show(f'upload {state}', fraction, '90.0 MB/200.0 MB [00:01<00:02, "
    "75.3 MB/s]', state, 'Interrupted. Continue with -c' if state == "
    "'interrupted' else '')\n"
    "    views.append(v)\n"
    "    display(v)",
]


def _notebook(root: Path) -> None:
    cells: list[dict[str, object]] = [
        {"cell_type": "code", "metadata": {}, "source": src, "outputs": [],
         "execution_count": None}
        for src in CELLS
    ]  # fmt: skip
    nb = {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / NOTEBOOK).write_text(json.dumps(nb))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Server]:
    ARTIFACTS.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="lab-transfer-", dir=ARTIFACTS))
    _notebook(root)
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"})
    )
    env = dict(os.environ)
    env.update(
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        APOLO_JUPYTER_PROGRESS_AFTER="0",
        # pytest's tmp paths on the server's command line read as a headless run
        APOLO_JUPYTER_DISPLAY="widget",
    )
    server = launch(
        "jupyterlab", env, tmp_path / "lab.log",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    )  # fmt: skip
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"lab-transfer-{name}.png"))


def test_transfer_bar_renders_each_outcome(lab: Server, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.set_default_timeout(30_000)
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
    expect(page.locator("#jp-main-statusbar")).to_contain_text(
        re.compile(r"\|\s*Idle"), timeout=30_000
    )
    run_all(page)
    bars = page.locator(".apolo-transfer")
    try:
        expect(bars).to_have_count(4, timeout=90_000)
    except AssertionError:
        shot(page, "missing-bars")
        outputs = page.locator(".jp-Notebook .jp-OutputArea").all_inner_texts()
        raise AssertionError("\n---\n".join(outputs)) from None
    copied = bars.nth(0)
    expect(copied).to_have_attribute("data-state", "done", timeout=60_000)
    expect(copied.locator(".apolo-transfer-description")).to_have_text("upload data")
    expect(copied.locator(".apolo-transfer-percent")).to_have_text("100%")
    expect(copied.locator(".apolo-transfer-stats")).to_contain_text("12/12 files")
    expect(copied.locator("[role=progressbar]")).to_have_attribute(
        "aria-valuenow", "100"
    )
    page.locator(".jp-Notebook .jp-CodeCell").nth(2).scroll_into_view_if_needed()
    shot(page, "outcomes")

    def fill_colour(index: int) -> str:
        return str(
            bars.nth(index)
            .locator(".apolo-transfer-fill")
            .evaluate("e => getComputedStyle(e).backgroundColor")
        )

    colours = [fill_colour(i) for i in range(4)]
    assert len(set(colours)) == 4, colours  # done, running, failed, interrupted
    running = bars.nth(1)
    expect(running.locator(".apolo-transfer-percent")).to_have_text("45%")
    width = running.locator(".apolo-transfer-fill").evaluate(
        "e => e.getBoundingClientRect().width / e.parentElement.getBoundingClientRect().width"
    )
    assert 0.4 < float(width) < 0.5, width
    expect(bars.nth(3).locator(".apolo-transfer-message")).to_have_text(
        "Interrupted. Continue with -c"
    )
    assert not [e for e in errors if "anywidget" in e.lower()], errors
