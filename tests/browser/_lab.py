"""JupyterLab in Debian Chromium, driven by Playwright: the pieces the browser
tests share (the browser, a Lab server and the jobs it leaves, settings, running
cells, screenshots)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from apolo_jupyter import JobStatus, get

from .._jupyter import Server, launch

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"


def lab_settings(settings: Path, theme: str | None = None) -> None:
    """Every cell in the DOM (no virtual scrolling), no autosave, a theme."""
    tracker = settings / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    (tracker / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"})
    )
    docmanager = settings / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True, exist_ok=True)
    (docmanager / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autosave": False})
    )
    if theme is not None:
        themes = settings / "@jupyterlab" / "apputils-extension"
        themes.mkdir(parents=True, exist_ok=True)
        (themes / "themes.jupyterlab-settings").write_text(json.dumps({"theme": theme}))


def start_lab(tmp: Path, root: Path, **env_extra: str) -> Server:
    """``jupyter lab`` on ``root`` with its own runtime dir (kernels inherit it,
    so kernel and server share the forward and platform registries)."""
    lab_settings(tmp / "settings")
    env = dict(os.environ)
    env.update(JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), **env_extra)
    env.pop("APOLO_JUPYTER_BASE_URL", None)
    env.pop("JUPYTERHUB_SERVICE_PREFIX", None)
    env.pop("APOLO_JUPYTER_DISPLAY", None)
    return launch(
        "jupyterlab", env, tmp / "lab.log",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={tmp / 'settings'}",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class="
        "jupyterlab.NeverCheckForUpdate",
    )  # fmt: skip


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, closed on leaving."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


_ALIVE = (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUSPENDED)


async def alive_jobs() -> set[str]:
    async with (
        get(local=True, quiet=True) as client,
        client.jobs.list(statuses=_ALIVE) as jobs,
    ):
        return {job.id async for job in jobs}


async def kill_jobs(ids: set[str]) -> None:
    async with get(local=True, quiet=True) as client:
        for job_id in ids:
            await client.jobs.kill(job_id)


@contextlib.contextmanager
def lab_server(root: Path, start: Callable[[], Server]) -> Iterator[Server]:
    """The Lab server ``start()`` launches on ``root``; afterwards its log's tail
    goes to stderr, ``root`` is removed, and the jobs its notebook left running
    are killed, so they do not hold the platform's capacity (the kernel's
    platform is the one the rest of the run uses)."""
    before = asyncio.run(alive_jobs())
    try:
        server = start()
        try:
            yield server
        finally:
            server.stop()
            sys.stderr.write(server.log.read_text()[-4000:])
    finally:
        shutil.rmtree(root, ignore_errors=True)
        asyncio.run(kill_jobs(asyncio.run(alive_jobs()) - before))


def shot(target: Page | Locator, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    target.screenshot(path=str(path))


def open_notebook(page: Page, lab: Server, name: str) -> None:
    page.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}")
    expect(page.locator(".jp-Notebook .jp-CodeCell").first).to_be_visible()
    # The status bar's "| Idle": the kernel is connected, not just started.
    expect(page.locator("#jp-main-statusbar")).to_contain_text(
        re.compile(r"\|\s*Idle"), timeout=60_000
    )
    dismiss_news(page)


def dismiss_news(page: Page) -> None:
    """The "official Jupyter news?" toast would cover screenshots: say no."""
    toast = page.locator(".jp-toast-button", has_text=re.compile(r"^No$"))
    with contextlib.suppress(PlaywrightTimeout):  # not shown
        toast.first.click(timeout=3_000)


def menu(page: Page, top: str, *items: str) -> None:
    """Click a menu path, e.g. ``menu(page, "Run", "Run All Cells")``."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{top}$")).click()
    for item in items:
        page.locator(
            ".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(item)}$")
        ).last.click()


def run_all(page: Page, on_retry: Path | None = None) -> None:
    """Run → Run All Cells, until a prompt shows the kernel took it (up to 3 tries:
    the menu can act before the kernel connection is really up)."""
    busy = page.locator(".jp-Notebook .jp-InputPrompt").filter(
        has_text=re.compile(r"\[(\*|\d+)\]")
    )
    for attempt in range(3):
        menu(page, "Run", "Run All Cells")
        try:
            expect(busy.first).to_be_visible(timeout=5_000)
            return
        except AssertionError:
            page.keyboard.press("Escape")
            if on_retry is not None:
                shot(page, on_retry.with_name(f"{on_retry.stem}-{attempt}.png"))
    raise AssertionError("Run All Cells executed nothing, 3 times")


def fail_on_traceback(page: Page) -> None:
    errors = page.locator(
        ".jp-Notebook [data-mime-type='application/vnd.jupyter.stderr']"
    ).filter(has_text=re.compile(r"Traceback|\w+Error\b"))
    if errors.count():
        raise AssertionError("a cell failed:\n" + errors.first.inner_text())


def wait_for(page: Page, check: object, timeout: float, what: str) -> None:
    """Poll ``check()`` (a callable) until true; fail early on a cell's traceback."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        fail_on_traceback(page)
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        page.wait_for_timeout(100)
