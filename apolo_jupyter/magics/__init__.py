"""IPython magics: ``%apolo_run``, ``%%apolo_job``, ``%apolo_ps`` and friends.

Each magic parses its line with ``IPython.core.magic_arguments`` (so ``%apolo_run?``
prints help with an example) and turns every bad input into a ``UsageError`` that
says how to fix it. Work happens on the runtime loop (``_runtime``).
"""

from __future__ import annotations

import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

# The work lives in modules loaded on first use, so that %load_ext stays fast.


def _parse(func: Any, line: str, name: str) -> Any:
    """Options split as a shell would (quotes removed), as ``apolo run`` does."""
    return _parse_argv(func, _split_argv(line, name)[0], name)


def _parse_argv(func: Any, argv: list[str], name: str) -> Any:
    try:
        return func.parser.parse_args(argv)
    except UsageError as exc:
        raise UsageError(
            f"{exc} (see %{name}? for the options and an example)"
        ) from None


def _declared(add_all: Any) -> Any:
    """A decorator adding the arguments that ``add_all(add)`` declares, in order,
    through IPython's ``magic_arguments.argument`` (so ``%magic?`` lists them)."""

    def decorate(func: Any) -> Any:
        calls: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        add_all(lambda *flags, **kwargs: calls.append((flags, kwargs)))
        for flags, kwargs in reversed(calls):
            func = argument(*flags, **kwargs)(func)
        return func

    return decorate


def _run_options(*, cell: bool) -> Any:
    """The options of `apolo run`, and ours (with ``cell``, those of a cell's
    Python too: --result, --push, --keep), from the one option table."""
    from ..kernel._run_options import CELL, MAGIC, add_run_options

    where = (MAGIC, CELL) if cell else (MAGIC,)
    return _declared(lambda add: add_run_options(add, *where))


def _job_options(command: str) -> Any:
    """The options of `apolo <command>`, from the job commands' option table."""
    from ..kernel._job_options import COMMANDS, add_options
    from ..kernel._run_options import MAGIC

    return _declared(lambda add: add_options(COMMANDS[command], add, MAGIC))


def _split_command(line: str) -> tuple[str, bool, str]:
    """Options before a standalone ``--``, the command after it (verbatim)."""
    padded = f" {line} "
    at = padded.find(" -- ")
    if at < 0:
        return line, False, ""
    return padded[:at].strip(), True, padded[at + 4 :]


def _split_argv(line: str, name: str) -> tuple[list[str], list[str] | None]:
    """Words before the first ``--`` (options, image), and those after it."""
    try:
        argv = shlex.split(line)
    except ValueError as exc:  # e.g. an unclosed quote
        raise UsageError(
            f"cannot split the options: {exc} (close the quote, or see %{name}?)"
        ) from None
    if "--" not in argv:
        return argv, None
    at = argv.index("--")
    return argv[:at], argv[at + 1 :]


