"""Values into and out of a ``%%apolo_job --python`` cell, through storage.

Each such cell gets a storage folder (``storage:.apolo-jupyter/cells/<id>``)
mounted read-write in the job at ``MOUNT``. ``--push a,b`` pickles those
notebook variables into ``input.pkl`` there; the job runs ``_cell_runner`` (its
text, with ``python3 -c``: nothing of ours needs to be installed in the job),
which loads them as globals, runs the cell and writes ``result.pkl``: the value
of the cell's last expression, or the exception with its remote traceback, in a
dict of plain values in ``marshal``'s format (read here without running code).
A value made of builtins only (numbers, strings, lists, dicts...) travels by
``marshal`` too, so a simple cell's job imports no pickler at all.
Values are pickled with ``pickle``, or with cloudpickle (when installed) for what
plain pickle can only send by name: functions, lambdas and classes made in the
notebook or the cell. The notebook and the job must run the same Python
(major.minor). The folder is removed once read, unless ``keep``.

Unpickling runs code: the result is trusted as the user's own job is.
"""

from __future__ import annotations

import contextlib
import functools
import io
import marshal
import pickle
import shlex
import sys
import types
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yarl import URL

from ..client import Client, JobDescription, ResourceNotFound

CELLS_ROOT = "storage:.apolo-jupyter/cells"
MOUNT = "/apolo/cell"
INLINE_SOURCE = 32 * 1024  # bigger cells travel as a file, not an argument
RUNNER = Path(__file__).with_name("_cell_runner.py")


class RemoteCellError(Exception):
    """The cell's value could not travel; the message says why and what to do."""


