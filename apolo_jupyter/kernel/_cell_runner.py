"""Runs a notebook cell inside a job and writes back its value or its exception.

This file is not imported: its text is the program of ``python3 -c`` in the job,
so the job needs nothing but a Python of the notebook's version (apolo_jupyter
need not be installed there). Arguments: the folder the cell's storage folder is
mounted at, the notebook's Python version (``3.11``), ``1`` to send back the
value of the cell's last expression (``0`` not to), then ``source`` and the
cell's source, or ``file`` and the name of a file in that folder that holds it.
``input.pkl`` there holds the pushed globals. ``result.pkl`` gets a dict of plain
values (see ``_remote_cell``).

It must parse on old Pythons too (no syntax newer than 3.6), so that a job with
another Python says so instead of failing with a SyntaxError; and start fast: no
``typing`` (its annotations are strings), what only errors need is imported then.
"""

import marshal
import os
import sys

MYPY = False
if MYPY:  # for the type checker only: nothing of typing is imported in the job
    from typing import Any

CELL = "<cell>"
ENVELOPE = 2  # marshal format of result.pkl: any Python 3 reads it


def picklers() -> "Any":
    """The C pickler alone when there is one: pickle.py imports re and more, which
    costs more startup time than a small cell takes."""
    try:
        import _pickle

        return _pickle
    except ImportError:  # e.g. PyPy
        import pickle

        return pickle


def write(folder: str, payload: "dict[str, object]") -> None:
    """result.pkl: a dict of plain values, in marshal's format (read with no code
    run; read only once the job has ended, so no temporary name is needed)."""
    with open(os.path.join(folder, "result.pkl"), "wb") as out:
        out.write(marshal.dumps(payload, ENVELOPE))


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def dumps(value: object) -> "tuple[bytes, str]":
    """marshal for plain builtin values (numbers, strings, lists, dicts...: no
    import at all); else plain pickle; cloudpickle for what plain pickle would
    only send by name (functions, classes made in the cell)."""
    try:
        return marshal.dumps(value), "marshal"  # type: ignore[arg-type]
    except ValueError:  # not made of builtins only
        pass
    import io

    pickle = picklers()

    function = type(describe)

    class Strict(pickle.Pickler):  # type: ignore[misc,name-defined]
        def reducer_override(self, obj: object) -> object:
            made_here = isinstance(obj, (type, function))
            if made_here and getattr(obj, "__module__", None) == "__main__":
                raise pickle.PicklingError(f"{obj!r} is defined in the cell")
            return NotImplemented

    buffer = io.BytesIO()
    try:
        Strict(buffer, protocol=-1).dump(value)  # -1: the highest
        return buffer.getvalue(), "pickle"
    except Exception as plain:
        try:
            import cloudpickle  # type: ignore[import-untyped]
        except ImportError:
            raise plain from None
        return cloudpickle.dumps(value, protocol=-1), "cloudpickle"


def remote_traceback(exc: BaseException, source: str) -> str:
    import linecache
    import traceback

    linecache.cache[CELL] = (len(source), None, source.splitlines(True), CELL)
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
        tb = tb.tb_next  # this runner's own frames
    return "".join(traceback.format_exception(type(exc), exc, tb))


def main() -> None:
    folder, expected, want, kind, source = sys.argv[1:6]
    here = "{}.{}".format(*sys.version_info[:2])
    if here != expected:
        write(folder, {"kind": "version", "job": here, "notebook": expected,
                       "executable": sys.executable})  # fmt: skip
        sys.stderr.write(
            f"this job runs Python {here}, the notebook {expected}: values "
            "cannot travel between them\n"
        )
        sys.exit(3)
    if kind == "file":
        with open(os.path.join(folder, source)) as cell_file:
            source = cell_file.read()
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    pushed = os.path.join(folder, "input.pkl")
    if os.path.exists(pushed):
        try:
            with open(pushed, "rb") as stream:
                namespace.update(picklers().load(stream))
        except Exception as exc:
            write(folder, {"kind": "push", "message": describe(exc)})
            sys.stderr.write(f"cannot load the pushed variables: {describe(exc)}\n")
            sys.exit(3)

    import _ast  # the compiler's own node types (ast.py costs startup time)

    try:
        tree = compile(source, CELL, "exec", _ast.PyCF_ONLY_AST)
        assert isinstance(tree, _ast.Module)
        last = None
        final = tree.body[-1] if tree.body else None
        if want == "1" and isinstance(final, _ast.Expr):
            tree.body.pop()
            last = _ast.Expression(final.value)
        exec(compile(tree, CELL, "exec"), namespace)
        value = eval(compile(last, CELL, "eval"), namespace) if last else None
    except BaseException as exc:
        exc_bytes = None
        try:
            pickle = picklers()
            exc_bytes = pickle.dumps(exc, protocol=4)
            pickle.loads(exc_bytes)
        except Exception:
            exc_bytes = None
        text = remote_traceback(exc, source)
        write(folder, {"kind": "error", "type": type(exc).__name__,
                       "module": type(exc).__module__, "message": str(exc),
                       "traceback": text, "exception": exc_bytes})  # fmt: skip
        sys.stderr.write(text)
        sys.exit(1)
    if want != "1":
        write(folder, {"kind": "ok"})
        return
    try:
        data, pickler = dumps(value)
    except Exception as exc:
        write(folder, {"kind": "unpicklable", "type": type(value).__name__,
                       "message": describe(exc)})  # fmt: skip
        sys.stderr.write(f"cannot send the value back: {describe(exc)}\n")
        sys.exit(4)
    write(folder, {"kind": "value", "value": data, "pickler": pickler})


if __name__ == "__main__":
    main()
