"""``PortForwardToggle``: a job's port, served inside the notebook through Jupyter.

A thin view with four states: off, starting, on (a link that opens the proxied
URL in a new tab, an inline frame, and a note on what a proxied page can load)
and error (with the reason). It reports the user's clicks through
``on_change(wanted: bool)``; whoever owns the forward calls ``show_*`` back.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import ipywidgets as w

from ._forms import error_html, style_carrier
from ._static import KernelOwned

OFF, STARTING, ON, ERROR = "off", "starting", "on", "error"


class PortForwardToggle(KernelOwned, w.VBox):
    def __init__(
        self, job_id: str, job_port: int, on_change: Callable[[bool], None]
    ) -> None:
        self.job_id = job_id
        self.job_port = job_port
        self._on_change = on_change
        self.state = OFF
        self.url: str | None = None
        self.error: str | None = None  # the error state's text, plain
        self._button = w.ToggleButton(
            value=False,
            description=f"Forward port {job_port}",
            tooltip=f"serve port {job_port} of {job_id} inside this notebook",
            icon="plug",
            layout=w.Layout(width="auto", min_width="fit-content"),
        )
        self._status = w.HTML()
        self._status.add_class("apolo-forward-status")
        self._frame = w.HTML()
        self._note = w.HTML()
        self._button.observe(self._clicked, names="value")
        self._quiet = False
        row = w.HBox(
            [self._button, self._status],
            layout=w.Layout(align_items="center", grid_gap="12px"),
        )
        super().__init__(children=[style_carrier(), row, self._frame, self._note])
        self.show_off()

    def _clicked(self, change: dict[str, object]) -> None:
        if self._quiet:
            return
        wanted = bool(change["new"])
        if wanted:
            self.show_starting()
        self._on_change(wanted)

    def _set_button(self, value: bool, disabled: bool = False) -> None:
        self._quiet = True
        try:
            self._button.value = value
            self._button.disabled = disabled
        finally:
            self._quiet = False

    def turn_on(self) -> None:
        """What a click on the toggle does."""
        self._button.value = True

    def turn_off(self) -> None:
        self._button.value = False

    def show_off(self, note: str = "") -> None:
        self.state, self.url, self.error = OFF, None, None
        self._set_button(False)
        self._status.value = self._text(note or "off")
        self._frame.value = self._note.value = ""

    def show_starting(self) -> None:
        self.state, self.error = STARTING, None
        self._set_button(True)
        self._status.value = self._text("starting…")

    def show_on(self, url: str, local_port: int | None = None) -> None:
        self.state, self.url, self.error = ON, url, None
        self._set_button(True)
        link = html.escape(url, quote=True)
        self._status.value = (
            '<div class="apolo-w">on · '
            f'<a href="{link}" target="_blank" rel="noopener">open in a new tab ↗</a> '
            f'<code class="apolo-muted">{link}</code></div>'
        )
        self._frame.value = (
            f'<iframe class="apolo-frame" src="{link}" title="port {self.job_port} '
            f'of {html.escape(self.job_id)}" '
            'sandbox="allow-scripts allow-forms allow-popups"></iframe>'
        )
        here = (
            f" From a browser on the kernel's machine, 127.0.0.1:{local_port} "
            "reaches the port with nothing in between."
            if local_port
            else ""
        )
        self._note.value = (
            '<div class="apolo-w apolo-note">A single page works here and in a new '
            "tab. Links inside it to further pages, files or WebSockets may not load "
            "(“forbidden”): a proxied page gets no Jupyter login."
            + html.escape(here)
            + "</div>"
        )

    def show_error(self, message: str) -> None:
        self.state, self.url, self.error = ERROR, None, message
        self._set_button(False)
        self._status.value = error_html(message)
        self._frame.value = self._note.value = ""

    @staticmethod
    def _text(text: str) -> str:
        return f'<div class="apolo-w">{html.escape(text)}</div>'

    def __repr__(self) -> str:
        return f"PortForwardToggle({self.job_id}:{self.job_port}: {self.state})"

    def saved_html(self) -> str:
        """What a notebook shows once the kernel that served the forward is gone."""
        e = html.escape
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        state = self.error or self.state
        if self.state == ON and self.url:
            state = f'on at <a href="{e(self.url, quote=True)}">{e(self.url)}</a>'
        else:
            state = e(state)
        again = f"%apolo_forward {self.job_id} {self.job_port} --on"
        return (
            f'<div class="apolo-w">Forward of port {self.job_port} of '
            f"<code>{e(self.job_id)}</code>: {state} (as of {when}; the kernel "
            f"serves it while it runs; <code>{e(again)}</code> starts it again)</div>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if not isinstance(bundle, tuple):
            return bundle
        data, metadata = bundle
        return {**data, "text/html": self.saved_html()}, metadata