class RemoteError(Exception):
    """An exception raised in the job whose class the notebook cannot rebuild."""

    def __init__(self, type_name: str, message: str, traceback: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message
        self.remote_traceback = traceback


def python_version() -> str:
    return "{}.{}".format(*sys.version_info[:2])


# ------------------------------------------------------------------ pickling


class _Strict(pickle.Pickler):
    """Plain pickle, refusing what it would send by name only (things made in
    ``__main__``: the job has no such names)."""

    def reducer_override(self, obj: Any) -> Any:
        made_here = isinstance(obj, type | types.FunctionType)
        if made_here and getattr(obj, "__module__", None) == "__main__":
            raise pickle.PicklingError(
                f"{obj!r} is defined in the notebook; install cloudpickle "
                "(pip install cloudpickle) to send functions and classes"
            )
        return NotImplemented


def _dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    try:
        _Strict(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
        return buffer.getvalue()
    except Exception as plain:
        try:
            import cloudpickle  # type: ignore[import-untyped]
        except ImportError:
            raise plain from None
        data: bytes = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return data


def pickle_pushed(names: Sequence[str], namespace: Mapping[str, Any]) -> bytes:
    """The notebook variables ``names`` as one pickled dict; ``RemoteCellError``
    names the variable that cannot travel, and why."""
    values = {}
    for name in names:
        if name not in namespace:
            raise RemoteCellError(
                f"--push {name}: there is no variable {name!r} in the notebook "
                "(run the cell that defines it first)"
            )
        values[name] = namespace[name]
    try:
        return _dumps(values)
    except Exception as together:
        failure = together
    for name, value in values.items():  # which one, and why
        try:
            _dumps(value)
        except Exception as exc:
            raise RemoteCellError(
                f"--push {name}: cannot pickle {name!r} (a {type(value).__name__}): "
                f"{type(exc).__name__}: {exc}"
            ) from None
    raise RemoteCellError(
        f"--push {','.join(names)}: these cannot be pickled together: {failure}"
    )


# ------------------------------------------------------------------ the job's side


@functools.cache
def runner_program() -> str:
    """``_cell_runner``'s text without its docstring, comments and blank lines:
    the job's command line is shorter (and parsed faster) for it."""
    text = RUNNER.read_text()
    start = text.index('"""')
    text = text[text.index('"""', start + 3) + 3 :]  # after the module docstring
    lines = [
        line
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RemoteCell:
    folder: URL
    command: str
    volume: str  # storage:...:MOUNT, read-write
    want_result: bool
    keep: bool


async def prepare(
    client: Client,
    source: str,
    pushed: bytes | None,
    *,
    want_result: bool,
    keep: bool,
) -> RemoteCell:
    """Make the cell's storage folder and the job's command."""
    folder = URL(f"{CELLS_ROOT}/{uuid.uuid4().hex[:16]}")
    await client.storage.mkdir(folder, parents=True, exist_ok=True)
    if pushed is not None:
        await client.storage.create(folder / "input.pkl", pushed)
    cell = ["source", source]
    if len(source.encode()) > INLINE_SOURCE:
        await client.storage.create(folder / "cell.py", source.encode())
        cell = ["file", "cell.py"]
    runner = runner_program()
    flag = "1" if want_result else "0"
    program = ["python3", "-c", runner, MOUNT, python_version(), flag, *cell]
    return RemoteCell(
        folder=folder,
        command=shlex.join(program),
        volume=f"{folder}:{MOUNT}",
        want_result=want_result,
        keep=keep,
    )


async def collect(
    client: Client, cell: RemoteCell, *, remove: bool = True
) -> dict[str, Any] | None:
    """What the job wrote (None: nothing); then the folder goes, unless ``keep``
    (or not ``remove``: the caller removes it)."""
    try:
        data = await read_all(client, cell.folder / "result.pkl")
    except ResourceNotFound:
        data = b""
    if remove and not cell.keep:
        await forget(client, cell)
    if not data:
        return None
    try:
        payload = marshal.loads(data)  # noqa: S302 (our runner's plain dict)
    except (ValueError, EOFError, TypeError):
        raise RemoteCellError(
            f"{cell.folder}/result.pkl is not what the cell's runner writes; was "
            "it changed in storage?"
        ) from None
    return payload if isinstance(payload, dict) else None


async def read_all(client: Client, uri: URL) -> bytes:
    async with client.storage.open(uri) as chunks:
        return b"".join([chunk async for chunk in chunks])


async def forget(client: Client, cell: RemoteCell) -> None:
    with contextlib.suppress(ResourceNotFound, FileNotFoundError):
        await client.storage.rm(cell.folder, recursive=True)


# ------------------------------------------------------------------ the outcome


def outcome(
    payload: dict[str, Any] | None, job: JobDescription, cell: RemoteCell
) -> Any:
    """The cell's value, or the error the job's outcome calls for."""
    if payload is None:
        code = job.history.exit_code
        why = " ".join(p for p in (job.history.reason, job.history.description) if p)
        raise RemoteCellError(
            f"job {job.id} ended {job.status.value}"
            + (f" (exit code {code})" if code is not None else "")
            + (f": {why}" if why else "")
            + " without sending a result back; its output is above "
            f"(all of it: %apolo_logs {job.id})"
        )
    kind = payload.get("kind")
    if kind == "version":
        raise RemoteCellError(
            f"the job runs Python {payload['job']} ({payload['executable']}), the "
            f"notebook Python {payload['notebook']}: pickled values may not load "
            f"across versions. Run the job with Python {payload['notebook']} "
            f"(e.g. --image python:{payload['notebook']}), or leave out --result "
            "and --push"
        )
    if kind == "push":
        raise RemoteCellError(
            f"the job could not load the --push variables: {payload['message']}. "
            "If it names cloudpickle, install it in the job's image "
            "(pip install cloudpickle), or push plain data"
        )
    if kind == "unpicklable":
        raise RemoteCellError(
            f"--result: the cell's value (a {payload['type']}) cannot be pickled: "
            f"{payload['message']}. Return plain data (numbers, lists, dicts, "
            "arrays), or install cloudpickle in the job's image"
        )
    if kind == "error":
        raise _remote_exception(payload, job)
    if kind == "value":
        try:
            if payload.get("pickler") == "marshal":
                return marshal.loads(payload["value"])  # noqa: S302 (builtins only)
            return pickle.loads(payload["value"])  # noqa: S301 (the user's own job)
        except Exception as exc:
            hint = (
                " (install cloudpickle in this kernel: pip install cloudpickle)"
                if payload.get("pickler") == "cloudpickle"
                else ""
            )
            raise RemoteCellError(
                f"--result: the job's value cannot be loaded here: "
                f"{type(exc).__name__}: {exc}{hint}"
            ) from None
    return None


def _remote_exception(payload: dict[str, Any], job: JobDescription) -> BaseException:
    """The job's exception as itself when it can be rebuilt here, else a
    ``RemoteError``; IPython shows the job's traceback for either (through
    ``_render_traceback_``), with the type and message on its last line."""
    text = str(payload.get("traceback", ""))
    fallback = RemoteError(str(payload["type"]), str(payload["message"]), text)
    exc: Any = None
    if payload.get("exception"):
        try:
            exc = pickle.loads(payload["exception"])  # noqa: S301
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        exc = fallback
    lines = [f"Traceback from job {job.id}:", *text.rstrip().split("\n")]
    candidates: list[Any] = [exc, fallback]
    for candidate in candidates:
        try:
            candidate._render_traceback_ = lambda: lines
            candidate.add_note(f"(raised in job {job.id}; its traceback is above)")
            candidate.__cause__ = RemoteTraceback(text)
        except (AttributeError, TypeError):
            continue
        return candidate  # type: ignore[no-any-return]
    return fallback


def point_to_the_output(exc: BaseException, job_id: str) -> None:
    """For a cell whose job output is shown (the magics): IPython shows the
    exception's last line and where its traceback is, not the traceback again."""
    render = getattr(exc, "_render_traceback_", None)
    if render is None:
        return
    lines = render()
    last = lines[-1] if lines else f"{type(exc).__name__}: {exc}"
    brief = [
        last,
        f"(raised in job {job_id}: its traceback is in the job's output above; "
        f"all of it: %apolo_logs {job_id})",
    ]
    with contextlib.suppress(AttributeError, TypeError):
        exc._render_traceback_ = lambda: brief  # type: ignore[attr-defined]


class RemoteTraceback(Exception):
    """The job's traceback, as the cause of its exception (outside IPython)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n" + self.text


# ------------------------------------------------------------------ one cell, end to end


async def run_cell(
    client: Client,
    source: str,
    *,
    image: str = "python:3.11",
    preset: str | None = None,
    push: bytes | None = None,
    want_result: bool = True,
    keep: bool = False,
    volumes: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    working_dir: str | None = None,
) -> tuple[Any, JobDescription]:
    """Run ``source`` in a job and wait: (its value, the finished job). The
    magics do the same with a live view; this is the plain API (tests, bench)."""
    cell = await prepare(client, source, push, want_result=want_result, keep=keep)
    try:
        job = await client.jobs.start(
            image=client.parse.remote_image(image),
            preset_name=preset or next(iter(client.presets)),
            command=cell.command,
            volumes=[client.parse.volume(v) for v in (*volumes, cell.volume)],
            env=dict(env or {}),
            working_dir=working_dir,
        )
        async with client.jobs.watch(job.id) as updates:
            async for job in updates:
                if job.status.is_finished:
                    break
    except BaseException:
        await forget(client, cell)
        raise
    payload = await collect(client, cell)
    return outcome(payload, job, cell), job
