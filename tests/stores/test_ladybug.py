"""The store contract on the embedded LadybugDB store, plus what only it has."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ctxrec.graph.stores import GraphStore, open_store

from .contract import EMB, StoreContract, contract_tables

pytest.importorskip("ladybug", reason="LadybugStore needs 'ladybug': pip install ladybug")


class TestLadybugStore(StoreContract):
    def make_store(self, tmp_path):
        return open_store("embedded", tmp_path / "graph.db")


def test_open_store_kinds(tmp_path):
    from ctxrec.graph.stores.ladybug import LadybugStore

    with open_store("ladybug", tmp_path / "a") as store:
        assert isinstance(store, LadybugStore) and isinstance(store, GraphStore)
    assert (tmp_path / "a").is_dir()  # the store is a folder
    with open_store() as store:  # in memory
        assert store.path is None and store.count_nodes("Item") == 0
    with pytest.raises(ValueError, match="[Nn]eo4j"):
        open_store("neo4j", tmp_path / "x")  # a server store takes no path
    with pytest.raises(ValueError, match="embedded"):
        open_store("sqlite", tmp_path / "b")


def test_read_only_store(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_store("embedded", tmp_path / "none", read_only=True)
    with open_store("embedded", tmp_path / "db") as store:
        store.ingest(contract_tables())
        store.write_vectors("Item", "emb", list(EMB), np.array(list(EMB.values()), dtype=np.float32))
    with open_store("embedded", tmp_path / "db", read_only=True) as store:
        assert store.count_edges("INTERACTED") == 9 and store.knn([1, 0, 0], k=1) == [("i1", 1.0)]
        with pytest.raises(PermissionError):
            store.upsert_nodes("Item", pd.DataFrame({"id": ["i9"]}))
        with pytest.raises(PermissionError):
            store.clear()


def test_closed_store_says_so(tmp_path):
    store = open_store("embedded", tmp_path / "db")
    store.close()
    store.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        store.count_nodes("Item")


def test_import_is_light():
    code = ("import sys, ctxrec.graph.stores; "
            "bad = [m for m in ('ladybug', 'neo4j', 'faiss') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_100k_edges_upsert_and_reupsert(tmp_path):
    rng = np.random.default_rng(0)
    n_users, n_items, n_edges = 20_000, 5_000, 100_000
    pairs = rng.choice(n_users * n_items, size=n_edges, replace=False)
    edges = pd.DataFrame({"src": [f"u{p // n_items}" for p in pairs], "dst": [f"i{p % n_items}" for p in pairs],
                          "action": "view", "ts": rng.integers(0, 10**9, n_edges), "weight": rng.random(n_edges),
                          "count": 1})
    with open_store("embedded", tmp_path / "db") as store:
        store.upsert_nodes("User", pd.DataFrame({"id": [f"u{i}" for i in range(n_users)]}))
        store.upsert_nodes("Item", pd.DataFrame({"id": [f"i{i}" for i in range(n_items)]}))
        assert store.upsert_edges("INTERACTED", edges) == n_edges  # first load
        edges["count"] = 2
        assert store.upsert_edges("INTERACTED", edges) == n_edges  # MERGE over existing pairs
        assert store.count_edges("INTERACTED") == n_edges
        got = store.read_edges("INTERACTED")
        assert len(got) == n_edges and (got["count"] == 2).all()


def test_faiss_search_matches_exact(tmp_path):
    pytest.importorskip("faiss", reason="FAISS path needs 'faiss': pip install faiss-cpu")
    rng = np.random.default_rng(1)
    ids = [f"i{j:03d}" for j in range(200)]
    vecs = rng.standard_normal((200, 16)).astype(np.float32)
    with open_store("embedded", tmp_path / "db") as store:
        store.upsert_nodes("Item", pd.DataFrame({"id": ids}))
        store.write_vectors("Item", "emb", ids, vecs)
        exact = store.knn(vecs[0], k=10, exclude=["i005"])
        store.faiss_min_vectors = 1  # the same search through IndexFlatIP
        store.write_vectors("Item", "emb", ids[:1], vecs[:1])  # drops the cached index
        fast = store.knn(vecs[0], k=10, exclude=["i005"])
    assert [i for i, _ in fast] == [i for i, _ in exact]
    np.testing.assert_allclose([s for _, s in fast], [s for _, s in exact], atol=1e-5)
