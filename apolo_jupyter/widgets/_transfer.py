"""``TransferProgress``: a storage transfer's bar in a notebook, as tqdm.notebook.

A thin anywidget view: description, bar, percent, then sizes, files, elapsed and
remaining time and rate (the kernel formats them). Its colour says the outcome:
brand while running, success, error or warning once done, failed or interrupted.
``text/plain`` and ``text/html`` fallbacks end in the same final state, so a
saved or exported notebook tells the truth.
"""

from __future__ import annotations

import html
from typing import Any

import anywidget
import traitlets

from ._static import asset


class TransferProgress(anywidget.AnyWidget):
    _esm = asset("common.js", "transfer.js")
    _css = asset("transfer.css")

    description = traitlets.Unicode("").tag(sync=True)
    fraction = traitlets.Float(0.0).tag(sync=True)
    stats = traitlets.Unicode("").tag(sync=True)
    state = traitlets.Unicode("running").tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)

    def show(
        self,
        description: str,
        fraction: float,
        stats: str,
        state: str,
        message: str = "",
    ) -> None:
        """A new snapshot, all traits in one message."""
        with self.hold_sync():
            self.description = description
            self.fraction = fraction
            self.stats = stats
            self.state = state
            self.message = message

    def __repr__(self) -> str:  # the text/plain fallback
        tail = f" ({self.state})" if self.state != "done" else ""
        note = f"\n{self.message}" if self.message else ""
        return (
            f"{self.description}: {self.fraction * 100:.0f}% | {self.stats}{tail}{note}"
        )

    def _repr_html_(self) -> str:
        percent = f"{self.fraction * 100:.0f}"
        return (
            f"<div><span>{html.escape(self.description)}</span> "
            f'<progress max="100" value="{percent}">{percent}%</progress> '
            f"{percent}% <code>{html.escape(self.stats)}</code> "
            f"{html.escape(self.state)}"
            + (f"<div>{html.escape(self.message)}</div>" if self.message else "")
            + "</div>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, tuple):
            data, meta = bundle
            return {**data, "text/html": self._repr_html_()}, meta
        return bundle
