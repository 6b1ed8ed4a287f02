"""The store contract: what every :class:`~ctxrec.graph.stores.GraphStore` must do.

A backend's test module subclasses :class:`StoreContract` and implements
:meth:`StoreContract.make_store`::

    class TestMyStore(StoreContract):
        def make_store(self, tmp_path):
            return MyStore(tmp_path / "db")

The graph below is small and hand-built so every answer is known: co-interaction
and shared-session counts, cosine similarities and tie orders are worked out in
the comments. Only the public API (and portable Cypher in :meth:`query`) is used.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ctxrec.graph import schema
from ctxrec.graph.tables import GraphTables

HOSTILE_LABEL = "Item) DETACH DELETE n //"
HOSTILE_STRINGS = [
    "it's",
    'say "hi"',
    "back\\slash \\n \\' \\\"",
    "} RETURN 1 //",
    "{x: 1}",
    "$id",
    "') MATCH (n) DETACH DELETE n //",
    "naïve café ☕ 東京 🎧",
    "line\nbreak\ttab",
    "",
]


def contract_tables() -> GraphTables:
    """The contract graph.

    INTERACTED: u1 -> i1 i2 i3; u2 -> i1 i2 i4; u3 -> i1 i3 i5; u4 -> nothing.
    CONTAINS:   s1 (u1) = i1 i2; s2 (u2) = i2 i3; s3 (u3) = i2 i3 i4.
    IN_CATEGORY: c1 = i1 i2 i5; c2 = i3 i4.
    """
    users = pd.DataFrame({
        "id": ["u1", "u2", "u3", "u4"],
        "time_in_site": [12.5, None, 3.0, 0.0],
        "shopping_cart": ["i1", None, "", None],
    })
    items = pd.DataFrame({
        "id": ["i1", "i2", "i3", "i4", "i5"],
        "name": ["Dune", "Emma", "Blue Train", "Kind of Blue", "Ulysses"],
        "description": ["sand planet", None, "hard bop", "modal jazz", "one day in Dublin"],
        "category": ["books", "books", "music", "music", "books"],
        "price": [9.5, 4.0, None, 12.0, 7.25],
        "image_path": ["img/i1.png", None, None, "img/i4.png", None],
    })  # audio_path left out: GraphTables adds it as nulls
    sessions = pd.DataFrame({
        "id": ["s1", "s2", "s3"],
        "user_id": ["u1", "u2", "u3"],
        "start_ts": [100, 200, 300],
        "end_ts": [150, None, 390],  # a null in an INT64 column
        "time_slot": ["sat-evening", "sat-evening", "mon-morning"],
        "place": ["nyc", "nyc", None],
    })
    times = pd.DataFrame({"id": ["mon-morning", "sat-evening"], "weekday": ["mon", "sat"],
                          "daypart": ["morning", "evening"], "description": ["Monday morning", "Saturday evening"]})
    places = pd.DataFrame({"id": ["nyc"], "name": ["New York"], "description": ["New York, USA"]})
    cats = pd.DataFrame({"id": ["c1", "c2"], "name": ["books", "music"], "description": [None, "recorded music"]})
    inter = pd.DataFrame(
        [("u1", "i1", "view", 10, 10, 1.0, 1), ("u1", "i2", "purchase", 11, 15, 5.0, 2),
         ("u1", "i3", "view", 12, 12, 1.0, 1), ("u2", "i1", "cart", 20, 20, 3.0, 1),
         ("u2", "i2", "view", 21, 21, None, 1), ("u2", "i4", None, 22, 22, 1.0, 1),
         ("u3", "i1", "view", 30, 30, 1.0, 1), ("u3", "i3", "like", 31, 33, 2.0, 3),
         ("u3", "i5", "view", 32, 32, 1.0, 1)],
        columns=["src", "dst", "action", "first_ts", "ts", "weight", "count"])
    contains = pd.DataFrame(
        [("s1", "i1", 0, "view", 101), ("s1", "i2", 1, "purchase", 102), ("s2", "i2", 0, "view", 201),
         ("s2", "i3", 1, "view", 202), ("s3", "i2", 0, None, 301), ("s3", "i3", 1, "view", 302),
         ("s3", "i4", 2, "view", 303)],
        columns=["src", "dst", "pos", "action", "ts"])
    return GraphTables(
        nodes={"User": users, "Item": items, "Session": sessions, "Time": times, "Place": places, "Category": cats},
        edges={
            "INTERACTED": inter,
            "OPENED": pd.DataFrame({"src": ["u1", "u2", "u3"], "dst": ["s1", "s2", "s3"]}),
            "CONTAINS": contains,
            "AT_TIME": pd.DataFrame({"src": ["s1", "s2", "s3"], "dst": ["sat-evening", "sat-evening", "mon-morning"]}),
            "AT_PLACE": pd.DataFrame({"src": ["s1", "s2"], "dst": ["nyc", "nyc"]}),
            "LIVES_IN": pd.DataFrame({"src": ["u1"], "dst": ["nyc"]}),
            "IN_CATEGORY": pd.DataFrame({"src": ["i1", "i2", "i5", "i3", "i4"], "dst": ["c1", "c1", "c1", "c2", "c2"]}),
        },
    )


#: "emb" vectors; cosine to [1, 0, 0]: i1 1, i5 1 (same direction), i2 1/sqrt(2), i3 0, i4 -1
EMB = {"i1": [1, 0, 0], "i2": [1, 1, 0], "i3": [0, 1, 0], "i4": [-1, 0, 0], "i5": [3, 0, 0]}
R2 = 1 / math.sqrt(2)


def _cell(v):
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    return v


def assert_same_frame(actual: pd.DataFrame, expected: pd.DataFrame, keys) -> None:
    """Same columns in the same order, same rows by key, values equal with every null alike."""
    assert list(actual.columns) == list(expected.columns)
    assert len(actual) == len(expected)
    a = actual.sort_values(keys).reset_index(drop=True)
    e = expected.sort_values(keys).reset_index(drop=True)
    for col in expected.columns:
        assert [_cell(v) for v in a[col]] == [_cell(v) for v in e[col]], f"column {col!r} differs"


def _ids(pairs):
    return [i for i, _ in pairs]


def _scores(pairs):
    return [s for _, s in pairs]


class StoreContract:
    """Mixin of the tests every store passes; subclass it as ``Test<Backend>``."""

    def make_store(self, tmp_path):
        """A new, empty store whose data lives under ``tmp_path`` (or on a test server)."""
        raise NotImplementedError

    def reopen_store(self, tmp_path):
        """A second store over the same data, after the first was closed (default: make_store)."""
        return self.make_store(tmp_path)

    @pytest.fixture
    def store(self, tmp_path):
        st = self.make_store(tmp_path)
        yield st
        st.close()

    @pytest.fixture
    def loaded(self, store):
        store.ingest(contract_tables())
        return store

    # ------------------------------------------------------------------ writes
    def test_ingest_counts(self, store):
        tables = contract_tables()
        written = store.ingest(tables, batch_size=2)  # several batches per type
        assert written == tables.counts()
        assert store.counts() == tables.counts()
        assert store.count_nodes("Item") == 5 and store.count_edges("INTERACTED") == 9

    def test_reupsert_is_idempotent_and_updates(self, loaded):
        before = loaded.counts()
        loaded.ingest(contract_tables())
        assert loaded.counts() == before
        assert loaded.upsert_nodes("Item", pd.DataFrame({"id": ["i1", "i2"], "name": ["Dune Messiah", "Emma"],
                                                         "price": [None, 4.0], "description": [None, "novel"]})) == 2
        assert loaded.counts() == before
        items = loaded.read_nodes("Item").set_index("id")
        assert items.loc["i1", "name"] == "Dune Messiah" and pd.isna(items.loc["i1", "price"])  # value -> null
        assert items.loc["i1", "description"] is None and items.loc["i2", "description"] == "novel"  # null -> value
        assert items.loc["i1", "category"] == "books"  # not in the frame: kept
        # one call mixing a changed pair, null -> value, value -> null and a new pair
        frame = pd.DataFrame({"src": ["u1", "u2", "u3", "u4"], "dst": ["i1", "i2", "i5", "i2"],
                              "weight": [7.5, 2.0, None, 1.0], "count": [4, 1, 1, 1]})
        assert loaded.upsert_edges("INTERACTED", frame) == 4
        assert loaded.count_edges("INTERACTED") == before["INTERACTED"] + 1
        edges = loaded.read_edges("INTERACTED").set_index(["src", "dst"])
        assert edges.loc[("u1", "i1"), "weight"] == 7.5 and edges.loc[("u1", "i1"), "count"] == 4
        assert edges.loc[("u1", "i1"), "action"] == "view" and edges.loc[("u1", "i1"), "ts"] == 10  # kept
        assert edges.loc[("u2", "i2"), "weight"] == 2.0 and pd.isna(edges.loc[("u3", "i5"), "weight"])
        assert edges.loc[("u4", "i2"), "weight"] == 1.0 and edges.loc[("u4", "i2"), "action"] is None
        assert loaded.upsert_edges("INTERACTED", frame) == 4  # again: nothing changes
        assert loaded.counts() == {**before, "INTERACTED": before["INTERACTED"] + 1}

    def test_upsert_adds_new_rows_to_a_filled_store(self, loaded):
        loaded.upsert_nodes("Item", pd.DataFrame({"id": ["i6"], "name": ["New"]}))
        loaded.upsert_edges("INTERACTED", pd.DataFrame({"src": ["u4", "u1"], "dst": ["i6", "i1"],
                                                        "count": [1, 1]}))
        assert loaded.count_nodes("Item") == 6 and loaded.count_edges("INTERACTED") == 10
        new = loaded.read_nodes("Item").set_index("id").loc["i6"]
        assert new["name"] == "New" and new["description"] is None and pd.isna(new["price"])

    def test_edge_with_unknown_endpoint_is_rejected(self, loaded):
        before = loaded.counts()
        frame = pd.DataFrame({"src": ["u1", "u_missing"], "dst": ["i4", "i1"]})
        with pytest.raises(ValueError, match="u_missing"):
            loaded.upsert_edges("INTERACTED", frame)
        with pytest.raises(ValueError, match="nope"):
            loaded.upsert_edges("IN_CATEGORY", pd.DataFrame({"src": ["i1"], "dst": ["nope"]}))
        assert loaded.counts() == before  # u1 -> i4 was not written either

    def test_unknown_label_or_type_is_rejected(self, loaded):
        before = loaded.counts()
        frame = pd.DataFrame({"id": ["x"]})
        for call in (lambda: loaded.upsert_nodes(HOSTILE_LABEL, frame),
                     lambda: loaded.upsert_nodes("Movie", frame),
                     lambda: loaded.count_nodes(HOSTILE_LABEL),
                     lambda: loaded.read_nodes(HOSTILE_LABEL),
                     lambda: loaded.write_vectors(HOSTILE_LABEL, "emb", ["i1"], np.ones((1, 2))),
                     lambda: loaded.write_vectors("Item", "emb) DETACH DELETE n //", ["i1"], np.ones((1, 2))),
                     lambda: loaded.upsert_edges("INTERACTED]->() DETACH DELETE n //",
                                                 pd.DataFrame({"src": ["u1"], "dst": ["i1"]})),
                     lambda: loaded.count_edges("LIKES"),
                     lambda: loaded.upsert_nodes("Item", pd.DataFrame({"id": ["x"], "evil) SET n.a=1 //": [1]})),
                     lambda: loaded.knn([1, 0, 0], label=HOSTILE_LABEL)):
            with pytest.raises(ValueError):
                call()
        assert loaded.counts() == before

    def test_hostile_values_are_stored_verbatim(self, store):
        ids = [f"id {s}" for s in HOSTILE_STRINGS]
        store.upsert_nodes("Category", pd.DataFrame({"id": ids, "name": HOSTILE_STRINGS,
                                                     "description": list(reversed(HOSTILE_STRINGS))}))
        store.upsert_nodes("Item", pd.DataFrame({"id": ["i'1\""], "name": ["x"]}))
        store.upsert_edges("IN_CATEGORY", pd.DataFrame({"src": ["i'1\""] * len(ids), "dst": ids}))
        got = store.read_nodes("Category").set_index("id")
        assert sorted(got.index) == sorted(ids)
        for i, s in zip(ids, HOSTILE_STRINGS):
            assert got.loc[i, "name"] == s
        assert store.count_nodes("Item") == 1 and store.count_edges("IN_CATEGORY") == len(ids)
        found = store.query("MATCH (c:Category) WHERE c.name = $name RETURN c.id AS id", {"name": HOSTILE_STRINGS[6]})
        assert found["id"].tolist() == [ids[6]]

    # ------------------------------------------------------------------- reads
    def test_read_nodes_round_trip(self, loaded):
        tables = contract_tables()
        for label in schema.NODES:
            got = loaded.read_nodes(label)
            assert got["id"].tolist() == sorted(got["id"].tolist())
            assert_same_frame(got, tables.nodes[label], ["id"])
        sessions = loaded.read_nodes("Session")
        assert pd.api.types.is_integer_dtype(sessions["start_ts"])  # INT64 without nulls stays integer
        assert sessions["end_ts"].isna().tolist() == [False, True, False]
        assert sessions["end_ts"].tolist()[0] == 150
        items = loaded.read_nodes("Item")
        assert pd.api.types.is_float_dtype(items["price"]) and items["price"].isna().sum() == 1
        assert items["audio_path"].isna().all() and items["description"].isna().sum() == 1

    def test_read_edges_round_trip(self, loaded):
        tables = contract_tables()
        for rel in schema.RELS:
            got = loaded.read_edges(rel)
            keys = list(zip(got["src"], got["dst"]))
            assert keys == sorted(keys)
            assert_same_frame(got, tables.edges[rel], ["src", "dst"])
        inter = loaded.read_edges("INTERACTED")
        assert pd.api.types.is_integer_dtype(inter["count"]) and pd.api.types.is_float_dtype(inter["weight"])
        assert inter["weight"].isna().sum() == 1 and inter["action"].isna().sum() == 1

    def test_read_subgraph_equals_ingested(self, loaded):
        tables, got = contract_tables(), loaded.read_subgraph()
        assert isinstance(got, GraphTables) and got.counts() == tables.counts()
        for label in schema.NODES:
            assert_same_frame(got.nodes[label], tables.nodes[label], ["id"])
        for rel in schema.RELS:
            assert_same_frame(got.edges[rel], tables.edges[rel], ["src", "dst"])

    def test_empty_store(self, store):
        assert set(store.counts().values()) == {0}
        assert list(store.read_nodes("Item").columns) == ["id", *schema.NODES["Item"].properties]
        assert list(store.read_edges("CONTAINS").columns) == ["src", "dst", *schema.RELS["CONTAINS"].properties]
        ids, vecs = store.read_vectors("Item", "emb")
        assert ids.shape == (0,) and vecs.shape == (0, 0) and store.vector_names("Item") == []

    def test_query_passthrough(self, loaded):
        got = loaded.query("MATCH (u:User)-[:INTERACTED]->(i:Item) WHERE i.id = $id RETURN u.id AS user ORDER BY user",
                           {"id": "i1"})
        assert isinstance(got, pd.DataFrame) and got["user"].tolist() == ["u1", "u2", "u3"]

    # ----------------------------------------------------------------- vectors
    def test_write_and_read_vectors(self, loaded):
        assert loaded.write_vectors("Item", "text", ["i3", "i1"], np.array([[0, 1], [1, 0]])) == 2
        ids, vecs = loaded.read_vectors("Item", "text")
        assert ids.tolist() == ["i1", "i3"] and vecs.dtype == np.float32
        np.testing.assert_array_equal(vecs, [[1, 0], [0, 1]])
        torch = pytest.importorskip("torch")
        loaded.write_vectors("Item", "text", ["i1", "i2"], torch.tensor([[0.25, 2.0], [-1.5, 3.0]]))  # overwrite i1
        ids, vecs = loaded.read_vectors("Item", "text")
        assert ids.tolist() == ["i1", "i2", "i3"]
        np.testing.assert_array_equal(vecs, np.array([[0.25, 2.0], [-1.5, 3.0], [0, 1]], np.float32))
        loaded.write_vectors("Item", "image", ["i4"], np.ones((1, 4)))
        assert loaded.vector_names("Item") == ["image", "text"] and loaded.vector_names("User") == []

    def test_bad_vectors_are_rejected(self, loaded):
        loaded.write_vectors("Item", "text", ["i1"], np.ones((1, 2)))
        for ids, vecs in ((["i2"], np.ones((1, 3))),            # another dimension
                          (["i2"], np.array([[np.nan, 1.0]])),  # not finite
                          (["i2", "i_missing"], np.ones((2, 2))),  # unknown id
                          (["i2", "i2"], np.ones((2, 2))),       # repeated id
                          (["i2", "i3"], np.ones((3, 2)))):      # rows != ids
            with pytest.raises(ValueError):
                loaded.write_vectors("Item", "text", ids, vecs)
        with pytest.raises(ValueError, match="i_missing"):
            loaded.write_vectors("Item", "text", ["i_missing"], np.ones((1, 2)))
        ids, vecs = loaded.read_vectors("Item", "text")
        assert ids.tolist() == ["i1"] and vecs.shape == (1, 2)  # nothing written by the failures
        loaded.delete_vectors("Item", "text")
        assert loaded.vector_names("Item") == []
        loaded.write_vectors("Item", "text", ["i2"], np.ones((1, 3)))  # a new dimension after delete
        assert loaded.read_vectors("Item", "text")[1].shape == (1, 3)

    def test_knn_order_and_filters(self, loaded):
        loaded.write_vectors("Item", "emb", list(EMB), np.array(list(EMB.values()), dtype=np.float32))
        got = loaded.knn(np.array([1.0, 0.0, 0.0]), k=3)
        assert _ids(got) == ["i1", "i5", "i2"]  # i1, i5 tie at 1.0: by id
        assert _scores(got) == pytest.approx([1.0, 1.0, R2], abs=1e-5)
        got = loaded.knn(np.array([[1.0, 0.0, 0.0]]), k=10, exclude=["i1"])
        assert _ids(got) == ["i5", "i2", "i3", "i4"]
        assert _scores(got) == pytest.approx([1.0, R2, 0.0, -1.0], abs=1e-5)
        got = loaded.knn([1.0, 0.0, 0.0], k=10, category="c2")
        assert _ids(got) == ["i3", "i4"] and _scores(got) == pytest.approx([0.0, -1.0], abs=1e-5)
        got = loaded.knn([0.0, 2.0, 0.0], k=2, category="c1", exclude={"i2"})
        assert _ids(got) == ["i1", "i5"]  # both 0.0: by id
        torch = pytest.importorskip("torch")
        assert _ids(loaded.knn(torch.tensor([0.0, 1.0, 0.0]), k=1)) == ["i3"]
        assert all(isinstance(i, str) and isinstance(s, float) for i, s in got)

    def test_knn_rejects_bad_arguments(self, loaded):
        loaded.write_vectors("Item", "emb", list(EMB), np.array(list(EMB.values()), dtype=np.float32))
        for kwargs in ({"k": 0}, {"k": -1}, {"category": "c_missing"}, {"name": "text"},
                       {"label": "User", "category": "c1"}):
            with pytest.raises(ValueError):
                loaded.knn([1.0, 0.0, 0.0], **kwargs)
        for vector in ([1.0, 0.0], [np.inf, 0.0, 0.0], np.ones((2, 3))):
            with pytest.raises(ValueError):
                loaded.knn(vector)

    # ----------------------------------------------------------------- related
    def test_related_co_interaction(self, loaded):
        # users of i1: u1 (i2 i3), u2 (i2 i4), u3 (i3 i5) -> i2 2, i3 2, i4 1, i5 1
        assert loaded.related("i1", k=10) == [("i2", 2.0), ("i3", 2.0), ("i4", 1.0), ("i5", 1.0)]
        assert loaded.related("i1", k=3, via="co_interaction") == [("i2", 2.0), ("i3", 2.0), ("i4", 1.0)]
        assert loaded.related("i5") == [("i1", 1.0), ("i3", 1.0)]

    def test_related_session(self, loaded):
        # sessions with i2: s1 (i1), s2 (i3), s3 (i3 i4) -> i3 2, i1 1, i4 1
        assert loaded.related("i2", via="session") == [("i3", 2.0), ("i1", 1.0), ("i4", 1.0)]
        assert loaded.related("i2", k=1, via="session") == [("i3", 2.0)]
        assert loaded.related("i5", via="session") == []

    def test_related_embedding_falls_back_to_text(self, loaded):
        with pytest.raises(ValueError):
            loaded.related("i1", via="embedding")  # no vectors yet
        loaded.write_vectors("Item", "text", ["i1", "i2", "i3"], np.array([[0, 1], [0, 2], [1, 0]]))
        assert _ids(loaded.related("i1", via="embedding")) == ["i2", "i3"]
        loaded.write_vectors("Item", "emb", list(EMB), np.array(list(EMB.values()), dtype=np.float32))
        got = loaded.related("i1", k=2, via="embedding")
        assert _ids(got) == ["i5", "i2"] and _scores(got) == pytest.approx([1.0, R2], abs=1e-5)

    def test_related_never_returns_the_item(self, loaded):
        loaded.write_vectors("Item", "emb", list(EMB), np.array(list(EMB.values()), dtype=np.float32))
        for item in EMB:
            for via in ("co_interaction", "session", "embedding"):
                assert item not in _ids(loaded.related(item, k=10, via=via))
        with pytest.raises(ValueError, match="co_interaction"):
            loaded.related("i1", via="friends")
        with pytest.raises(ValueError):
            loaded.related("i_missing")
        with pytest.raises(ValueError):
            loaded.related("i1", k=0)

    # -------------------------------------------------------------- lifecycle
    def test_reopen_keeps_data(self, tmp_path):
        first = self.make_store(tmp_path)
        try:
            first.ingest(contract_tables())
            first.write_vectors("Item", "emb", list(EMB), np.array(list(EMB.values()), dtype=np.float32))
            counts = first.counts()
        finally:
            first.close()
        again = self.reopen_store(tmp_path)
        try:
            assert again.counts() == counts
            assert_same_frame(again.read_nodes("Item"), contract_tables().nodes["Item"], ["id"])
            ids, vecs = again.read_vectors("Item", "emb")
            assert ids.tolist() == sorted(EMB) and vecs.shape == (5, 3)
            assert again.related("i1")[0] == ("i2", 2.0)
        finally:
            again.close()

    def test_clear_deletes_everything(self, loaded):
        loaded.write_vectors("Item", "emb", list(EMB), np.array(list(EMB.values()), dtype=np.float32))
        loaded.clear()
        assert set(loaded.counts().values()) == {0} and loaded.vector_names("Item") == []
        loaded.ingest(contract_tables())  # usable afterwards
        assert loaded.counts() == contract_tables().counts()
