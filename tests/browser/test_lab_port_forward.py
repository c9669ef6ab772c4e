"""End to end in a real browser: JupyterLab + Debian Chromium, driven by Playwright.

Starts ``jupyter lab`` (with the ``apolo_jupyter.server`` proxy extension enabled as
installed) on a tmp copy of ``notebooks/03-port-forward.ipynb`` up to its toggle's
cell (the cells after it kill the job), runs them all, and switches the
``PortForwardToggle`` on and off: on, its
inline frame shows the job's page served through ``/apolo/forward/<id>/``; off,
that URL is gone (404). Screenshots go to ``artifacts/``.

The kernel inherits the server's environment: ``APOLO_JUPYTER_HOME`` (set by the
root conftest, whose unconfigure hook stops the platform daemon the kernel starts)
and ``APOLO_JUPYTER_FORWARDS_DIR`` (a tmp registry shared by kernel and server).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("playwright")

from playwright.sync_api import Browser, Locator, Page, expect

from .._jupyter import Server
from ._lab import ARTIFACTS, CHROMIUM, REPO, chromium, lab_server, open_notebook
from ._lab import run_all as _run_all
from ._lab import start_lab as _start_lab

NOTEBOOK = "03-port-forward.ipynb"

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian chromium not installed: apt-get install chromium",
    ),
    pytest.mark.timeout(150),
]


def _copy_notebook(root: Path) -> None:
    """The notebook up to the toggle's cell, without its saved outputs and widget
    state, so that nothing stale renders; and a copy of ``tests/grpc_helloworld``
    beside it: the gRPC cell imports it from ``Path.cwd().parent`` and runs its
    ``server.py`` as a job (local jobs do not see the host's /tmp, so ``root`` is
    under ``artifacts/``)."""
    (root / "notebooks").mkdir(parents=True)
    (root / "tests").mkdir()
    shutil.copy(REPO / "tests" / "__init__.py", root / "tests")
    shutil.copytree(
        REPO / "tests" / "grpc_helloworld",
        root / "tests" / "grpc_helloworld",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    nb = json.loads((REPO / "notebooks" / NOTEBOOK).read_text())
    nb["metadata"].pop("widgets", None)
    # The notebook's last cells kill the web job; this test switches the toggle
    # first, so the copy ends at the toggle's cell (the fixture kills the job).
    (at,) = [
        i
        for i, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code" and "%apolo_forward" in "".join(cell["source"])
    ]
    del nb["cells"][at + 1 :]
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    (root / "notebooks" / NOTEBOOK).write_text(json.dumps(nb, indent=1))


def start_lab(tmp: Path, root: Path) -> Server:
    _copy_notebook(root)
    return _start_lab(
        tmp / "lab",
        root / "notebooks",
        APOLO_JUPYTER_FORWARDS_DIR=str(tmp / "forwards"),
    )


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Server]:
    """The Lab server; the web job the toggle forwards to is left running by
    design, and killed afterwards (``lab_server``)."""
    ARTIFACTS.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="lab-root-", dir=ARTIFACTS))
    with lab_server(root, lambda: start_lab(tmp_path, root)) as server:
        yield server


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"lab-port-forward-{name}.png"))


def fetch(page: Page, url: str) -> tuple[int, str]:
    """GET ``url`` from the page: authenticated by the Jupyter login cookie."""
    status, body = page.evaluate(
        """async (url) => {
            const r = await fetch(url, {credentials: "same-origin", cache: "no-store"});
            return [r.status, await r.text()];
        }""",
        url,
    )
    return int(status), str(body)


def run_all(page: Page) -> None:
    _run_all(page, on_retry=ARTIFACTS / "lab-port-forward-run-all-retry.png")


def wait_for_toggle(page: Page, timeout: float) -> Locator:
    """The last cell's toggle; fails early, with the traceback, if a cell raised."""
    last = page.locator(".jp-Notebook .jp-CodeCell").last
    button = last.locator(".widget-toggle-button", has_text="Forward port")
    errors = page.locator(
        ".jp-Notebook [data-mime-type='application/vnd.jupyter.stderr']"
    )
    tracebacks = errors.filter(has_text=re.compile(r"Traceback|\w+Error\b"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if button.count() and button.is_visible():
            return last
        if tracebacks.count():
            shot(page, "cell-error")
            raise AssertionError("a cell failed:\n" + tracebacks.first.inner_text())
        page.wait_for_timeout(200)
    shot(page, "no-toggle")
    stderr = "\n".join(errors.all_inner_texts())
    raise AssertionError(f"the toggle did not render in {timeout}s; stderr:\n{stderr}")


def test_forward_toggle_serves_the_job_inside_lab(
    lab: Server, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    console_errors: list[str] = []
    page.on(
        "console",
        lambda msg: console_errors.append(msg.text) if msg.type == "error" else None,
    )
    page.set_default_timeout(30_000)
    open_notebook(page, lab, NOTEBOOK)
    shot(page, "1-idle")

    run_all(page)
    cell = wait_for_toggle(page, timeout=90)
    button = cell.locator(".widget-toggle-button", has_text="Forward port")
    status = cell.locator(".apolo-forward-status")
    expect(status).to_contain_text("off")
    cell.scroll_into_view_if_needed()
    shot(page, "2-toggle-off")

    # On: a link to the proxied URL and an inline frame showing the job's page.
    button.click()
    link = cell.locator("a[href*='/apolo/forward/']")
    expect(link).to_be_visible(timeout=30_000)
    expect(status).to_contain_text("on ·")
    expect(link).to_have_text(re.compile("open in a new tab"))
    expect(link).to_have_attribute("target", "_blank")
    expect(cell.locator(".apolo-note")).to_contain_text("may not load")
    expect(button).to_have_class(re.compile(r"mod-active"))
    url = link.get_attribute("href")
    assert url is not None and re.fullmatch(r"/apolo/forward/[A-Za-z0-9_-]+/", url), url
    frame = cell.frame_locator("iframe")
    expect(frame.locator("body")).to_contain_text("hello from the job", timeout=30_000)
    code, body = fetch(page, url + "via-fetch")
    assert code == 200, (code, body)
    assert body.strip() == "hello from the job, you asked for /via-fetch"
    cell.scroll_into_view_if_needed()
    shot(page, "3-toggle-on")

    # Off: the status says so, the frame is gone and so is the route.
    button.click()
    expect(status).to_have_text(re.compile(r"^\s*off"), timeout=30_000)
    expect(cell.locator("iframe")).to_have_count(0)
    expect(button).not_to_have_class(re.compile(r"mod-active"))
    code, body = fetch(page, url + "via-fetch")
    assert code == 404, (code, body)
    shot(page, "4-toggle-off-again")

    page.close()
    proxy_errors = [
        e for e in console_errors if "/apolo/forward/" in e and "404" not in e
    ]
    assert not proxy_errors, proxy_errors
