"""``PortForwardToggle``: a job's port, served inside the notebook through Jupyter.

A thin view with four states: off, starting, on (a link and an inline frame to
the proxied URL) and error (with the reason). It reports the user's clicks through
``on_change(wanted: bool)``; whoever owns the forward calls ``show_*`` back.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as w

OFF, STARTING, ON, ERROR = "off", "starting", "on", "error"


class PortForwardToggle(w.VBox):
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
        )
        self._status = w.HTML()
        self._frame = w.HTML()
        self._button.observe(self._clicked, names="value")
        self._quiet = False
        super().__init__(children=[w.HBox([self._button, self._status]), self._frame])
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
        self._status.value = html.escape(note or "off")
        self._frame.value = ""

    def show_starting(self) -> None:
        self.state, self.error = STARTING, None
        self._set_button(True)
        self._status.value = "starting…"

    def show_on(self, url: str) -> None:
        self.state, self.url, self.error = ON, url, None
        self._set_button(True)
        link = html.escape(url, quote=True)
        self._status.value = (
            f'on: <a href="{link}" target="_blank" rel="noopener">{link}</a>'
        )
        self._frame.value = (
            f'<iframe src="{link}" style="width:100%;height:420px;border:1px solid #ccc" '
            'sandbox="allow-scripts allow-forms allow-popups"></iframe>'
        )

    def show_error(self, message: str) -> None:
        self.state, self.url, self.error = ERROR, None, message
        self._set_button(False)
        self._status.value = (
            f'<span style="color:#b00020" role="alert">{html.escape(message)}</span>'
        )
        self._frame.value = ""

    def __repr__(self) -> str:
        return f"PortForwardToggle({self.job_id}:{self.job_port}: {self.state})"
