"""Values into and out of real jobs on the local platform: results, pushed
globals, remote exceptions, values that cannot travel, another Python."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from apolo_jupyter import Client, JobStatus
from apolo_jupyter.kernel._remote_cell import (
    CELLS_ROOT,
    INLINE_SOURCE,
    RemoteCellError,
    RemoteError,
    pickle_pushed,
    python_version,
    run_cell,
)

from .conftest import Platform


def module_level_function(x: int) -> int:
    return x + 1


async def test_the_last_expression_comes_back(client: Client) -> None:
    value, job = await run_cell(client, "x = 6\nx * 7")
    assert value == 42 and job.status == JobStatus.SUCCEEDED
    value, _ = await run_cell(
        client, "import collections\ncollections.Counter('abracadabra').most_common(2)"
    )
    assert value == [("a", 5), ("b", 2)]
    value, _ = await run_cell(client, "y = 1")  # no expression at the end
    assert value is None
    value, _ = await run_cell(  # a decorator first: still the cell's source
        client, "@staticmethod\ndef f():\n    pass\n'decorated'"
    )
    assert value == "decorated"
    value, _ = await run_cell(client, "print('side effect')\n{'k': [1.5, None]}")
    assert value == {"k": [1.5, None]}  # builtins only: by marshal
    value, _ = await run_cell(client, "import fractions\n[fractions.Fraction(1, 3)]")
    assert value == [Fraction(1, 3)]  # not builtins: by pickle


async def test_functions_and_classes_made_in_the_cell_come_back(
    client: Client,
) -> None:
    value, _ = await run_cell(
        client,
        "class Point:\n    def __init__(self, x):\n        self.x = x\n"
        "def double(p):\n    return Point(p.x * 2)\n(double, Point(4))",
    )
    double, point = value
    assert double(point).x == 8  # cloudpickle sent them by value


async def test_pushed_globals_reach_the_cell(client: Client) -> None:
    namespace: dict[str, Any] = {
        "a": 20,
        "words": ["x", "y"],
        "scale": lambda v: v * 10,  # pickle cannot, cloudpickle can
    }
    data = pickle_pushed(["a", "words", "scale"], namespace)
    value, _ = await run_cell(client, "scale(a) + len(words)", push=data)
    assert value == 202


async def test_push_errors_name_the_variable(client: Client) -> None:
    with pytest.raises(RemoteCellError, match="no variable 'missing'"):
        pickle_pushed(["missing"], {})
    with pytest.raises(
        RemoteCellError,
        match=r"--push lock: cannot pickle 'lock' \(a lock\).*TypeError",
    ):
        pickle_pushed(["ok", "lock"], {"ok": 1, "lock": threading.Lock()})
    # pickled by name, a name the job has not got: the job says so
    data = pickle_pushed(["f"], {"f": module_level_function})
    with pytest.raises(RemoteCellError, match=r"could not load the --push.*tests"):
        await run_cell(client, "f(1)", push=data)


async def test_a_remote_exception_comes_back_as_itself(client: Client) -> None:
    with pytest.raises(ZeroDivisionError, match="division by zero") as caught:
        await run_cell(client, "def ratio(a, b):\n    return a / b\n\nratio(1, 0)")
    lines = caught.value._render_traceback_()  # type: ignore[attr-defined]
    text = "\n".join(lines)
    assert text.startswith("Traceback from job job-")
    assert 'File "<cell>", line 4, in <module>' in text
    assert 'File "<cell>", line 2, in ratio' in text and "return a / b" in text
    assert lines[-1] == "ZeroDivisionError: division by zero"
    assert "_cell_runner" not in text and '"<string>"' not in text
    assert "remote traceback" not in str(caught.value)

    # a class only the job knows: a RemoteError with its type and message
    with pytest.raises(RemoteError) as custom:
        await run_cell(client, "class Odd(Exception):\n    pass\nraise Odd('very odd')")
    assert custom.value.type_name == "Odd" and custom.value.message == "very odd"
    assert "Odd: very odd" in custom.value._render_traceback_()[-1]  # type: ignore[attr-defined]


async def test_values_that_cannot_travel_say_why(client: Client) -> None:
    with pytest.raises(
        RemoteCellError, match=r"cell's value \(a lock\) cannot be pickled"
    ):
        await run_cell(client, "import threading\nthreading.Lock()")


async def test_a_job_that_dies_says_so(client: Client) -> None:
    with pytest.raises(
        RemoteCellError, match=r"ended failed \(exit code 9\).*%apolo_logs"
    ):
        await run_cell(client, "import os\nos._exit(9)")


async def test_result_files_are_removed_unless_kept(
    client: Client, platform: Platform
) -> None:
    cells = (
        platform.paths.storage_dir / "local" / "default" / ".apolo-jupyter" / "cells"
    )
    before = set(os.listdir(cells)) if cells.exists() else set()
    await run_cell(client, "1 + 1")
    assert (set(os.listdir(cells)) if cells.exists() else set()) == before
    value, _ = await run_cell(client, "2 + 2", keep=True)
    [kept] = set(os.listdir(cells)) - before
    assert value == 4 and (cells / kept / "result.pkl").exists()
    await client.storage.rm(URL(f"{CELLS_ROOT}/{kept}"), recursive=True)


async def test_a_big_cell_travels_as_a_file(client: Client) -> None:
    filler = "# " + "x" * 80 + "\n"
    source = filler * (INLINE_SOURCE // len(filler) + 10) + "sum(range(10))"
    assert len(source) > INLINE_SOURCE
    value, _ = await run_cell(client, source)
    assert value == 45


async def test_another_python_in_the_job_is_refused_clearly(
    client: Client, platform: Platform
) -> None:
    """The job's ``python3`` is PyPy 3.9 (a real other Python), as in an image
    with another version."""
    pypy = shutil.which("pypy3")
    assert pypy is not None, "apt-get install pypy3 (scripts/test.sh does)"
    folder = f"pybin-{uuid.uuid4().hex[:8]}"
    host = platform.paths.storage_dir / "local" / "default" / folder
    host.mkdir()
    (host / "python3").symlink_to(pypy)
    with pytest.raises(RemoteCellError) as refused:
        await run_cell(
            client,
            "1 + 1",
            volumes=[f"storage:{folder}:/opt/py:ro"],
            env={"PATH": "/opt/py:/usr/bin:/bin"},
        )
    message = str(refused.value)
    here = python_version()
    assert "the job runs Python 3.9" in message and f"notebook Python {here}" in message
    assert f"--image python:{here}" in message


# ------------------------------------------------------------------ the magics, in a real kernel


def _run_notebook(cells: list[str], cwd: Path) -> Any:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in cells],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(cwd)}},
    ).execute()
    return nb


def _text(cell: Any) -> str:
    parts = []
    for out in cell.outputs:
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] == "error":
            parts.append(
                f"{out['ename']}: {out['evalue']}\n" + "\n".join(out["traceback"])
            )
        elif "text/plain" in out.get("data", {}):
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def _error(cell: Any) -> dict[str, Any]:
    [error] = [o for o in cell.outputs if o["output_type"] == "error"]
    return dict(error)


def test_magics_bring_values_and_exceptions_back(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text("def area(w, h):\n    return w * h\n")
    nb = _run_notebook(
        [
            "%load_ext apolo_jupyter",
            "%%apolo_job --python --sync --result x\nimport helpers\nhelpers.area(6, 7)",
            "print('x =', x)",
            "side = 3\nscale = lambda v: v * 100",
            "%%apolo_job --python --push side,scale --result y\nscale(side)",
            "print('y =', y)",
            "%%apolo_job --python --result z\ndef ratio(a, b):\n    return a / b\nratio(1, 0)",
            "import threading\nlock = threading.Lock()",
            "%%apolo_job --python --push lock --result w\nlock",
            "%%apolo_job --result v\necho not python",
            "%%apolo_job --python --result v --detach\n1",
            "%%apolo_job --python --keep --result k\n'kept'",
            "print('k =', k)",
            "%%apolo_job --python --push 'no such' --result v\n1",
        ],
        tmp_path,
    )
    cells = nb.cells
    assert "up to date" not in _text(cells[1]) and "1 file uploaded" in _text(cells[1])
    assert "in the job at /apolo/sync/" in _text(cells[1])
    assert _text(cells[2]) == "x = 42\n"
    # The value went into x: no Out[] with the JobDescription under the view.
    assert not [o for o in cells[1].outputs if o["output_type"] == "execute_result"]
    assert _text(cells[5]) == "y = 300\n"

    error = _error(cells[6])
    assert (error["ename"], error["evalue"]) == (
        "ZeroDivisionError",
        "division by zero",
    )
    # The job's traceback is in its output (the cell's log), once: the error
    # says the exception and where to read how it came.
    shown = "\n".join(error["traceback"])
    assert shown.splitlines()[0] == "ZeroDivisionError: division by zero"
    assert "its traceback is in the job's output above" in shown
    assert "<cell>" not in shown
    logged = _text(cells[6])
    assert logged.count('File "<cell>", line 3, in <module>') == 1
    assert "return a / b" in logged

    assert "--push lock: cannot pickle 'lock'" in _text(cells[8])
    assert "need --python" in _text(cells[9])
    assert "leave out --detach" in _text(cells[10])
    assert "kept storage:.apolo-jupyter/cells/" in _text(cells[11])
    assert _text(cells[12]) == "k = kept\n"
    assert "name notebook variables" in _text(cells[13])


def test_a_job_that_cannot_start_leaves_no_cell_folder() -> None:
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    from apolo_jupyter.kernel._runtime import runtime

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "apolo_jupyter")
    rt = runtime()
    client = rt.client()

    async def cells() -> set[str]:
        await client.storage.mkdir(URL(CELLS_ROOT), parents=True, exist_ok=True)
        async with client.storage.ls(URL(CELLS_ROOT)) as entries:
            return {entry.name async for entry in entries}

    before = rt.run(cells())
    with pytest.raises(UsageError, match="unknown preset"):
        shell.run_cell_magic("apolo_job", "--python --result v -s no-such", "1")
    assert rt.run(cells()) == before
