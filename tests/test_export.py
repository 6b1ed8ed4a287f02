"""Export to PyG: the temporal split and the no-leakage rule, for every edge type."""
from __future__ import annotations

from typing import Dict, Iterable, Tuple

import numpy as np
import pandas as pd
import pytest
import torch

from ctxrec.data import SplitConfig
from ctxrec.graph.build import build_graph
from ctxrec.graph.export import to_rec_graph
from tests.conftest import write_board

#: the relations whose edges are events, or attributes of a session (checked); the others
#: (LIVES_IN, IN_CATEGORY) are attributes of users and items, exported whole
EVENT_RELS = {"interacted", "contains", "opened", "at_time", "at_place"}


def board_tables(tmp_path_factory, name: str, context_board: bool = True):
    """The tables of :func:`tests.conftest.write_board`'s board, built in a new folder ``name``."""
    paths = write_board(tmp_path_factory.mktemp(name), context_board=context_board)
    return build_graph(paths["interactions"], paths["items"], paths["context"]).tables


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return board_tables(tmp_path_factory, "exp")


def pairs(u, i):
    return set(zip(u.tolist(), i.tolist()))


def held_out_ids(graph) -> set:
    """The graph's val and test pairs as ``(user id, item id)``."""
    uid, iid = graph.ids["user"], graph.ids["item"]
    return {(uid[u], iid[i]) for part in (graph.val, graph.test)
            for u, i in zip(part.user.tolist(), part.item.tolist())}


def training_events(tables, held: set, temporal: bool) -> pd.DataFrame:
    """Every CONTAINS row with its user, and whether it is a training event, derived from
    the tables alone: a row of a pair that is not held out and, under ``temporal``, not later
    than the user's first held-out event (the cut)."""
    owner = tables.nodes["Session"].set_index("id")["user_id"]
    events = tables.edges["CONTAINS"][["src", "dst", "ts"]].copy()
    events["user"] = owner.reindex(events["src"]).to_numpy()
    events["held"] = [(u, i) in held for u, i in zip(events["user"], events["dst"])]
    cut = events[events["held"]].groupby("user")["ts"].min() if temporal else pd.Series(dtype=float)
    events["cut"] = events["user"].map(cut).to_numpy(dtype=float)  # NaN: nothing held out
    events["after_cut"] = events["ts"].to_numpy(dtype=float) > events["cut"].to_numpy()
    events["training"] = ~events["held"] & ~events["after_cut"]
    return events


