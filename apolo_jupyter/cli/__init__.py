"""``apolo-jupyter``: manage the local platform and work with jobs from a terminal.

Each command group is a module with a ``register(subparsers)`` function; adding a
group is one module and one line in ``GROUPS``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import _cp, _exec, _jobs, _local, _secrets
from ._local import passed_config

__all__ = ["build_parser", "main", "passed_config"]

GROUPS = (_jobs, _exec, _cp, _secrets, _local)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apolo-jupyter",
        description="Run Apolo jobs from Jupyter; manage the embedded local platform.",
    )
    sub = parser.add_subparsers(dest="group", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
