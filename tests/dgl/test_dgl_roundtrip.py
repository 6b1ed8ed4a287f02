"""The DGL round trip, run in .venv-dgl (DGL 2.1.0, torch 2.2.1) by ``make test-dgl`` on a
bundle the core venv wrote (tests/dgl/write_bundle.py): the heterograph has the PyG graph's
nodes, edges and embeddings, and DGL message passing over it gives the core's numbers.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def out() -> Path:
    value = os.environ.get("CTXREC_DGL_BUNDLE")
    if not value or not (Path(value) / "expected.json").is_file():
        pytest.fail(f"CTXREC_DGL_BUNDLE={value!r} names no folder written by tests/dgl/write_bundle.py; "
                    "run `make test-dgl`, which writes one with the core venv first")
    return Path(value)


@pytest.fixture(scope="module")
def expected(out):
    with np.load(out / "expected.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads((out / "expected.json").read_text()), arrays


def test_the_loader_imports_only_numpy():
    code = ("import sys, ctxrec.bundle.dgl_loader; "
            "print(','.join(sorted({m.split('.')[0] for m in sys.modules})))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    heavy = set(res.stdout.strip().split(",")) & {"torch", "torch_geometric", "pandas", "pyarrow", "dgl"}
    assert not heavy, f"importing the loader pulled in {sorted(heavy)}"


def test_heterograph_has_the_pyg_graph(out, expected):
    import torch

    from ctxrec.bundle.dgl_loader import load_dgl_heterograph, read_graph_arrays

    doc, arrays = expected
    g = load_dgl_heterograph(out / "bundle" / "graph")
    assert {t: g.num_nodes(t) for t in g.ntypes} == doc["num_nodes"]
    assert sorted(g.canonical_etypes) == sorted(tuple(et) for et in doc["edge_types"])
    assert g.idtype == torch.int64
    for et in doc["edge_types"]:
        src, dst = g.edges(etype=tuple(et), order="eid")
        want = arrays[f"edges/{'__'.join(et)}"]
        assert np.array_equal(src.numpy(), want[0]) and np.array_equal(dst.numpy(), want[1]), et
    for t in doc["num_nodes"]:
        np.testing.assert_array_equal(g.nodes[t].data["emb"].numpy(), arrays[f"emb/{t}"])
        assert g.nodes[t].data["emb"].shape[1] == doc["hidden"]
    assert read_graph_arrays(out / "bundle" / "graph", vectors=False).ids["item"].tolist() == doc["item_ids"]


def test_dgl_message_passing_gives_the_core_numbers(out, expected):
    import dgl.function as fn
    import torch
    from dgl.nn import HeteroGraphConv, SAGEConv

    from ctxrec.bundle.dgl_loader import load_dgl_heterograph

    doc, arrays = expected
    g = load_dgl_heterograph(out / "bundle" / "graph")
    edge = ("user", "interacted", "item")
    g.update_all(fn.copy_u("emb", "m"), fn.sum("m", "h"), etype=edge)
    np.testing.assert_allclose(g.nodes["item"].data["h"].double().numpy(), arrays["sum_user_emb_into_item"],
                               rtol=1e-5, atol=1e-5)
    # a DGL model runs on it: one SAGE layer per edge type, both directions
    conv = HeteroGraphConv({et: SAGEConv(doc["hidden"], 8, "mean") for _, et, _ in g.canonical_etypes}, aggregate="sum")
    h = conv(g, {t: g.nodes[t].data["emb"] for t in g.ntypes})
    assert h["item"].shape == (doc["num_nodes"]["item"], 8) and torch.isfinite(h["item"]).all()
    assert set(h) == set(g.ntypes)  # every node type receives messages (forward and rev_ edges)
