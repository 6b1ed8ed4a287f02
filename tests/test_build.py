"""Ingestion: validation, reject file, de-duplication and context extraction."""
from __future__ import annotations

import pandas as pd
import pytest

from ctxrec.graph import context as ctx
from ctxrec.graph.build import BuildConfig, build_graph
from ctxrec.graph.readers import InputError

ITEMS = """item_id,name,description,category,price,image_path
i1,One,first item,Jazz,1.5,img/i1.png
i2,Two,second item,Rock,abc,
i3,Three,third item, rock ,3,
i1,Dup,a duplicate,Jazz,1,
"""

# line numbers matter: the reject file must point at them
INTERACTIONS = """user_id,action,item_id,time,location
u1,view,i1,2024-03-02T20:00:00,New York
u1,click,i3,2024-03-02T20:10:00, new-york,
u1,view,i1,2024-03-02T20:00:00,New York
u1,view,i3,not-a-time,NY
u2,purchase,i2,2024-03-04T08:00:00,Boston
u2,view,i9,2024-03-04T08:00:00,Boston
,view,i1,2024-03-04T08:00:00,Boston
u2,VIEW,i1,1709539500,boston
u2,cart,i3,2024-03-04T09:00:00,BOSTON
u1,view,i3,2999-01-01T00:00:00,Boston
"""


@pytest.fixture
def broken(tmp_path):
    (tmp_path / "items.csv").write_text(ITEMS)
    (tmp_path / "interactions.csv").write_text(INTERACTIONS)
    return tmp_path


def test_bad_rows_go_to_reject_file_and_good_rows_load(broken):
    res = build_graph(broken / "interactions.csv", broken / "items.csv")
    rej = pd.read_csv(res.reject_path)
    assert res.reject_path == broken / "rejects.csv"
    assert list(rej.columns) == ["file", "row", "column", "value", "reason"]
    got = {(r.file.split("/")[-1], r.row, r.column) for r in rej.itertuples()}
    assert got == {
        ("items.csv", 2, "price"), ("items.csv", 4, "item_id"),
        ("interactions.csv", 2, "*"), ("interactions.csv", 4, "time"), ("interactions.csv", 5, "item_id"),
        ("interactions.csv", 6, "item_id"), ("interactions.csv", 7, "user_id"), ("interactions.csv", 10, "time"),
    }
    reasons = dict(((r.row, r.column), r.reason) for r in rej.itertuples() if r.file.endswith("interactions.csv"))
    assert "ISO-8601" in reasons[(4, "time")] and "future" in reasons[(10, "time")]
    assert "unknown item" in reasons[(6, "item_id")] and "quote values" in reasons[(2, "*")]
    assert rej.loc[(rej.row == 6) & rej.file.str.endswith("interactions.csv"), "value"].item() == "i9"
    # good rows: interactions rows 1, 8, 9 (row 3 duplicates row 1); items i1 and i3
    s = res.summary
    assert (s["rows_read"], s["rows_rejected"], s["duplicates"], s["rows_loaded"]) == (14, 8, 1, 5)
    inter = res.tables.edges["INTERACTED"].set_index(["src", "dst"])
    assert sorted(inter.index) == [("u1", "i1"), ("u2", "i1"), ("u2", "i3")]
    assert inter.loc[("u2", "i3"), "action"] == "cart"
    assert sorted(res.tables.nodes["Item"]["id"]) == ["i1", "i3"]
    img = res.tables.nodes["Item"].set_index("id").loc["i1", "image_path"]
    assert img == str((broken / "img/i1.png").resolve())


