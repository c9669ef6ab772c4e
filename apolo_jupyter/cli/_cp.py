"""``apolo-jupyter cp``: ``%apolo_cp`` from a terminal, with the same progress line."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_cp(args: argparse.Namespace) -> int:
    from IPython.core.error import UsageError

    from ..magics._cp import copy_parsed
    from ._jobs import quiet_runtime

    quiet_runtime()
    try:
        copy_parsed(args, command="apolo-jupyter cp")
    except UsageError as exc:
        print(f"apolo-jupyter cp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def register(sub: Any) -> None:
    cp = sub.add_parser(
        "cp",
        help="copy files and folders between local paths and storage: "
        "(-r folders, -u newer only, -c continue)",
    )
    cp.add_argument("-r", "--recursive", action="store_true", help="copy folders")
    cp.add_argument(
        "-u", "--update", action="store_true", help="skip files whose copy is newer"
    )
    cp.add_argument(
        "-c",
        "--continue",
        dest="continue_",
        action="store_true",
        help="resume an interrupted copy",
    )
    cp.add_argument("src", help="local path or storage: URI (may be a pattern)")
    cp.add_argument("dst", help="storage: URI or local path")
    cp.set_defaults(func=cmd_cp)
