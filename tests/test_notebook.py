"""The tutorial notebook runs top to bottom in a python3 Jupyter kernel (nbclient)."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "tutorial.ipynb"


def test_tutorial_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)


def test_tutorial_runs_top_to_bottom() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    html = [o for o in outputs if "text/html" in o.get("data", {})]
    assert len(html) >= 10  # a picture for every section and puzzle
    assert all("<svg" in o["data"]["text/html"] or "<ol" in o["data"]["text/html"] for o in html)
    text = "".join(o.get("text", "") for o in outputs)
    for rule in ("R-PEER-2", "R-MPROT-2", "R-PEER-3", "R-MPROT-5", "R-HANDLE-3"):
        assert rule in text
