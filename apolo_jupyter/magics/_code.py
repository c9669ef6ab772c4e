"""``--sync``, ``--result``, ``--push``, ``--keep``: code to the job, values back.

``CodeOptions.before`` turns the job's options into ones that mount the synced
folder (read-only, as the working directory) and run the cell through the
remote-cell runner; ``after`` brings the value back into the notebook, or raises
the job's exception there. The engines are ``kernel._sync`` and
``kernel._remote_cell``; this is only the magics' side.
"""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError

from ..client import ClientError, JobDescription
from ..kernel._frontend import use_widgets
from ..kernel._remote_cell import (
    RemoteCell,
    RemoteCellError,
    collect,
    forget,
    outcome,
    pickle_pushed,
    point_to_the_output,
    prepare,
)
from ..kernel._sync import SyncError, SyncResult, sync_folder
from ..kernel._transfer import Tracker
from ..kernel._transfer_view import run_transfer
from ._run import connect

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def _names(text: str, option: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if not re.fullmatch(_NAME, n)]
    if not names or bad:
        raise UsageError(
            f"{option} {text!r}: name notebook variables, separated by commas, "
            "e.g. --push model,data"
        )
    return names


class CodeOptions:
    """What the cell asked for; ``before`` and ``after`` the job."""

    def __init__(
        self,
        *,
        sync: str | None,
        result: str | None,
        push: list[str],
        keep: bool,
        cell: str | None,  # the cell's source, when it runs through the runner
        namespace: dict[str, Any],
    ) -> None:
        self.sync = sync
        self.result = result
        self.push = push
        self.keep = keep
        self.cell = cell
        self.namespace = namespace
        self._remote: RemoteCell | None = None

    @classmethod
    def from_args(
        cls, args: Any, cell: str | None, namespace: dict[str, Any]
    ) -> CodeOptions | None:
        result = getattr(args, "result", None)
        push_text = getattr(args, "push", None)
        keep = bool(getattr(args, "keep", False))
        if args.sync is None and not result and not push_text and not keep:
            return None
        if result is not None and not re.fullmatch(_NAME, result):
            raise UsageError(f"--result {result!r}: name a variable, e.g. --result x")
        runner = bool(result or push_text)
        if runner and not getattr(args, "python", False):
            raise UsageError(
                "--result and --push need --python: the cell runs as Python in "
                "the job, e.g. %%apolo_job --python --result x"
            )
        if keep and not runner:
            raise UsageError("--keep keeps the files of --result or --push: add one")
        if runner and args.detach:
            raise UsageError(
                "--result and --push wait for the job to bring its value back: "
                "leave out --detach"
            )
        return cls(
            sync=args.sync,
            result=result,
            push=_names(push_text, "--push") if push_text else [],
            keep=keep,
            cell=cell if runner else None,
            namespace=namespace,
        )

    # ---------------------------------------------------------------- before

    def before(self, options: Any) -> Any:
        rt, client = connect()
        volumes = list(options.volumes)
        workdir = options.workdir
        if self.sync is not None:
            synced = self._sync(rt, client)
            path = workdir or synced.mount_path()
            volumes.append(f"{synced.remote}:{path}:ro")
            workdir = path
            print(
                f"{synced.summary()}; in the job at {path} (read-only, its "
                "working directory)",
                flush=True,
            )
        command = options.command
        if self.cell is not None:
            pushed = None
            if self.push:
                try:
                    pushed = pickle_pushed(self.push, self.namespace)
                except RemoteCellError as exc:
                    raise UsageError(str(exc)) from None
            self._remote = rt.run(
                prepare(client, self.cell, pushed, want_result=bool(self.result),
                        keep=self.keep),
                timeout=300,
            )  # fmt: skip
            volumes.append(self._remote.volume)
            command = self._remote.command
            # a failed cell raises its own error in after(), not --raise's
            options = replace(options, raise_=False)
        return replace(
            options, volumes=tuple(volumes), workdir=workdir, command=command
        )

    def _sync(self, rt: Any, client: Any) -> SyncResult:
        folder = Path(self.sync or ".")
        tracker = Tracker(f"sync {folder.expanduser().absolute().name}")
        done: list[SyncResult] = []

        async def work(progress: Tracker) -> None:
            done.append(await sync_folder(client, folder, progress=progress))

        try:
            run_transfer(
                rt, work, tracker, widgets=use_widgets(), quiet=True,
                resume_hint="Run the cell again: the sync sends what is left.",
            )  # fmt: skip
        except SyncError as exc:
            raise UsageError(str(exc)) from None
        except (OSError, ClientError) as exc:
            raise UsageError(f"--sync {folder}: {exc}") from None
        return done[0]

    def abandon(self) -> None:
        """The job did not start: the cell's storage folder goes."""
        if self._remote is not None:
            rt, client = connect()
            rt.run(forget(client, self._remote), timeout=60)

    # ---------------------------------------------------------------- after

    def after(self, job: JobDescription) -> None:
        cell = self._remote
        if cell is None:
            return
        rt, client = connect()
        if not job.status.is_finished:  # detached by an interrupt
            print(
                f"The value will be in {cell.folder}/result.pkl when {job.id} ends "
                "(kept: it is not read now)"
            )
            return
        payload = rt.run(collect(client, cell, remove=False), timeout=300)
        if cell.keep:
            print(f"kept {cell.folder} (result.pkl, input.pkl)")
        else:  # read: the files go, while the notebook goes on
            rt.submit(forget(client, cell))
        try:
            value = outcome(payload, job, cell)
        except RemoteCellError as exc:
            raise UsageError(str(exc)) from None
        except BaseException as exc:  # the cell's own exception, from the job
            point_to_the_output(exc, job.id)
            raise
        if self.result:
            self.namespace[self.result] = value
        sys.stdout.flush()
