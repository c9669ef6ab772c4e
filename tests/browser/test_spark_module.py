"""The status view's ES module in Chromium, on its own: how it keeps and draws the
sparkline's window. Cases JupyterLab does not give on this machine: a GPU in
the samples, and updates that do not continue what the browser holds.

The module is loaded as anywidget loads it (the shipped text, as a module) and
given a model with the methods anywidget hands a widget (``get``, ``set``,
``on``, ``off``, ``send``); the head is the HTML the Python view renders for a
running job. The JupyterLab test (``test_lab_widgets``) covers the real path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

pytest.importorskip("playwright")

from playwright.sync_api import Browser, Page

from apolo_jupyter.widgets._static import asset
from apolo_jupyter.widgets._status_html import head_html
from apolo_jupyter.widgets._status_model import StatusFeed

from ..test_status_view import RUNNING, T0, snapshot
from ._lab import CHROMIUM, chromium

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed"),
    pytest.mark.timeout(60),
]

SETUP = """async ([source, css, state]) => {
  const style = document.createElement("style");
  style.textContent = css;
  document.head.append(style);
  const url = URL.createObjectURL(new Blob([source], {type: "text/javascript"}));
  const widget = (await import(url)).default;
  const attrs = {...state};
  const handlers = {};
  const model = {
    get: (name) => attrs[name],
    set: (name, value) => {
      attrs[name] = value;
      for (const cb of handlers["change:" + name] || []) cb();
    },
    on: (event, cb) => { (handlers[event] = handlers[event] || []).push(cb); },
    off: () => {},
    send: () => {},
    save_changes: () => {},
  };
  window.model = model;
  widget.initialize({model});
  const el = document.getElementById("view");
  el.classList.add("apolo-w");
  await widget.render({model, el});
}"""


def row(cpu: float, mb: int, gpu: int | None = None) -> list[Any]:
    return [cpu, mb * 10**6, gpu, None if gpu is None else 3_100_000_000]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def _view(browser: Browser, spark: dict[str, Any]) -> Page:
    feed = StatusFeed(hint="%apolo_logs job-0123", can_kill=True)
    feed.update(snapshot(RUNNING))
    state = {
        "head": head_html(feed.snapshot(T0 + timedelta(seconds=30))),
        "bars": "",
        "log": {},
        "ui": {"running": True, "can_kill": True, "now_ms": T0.timestamp() * 1000},
        "spark": spark,
    }
    page = browser.new_page()
    page.set_content('<div id="view"></div>')
    source = asset("common.js", "status.js")
    css = asset("common.css", "status.css")
    page.evaluate(SETUP, [source, css, json.loads(json.dumps(state))])
    return page


def _drawn(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = page.evaluate(
        """() => {
            const spark = document.querySelector(".apolo-head .apolo-spark");
            if (!spark) return {};
            const out = {label: spark.getAttribute("aria-label")};
            for (const item of spark.querySelectorAll(".apolo-spark-item")) {
                const kind = item.className.split("apolo-spark-")[2];
                out[kind] = item.hidden ? null : {
                    text: item.querySelector(".apolo-spark-value").textContent,
                    points: item.querySelector("polyline").getAttribute("points")
                        .split(" ").length,
                };
            }
            return out;
        }"""
    )
    return found


def _update(page: Page, name: str, value: Any) -> None:
    page.evaluate("([name, value]) => window.model.set(name, value)", [name, value])


def test_gpu_figures_are_drawn_when_the_samples_have_them(browser: Browser) -> None:
    page = _view(
        browser,
        {"seq": 3, "window": 60, "rows": [row(0.5, 100, 80), row(0.9, 212, 87)]},
    )
    drawn = _drawn(page)
    assert drawn["cpu"] == {"text": "CPU 0.90", "points": 2}
    assert drawn["mem"] == {"text": "212 MB", "points": 2}
    assert drawn["gpu"] == {"text": "GPU 87% · 3.1 GB", "points": 2}
    assert drawn["label"] == "CPU 0.90 cores, memory 212 MB, GPU 87% · 3.1 GB"
    page.close()


def test_the_window_is_kept_whole_from_updates_of_new_rows(browser: Browser) -> None:
    page = _view(browser, {"seq": 2, "window": 3, "rows": [row(0.1, 1), row(0.2, 2)]})
    assert _drawn(page)["gpu"] is None  # no GPU in these samples
    # An update continuing what the browser holds: appended, then the oldest go.
    _update(page, "spark", {"seq": 3, "window": 3, "rows": [row(0.3, 3)]})
    assert _drawn(page)["cpu"] == {"text": "CPU 0.30", "points": 3}
    _update(page, "spark", {"seq": 5, "window": 3, "rows": [row(0.4, 4), row(0.5, 5)]})
    assert _drawn(page)["cpu"] == {"text": "CPU 0.50", "points": 3}
    held = page.evaluate("() => window.model.get('spark').rows.map(r => r[0])")
    assert held == [0.3, 0.4, 0.5]
    # One that does not continue it (a new window after a suspension): taken alone.
    _update(page, "spark", {"seq": 9, "window": 3, "rows": [row(0.7, 7)]})
    assert _drawn(page)["cpu"] == {"text": "CPU 0.70", "points": 1}
    # Nothing to draw, or the job no longer runs: no sparkline.
    _update(page, "spark", {})
    assert _drawn(page) == {}
    _update(page, "spark", {"seq": 10, "window": 3, "rows": [row(0.8, 8)]})
    assert _drawn(page)["cpu"] == {"text": "CPU 0.80", "points": 1}
    _update(page, "ui", {"running": False, "finished": True})
    assert _drawn(page) == {}
    page.close()
