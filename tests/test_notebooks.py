"""Every notebook runs top to bottom on small data (its parameters cell is overridden)."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.ml100k_fixture import write_ml100k

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def _ml100k(tmp_path: Path) -> str:
    return repr(str(write_ml100k(tmp_path / "ml-100k")))  # never the real data set


#: notebook -> parameter -> small value: source text, or a function of tmp_path returning it
SMALL = {
    "01_quickstart": {"size": '"tiny"', "epochs": "3"},
    # image_features: the two posters of the tiny folder go through a tiny random-weight CLIP
    "02_train_movielens": {"data": _ml100k, "epochs": "3", "image_features": "True"},
    "03_cross_modal_search": {"size": '"tiny"', "epochs": "3", "align_epochs": "20"},
}
#: figures every notebook saves into workdir
FIGURES = {"curves.png", "item_map.png", "contexts.png"}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    assert path.stem in SMALL, f"add small parameters for {path.name} to SMALL in {Path(__file__).name}"
    small = {k: v(tmp_path) if callable(v) else v for k, v in SMALL[path.stem].items()}
    nb = nbformat.read(path, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    lines, names = [], set()
    for line in params.source.splitlines():
        name = line.split("=")[0].strip()
        names.add(name)
        lines.append(f"{name} = {small[name]}" if name in small else line)
    assert not set(small) - names, f"{path.name} has no parameters {sorted(set(small) - names)}"
    lines.append(f"workdir = {str(tmp_path / 'work')!r}")
    params.source = "\n".join(lines)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert (tmp_path / "work" / "graph.db").exists()
    assert FIGURES <= {p.name for p in (tmp_path / "work").glob("*.png")}


def test_notebooks_are_stored_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"clear the outputs of {path.name}"