@magics_class
class ApoloMagics(Magics):
    @magic_arguments()
    @_run_options(cell=False)
    @argument("image", nargs="?", help="image, e.g. ubuntu:latest or python:3.11")
    @argument("command", nargs="*", help="-- CMD...: the job's command (no shell)")
    @line_magic
    def apolo_run(self, line: str) -> Any:
        """Start a job and watch it: status, logs, exit code. Takes every option of
        `apolo run` with its spelling and meaning (-d is --description, as there).

        Example::

            job = %apolo_run -s cpu-small -v storage:data:/var/data ubuntu:latest -- python3 train.py
        """
        before, after = _split_argv(line, "apolo_run")
        args = _parse_argv(self.apolo_run, before, "apolo_run")
        if not args.image and args.sync not in (None, "."):  # --sync IMAGE -- CMD
            args.image, args.sync = args.sync, "."
        if not args.image:
            raise UsageError(
                "%apolo_run needs an image: %apolo_run [options] IMAGE [-- COMMAND...], "
                "e.g. %apolo_run ubuntu:latest -- echo hello"
            )
        from ..kernel._options import JobOptions, command_from_argv

        # As apolo run: one word after -- is the command as it is, several are
        # quoted and joined (the platform splits it again, without a shell).
        command = command_from_argv(after if after is not None else args.command)
        options = JobOptions.from_args(args, args.image, command)
        return self._start(options, self._code(args, None))

    @magic_arguments()
    @_run_options(cell=True)
    @argument("--image", default="python:3.11", help="image (default python:3.11)")
    @argument("--python", action="store_true", help="run the cell with python3 -c")
    @cell_magic
    def apolo_job(self, line: str, cell: str) -> Any:
        """Run the cell body as the job's script (bash -c, or python3 -c with --python).

        Example::

            %%apolo_job -s cpu-small --image python:3.11 -v storage:data:/var/data
            echo "training"
            python3 train.py --epochs 3
        """
        args = _parse(self.apolo_job, line, "apolo_job")
        if not cell.strip():
            raise UsageError("%%apolo_job needs a script in the cell body")
        from ..kernel._options import JobOptions

        program = ["python3", "-c"] if args.python else ["bash", "-c"]
        command = shlex.join([*program, cell])
        options = JobOptions.from_args(args, args.image, command)
        return self._start(options, self._code(args, cell))

    def _code(self, args: Any, cell: str | None) -> Any:
        from ._code import CodeOptions

        namespace = self.shell.user_ns if self.shell is not None else {}
        return CodeOptions.from_args(args, cell, namespace)

    def _volumes(self, specs: list[str]) -> list[str]:
        """``-v @picker`` takes the mounts of a MountPicker (or list) in the namespace."""
        out: list[str] = []
        namespace = self.shell.user_ns if self.shell is not None else {}
        for spec in specs:
            if not spec.startswith("@"):
                out.append(spec)
                continue
            value = namespace.get(spec[1:])
            value = getattr(value, "value", value)
            if not isinstance(value, list) or not all(
                isinstance(v, str) for v in value
            ):
                raise UsageError(
                    f"-v {spec}: name a MountPicker or a list of volume strings, "
                    "e.g. picker = MountPicker(); %apolo_run -v @picker IMAGE -- CMD"
                )
            out.extend(value)
        return out

    def _start(self, options: Any, code: Any = None) -> Any:
        from dataclasses import replace

        from ._run import attach_job, start_job

        options = replace(options, volumes=tuple(self._volumes(list(options.volumes))))
        if code is not None:  # --sync, --result, --push (see _code)
            options = code.before(options)
        try:
            job = start_job(options)
        except BaseException:
            if code is not None:
                code.abandon()
            raise
        result = attach_job(job.id, options)
        if options.out and self.shell is not None:
            self.shell.user_ns[options.out] = result
        if code is not None:
            code.after(result)
        if options.out or (code is not None and code.result):
            return None  # the value went into a variable: no Out[] under the view
        return result

    @magic_arguments()
    @_job_options("status")
    @line_magic
    def apolo_status(self, line: str) -> Any:
        """Describe a job (as `apolo status`), then follow it live unless --detach
        (also after a kernel restart).

        Example::

            %apolo_status job-0b0b1c52-8e43-4d2b-9b6c-2b3a8c1c6b1e
        """
        from ..kernel._options import JobOptions
        from ._jobs import describe_job
        from ._run import attach_job

        args = _parse(self.apolo_status, line, "apolo_status")
        describe_job(args.job, args.full_uri)
        options = JobOptions(
            detach=args.detach, kill_on_interrupt=args.kill_on_interrupt
        )
        return attach_job(args.job, options, wait_for_start=False)

    @magic_arguments()
    @_job_options("ps")
    @line_magic
    def apolo_ps(self, line: str) -> None:
        """List jobs (pending and running ones unless --all or --status), with the
        options of `apolo ps`.

        Example::

            %apolo_ps --all --tag experiment-3 --format "id name status when"
        """
        from ._ps import list_jobs

        list_jobs(_parse(self.apolo_ps, line, "apolo_ps"))

    @magic_arguments()
    @_job_options("logs")
    @line_magic
    def apolo_logs(self, line: str) -> None:
        """Print a job's output (all of it; -f follows a running job), with
        `apolo logs`'s --since and --timestamps.

        Example::

            %apolo_logs -f --timestamps job-0b0b1c52-8e43-4d2b-9b6c-2b3a8c1c6b1e
        """
        from ._jobs import print_logs

        args = _parse(self.apolo_logs, line, "apolo_logs")
        print_logs(args.job, args.follow, args.since, args.timestamps)

    @magic_arguments()
    @_job_options("kill")
    @line_magic
    def apolo_kill(self, line: str) -> None:
        """Kill jobs.

        Example::

            %apolo_kill job-0b0b1c52-8e43-4d2b-9b6c-2b3a8c1c6b1e
        """
        from ._jobs import kill_jobs

        args = _parse(self.apolo_kill, line, "apolo_kill")
        kill_jobs(args.jobs)

    @magic_arguments()
    @_job_options("bump-life-span")
    @line_magic
    def apolo_bump_life_span(self, line: str) -> None:
        """Let a job run longer (as `apolo job bump-life-span`).

        Example::

            %apolo_bump_life_span job-0b0b1c52-8e43-4d2b-9b6c-2b3a8c1c6b1e 2h
        """
        from ._jobs import bump_life_span

        args = _parse(self.apolo_bump_life_span, line, "apolo_bump_life_span")
        bump_life_span(args.job, args.additional_life_span)

    @magic_arguments()
    @_job_options("generate-run-command")
    @line_magic
    def apolo_generate_run_command(self, line: str) -> None:
        """The `apolo run` line that starts the same job again (it also works
        after %apolo_run).

        Example::

            %apolo_generate_run_command job-0b0b1c52-8e43-4d2b-9b6c-2b3a8c1c6b1e
        """
        from ._jobs import generate_run_command

        args = _parse(
            self.apolo_generate_run_command, line, "apolo_generate_run_command"
        )
        print(generate_run_command(args.job))

    @magic_arguments()
    @argument("backend", nargs="?", help="local, auto, or an API URL (with --token)")
    @argument("--token", help="token for an API URL")
    @line_magic
    def apolo_use(self, line: str) -> None:
        """Show or switch the platform the magics use.

        Example::

            %apolo_use local
        """
        from ._jobs import show_backend

        args = _parse(self.apolo_use, line, "apolo_use")
        show_backend(args.backend, args.token)

    @magic_arguments()
    @argument("-r", "--recursive", action="store_true", help="copy folders too")
    @argument(
        "-u", "--update", action="store_true", help="skip files whose copy is newer"
    )
    @argument(
        "-c",
        "--continue",
        dest="continue_",
        action="store_true",
        help="resume an interrupted copy: finished files are skipped, partial "
        "ones continued",
    )
    @argument("src", help="local path or storage: URI; may be a pattern (*.csv)")
    @argument("dst", help="storage: URI or local path; an existing folder takes SRC")
    @line_magic
    def apolo_cp(self, line: str) -> None:
        """Copy files and folders between here and storage, with a progress bar.

        Example::

            %apolo_cp -r data storage:datasets/data
        """
        from ._cp import copy_parsed

        copy_parsed(_parse(self.apolo_cp, line, "apolo_cp"))

    @magic_arguments()
    @argument("job", help="job id or name")
    @argument("port", type=int, help="the job's TCP port, e.g. 8080")
    @argument("--on", action="store_true", help="turn the forward on at once")
    @line_magic
    def apolo_forward(self, line: str) -> Any:
        """Show a toggle that serves a job's port inside the notebook, via Jupyter.

        Example::

            %apolo_forward job-0b0b1c52-8e43-4d2b-9b6c-2b3a8c1c6b1e 8080 --on
        """
        from ._forward import forward_toggle

        args = _parse(self.apolo_forward, line, "apolo_forward")
        return forward_toggle(args.job, args.port, args.on)

    @magic_arguments()
    @argument("job", help="job id or name")
    @argument("command", nargs="*", help="the command after --, run without a shell")
    @line_magic
    def apolo_exec(self, line: str) -> int:
        """Run a command inside a running job: its files, processes and env.

        The output streams into the cell; the value is the exit code.
        Example: ``code = %apolo_exec my-job -- ls -l /tmp``
        """
        from ._exec import exec_in_job

        head, _, command = _split_command(line)
        args = _parse(self.apolo_exec, head, "apolo_exec")
        return exec_in_job(args.job, command or shlex.join(args.command))

    @magic_arguments()
    @argument("job", help="job id or name")
    @argument(
        "-n",
        "--samples",
        type=int,
        help="print this many samples as text and return (default: a live chart; "
        "10 lines in a terminal or a headless run)",
    )
    @line_magic
    def apolo_top(self, line: str) -> Any:
        """A running job's CPU (cores), memory and GPU, about once a second.

        Example: ``%apolo_top my-job`` (a live chart), ``%apolo_top my-job -n 3``
        """
        from ._top import show_top

        args = _parse(self.apolo_top, line, "apolo_top")
        return show_top(args.job, args.samples)
