"""Views: thin, fed by snapshots, reporting actions through callbacks.

The job views (``JobStatusView``, the jobs panel, the telemetry chart) are
anywidget views: an ES module and CSS in ``static/``, styled with JupyterLab's
theme variables only; the forms (``MountPicker``, the launcher, the forward
toggle) are stock ipywidgets. Each keeps ``text/plain`` (and the job views
``text/html``) fallbacks for terminals, headless runs and saved notebooks.
"""

from ._mount_picker import MountPicker
from ._mounts import Mount, MountList
from ._status_view import JobStatusView

__all__ = ["JobStatusView", "Mount", "MountList", "MountPicker"]
