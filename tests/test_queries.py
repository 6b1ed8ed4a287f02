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
