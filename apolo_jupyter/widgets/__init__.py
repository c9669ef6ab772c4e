"""ipywidgets views: thin, fed by snapshots, reporting actions through callbacks.

Each has a deterministic ``text/plain`` fallback for terminals and headless runs.
"""

from ._mount_picker import MountPicker
from ._mounts import Mount, MountList
from ._status_view import JobStatusView

__all__ = ["JobStatusView", "Mount", "MountList", "MountPicker"]