def check_no_future_edges(graph, tables, temporal: bool, excluded: Iterable[Tuple[str, str]] = ()) -> Dict[str, int]:
    """Assert that no edge of the held-out period, of any type, is in ``graph.data``.

    The held-out pairs are the graph's val and test pairs plus ``excluded``; everything else
    is re-derived from ``tables``, not from the export: which sessions hold no training event,
    and (``temporal``) each user's cut. For every edge type, reverse types included: no edge
    touches a session without a training event; no INTERACTED or CONTAINS edge is a held-out
    pair; no CONTAINS edge is an event after its user's cut.

    Returns:
        What was derived: ``dead_sessions`` (sessions without a training event) and
        ``after_cut`` (events of train pairs after their user's cut), so a caller can check
        that the test was not vacuous.
    """
    held = held_out_ids(graph) | set(excluded)
    events = training_events(tables, held, temporal)
    live = set(events.loc[events["training"], "src"])
    sid = graph.ids["session"]
    dead = torch.tensor([k for k, s in enumerate(sid) if s not in live], dtype=torch.long)
    owner = tables.nodes["Session"].set_index("id")["user_id"]
    event = events.set_index(["src", "dst"])
    uid, iid = graph.ids["user"], graph.ids["item"]
    seen = set()
    for et in graph.data.edge_types:
        src_t, rel, dst_t = et
        ei = graph.data[et].edge_index
        base = rel[len("rev_"):] if rel.startswith("rev_") else rel
        seen.add(base)
        # (a, b) in the direction of the forward relation
        (a_t, a), (b_t, b) = ((dst_t, ei[1]), (src_t, ei[0])) if rel != base else ((src_t, ei[0]), (dst_t, ei[1]))
        for node_type, side in ((a_t, a), (b_t, b)):
            if node_type == "session":
                bad = side[torch.isin(side, dead)]
                assert bad.numel() == 0, (f"{et}: {bad.numel()} edges touch sessions with no training event, "
                                          f"e.g. {sid[bad[0]]}")
        if base == "interacted":
            leaked = {(uid[u], iid[i]) for u, i in zip(a.tolist(), b.tolist())} & held
            assert not leaked, f"{et}: {len(leaked)} held-out pairs, e.g. {sorted(leaked)[0]}"
        elif base == "contains":
            rows = event.loc[list(zip(sid[a.numpy()], iid[b.numpy()]))]
            leaked = {(owner[s], i) for s, i in rows.index} & held
            assert not leaked, f"{et}: {len(leaked)} held-out pairs, e.g. {sorted(leaked)[0]}"
            late = rows[rows["after_cut"]]
            assert late.empty, (f"{et}: {len(late)} events later than their user's cut, e.g. "
                                f"{late.index[0]} at {late['ts'].iloc[0]} > {late['cut'].iloc[0]:.0f}")
    assert EVENT_RELS <= seen, f"edge types {sorted(EVENT_RELS - seen)} are not in the graph; nothing checked them"
    return {"dead_sessions": len(dead), "after_cut": int((events["after_cut"] & ~events["held"]).sum())}


@pytest.mark.parametrize("protocol", ["temporal", "random", "cold_items", "context_shift"])
def test_no_edge_of_the_held_out_period_reaches_message_passing(built, protocol):
    g = to_rec_graph(built, split=SplitConfig(protocol=protocol))
    assert len(g.test) > 0
    derived = check_no_future_edges(g, built, temporal=protocol == "temporal")
    sessions = g.split_info["sessions"]
    assert sessions == {"total": len(built.nodes["Session"]),
                        "in_message_passing": len(built.nodes["Session"]) - derived["dead_sessions"]}
    # train events are exactly the message-passing pairs
    mp = g.data["user", "interacted", "item"].edge_index
    assert pairs(g.train.user, g.train.item) == pairs(mp[0], mp[1])


def test_the_leak_check_is_not_vacuous_on_the_temporal_split(built):
    g = to_rec_graph(built)
    derived = check_no_future_edges(g, built, temporal=True)
    # the board's last sessions hold only held-out events: they must lose their edges
    assert derived["dead_sessions"] > 0 and derived["after_cut"] > 0
    assert g.split_info["sessions"]["in_message_passing"] < g.split_info["sessions"]["total"]
    opened = g.data["user", "opened", "session"].edge_index
    assert opened.size(1) == g.split_info["sessions"]["in_message_passing"]


def _all_edges(graph, tables, rel: str) -> torch.Tensor:
    spec = {"OPENED": ("user", "session"), "AT_TIME": ("session", "time"), "AT_PLACE": ("session", "place")}[rel]
    frame = tables.edges[rel]
    return torch.tensor(np.stack([[graph.index[spec[0]][s] for s in frame["src"]],
                                  [graph.index[spec[1]][d] for d in frame["dst"]]]), dtype=torch.long)


def _put(graph, edge_type, ei: torch.Tensor, reverse: bool = True) -> None:
    src_t, rel, dst_t = edge_type
    graph.data[edge_type].edge_index = ei
    if reverse:
        graph.data[(dst_t, f"rev_{rel}", src_t)].edge_index = ei.flip(0)


def _old_opened(graph, tables):  # the export before the fix: every session opened
    _put(graph, ("user", "opened", "session"), _all_edges(graph, tables, "OPENED"))


