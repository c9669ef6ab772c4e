"""Helpers for the views built from stock ipywidgets (forms): aligned rows, and
messages styled by classes from ``static/`` (theme variables only).

Stock widgets cannot load CSS, so each form carries one hidden HTML widget whose
``<style>`` brings the shared classes along (a style element applies to the page
wherever it sits).
"""

from __future__ import annotations

import html

import ipywidgets as w

from ._static import style


def style_carrier() -> w.HTML:
    return w.HTML(style("forms.css"), layout=w.Layout(display="none"))


def error_html(text: str) -> str:
    if not text:
        return ""
    return (
        '<div class="apolo-w"><div class="apolo-error" role="alert">'
        f"{html.escape(text)}</div></div>"
    )


def muted_html(text: str, code: str = "") -> str:
    if not text and not code:
        return ""
    tail = f" <code>{html.escape(code)}</code>" if code else ""
    return f'<div class="apolo-w"><span class="apolo-muted">{html.escape(text)}</span>{tail}</div>'


def field_row(
    label: str, field: w.Widget, error: w.Widget | None = None
) -> list[w.Widget]:
    """A grid row: the label, and the field with its error line under it."""
    name = w.HTML(
        f'<div class="apolo-w apolo-form-label">{html.escape(label)}</div>'
        if label
        else ""
    )
    box = w.VBox([field, error] if error is not None else [field])
    box.layout.min_width = "0"
    return [name, box]


def form_grid(
    rows: list[list[w.Widget]], label_width: str = "9em", field_width: str = "46em"
) -> w.GridBox:
    grid = w.GridBox(
        [cell for row in rows for cell in row],
        layout=w.Layout(
            grid_template_columns=f"{label_width} minmax(0, {field_width})",
            grid_gap="6px 12px",
            align_items="flex-start",
            width="100%",
        ),
    )
    grid.add_class("apolo-form")
    return grid
