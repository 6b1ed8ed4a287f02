"""Write the bundle that tests/dgl/test_dgl_roundtrip.py loads in the DGL venv, and what it must find.

Runs in the core venv (``make test-dgl`` calls it): builds the checkerboard graph of
tests/conftest.py, fits a small ContextGNN, exports the bundle and computes the expected
values straight from the PyG graph and the model, not from the written files:

    python tests/dgl/write_bundle.py OUT    # -> OUT/bundle/ (graph/ is DGL-ready), OUT/expected.npz, OUT/expected.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.conftest's board writer

from ctxrec.bundle import export_bundle, node_embeddings  # noqa: E402
from ctxrec.graph.build import build_graph  # noqa: E402
from ctxrec.graph.export import to_rec_graph  # noqa: E402
from ctxrec.training.models import make_model  # noqa: E402
from tests.conftest import write_board  # noqa: E402

#: the edge type whose message passing the DGL test recomputes
EDGE = ("user", "interacted", "item")


def main(out: Path) -> None:
    paths = write_board(out / "board", context_board=True)
    graph = to_rec_graph(build_graph(paths["interactions"], paths["items"], paths["context"]).tables)
    model = make_model("context_gnn", hidden=16, features=(), train={"epochs": 1, "device": "cpu"}).fit(graph)
    export_bundle(model, graph, out / "bundle")
    emb = node_embeddings(model)
    data = graph.data
    expected = {f"edges/{'__'.join(et)}": data[et].edge_index.numpy() for et in data.edge_types}
    expected.update({f"emb/{t}": v for t, v in emb.items()})
    src, dst = data[EDGE].edge_index.numpy()
    summed = np.zeros((data["item"].num_nodes, emb["user"].shape[1]), dtype=np.float64)
    np.add.at(summed, dst, emb["user"][src].astype(np.float64))  # sum of user vectors into each item
    expected["sum_user_emb_into_item"] = summed
    np.savez(out / "expected.npz", **expected)
    doc = {"num_nodes": {t: int(data[t].num_nodes) for t in data.node_types},
           "edge_types": [list(et) for et in data.edge_types],
           "item_ids": [str(i) for i in graph.ids["item"]], "hidden": 16}
    (out / "expected.json").write_text(json.dumps(doc, indent=2))
    print(f"bundle and expected values written to {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/dgl/write_bundle.py OUT_DIR")
    main(Path(sys.argv[1]))
