"""Export bundles: a bundle serves the live model's top-10 in a fresh process with no store;
its files (Parquet, .npy, manifest) hold the model's vectors; FAISS, networkx, DGL arrays
and the ``ctxrec export`` command; Neo4j write-back (vector indexes) under the ``neo4j`` marker.
"""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ctxrec.bundle import (ItemIndex, export_bundle, load_bundle, node_embeddings, read_bundle_manifest,
                           read_graph_arrays, read_rec_graph, to_networkx, write_dgl_bundle, write_embeddings,
                           write_networkx)
from ctxrec.cli import app
from ctxrec.data import SplitConfig
from ctxrec.graph.export import export_pyg, to_rec_graph
from ctxrec.graph.stores import open_store
from ctxrec.modalities.vector_files import read_manifest, read_vectors

ROOT = Path(__file__).resolve().parent.parent
HIDDEN, FEAT_DIM, WITH_FEATURE = 16, 8, 35  # items 0..34 get a 'rand' vector, 35..39 none


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny world in an embedded store with 'rand' item vectors, a fitted ContextGNN and its bundle."""
    from ctxrec.datasets.synthetic import generate_world
    from ctxrec.graph.ingest import ingest
    from ctxrec.training.models import make_model

    root = tmp_path_factory.mktemp("bundle")
    files = generate_world("tiny").write(root / "world")
    with open_store("embedded", root / "graph.db") as store:
        ingest(store, files["interactions"], files["items"], files["context"])
        items = sorted(store.read_nodes("Item")["id"])
        rng = np.random.default_rng(0)
        store.write_vectors("Item", "rand", items[:WITH_FEATURE], rng.normal(size=(WITH_FEATURE, FEAT_DIM)))
        tables = store.read_subgraph()
        graph = export_pyg(store)
    model = make_model("context_gnn", hidden=HIDDEN, features=("rand",),
                       train={"epochs": 2, "device": "cpu", "seed": 0}).fit(graph)
    bundle = export_bundle(model, graph, root / "bundle", faiss=True)
    return {"root": root, "db": root / "graph.db", "files": files, "tables": tables, "graph": graph,
            "model": model, "bundle": bundle, "items": items}


def _requests(graph):
    users = [str(u) for u in graph.ids["user"][:3]]
    contexts = [(None, None), (str(graph.ids["time"][0]), str(graph.ids["place"][0])),
                (str(graph.ids["time"][-1]), None)]
    return [(u, t, p) for u in users for t, p in contexts]


def test_bundle_serves_the_live_top10_in_a_fresh_process_without_a_store(world):
    requests = _requests(world["graph"])
    live = [world["model"].recommend_ids(u, 10, time=t, place=p) for u, t, p in requests]
    code = (
        "import json, sys\n"
        "from ctxrec.bundle import load_bundle\n"
        f"model, graph = load_bundle({str(world['bundle'])!r})\n"
        f"out = [model.recommend_ids(u, 10, time=t, place=p) for u, t, p in {requests!r}]\n"
        "db = sorted(m for m in sys.modules if m.split('.')[0] in ('ladybug', 'neo4j'))\n"
        "print(json.dumps({'top': out, 'test': model.evaluate('test'), 'db_modules': db}))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    fresh = json.loads(res.stdout.strip().splitlines()[-1])
    assert fresh["db_modules"] == []  # served from files alone: no database driver was loaded
    for request, want, got in zip(requests, live, fresh["top"]):
        assert len(got) == 10
        assert [i for i, _ in got] == [i for i, _ in want], request
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-5, atol=1e-5)
    # the held-out splits came along: test metrics are the live model's
    live_test = world["model"].evaluate("test")
    assert fresh["test"].keys() == live_test.keys()
    np.testing.assert_allclose(list(fresh["test"].values()), list(live_test.values()), atol=1e-6)


def test_manifest_parquet_and_npy_hold_the_model_vectors(world):
    out, graph, model = world["bundle"], world["graph"], world["model"]
    doc = read_bundle_manifest(out)
    assert doc["model"]["name"] == "ContextGNN" and doc["model"]["config"]["hidden"] == HIDDEN
    assert doc["dims"]["embeddings"] == {t: HIDDEN for t in ("user", "item", "session", "time", "place", "category")}
    assert doc["dims"]["features"] == {"rand": {"item": FEAT_DIM}}
    assert doc["encoders"]["rand"]["dim"] == FEAT_DIM
    assert doc["versions"]["torch"] == torch.__version__
    assert dt.datetime.fromisoformat(doc["created"]).tzinfo is not None
    assert doc["nodes"]["item"] == 40 and doc["nodes"]["user"] == 30

    emb = node_embeddings(model)
    frame = read_vectors(out / "embeddings", "emb", label="Item")
    assert frame["id"].tolist() == [str(i) for i in graph.ids["item"]]
    np.testing.assert_array_equal(np.stack(frame["vector"]), emb["item"])
    assert read_manifest(out / "embeddings")["vectors"]["emb"]["rows"]["Session"] == graph.data["session"].num_nodes
    feats = read_vectors(out / "features", "rand", label="Item")
    # exactly the items that were given no vector are marked absent, with zero rows
    assert sorted(feats.loc[~feats["present"], "id"]) == world["items"][WITH_FEATURE:]
    assert not np.stack(feats.loc[~feats["present"], "vector"]).any()

    ids = np.load(out / "graph" / "ids" / "item.npy", allow_pickle=False)
    assert ids.tolist() == [str(i) for i in graph.ids["item"]]
    np.testing.assert_array_equal(np.load(out / "graph" / "nodes" / "user" / "emb.npy"), emb["user"])
    np.testing.assert_array_equal(np.load(out / "graph" / "nodes" / "item" / "x_rand.npy"),
                                  graph.data["item"].x_rand.numpy())


@pytest.mark.parametrize("split", [SplitConfig(), SplitConfig(protocol="cold_items", session_len=3)],
                         ids=["temporal", "cold_items+prefix"])
def test_rec_graph_round_trips_through_the_arrays(world, tmp_path, split):
    graph = to_rec_graph(world["tables"], None, split)
    back = read_rec_graph(write_dgl_bundle(graph, tmp_path / "g"))
    assert {t: list(v) for t, v in back.ids.items()} == {t: list(v) for t, v in graph.ids.items()}
    assert back.data.edge_types == graph.data.edge_types
    for et in graph.data.edge_types:
        assert torch.equal(back.data[et].edge_index, graph.data[et].edge_index), et
    for name in ("train", "val", "test"):
        a, b = getattr(graph, name), getattr(back, name)
        for field in ("user", "item", "time", "place", "session", "prefix"):
            x, y = getattr(a, field), getattr(b, field)
            assert (x is None and y is None) or torch.equal(x, y), (name, field)
    assert back.candidates.keys() == graph.candidates.keys()
    for k in graph.candidates:
        assert torch.equal(back.candidates[k], graph.candidates[k])
    assert back.split_info["pairs"] == graph.split_info["pairs"]
    assert back.split_info["protocol"] == split.protocol


def test_faiss_index_finds_the_exact_cosine_neighbours(world, tmp_path):
    model, graph = world["model"], world["graph"]
    emb = node_embeddings(model)["item"]
    index = ItemIndex.load(world["bundle"] / "faiss")  # the one export_bundle built
    assert len(index) == 40 and index.dim == HIDDEN
    found, scores = index.search(emb, k=6)
    sims, _ = model.similar_items(torch.arange(40), k=5)  # exact cosine in torch, self excluded
    for i in range(40):
        assert found[i, 0] == graph.ids["item"][i] and scores[i, 0] == pytest.approx(1.0, abs=1e-5)
        assert found[i, 1:].tolist() == [str(graph.ids["item"][j]) for j in sims[i].tolist()], i
    again = ItemIndex.load(index.save(tmp_path / "copy"))
    assert np.array_equal(again.search(emb[:3], k=4)[0], found[:3, :4])


def test_faiss_index_on_known_clusters_and_bad_input():
    rng = np.random.default_rng(1)
    centres = np.eye(4, 16, dtype=np.float32) * 10
    vecs = np.repeat(centres, 5, axis=0) + rng.normal(scale=0.1, size=(20, 16)).astype(np.float32)
    ids = [f"c{i // 5}-{i % 5}" for i in range(20)]
    for kind in ("flat", "hnsw"):
        found, _ = ItemIndex.build(ids, vecs, kind=kind).search(vecs, k=5)
        assert all(f.split("-")[0] == ids[i].split("-")[0] for i, row in enumerate(found) for f in row), kind
    index = ItemIndex.build(ids, vecs)
    with pytest.raises(ValueError, match=r"queries must be \[Q, 16\].*\(3,\)"):
        index.search(np.zeros(3), k=2)
    with pytest.raises(ValueError, match="k must be a positive integer, got 0"):
        index.search(vecs[0], k=0)
    with pytest.raises(ValueError, match=r"kind='ivf' is not one of \['flat', 'hnsw'\]"):
        ItemIndex.build(ids, vecs, kind="ivf")
    with pytest.raises(ValueError, match=r"\[20, d\], got shape \(19, 16\)"):
        ItemIndex.build(ids, vecs[:19])


def test_networkx_from_tables_and_from_the_training_graph(world, tmp_path):
    import networkx as nx

    tables, graph = world["tables"], world["graph"]
    g = to_networkx(tables)
    assert isinstance(g, nx.MultiDiGraph)
    assert g.number_of_nodes() == sum(len(f) for f in tables.nodes.values())
    assert g.number_of_edges() == sum(len(f) for f in tables.edges.values())
    inter = tables.edges["INTERACTED"]
    got = {(s, d) for s, d, k in g.edges(keys=True) if k == "interacted"}
    assert got == {(f"user:{s}", f"item:{d}") for s, d in zip(inter["src"], inter["dst"])}
    row = tables.nodes["Item"].iloc[0]
    assert g.nodes[f"item:{row['id']}"]["name"] == row["name"] and g.nodes[f"item:{row['id']}"]["type"] == "item"
    first = inter.iloc[0]
    assert g.edges[f"user:{first['src']}", f"item:{first['dst']}", "interacted"]["count"] == first["count"]

    train = to_networkx(graph)  # message passing only: train pairs, no reverse edges
    pairs = {(s, d) for s, d, k in train.edges(keys=True) if k == "interacted"}
    uid, iid = graph.ids["user"], graph.ids["item"]
    want = {(f"user:{uid[u]}", f"item:{iid[i]}") for u, i in zip(graph.train.user.tolist(), graph.train.item.tolist())}
    held = {(f"user:{uid[u]}", f"item:{iid[i]}") for u, i in zip(graph.test.user.tolist(), graph.test.item.tolist())}
    assert pairs == want and held and not pairs & held
    assert not any(k.startswith("rev_") for _, _, k in train.edges(keys=True))

    for name in ("g.graphml", "g.json"):
        path = write_networkx(g, tmp_path / name)
        back = nx.read_graphml(path) if name.endswith("graphml") else nx.node_link_graph(
            json.loads(path.read_text()), edges="edges")
        assert back.number_of_nodes() == g.number_of_nodes() and back.number_of_edges() == g.number_of_edges()
    with pytest.raises(ValueError, match=r"unknown suffix '\.gpickle'; use one of \['\.graphml', '\.json'\]"):
        write_networkx(g, tmp_path / "g.gpickle")


def test_dgl_arrays_hold_the_pyg_graph(world, tmp_path):
    graph = world["graph"]
    emb = node_embeddings(world["model"])
    arrays = read_graph_arrays(write_dgl_bundle(graph, tmp_path / "dgl", emb))
    assert arrays.num_nodes == {t: graph.data[t].num_nodes for t in graph.data.node_types}
    assert list(arrays.edges) == graph.data.edge_types
    for et, ei in arrays.edges.items():
        assert ei.dtype == np.int64 and np.array_equal(ei, graph.data[et].edge_index.numpy())
    np.testing.assert_array_equal(arrays.vectors["place"]["emb"], emb["place"])
    np.testing.assert_array_equal(arrays.masks["item"]["x_rand"], graph.data["item"].mask_rand.numpy())
    with pytest.raises(FileNotFoundError, match=r"no graph.json in .*ctxrec export --dgl"):
        read_graph_arrays(tmp_path)


def test_import_ctxrec_bundle_loads_only_numpy():
    """The DGL venv imports ctxrec.bundle.dgl_loader: nothing heavy may load with it."""
    code = ("import sys, ctxrec.bundle, ctxrec.bundle.dgl_loader; "
            "print(','.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    heavy = set(out.stdout.strip().split(",")) & {"torch", "torch_geometric", "pandas", "pyarrow", "faiss",
                                                  "networkx", "neo4j", "ladybug"}
    assert not heavy, f"import ctxrec.bundle pulled in {sorted(heavy)}"


def test_bad_input_gets_clear_errors(world, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not a ctxrec bundle .*`ctxrec export --model DIR --out"):
        load_bundle(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty and holds no ctxrec bundle"):
        export_bundle(world["model"], world["graph"], tmp_path)
    other = to_rec_graph(world["tables"], None, SplitConfig(protocol="random"))
    with pytest.raises(ValueError, match="another RecGraph than `graph`"):
        export_bundle(world["model"], other, tmp_path / "b")
    with pytest.raises(ValueError, match=r"embeddings\[.item.\] has 3 rows but the graph has 40 item nodes"):
        with open_store("embedded", None) as store:
            write_embeddings(store, world["graph"], {"item": np.zeros((3, 4))})


def test_write_embeddings_to_the_embedded_store(world, tmp_path):
    from ctxrec.graph.ingest import ingest

    files, graph = world["files"], world["graph"]
    emb = node_embeddings(world["model"])
    with open_store("embedded", tmp_path / "g.db") as store:
        ingest(store, files["interactions"], files["items"], files["context"])
        written = write_embeddings(store, graph, emb)
        assert written == {"User": 30, "Item": 40, "Session": graph.data["session"].num_nodes,
                           "Time": graph.data["time"].num_nodes, "Place": 3,
                           "Category": graph.data["category"].num_nodes}
        ids, mat = store.read_vectors("Item", "emb")
        order = np.argsort(ids)
        np.testing.assert_array_equal(mat[order], emb["item"])  # graph ids are sorted too
        first = str(graph.ids["item"][7])
        assert store.knn(emb["item"][7], k=1)[0][0] == first


def test_cli_export_writes_every_format(world, tmp_path):
    model_dir = world["model"].save(tmp_path / "model")
    out, nx_file, dgl_dir = tmp_path / "bundle", tmp_path / "graph.graphml", tmp_path / "dgl"
    args = ["export", "--db", world["db"], "--model", model_dir, "--out", out, "--faiss",
            "--networkx", nx_file, "--dgl", dgl_dir, "--features", tmp_path / "no-features"]
    res = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "bundle written to" in res.output and "faiss index" in res.output
    assert "DGL arrays written to" in res.output and "networkx graph (" in res.output
    model, _ = load_bundle(out)
    u = str(world["graph"].ids["user"][0])
    assert [i for i, _ in model.recommend_ids(u, 10)] == [i for i, _ in world["model"].recommend_ids(u, 10)]
    assert (out / "faiss" / "items.faiss").is_file() and (dgl_dir / "graph.json").is_file()
    assert f"{sum(len(f) for f in world['tables'].nodes.values())} nodes" in res.output

    bad = CliRunner().invoke(app, ["export", "--db", str(world["db"]), "--model", str(model_dir), "--out",
                                   str(tmp_path / "b2"), "--networkx", str(tmp_path / "g.txt")])
    assert bad.exit_code == 2 and "unknown suffix '.txt'" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "b2").exists()  # refused before any work
    missing = CliRunner().invoke(app, ["export", "--db", str(world["db"]), "--model", str(tmp_path / "none"),
                                       "--out", str(tmp_path / "b3")])
    assert missing.exit_code == 2 and "no saved model here" in missing.output


@pytest.mark.neo4j
@pytest.mark.slow  # 13-40 s: ingest into Neo4j, index builds, two CLI runs that export the graph from it
def test_neo4j_write_back_creates_vector_indexes(world, neo4j_server, monkeypatch, tmp_path):
    from ctxrec.graph.stores.neo4j import Neo4jStore

    graph, emb = world["graph"], node_embeddings(world["model"])
    with Neo4jStore(**neo4j_server) as store:
        store.clear()
        store.ingest(world["tables"])
        written = write_embeddings(store, graph, emb, replace=True)
        assert written["Item"] == 40 and written["User"] == 30
        assert store.vector_indexes("Item")["emb"] == ("Item_emb", HIDDEN)
        assert store.vector_indexes("Session")["emb"] == ("Session_emb", HIDDEN)
        state = store.query("SHOW VECTOR INDEXES YIELD name, state WHERE name = 'Item_emb' RETURN state")
        assert state["state"].tolist() == ["ONLINE"]
        ids, mat = store.read_vectors("Item", "emb")
        np.testing.assert_allclose(mat[np.argsort(ids)], emb["item"], rtol=1e-6)
        hit = store.knn_native(emb["item"][3], k=1)
        assert hit[0][0] == str(graph.ids["item"][3]) and hit[0][1] == pytest.approx(1.0, abs=1e-4)

    # the command: train on the Neo4j export, write back with a new dimension
    monkeypatch.setenv("NEO4J_USER", neo4j_server["user"])
    monkeypatch.setenv("NEO4J_PASSWORD", neo4j_server["password"])
    from ctxrec.training.models import make_model

    with Neo4jStore(**neo4j_server) as store:
        neo_graph = export_pyg(store)
    model = make_model("context_gnn", hidden=8, features=(), train={"epochs": 1, "device": "cpu"})
    model_dir = model.fit(neo_graph).save(tmp_path / "m8")
    args = ["export", "--store", "neo4j", "--uri", neo4j_server["uri"], "--model", str(model_dir),
            "--out", str(tmp_path / "b"), "--to-neo4j"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "have dimension 16, these have 8" in res.output and "--replace-vectors" in res.output
    res = CliRunner().invoke(app, args + ["--replace-vectors"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "vectors 'emb' written to Neo4j: User 30, Item 40" in res.output
    with Neo4jStore(**neo4j_server) as store:
        assert store.vector_indexes("Item")["emb"] == ("Item_emb", 8)
