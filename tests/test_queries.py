"""The copyable graph queries give the same, known answers on both stores."""
from __future__ import annotations

import pytest

from ctxrec.graph import queries
from ctxrec.graph.build import build_graph
from ctxrec.graph.stores import open_store
from tests.conftest import write_board


@pytest.fixture(scope="module")
def board_tables(tmp_path_factory):
    paths = write_board(tmp_path_factory.mktemp("q"), context_board=True)
    return build_graph(paths["interactions"], paths["items"], paths["context"]).tables


@pytest.fixture(params=["embedded", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request, board_tables, tmp_path):
    if request.param == "neo4j":
        server = request.getfixturevalue("neo4j_server")
        st = open_store("neo4j", **server)
        st.clear()
    else:
        st = open_store("embedded", tmp_path / "g.db")
    st.ingest(board_tables)
    yield st
    st.close()


def test_in_context_follows_the_board(store):
    morning = queries.in_context(store, "Springfield", daypart="morning", weekend=False, k=10)
    evening = queries.in_context(store, "  SPRINGFIELD ", daypart="evening", weekend=True, k=10)
    assert len(morning) == 10 and len(evening) == 10
    assert all(int(i[1:]) < 20 for i in morning["item"])  # group A on weekday mornings
    assert all(int(i[1:]) >= 20 for i in evening["item"])  # group B on Saturday evenings
    assert list(morning["sessions"]) == sorted(morning["sessions"], reverse=True)
    assert queries.in_context(store, "Springfield", daypart="evening", weekend=False).empty
    with pytest.raises(ValueError, match="daypart"):
        queries.in_context(store, "Springfield", daypart="teatime")


def test_explain_names_context_and_items(store):
    tables = store.read_edges("INTERACTED")
    user = "u001"
    item = tables.loc[tables.src == user, "dst"].iloc[0]
    why = queries.explain(store, user, item)
    assert set(why["kind"]) == {"time", "place", "item"}
    assert set(why.loc[why.kind == "time", "node"]) <= {"mon-morning", "sat-evening"}
    assert (why["strength"] > 0).all()
    assert queries.explain(store, "nobody", item).empty


def test_explain_many_is_the_evidence_counted_from_the_edges(store):
    """One call for many items: each item's rows are its strongest k per kind, as counted here
    from the raw edge tables; an item without evidence gets an empty frame."""
    edges = {rel: store.read_edges(rel)[["src", "dst"]] for rel in ("OPENED", "AT_TIME", "AT_PLACE", "CONTAINS",
                                                                     "INTERACTED")}
    user = "u002"
    mine = set(edges["OPENED"].loc[edges["OPENED"].src == user, "dst"])
    items = ["i030", "i005", "i011", "i030", "nope"]
    got = queries.explain_many(store, user, items, k=2)
    assert list(got) == ["i030", "i005", "i011", "nope"] and got["nope"].empty
    for item in got:
        if item == "nope":
            continue
        want = []
        with_item = set(edges["CONTAINS"].loc[edges["CONTAINS"].dst == item, "src"])
        for kind, rel in (("time", "AT_TIME"), ("place", "AT_PLACE")):
            at = edges[rel]
            counts = {}
            for x in set(at.loc[at.src.isin(mine), "dst"]):
                hits = len(set(at.loc[at.dst == x, "src"]) & with_item)
                if hits:
                    counts[x] = len(set(at.loc[at.dst == x, "src"]) & mine) * hits
            want += [(kind, x, float(v)) for x, v in sorted(counts.items(), key=lambda t: (-t[1], t[0]))[:2]]
        contains = edges["CONTAINS"]
        shared = {}
        for j in set(edges["INTERACTED"].loc[edges["INTERACTED"].src == user, "dst"]) - {item}:
            n = len(set(contains.loc[contains.dst == j, "src"]) & with_item)
            if n:
                shared[j] = n
        want += [("item", j, float(n)) for j, n in sorted(shared.items(), key=lambda t: (-t[1], t[0]))[:2]]
        rows = got[item]
        assert list(zip(rows["kind"], rows["node"], rows["strength"])) == want, item
        assert rows.equals(queries.explain(store, user, item, k=2))
    assert sum(len(f) for f in got.values()) >= 6 and {"time", "place", "item"} <= set(got["i030"]["kind"])


def test_same_answers_on_both_stores(board_tables, tmp_path, neo4j_server):
    pytest.importorskip("neo4j")
    with open_store("embedded", tmp_path / "a") as a, open_store("neo4j", **neo4j_server) as b:
        b.clear()
        a.ingest(board_tables)
        b.ingest(board_tables)
        for args in [("Springfield", "morning", False), ("Shelbyville", None, None), ("Springfield", "evening", True)]:
            qa = queries.in_context(a, *args, k=15).reset_index(drop=True)
            qb = queries.in_context(b, *args, k=15).reset_index(drop=True)
            assert qa.astype(str).equals(qb.astype(str)), args
        for user, item in [("u001", "i005"), ("u002", "i030"), ("u017", "i011")]:
            ea, eb = queries.explain(a, user, item), queries.explain(b, user, item)
            assert ea.astype(str).equals(eb.astype(str)), (user, item)


test_same_answers_on_both_stores = pytest.mark.neo4j(test_same_answers_on_both_stores)
