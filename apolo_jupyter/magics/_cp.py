"""``%apolo_cp`` (and ``apolo-jupyter cp``): copy between local paths and storage."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from ..client import ClientError
from ..kernel._copy import CopyError, copier, describe, plan
from ..kernel._frontend import use_widgets
from ..kernel._transfer import Tracker, TransferSnapshot
from ..kernel._transfer_view import run_transfer
from ._run import connect

if TYPE_CHECKING:
    from argparse import Namespace


def copy(
    src: str,
    dst: str,
    *,
    recursive: bool = False,
    update: bool = False,
    continue_: bool = False,
    command: str = "%apolo_cp",
) -> TransferSnapshot:
    """Copy ``src`` to ``dst`` (one of them ``storage:``) with a progress bar."""
    rt, client = connect()
    try:
        steps = rt.run(plan(client, src, dst, recursive=recursive), timeout=300)
    except CopyError as exc:
        usage = " --help" if command.startswith("apolo-jupyter") else "?"
        raise UsageError(f"{exc} (see {command}{usage} for the options)") from None
    except (OSError, ClientError) as exc:
        raise UsageError(f"cannot copy {src} to {dst}: {exc}") from None
    flags = "-c" + ("r" if recursive else "")
    hint = f"Continue where it stopped with: {command} {flags} {shlex.join([src, dst])}"
    tracker = Tracker(
        describe(steps), sum(s.size for s in steps), sum(s.files for s in steps)
    )
    work = copier(client, steps, update=update, continue_=continue_)
    try:
        return run_transfer(rt, work, tracker, widgets=use_widgets(), resume_hint=hint)
    except (OSError, ClientError) as exc:
        raise UsageError(f"copy stopped: {exc}. {hint}") from None


def copy_parsed(args: Namespace, command: str = "%apolo_cp") -> TransferSnapshot:
    """``copy`` with the options ``%apolo_cp`` and ``apolo-jupyter cp`` both
    parse: ``src``, ``dst``, ``-r``, ``-u`` and ``-c``."""
    return copy(
        args.src,
        args.dst,
        recursive=args.recursive,
        update=args.update,
        continue_=args.continue_,
        command=command,
    )
