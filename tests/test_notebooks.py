"""Every notebook runs top to bottom on small data (its parameters cell is overridden)."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
SMALL = {"size": '"tiny"', "epochs": "3"}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    lines = []
    for line in params.source.splitlines():
        name = line.split("=")[0].strip()
        lines.append(f"{name} = {SMALL[name]}" if name in SMALL else line)
    lines.append(f"workdir = {str(tmp_path / 'work')!r}")
    params.source = "\n".join(lines)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert (tmp_path / "work" / "graph.db").exists()
