"""``apolo-jupyter``: manage the local platform and work with jobs from a terminal.

Each command group is a module with a ``register(subparsers)`` function; adding a
group is one module and one line in ``GROUPS``.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import Any

from . import _cp, _exec, _jobs, _local, _secrets
from ._local import passed_config

__all__ = ["build_parser", "main", "passed_config"]

GROUPS = (_jobs, _exec, _cp, _secrets, _local)


class Parser(argparse.ArgumentParser):
    """Options are taken as spelled (as by `apolo`, whose options take no
    abbreviations), and an unknown one is reported by the command it was given
    to: that command's usage, and the option names closest to the mistyped one.
    (argparse leaves a subcommand's unknown options to the top-level parser,
    which printed its own usage.) Subcommands are made of this class too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(self._unknown(extras))
        return parsed, extras

    def _unknown(self, extras: list[str]) -> str:
        names = [name for action in self._actions for name in action.option_strings]
        words = []
        for arg in extras:
            given = arg.split("=", 1)[0]
            same_kind = [n for n in names if n.startswith("--") == arg.startswith("--")]
            close = difflib.get_close_matches(given, same_kind, n=2, cutoff=0.6)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            words.append(arg + (hint if arg.startswith("-") else ""))
        return (
            f"unrecognized arguments: {' '.join(words)}; "
            f"{self.prog} --help lists the options"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
