"""Every notebook in notebooks/ runs top to bottom, and is stored without outputs.

Each notebook starts its own simulated IOC (as a user's would) and asserts its own
results in its cells; a failing cell fails the test with the cell's traceback.
The kernel is this interpreter's, with this checkout's ``src`` on its path.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
README = ROOT / "README.md"
#: seconds one cell may take (IOC start, first ophyd import, a short count)
CELL_TIMEOUT = 180


def test_the_four_notebooks_exist_and_are_in_the_readme():
    names = [p.name for p in NOTEBOOKS]
    assert [n[:3] for n in names] == ["01_", "02_", "03_", "04_"]
    readme = README.read_text()
    for name in names:
        assert f"`notebooks/{name}`" in readme


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path: Path):
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    for index, cell in enumerate(book.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has stored outputs"
            assert cell.execution_count is None, f"{path.name} cell {index} has a count"
    # every notebook cleans up the IOC it started
    assert book.cells[-1].source.strip().endswith("ioc.stop()")


@pytest.mark.ioc
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path, monkeypatch):
    from nbclient import NotebookClient

    # the kernel is a subprocess: give it this checkout and a headless backend,
    # and none of the CA settings of the session's own IOC
    src = str(ROOT / "src")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebooks' temporary directories
    for name in list(os.environ):
        if name.startswith("EPICS_CA_"):
            monkeypatch.delenv(name)
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(
        book,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    cleanup = nbformat.v4.new_code_cell("if 'ioc' in globals():\n    ioc.stop()")
    cells = list(book.cells)
    book.cells.append(cleanup)
    with client.setup_kernel():
        try:
            for index, cell in enumerate(cells):
                client.execute_cell(cell, index)
        finally:
            # a failed cell would leave its IOC running: stop it before the kernel goes
            client.execute_cell(cleanup, len(cells))
    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    if path.name.startswith("01_"):
        # the image really was plotted
        assert any("image/png" in o.get("data", {}) for o in outputs)
