"""``MountPicker``: browse storage folders, pick container paths, build volumes.

A thin ipywidgets form over three callables (list folders, create a folder, parse
a volume spec). By default they use the notebook runtime's client; pass your own
to use it elsewhere. Rows are aligned in a grid; each error shows under the field
it is about; an empty folder or mount list says what to do; an added mount's
read-only flag can still be changed. Everything is reachable with the keyboard
(Tab, arrows, Enter, Space). Folders whose name starts with a dot are internal
(``.apolo-jupyter`` holds ``--sync`` copies and ``--result`` values) and are
listed only with ``show_hidden=True``.
"""

from __future__ import annotations

import html
import posixpath
from collections.abc import Callable, Iterable

import ipywidgets as w

from ..client import Volume
from ._forms import error_html, field_row, form_grid, muted_html, style_carrier
from ._mounts import Mount, MountList, ParseVolume, default_container_path
from ._static import KernelOwned

ListFolders = Callable[[str], list[str]]
CreateFolder = Callable[[str], None]
UP = ".. (parent folder)"
NO_FOLDERS = (
    "No folders here yet: type a name under “New folder” and press Enter to create one."
)
NO_MOUNTS = "No mounts yet: choose a folder, where the job sees it, then “Add mount”."


def _join(base: str, name: str) -> str:
    return posixpath.join(base, name).strip("/") if base else name.strip("/")