def test_context_extraction(broken):
    res = build_graph(broken / "interactions.csv", broken / "items.csv")
    sess = res.tables.nodes["Session"].set_index("id")
    assert len(sess) == 3  # u1 sat evening; u2 at 08:05 and u2 at 09:00 (55 min later)
    by_user = sess.groupby("user_id")["time_slot"].apply(sorted).to_dict()
    assert by_user == {"u1": ["sat-evening"], "u2": ["mon-morning", "mon-morning"]}
    assert set(sess["place"]) == {"new york", "boston"}
    assert set(res.tables.nodes["Place"]["name"]) == {"New York", "Boston"}
    assert len(res.tables.nodes["Time"]) == 28
    assert set(res.tables.nodes["Category"]["id"]) == {"jazz", "rock"}
    wider = build_graph(broken / "interactions.csv", broken / "items.csv", config=BuildConfig(session_gap_minutes=90))
    assert len(wider.tables.nodes["Session"]) == 2


def test_explicit_session_id_wins(tmp_path):
    (tmp_path / "items.csv").write_text("item_id,name,description,category,price\ni1,a,b,c,1\ni2,a,b,c,1\n")
    (tmp_path / "inter.csv").write_text(
        "user_id,action,item_id,time,session_id\n"
        "u1,view,i1,2024-01-01T10:00:00,s1\nu1,view,i2,2024-01-01T10:01:00,s2\nu1,view,i1,2024-01-01T18:00:00,s1\n")
    res = build_graph(tmp_path / "inter.csv", tmp_path / "items.csv")
    assert sorted(res.tables.nodes["Session"]["id"]) == ["u1#s1", "u1#s2"]
    contains = res.tables.edges["CONTAINS"]
    assert len(contains[contains.src == "u1#s1"]) == 1  # the pair (s1, i1) once, first position


def test_parquet_equals_csv(broken, tmp_path):
    pq = tmp_path / "pq"
    pq.mkdir()
    good_items = "item_id,name,description,category,price\ni1,One,first,Jazz,1.5\ni3,Three,third,Rock,3\n"
    (pq / "items.csv").write_text(good_items)
    pd.read_csv(pq / "items.csv").to_parquet(pq / "items.parquet")
    inter = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "action": ["view", "click", "view"],
                          "item_id": ["i1", "i3", "i1"], "time": ["2024-03-02T20:00:00", "2024-03-02T20:10:00",
                                                                  "2024-03-04T08:00:00"]})
    inter.to_csv(pq / "inter.csv", index=False)
    inter.to_parquet(pq / "inter.parquet")
    a = build_graph(pq / "inter.csv", pq / "items.csv").tables
    b = build_graph(pq / "inter.parquet", pq / "items.parquet").tables
    for label in a.nodes:
        pd.testing.assert_frame_equal(a.nodes[label], b.nodes[label])
    for rel in a.edges:
        pd.testing.assert_frame_equal(a.edges[rel], b.edges[rel])


def test_file_level_errors_name_file_and_fix(tmp_path):
    (tmp_path / "items.csv").write_text("item_id,name,description,category,price\ni1,a,b,c,1\n")
    (tmp_path / "bad.csv").write_text("user,action,item_id,time\nu1,view,i1,2024-01-01\n")
    with pytest.raises(InputError, match=r"bad.csv: missing required column\(s\) \['user_id'\]"):
        build_graph(tmp_path / "bad.csv", tmp_path / "items.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty.csv: the file is empty"):
        build_graph(tmp_path / "empty.csv", tmp_path / "items.csv")
    with pytest.raises(InputError, match="file not found"):
        build_graph(tmp_path / "nope.csv", tmp_path / "items.csv")


def test_time_and_place_helpers():
    assert ctx.time_slot(pd.Timestamp("2024-03-02T20:00")) == "sat-evening"
    assert ctx.parse_when("sat 20:00") == "sat-evening"
    assert ctx.parse_when("Monday 7") == "mon-morning"
    assert ctx.parse_when("2024-03-04T23:30") == "mon-night"
    assert ctx.describe_time_slot("sun-afternoon") == "Sunday afternoon"
    assert ctx.normalize_place("  New-York, ") == "new york"
    assert ctx.daypart_of(4) == "night" and ctx.daypart_of(12) == "afternoon"
    with pytest.raises(ValueError, match="cannot read time"):
        ctx.parse_when("teatime")
