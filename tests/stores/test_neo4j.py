"""The store contract on :class:`Neo4jStore`, plus what only it has, and the same graph
in both stores giving the same answers.

Needs the local server (``scripts/neo4j.sh start``) or ``NEO4J_URI``/``NEO4J_USER``/
``NEO4J_PASSWORD``. Without one these tests skip with the reason, except in CI
(``CI=true``), where they fail. The tests clear the database they use.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from ctxrec.graph import schema
from ctxrec.graph.stores import open_store

from tests.conftest import SERVER

from .contract import HOSTILE_LABEL, StoreContract, assert_same_frame, contract_tables

pytestmark = pytest.mark.neo4j

def _store(**kw):
    from ctxrec.graph.stores.neo4j import Neo4jStore

    return Neo4jStore(**{**SERVER, **kw})


class TestNeo4jStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, neo4j_server):
        pass

    def make_store(self, tmp_path):
        store = _store()
        store.clear()
        return store

    def reopen_store(self, tmp_path):
        return _store()  # the data stays on the server


# ------------------------------------------------------------------ Neo4j only
def test_unreachable_server_says_so_quickly():
    pytest.importorskip("neo4j", reason="Neo4jStore needs 'neo4j': pip install neo4j")
    from ctxrec.graph.stores.neo4j import StoreUnavailable

    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"bolt://127\.0\.0\.1:1.*scripts/neo4j\.sh start") as info:
        open_store("neo4j", uri="bolt://127.0.0.1:1", password="x")
    assert time.monotonic() - start < 10
    assert isinstance(info.value, ConnectionError) and info.value.__cause__ is None
    assert info.value.__suppress_context__  # no traceback wall
    with pytest.raises(ValueError, match="no path"):
        open_store("neo4j", "some/folder")
    with pytest.raises(ValueError, match="not a Bolt URI"):
        open_store("neo4j", uri="http://127.0.0.1:7474")


def test_wrong_password_says_so(neo4j_server):
    from ctxrec.graph.stores.neo4j import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="NEO4J_PASSWORD"):
        _store(password="not-the-password", max_retries=1)


def test_constraints_exist_after_open(neo4j_server):
    with _store() as store:
        assert {(label, "id") for label in schema.NODES} <= set(store.constraints())
        store.clear()  # keeps them
        assert {(label, "id") for label in schema.NODES} <= set(store.constraints())
        with pytest.raises(Exception, match="already exists"):  # the server enforces uniqueness
            store.query("CREATE (:Item {id: 'dup'}) CREATE (:Item {id: 'dup'})")
        assert store.count_nodes("Item") == 0


def test_reingest_is_idempotent(neo4j_server):
    with _store(batch_size=3) as store:
        store.clear()
        first = store.ingest(contract_tables())
        counts = store.counts()
        assert store.ingest(contract_tables()) == first and store.counts() == counts == contract_tables().counts()
        assert_same_frame(store.read_edges("INTERACTED"), contract_tables().edges["INTERACTED"], ["src", "dst"])


def test_hostile_label_is_rejected_before_the_server(neo4j_server):
    with _store() as store:
        store.clear()
        store.ingest(contract_tables())
        before = store.counts()
        with pytest.raises(ValueError, match="unknown node label"):
            store.upsert_nodes(HOSTILE_LABEL, pd.DataFrame({"id": ["x"]}))
        with pytest.raises(ValueError):
            store.knn_native([1.0, 0.0, 0.0], label=HOSTILE_LABEL)
        with pytest.raises(ValueError):
            store.vector_indexes(HOSTILE_LABEL)
        assert store.counts() == before


def test_vector_index_and_native_knn(neo4j_server):
    rng = np.random.default_rng(3)
    n, d = 500, 32
    ids = [f"i{j:03d}" for j in range(n)]
    vecs = rng.standard_normal((n, d)).astype(np.float32)  # neighbours' cosines differ by >> 1e-6
    cats = pd.DataFrame({"src": ids, "dst": [f"c{j % 2}" for j in range(n)]})
    with _store() as store:
        store.clear()
        store.upsert_nodes("Item", pd.DataFrame({"id": ids}))
        store.upsert_nodes("Category", pd.DataFrame({"id": ["c0", "c1"]}))
        store.upsert_edges("IN_CATEGORY", cats)
        store.write_vectors("Item", "emb", ids, vecs)
        assert store.vector_indexes("Item") == {"emb": ("Item_emb", d)}
        index = store.query("SHOW VECTOR INDEXES YIELD name, state, options WHERE name = 'Item_emb' "
                            "RETURN state, options").iloc[0]
        assert index["state"] == "ONLINE"
        assert index["options"]["indexConfig"]["vector.similarity_function"] == "COSINE"
        assert index["options"]["indexConfig"].get("vector.quantization.enabled", False) is False
        for row in (0, 7, 123, 321):
            for kw in ({}, {"exclude": [ids[row], ids[row + 10]]}, {"category": "c1"}):
                exact = store.knn(vecs[row], k=5, **kw)
                native = store.knn_native(vecs[row], k=5, **kw)
                assert [i for i, _ in native] == [i for i, _ in exact], (row, kw)
                np.testing.assert_allclose([s for _, s in native], [s for _, s in exact], atol=1e-4)
        with pytest.raises(ValueError, match="dimension"):
            store.knn_native(np.ones(3), k=1)
        with pytest.raises(ValueError, match="write_vectors first"):
            store.knn_native(np.ones(d), name="text")
        store.delete_vectors("Item", "emb")  # the index goes with the vectors
        assert store.vector_indexes("Item") == {}
        assert store.query("SHOW VECTOR INDEXES YIELD name WHERE name = 'Item_emb' RETURN name").empty


def test_same_answers_as_the_embedded_store(neo4j_server, tmp_path):
    """The same GraphTables in both stores: same frames, same related items, same neighbours."""
    from tests.conftest import write_board

    from ctxrec.graph.build import build_graph

    paths = write_board(tmp_path / "board", context_board=True, n_users=12, n_items=16)
    tables = build_graph(paths["interactions"], paths["items"], paths["context"]).tables
    rng = np.random.default_rng(5)
    item_ids = tables.nodes["Item"]["id"].tolist()
    emb = rng.standard_normal((len(item_ids), 8)).astype(np.float32)
    emb[1] = emb[0] * 2  # a tie in cosine
    with open_store("embedded", tmp_path / "lb") as lb, _store() as nj:
        nj.clear()
        assert lb.ingest(tables) == nj.ingest(tables)
        for store in (lb, nj):
            store.write_vectors("Item", "emb", item_ids, emb)
        a, b = lb.read_subgraph(), nj.read_subgraph()
        for label in schema.NODES:
            pd.testing.assert_frame_equal(b.nodes[label], a.nodes[label])
        for rel in schema.RELS:
            pd.testing.assert_frame_equal(b.edges[rel], a.edges[rel])
        for item in item_ids:
            for via in ("co_interaction", "session", "embedding"):
                got, want = nj.related(item, k=5, via=via), lb.related(item, k=5, via=via)
                assert [i for i, _ in got] == [i for i, _ in want], (item, via)
                np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-6)
        cats = tables.nodes["Category"]["id"].tolist()
        for row in range(0, len(item_ids), 3):
            for kw in ({}, {"exclude": item_ids[:4]}, {"category": cats[0]}):
                got, want = nj.knn(emb[row], k=6, **kw), lb.knn(emb[row], k=6, **kw)
                assert [i for i, _ in got] == [i for i, _ in want]
                np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-6)
        ids_a, vec_a = lb.read_vectors("Item", "emb")
        ids_b, vec_b = nj.read_vectors("Item", "emb")
        np.testing.assert_array_equal(ids_a, ids_b)
        np.testing.assert_array_equal(vec_a, vec_b)  # float32 round trip, bit for bit


def test_open_store_and_read_only(neo4j_server):
    from ctxrec.graph.stores import GraphStore
    from ctxrec.graph.stores.neo4j import Neo4jStore

    with open_store("neo4j", **SERVER) as store:
        assert isinstance(store, Neo4jStore) and isinstance(store, GraphStore)
        store.clear()
        store.ingest(contract_tables())
        assert store.query("MATCH (n:Item) WHERE n.id = $id RETURN n.id AS id", {"id": "none"}).empty
    with open_store("neo4j", **SERVER, read_only=True) as store:
        assert store.count_edges("INTERACTED") == 9 and store.related("i1", k=1) == [("i2", 2.0)]
        with pytest.raises(PermissionError):
            store.upsert_nodes("Item", pd.DataFrame({"id": ["i9"]}))
        with pytest.raises(Exception, match="[Ww]rit"):  # refused by the server
            store.query("CREATE (:Item {id: 'i9'})")
        assert store.count_nodes("Item") == 5
    store.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        store.count_nodes("Item")