class MountPicker(KernelOwned, w.VBox):
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
        show_hidden: bool = False,
    ) -> None:
        if list_folders is None or create_folder is None or parse_volume is None:
            from ..kernel._storage_access import runtime_callables

            defaults = runtime_callables()
            list_folders = list_folders or defaults.list_folders
            create_folder = create_folder or defaults.create_folder
            parse_volume = parse_volume or defaults.parse_volume
        self._list = list_folders
        self._show_hidden = show_hidden
        self._create_folder = create_folder
        self._model = MountList(parse_volume)
        self._cwd = start.strip("/")
        self._location = w.HTML()
        self._folders = w.Select(options=[], rows=6, layout=w.Layout(width="20em"))
        self._open = w.Button(
            description="Open folder",
            tooltip="list the selected folder",
            layout=w.Layout(width="auto"),
        )
        self._folders_note = w.HTML()
        self._new_name = w.Text(
            placeholder="new folder name (Enter creates it)",
            continuous_update=False,
            layout=w.Layout(width="20em"),
        )
        self._create = w.Button(
            description="Create folder", layout=w.Layout(width="auto")
        )
        self._create_error = w.HTML()
        self._path = w.Text(placeholder="/var/data", layout=w.Layout(width="14em"))
        self._read_only = w.Checkbox(
            description="read-only", indent=False, layout=w.Layout(width="auto")
        )
        self._add = w.Button(
            description="Add mount",
            button_style="primary",
            layout=w.Layout(width="auto"),
        )
        self._path_error = w.HTML()
        self._rows = w.GridBox(
            layout=w.Layout(
                grid_gap="4px 16px", align_items="center", width="fit-content"
            )
        )
        self._folders.observe(self._on_select, names="value")
        self._open.on_click(lambda _: self._enter())
        self._create.on_click(lambda _: self._on_create())
        self._new_name.observe(lambda _: self._on_create(), names="value")
        self._add.on_click(lambda _: self._on_add())
        gap = w.Layout(align_items="center", grid_gap="8px", flex_flow="row wrap")
        grid = form_grid(
            [
                field_row(
                    "Folder",
                    w.HBox(
                        [self._folders, self._open],
                        layout=w.Layout(align_items="flex-start", grid_gap="8px"),
                    ),
                    self._folders_note,
                ),
                field_row(
                    "New folder",
                    w.HBox([self._new_name, self._create], layout=gap),
                    self._create_error,
                ),
                field_row(
                    "Mount at",
                    w.HBox([self._path, self._read_only, self._add], layout=gap),
                    self._path_error,
                ),
                field_row("Mounts", self._rows),
            ],
            label_width="6.5em",
            field_width="38em",
        )
        super().__init__(children=[style_carrier(), self._location, grid])
        for spec in mounts:
            self._add_spec(spec)
        self._render_rows()
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
        if self._guard(self._create_error, lambda: self._create_folder(target)):
            self._new_name.value = ""
            self._refresh(select=posixpath.basename(target))

    def _on_add(self) -> None:
        folder = self._selected_folder()
        path = self._path.value or default_container_path(folder)
        add = lambda: self._model.add(folder, path, self._read_only.value)  # noqa: E731
        if self._guard(self._path_error, add):
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

    def remove(self, container_path: str) -> None:
        self._model.remove(container_path)
        self._render_rows()

    def set_read_only(self, container_path: str, read_only: bool) -> None:
        """Change an added mount's read-only flag (its checkbox does this)."""
        self._model.set_read_only(container_path, read_only)
        self._render_rows()

    def _flag_changed(self, container_path: str, read_only: bool) -> None:
        # The checkbox already shows the new flag: only the model changes.
        if not self._guard(
            self._path_error,
            lambda: self._model.set_read_only(container_path, read_only),
        ):
            self._render_rows()

    # -- rendering ----------------------------------------------------------------

    @staticmethod
    def _guard(error: w.HTML, action: Callable[[], object]) -> bool:
        """Run an action; show its error under its field instead of raising."""
        try:
            action()
        except (OSError, ValueError, RuntimeError) as exc:
            error.value = error_html(str(exc))
            return False
        error.value = ""
        return True

    def _refresh(self, select: str | None = None) -> None:
        names: list[str] = []
        if self._guard(
            self._folders_note, lambda: names.extend(sorted(self._list(self._cwd)))
        ):
            if not self._show_hidden:
                names = [name for name in names if not name.startswith(".")]
            self._folders.options = ([UP] if self._cwd else []) + names
            self._folders.value = select if select in names else None
            self._folders_note.value = "" if names else muted_html(NO_FOLDERS)
        location = (
            f"storage:{self._cwd}" if self._cwd else "storage: (the project's root)"
        )
        self._location.value = (
            '<div class="apolo-w"><b>Storage folders</b> in '
            f"<code>{html.escape(location)}</code></div>"
        )

    def _render_rows(self) -> None:
        if not self._model.mounts:
            self._rows.children = [w.HTML(muted_html(NO_MOUNTS))]
            self._rows.layout.grid_template_columns = "auto"
            return
        cells: list[w.Widget] = []
        for mount in self._model.mounts:
            cells.extend(self._mount_row(mount))
        self._rows.children = cells
        self._rows.layout.grid_template_columns = "max-content auto auto"

    def mount_rows(self) -> list[tuple[w.HTML, w.Checkbox, w.Button]]:
        """Each added mount's label, read-only checkbox and Remove button."""
        cells = list(self._rows.children)
        if len(cells) % 3:
            return []
        return [(cells[i], cells[i + 1], cells[i + 2]) for i in range(0, len(cells), 3)]

    def _mount_row(self, mount: Mount) -> list[w.Widget]:
        path = mount.container_path
        label = w.HTML(
            f'<div class="apolo-w"><code>storage:{html.escape(mount.folder)}</code> → '
            f"<code>{html.escape(path)}</code></div>"
        )
        read_only = w.Checkbox(
            value=mount.read_only,
            description="read-only",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        read_only.observe(
            lambda change, path=path: self._flag_changed(path, bool(change["new"])),
            names="value",
        )
        remove = w.Button(
            description="Remove",
            tooltip=f"remove {mount.spec}",
            layout=w.Layout(width="auto"),
        )
        remove.on_click(lambda _, path=path: self.remove(path))
        return [label, read_only, remove]
