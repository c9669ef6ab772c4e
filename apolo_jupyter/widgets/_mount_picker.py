"""``MountPicker``: browse storage folders, pick container paths, build volumes.

A thin ipywidgets view over three callables (list folders, create a folder, parse a
volume spec). By default they use the notebook runtime's client; pass your own to
use it elsewhere. Everything is reachable with the keyboard (Tab, arrows, Enter, Space).
"""

from __future__ import annotations

import html
import posixpath
from collections.abc import Callable, Iterable

import ipywidgets as w

from ..client import Volume
from ._mounts import Mount, MountList, ParseVolume, default_container_path

ListFolders = Callable[[str], list[str]]
CreateFolder = Callable[[str], None]
UP = ".. (parent folder)"


def _join(base: str, name: str) -> str:
    return posixpath.join(base, name).strip("/") if base else name.strip("/")


class MountPicker(w.VBox):
    """Pick storage folders to mount into a job.

    ``picker.volumes`` is a ``list[Volume]``; ``picker.value`` the same as CLI strings
    (``storage:data:/var/data:ro``), as ``%apolo_run -v`` takes them.
    """

    def __init__(
        self,
        *,
        list_folders: ListFolders | None = None,
        create_folder: CreateFolder | None = None,
        parse_volume: ParseVolume | None = None,
        start: str = "",
        mounts: Iterable[str] = (),
    ) -> None:
        if list_folders is None or create_folder is None or parse_volume is None:
            from ..kernel._storage_access import runtime_callables

            defaults = runtime_callables()
            list_folders = list_folders or defaults.list_folders
            create_folder = create_folder or defaults.create_folder
            parse_volume = parse_volume or defaults.parse_volume
        self._list = list_folders
        self._create_folder = create_folder
        self._model = MountList(parse_volume)
        self._cwd = start.strip("/")
        self._location = w.HTML()
        self._folders = w.Select(options=[], rows=6, layout=w.Layout(width="320px"))
        self._open = w.Button(
            description="Open folder", tooltip="list the selected folder"
        )
        self._new_name = w.Text(placeholder="new folder name", continuous_update=False)
        self._create = w.Button(description="Create folder")
        self._path = w.Text(placeholder="/var/data", description="Mount at")
        self._read_only = w.Checkbox(description="read-only", indent=False)
        self._add = w.Button(description="Add mount", button_style="primary")
        self._rows = w.VBox()
        self._error = w.HTML()
        self._folders.observe(self._on_select, names="value")
        self._open.on_click(lambda _: self._enter())
        self._create.on_click(lambda _: self._on_create())
        self._new_name.observe(lambda _: self._on_create(), names="value")
        self._add.on_click(lambda _: self._on_add())
        super().__init__(
            children=[
                self._location,
                w.HBox(
                    [self._folders, w.VBox([self._open, self._new_name, self._create])]
                ),
                w.HBox([self._path, self._read_only, self._add]),
                self._error,
                self._rows,
            ]
        )
        for spec in mounts:
            self._add_spec(spec)
        self._refresh()

    # -- results ------------------------------------------------------------------

    @property
    def volumes(self) -> list[Volume]:
        return self._model.volumes

    @property
    def value(self) -> list[str]:
        return self._model.value

    @property
    def mounts(self) -> tuple[Mount, ...]:
        return self._model.mounts

    def __repr__(self) -> str:  # the text/plain fallback (terminal, nbval)
        return f"MountPicker({', '.join(self.value) or 'no mounts'})"

    # -- user actions -------------------------------------------------------------

    def _selected_folder(self) -> str:
        chosen = self._folders.value
        if not chosen or chosen == UP:
            return self._cwd
        return _join(self._cwd, str(chosen))

    def _on_select(self, _: object = None) -> None:
        if self._folders.value and self._folders.value != UP:
            self._path.value = default_container_path(self._selected_folder())

    def _enter(self) -> None:
        if self._folders.value == UP:
            self._cwd = posixpath.dirname(self._cwd)
        elif self._folders.value:
            self._cwd = self._selected_folder()
        self._refresh()

    def _on_create(self) -> None:
        name = self._new_name.value.strip().strip("/")
        if not name:
            return
        target = _join(self._cwd, name)
        if self._guard(lambda: self._create_folder(target)):
            self._new_name.value = ""
            self._refresh(select=posixpath.basename(target))

    def _on_add(self) -> None:
        folder = self._selected_folder()
        path = self._path.value or default_container_path(folder)
        if self._guard(lambda: self._model.add(folder, path, self._read_only.value)):
            self._render_rows()

    def _add_spec(self, spec: str) -> None:
        parts = spec.split(":")
        read_only = parts[-1] == "ro"
        if parts[-1] in ("ro", "rw"):
            parts = parts[:-1]
        if len(parts) != 3 or parts[0] != "storage":
            raise ValueError(
                f"mount {spec!r}: write it as storage:<folder>:<path>[:ro]"
            )
        self._model.add(parts[1], parts[2], read_only)
        self._render_rows()

    def remove(self, container_path: str) -> None:
        self._model.remove(container_path)
        self._render_rows()

    # -- rendering ----------------------------------------------------------------

    def _guard(self, action: Callable[[], object]) -> bool:
        """Run an action; show its error inline instead of raising into the kernel."""
        try:
            action()
        except (OSError, ValueError, RuntimeError) as exc:
            self._error.value = f'<span style="color:#b00020" role="alert">{html.escape(str(exc))}</span>'
            return False
        self._error.value = ""
        return True

    def _refresh(self, select: str | None = None) -> None:
        names: list[str] = []
        if self._guard(lambda: names.extend(sorted(self._list(self._cwd)))):
            self._folders.options = ([UP] if self._cwd else []) + names
            self._folders.value = select if select in names else None
        location = f"storage:{self._cwd}" if self._cwd else "storage: (project root)"
        self._location.value = (
            f"<b>Storage folders</b> in <code>{html.escape(location)}</code>"
        )

    def _render_rows(self) -> None:
        rows = []
        for mount in self._model.mounts:
            remove = w.Button(description="Remove", tooltip=f"remove {mount.spec}")
            remove.on_click(lambda _, path=mount.container_path: self.remove(path))
            rows.append(
                w.HBox([w.HTML(f"<code>{html.escape(mount.spec)}</code>"), remove])
            )
        self._rows.children = rows