def _old_rev_at_place(graph, tables):  # only a reverse type leaks
    graph.data["place", "rev_at_place", "session"].edge_index = _all_edges(graph, tables, "AT_PLACE").flip(0)


def _late_repeats(graph, tables):  # events of train pairs after the user's cut, in sessions that stay
    events = training_events(tables, held_out_ids(graph), temporal=True)
    live = set(events.loc[events["training"], "src"])
    events = events[~events["held"] & events["src"].isin(live)]
    assert events["after_cut"].any(), "no session straddles a cut with a late repeat; the leak would be empty"
    ei = torch.tensor([[graph.index["session"][s] for s in events["src"]],
                       [graph.index["item"][i] for i in events["dst"]]], dtype=torch.long)
    _put(graph, ("session", "contains", "item"), ei)


def _held_out_interaction(graph, tables):
    edge_type = ("user", "interacted", "item")
    one = torch.stack([graph.test.user[:1], graph.test.item[:1]])
    _put(graph, edge_type, torch.cat([graph.data[edge_type].edge_index, one], 1), reverse=False)


@pytest.mark.parametrize("leak, message", [
    (_old_opened, r"\('user', 'opened', 'session'\): \d+ edges touch sessions with no training event"),
    (_old_rev_at_place, r"\('place', 'rev_at_place', 'session'\): \d+ edges touch sessions"),
    (_late_repeats, r"\('session', 'contains', 'item'\): \d+ events later than their user's cut"),
    (_held_out_interaction, r"\('user', 'interacted', 'item'\): 1 held-out pairs"),
], ids=["opened", "rev_at_place", "late_repeats", "interacted"])
def test_the_leak_check_catches_the_old_export(built, leak, message):
    g = to_rec_graph(built)
    check_no_future_edges(g, built, temporal=True)
    leak(g, built)
    with pytest.raises(AssertionError, match=message):
        check_no_future_edges(g, built, temporal=True)


def test_split_is_temporal_per_user(built):
    g = to_rec_graph(built, split=SplitConfig(test=0.2, val=0.1))
    inter = built.edges["INTERACTED"]
    first = {(u, i): t for u, i, t in zip(inter.src, inter.dst, inter.first_ts)}
    uid, iid = g.ids["user"], g.ids["item"]
    for user in range(g.num_users):
        tr = [first[(uid[user], iid[i])] for i in g.train.item[g.train.user == user].tolist()]
        va = [first[(uid[user], iid[i])] for i in g.val.item[g.val.user == user].tolist()]
        te = [first[(uid[user], iid[i])] for i in g.test.item[g.test.user == user].tolist()]
        assert te and max(tr) <= min(te)
        if va:
            assert max(tr) <= min(va) <= max(va) <= min(te)
    n_pairs = len(inter)
    assert abs(len(g.test) / n_pairs - 0.2) < 0.05


def test_context_of_held_out_pairs_and_index_order(built):
    g = to_rec_graph(built)
    assert list(g.ids["item"]) == sorted(g.ids["item"])
    slots = set(g.ids["time"][g.test.time.numpy()])
    assert slots <= {"mon-morning", "sat-evening"} and len(slots) == 2
    assert (g.test.place >= 0).all()
    g.data.validate()


def test_vectors_become_features_with_presence_mask(built):
    ids = built.nodes["Item"]["id"].to_numpy()
    vec = np.random.default_rng(0).normal(size=(len(ids), 8)).astype(np.float32)
    vec[3] = 0.0  # a zero row counts as missing
    g = to_rec_graph(built, vectors={("Item", "text"): (ids[::-1], vec[::-1])})
    x, mask = g.data["item"].x_text, g.data["item"].mask_text
    assert x.shape == (len(ids), 8)
    pos = g.lookup("item", ids[5])
    torch.testing.assert_close(x[pos], torch.from_numpy(vec[5]))
    assert not mask[g.lookup("item", ids[3])] and int(mask.sum()) == len(ids) - 1
