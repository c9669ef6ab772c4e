"""Options of ``apolo ps``, ``logs``, ``status``, ``kill``, ``bump-life-span`` and
``generate-run-command`` (apolo-cli 26.9.0), described once for the magics
(``%apolo_ps`` ...) and the CLI (``apolo-jupyter ps`` ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._run_options import BOTH, MAGIC, RunOption, _opt

STATUSES = ("pending", "suspended", "running", "succeeded", "failed", "cancelled")

_JOB = _opt("job", dest="job", metavar="JOB", help="job id or name")

PS_OPTIONS: tuple[RunOption, ...] = (
    _opt("-s", "--status", dest="status", kind="append", metavar="STATUS",
         choices=STATUSES, help="only jobs with this status; repeatable"),
    _opt("-a", "--all", dest="all", kind="flag",
         help="all jobs, whatever their status (default: pending and running)"),
    _opt("--cluster", dest="cluster", metavar="CLUSTER",
         help="jobs of this cluster (default: the current one)"),
    _opt("--org", dest="org", kind="append", metavar="ORG",
         help="only jobs of this org; repeatable (default: the current one)"),
    _opt("--all-orgs", dest="all_orgs", kind="flag", help="jobs of every org"),
    _opt("-p", "--project", dest="project", kind="append", metavar="PROJECT",
         help="only jobs of this project; repeatable (default: the current one)"),
    _opt("--all-projects", dest="all_projects", kind="flag",
         help="jobs of every project"),
    _opt("-o", "--owner", dest="owner", kind="append", metavar="OWNER",
         help="only jobs of this owner (ME: you); repeatable"),
    _opt("-n", "--name", dest="name", metavar="NAME", help="only jobs with this name"),
    _opt("--distinct", dest="distinct", kind="flag",
         help="only the first job of each name"),
    _opt("--recent-first", dest="recent_first", kind="toggle", default=False,
         negative=("--recent-last",), help="newest jobs first (default: last)"),
    _opt("-t", "--tag", dest="tag", kind="append", metavar="TAG",
         help="only jobs with this tag; repeatable"),
    _opt("-d", "--description", dest="description", metavar="DESCRIPTION",
         help="only jobs with exactly this description"),
    _opt("--since", dest="since", metavar="DATE_OR_TIMEDELTA",
         help="jobs created at or after this ISO date, or this long ago (1d2h)"),
    _opt("--until", dest="until", metavar="DATE_OR_TIMEDELTA",
         help="jobs created at or before this ISO date, or this long ago"),
    _opt("-w", "--wide", dest="wide", kind="flag", help="do not cut long cells"),
    _opt("--format", dest="format", metavar="COLUMNS",
         help="columns, e.g. 'id name status when' or '{id}, {status;TITLE}' "
         "(apolo help ps-format)"),
    _opt("--full-uri", dest="full_uri", kind="flag", help="full image URIs"),
)  # fmt: skip

LOGS_OPTIONS: tuple[RunOption, ...] = (
    _JOB,
    _opt("--since", dest="since", metavar="DATE_OR_TIMEDELTA",
         help="output from this ISO date on, or from this long ago (1d2h3m4s)"),
    _opt("--timestamps", dest="timestamps", kind="flag",
         help="prefix each line with its time"),
    _opt("-f", "--follow", dest="follow", kind="flag", ours=True,
         help="follow a running job until it ends (ours; apolo logs always does)"),
)  # fmt: skip

STATUS_OPTIONS: tuple[RunOption, ...] = (
    _JOB,
    _opt("--full-uri", dest="full_uri", kind="flag", help="full URIs"),
    _opt("--detach", dest="detach", kind="flag", ours=True,
         where=frozenset({MAGIC}), help="print the status; do not follow the job"),
    _opt("--kill-on-interrupt", dest="kill_on_interrupt", kind="flag", ours=True,
         where=frozenset({MAGIC}),
         help="interrupting the cell kills the job instead of detaching"),
)  # fmt: skip

KILL_OPTIONS: tuple[RunOption, ...] = (
    _opt("jobs", dest="jobs", metavar="JOB", kind="many", help="job ids or names"),
)

BUMP_OPTIONS: tuple[RunOption, ...] = (
    _JOB,
    _opt("additional_life_span", dest="additional_life_span", metavar="TIMEDELTA",
         help="how much longer the job may run, e.g. 2h or 1d2h3m"),
)  # fmt: skip

GENERATE_OPTIONS: tuple[RunOption, ...] = (_JOB,)

COMMANDS: dict[str, tuple[RunOption, ...]] = {
    "ps": PS_OPTIONS,
    "logs": LOGS_OPTIONS,
    "status": STATUS_OPTIONS,
    "kill": KILL_OPTIONS,
    "bump-life-span": BUMP_OPTIONS,
    "generate-run-command": GENERATE_OPTIONS,
}


def add_options(
    options: tuple[RunOption, ...], add: Callable[..., Any], where: str
) -> None:
    """Declare ``options`` (positionals too) through an ``add_argument``."""
    for option in options:
        if where not in option.where:
            continue
        if not option.flags[0].startswith("-"):
            nargs = {"many": "+"}.get(option.kind)
            kwargs: dict[str, Any] = dict(metavar=option.metavar, help=option.help)
            if nargs:
                kwargs["nargs"] = nargs
            add(option.dest, **kwargs)
            continue
        for flags, kwargs in option.argparse_calls():
            add(*flags, **kwargs)


__all__ = ["BOTH", "COMMANDS", "add_options"]
