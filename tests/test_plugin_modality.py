"""A third-party modality installed from a package joins through the entry point and
flows through ingest -> features -> training -> recommendations with no change to ctxrec."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parent / "plugins" / "ctxrec_tabular"

PIPELINE = r"""
import sys
from ctxrec.datasets.synthetic import generate_world
from ctxrec.graph.export import export_pyg
from ctxrec.graph.ingest import ingest
from ctxrec.graph.stores import open_store
from ctxrec.modalities.features import encode_store
from ctxrec.modalities.registry import get_encoder, list_encoders
from ctxrec.training.models import ContextGNN
from ctxrec.training.trainer import TrainConfig

work = sys.argv[1]
rows = {r["name"]: r for r in list_encoders()}
assert rows["tabular"]["source"] == "entry-point", rows["tabular"]
files = generate_world("tiny").write(work + "/world")
with open_store("embedded", work + "/g.db") as store:
    ingest(store, files["interactions"], files["items"], files["context"])
    done = encode_store(store, "tabular")
    graph = export_pyg(store)
assert done["Item"] == 40 and done["masked"] == 0, done
assert tuple(graph.data["item"].x_tabular.shape) == (40, 6)
model = ContextGNN(hidden=16, features=("tabular",), train=TrainConfig(epochs=2)).fit(graph)
ranked = model.recommend_ids(str(graph.ids["user"][0]), k=5, time="sat 21:00")
assert len(ranked) == 5
print("PLUGIN-OK", type(get_encoder("tabular")).__module__, ranked[0][0])
"""


@pytest.mark.slow
def test_installed_plugin_flows_through_the_pipeline(tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(PLUGIN)], check=True, capture_output=True, text=True)
    assert list(site.glob("ctxrec_tabular-*.dist-info"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", PIPELINE, str(tmp_path)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "PLUGIN-OK ctxrec_tabular" in out.stdout


def test_without_the_plugin_the_name_is_unknown():
    from ctxrec.modalities.registry import get_encoder

    with pytest.raises(ValueError, match="tabular"):
        get_encoder("tabular")
