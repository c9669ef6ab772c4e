"""Kernel-side glue between the client and what a notebook shows.

- ``_runtime``: the one sync <-> async bridge (a daemon thread, one event loop);
- ``_follow``: one job's status changes and output, in reading order;
- ``_bridge``: the one module that feeds views from the runtime thread;
- ``_attach``: a cell attached to a job (a live view, or text);
- ``_frontend``: widgets or text;
- ``_options``: the job-starting options and their parsers;
- ``_forward_control`` / ``_forward_registry``: port forwards served through Jupyter;
- ``_platform_registry``: the kernel's platform, for the server's kill route;
- ``_records``: the private files those registries are made of;
- ``_storage_access``: the MountPicker's default storage callables.

Nothing here is imported by ``import apolo_jupyter`` or ``%load_ext``; each magic
loads what it needs on first use.
"""
