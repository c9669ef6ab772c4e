"""The options of ``apolo run`` (apolo-cli 26.9.0), described once.

``%apolo_run``, ``%%apolo_job`` and ``apolo-jupyter run`` are all built from
``RUN_OPTIONS``, so they cannot drift apart or from ``apolo run``: the same
spellings, the same meanings, the same defaults. Each entry says which
``client.jobs.start`` parameter it fills and whether the local platform honours
it; what the local platform cannot honour is refused there with a message that
says so (never dropped silently), and passed as is to a real cluster.

Ours-only options (``ours=True``) never reuse a spelling of ``apolo run``;
among them are the magics' ``--sync [DIR]`` (code to the job) and
``%%apolo_job``'s ``--result``, ``--push`` and ``--keep`` (values back and forth),
so every option of every entry point is in this one table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# Where an option exists: in the magics, in ``apolo-jupyter run``, or both;
# CELL: in ``%%apolo_job`` only (it works on the cell's Python).
MAGIC, CLI, CELL = "magic", "cli", "cell"
BOTH = frozenset({MAGIC, CLI})


@dataclass(frozen=True)
class RunOption:
    """One option of ``apolo run`` (or one of ours)."""

    flags: tuple[str, ...]
    dest: str  # the JobOptions field it sets
    help: str
    kind: str = "value"  # value | optional | append | flag | toggle
    metavar: str | None = None
    default: Any = None
    const: Any = None  # an optional value's value when the flag stands alone
    choices: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()  # a toggle's off spellings, e.g. --no-extshm
    fills: str = ""  # the jobs.start parameter (or what it drives)
    local_refusal: str = ""  # why the local platform cannot honour it ("": it does)
    ours: bool = False  # not an option of `apolo run`
    where: frozenset[str] = BOTH

    @property
    def name(self) -> str:
        """The long spelling, e.g. ``--life-span``."""
        return next(f for f in self.flags if f.startswith("--"))

    def is_set(self, value: Any) -> bool:
        """Whether ``value`` asks for something (not the default, not empty)."""
        if value in (None, False, (), [], ""):
            return False
        return bool(value != self.default)

    def argparse_calls(self) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
        """``(flags, kwargs)`` for ``add_argument``, one or two of them."""
        text = self.help
        if self.local_refusal:
            text += " (refused by the local platform)"
        if self.kind == "toggle":
            yield (
                self.flags,
                dict(
                    dest=self.dest,
                    action="store_const",
                    const=True,
                    default=self.default,
                    help=text,
                ),
            )
            yield (
                self.negative,
                dict(
                    dest=self.dest,
                    action="store_const",
                    const=False,
                    default=self.default,
                    help=f"the opposite of {self.name}",
                ),
            )
            return
        kwargs: dict[str, Any] = dict(dest=self.dest, help=text)
        if self.kind == "flag":
            kwargs.update(action="store_true", default=False)
        else:
            if self.kind == "append":
                kwargs.update(action="append", default=[])
            elif self.kind == "optional":
                kwargs.update(nargs="?", const=self.const, default=self.default)
            else:
                kwargs["default"] = self.default
            kwargs["metavar"] = self.metavar
            if self.choices:
                kwargs["choices"] = list(self.choices)
        yield self.flags, kwargs


def _opt(*flags: str, dest: str, help: str, **kw: Any) -> RunOption:
    return RunOption(flags=flags, dest=dest, help=help, **kw)


_NO_INGRESS = (
    "the local platform has no HTTP ingress; its jobs share the host network, so "
    "open http://127.0.0.1:PORT, or use --port-forward or %apolo_forward"
)

RUN_OPTIONS: tuple[RunOption, ...] = (
    _opt("-s", "--preset", dest="preset", metavar="PRESET", fills="preset_name",
         help="resource preset (default: the cluster's first), e.g. cpu-small"),
    _opt("-v", "--volume", dest="volumes", kind="append", metavar="MOUNT",
         fills="volumes / secret_files / disk_volumes",
         help="mount storage:FOLDER:PATH[:ro|rw], disk:DISK:PATH[:ro|rw] or "
         "secret:KEY:PATH; repeatable (magics: -v @picker takes a MountPicker's)"),
    _opt("-e", "--env", dest="env", kind="append", metavar="VAR=VAL",
         fills="env / secret_env",
         help="environment variable; VAR=secret:KEY passes a secret; VAR alone "
         "takes this process's value; repeatable"),
    _opt("--env-file", dest="env_files", kind="append", metavar="PATH",
         fills="env / secret_env", help="file of VAR=VAL lines; repeatable"),
    _opt("-n", "--name", dest="name", metavar="NAME", fills="name",
         help="job name"),
    _opt("--tag", dest="tags", kind="append", metavar="TAG", fills="tags",
         help="job tag; repeatable"),
    _opt("-d", "--description", dest="description", metavar="DESC",
         fills="description", help="job description in free format"),
    _opt("--entrypoint", dest="entrypoint", metavar="TEXT", fills="entrypoint",
         help="executable entrypoint (overrides the image's ENTRYPOINT and CMD)"),
    _opt("-w", "--workdir", dest="workdir", metavar="TEXT", fills="working_dir",
         help="working directory inside the job"),
    _opt("-x", "--extshm", dest="extshm", kind="toggle", default=True,
         negative=("-X", "--no-extshm"), fills="shm",
         help="request extended /dev/shm space (default: on)"),
    _opt("--http-port", dest="http_port", metavar="PORT", default="80",
         fills="http", help="the job's HTTP port (default 80; 0: none)"),
    _opt("--http-auth", dest="http_auth", kind="toggle", default=None,
         negative=("--no-http-auth",), fills="http.requires_auth",
         help="require platform authentication for the HTTP port (default: on)"),
    _opt("--life-span", dest="life_span", metavar="TIMEDELTA",
         fills="life_span", help="run-time limit like 1d2h3m4s (default 1d; "
         "0: none)"),
    _opt("--schedule-timeout", dest="schedule_timeout", metavar="TIMEDELTA",
         fills="schedule_timeout",
         help="fail the job if it cannot start within this time, like 3m4s"),
    _opt("--restart", dest="restart", metavar="POLICY", default="never",
         choices=("never", "on-failure", "always"), fills="restart_policy",
         help="restart policy when the job exits: never, on-failure, always"),
    _opt("--priority", dest="priority", metavar="PRIORITY",
         choices=("low", "normal", "high"), fills="priority",
         help="start order among waiting jobs: low, normal, high"),
    _opt("--energy-schedule", dest="energy_schedule", metavar="NAME",
         fills="energy_schedule_name",
         local_refusal="it has no energy schedules: jobs start when they fit",
         help="run only within this energy schedule (a scheduler-enabled preset)"),
    _opt("--privileged", dest="privileged", kind="flag", fills="privileged",
         local_refusal="its jobs run in a sandbox with every capability dropped",
         help="run the job in privileged mode, if the cluster supports it"),
    _opt("-t", "--tty", dest="tty", kind="toggle", default=None,
         negative=("-T", "--no-tty"), fills="tty",
         help="allocate a TTY (default: on when run from a terminal)"),
    _opt("--pass-config", dest="pass_config", kind="toggle", default=False,
         negative=("--no-pass-config",), fills="pass_config",
         help="give the job this login (APOLO_PASSED_CONFIG) (default: off)"),
    _opt("--wait-for-seat", dest="wait_for_seat", kind="toggle", default=False,
         negative=("--no-wait-for-seat",), fills="wait_for_jobs_quota",
         help="wait for the running-jobs quota (default: off)"),
    _opt("--wait-start", dest="wait_start", kind="toggle", default=True,
         negative=("--no-wait-start",), fills="(client side)",
         help="wait until the job starts or fails (default: on; off implies "
         "--detach)"),
    _opt("--detach", dest="detach", kind="flag", fills="(client side)",
         help="do not follow the job's output and exit code (it still waits for "
         "the start unless --no-wait-start)"),
    _opt("--port-forward", dest="port_forwards", kind="append",
         metavar="LOCAL_PORT:REMOTE_PORT", fills="(client side: jobs.port_forward)",
         help="forward a port of the running job to 127.0.0.1; repeatable"),
    _opt("--browse", dest="browse", kind="flag", fills="(client side)",
         local_refusal=_NO_INGRESS, help="open the job's URL in a web browser"),
    _opt("--share", dest="share", kind="append", metavar="USER",
         fills="(client side: users.share)",
         local_refusal="it has a single user; there is nobody to share with",
         help="share write permission on the job with a user or role"),
    _opt("-p", "--project", dest="project", metavar="PROJECT",
         fills="project_name", help="run the job in this project"),
    _opt("--org", dest="org", metavar="ORG", fills="org_name",
         help="run the job in this org"),
    _opt("--cluster", dest="cluster", metavar="CLUSTER", fills="cluster_name",
         help="run the job in this cluster"),
    # Ours. None of these spellings is an option of `apolo run`.
    _opt("--preemptible", dest="preemptible", kind="flag", ours=True,
         fills="jobs.run(preemptible_node=True), the preset's resources",
         help="run on a preemptible node (may be suspended and restarted); keeps "
         "every resource of the preset"),
    _opt("--kill-on-interrupt", dest="kill_on_interrupt", kind="flag", ours=True,
         where=frozenset({MAGIC}), fills="(client side)",
         help="interrupting the cell kills the job instead of detaching"),
    _opt("--raise", dest="raise_", kind="flag", ours=True, where=frozenset({MAGIC}),
         fills="(client side)", help="raise if the job does not succeed"),
    _opt("-o", "--out", dest="out", metavar="VAR", ours=True,
         where=frozenset({MAGIC}), fills="(client side)",
         help="also store the final JobDescription in this variable"),
    _opt("--local", dest="local", kind="flag", ours=True, where=frozenset({CLI}),
         fills="(client side)",
         help="use the embedded local platform even if a login exists"),
    _opt("--sync", dest="sync", kind="optional", const=".", metavar="DIR",
         ours=True, where=frozenset({MAGIC}),
         fills="(client side: volumes, working_dir; magics._code)",
         help="upload what changed in DIR (default: the notebook's folder) and "
         "mount it read-only as the job's working directory"),
    _opt("--result", dest="result", metavar="VAR", ours=True,
         where=frozenset({CELL}), fills="(client side: magics._code)",
         help="with --python: store the value of the cell's last expression in "
         "VAR here"),
    _opt("--push", dest="push", metavar="A,B", ours=True, where=frozenset({CELL}),
         fills="(client side: magics._code)",
         help="with --python: send these notebook variables to the job as globals"),
    _opt("--keep", dest="keep", kind="flag", ours=True, where=frozenset({CELL}),
         fills="(client side: magics._code)",
         help="keep the --result/--push files in storage after reading them"),
)  # fmt: skip

BY_DEST = {o.dest: o for o in RUN_OPTIONS}


def options_for(*where: str) -> tuple[RunOption, ...]:
    """The options of an entry point that is each of ``where``, in table order."""
    return tuple(o for o in RUN_OPTIONS if o.where & set(where))


def add_run_options(add: Callable[..., Any], *where: str) -> None:
    """Declare the options of ``where`` through an ``add_argument``-like callable."""
    for option in options_for(*where):
        for flags, kwargs in option.argparse_calls():
            add(*flags, **kwargs)


def apolo_run_flags() -> set[str]:
    """Every spelling that is ``apolo run``'s (not ours)."""
    return {flag for o in RUN_OPTIONS if not o.ours for flag in (*o.flags, *o.negative)}


def refused_locally(values: dict[str, Any]) -> list[str]:
    """Sentences for each option in ``values`` the local platform cannot honour."""
    out = []
    for dest, value in values.items():
        option = BY_DEST.get(dest)
        if option is not None and option.local_refusal and option.is_set(value):
            out.append(
                f"{option.name} is refused by the local platform: "
                f"{option.local_refusal}"
            )
    return out
