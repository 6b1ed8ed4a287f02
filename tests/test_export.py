"""Export to PyG: the temporal split and the no-leakage rule."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ctxrec.graph.build import build_graph
from ctxrec.data import SplitConfig
from ctxrec.graph.export import to_rec_graph
from tests.conftest import write_board


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    paths = write_board(tmp_path_factory.mktemp("exp"), context_board=True)
    return build_graph(paths["interactions"], paths["items"], paths["context"]).tables


def pairs(u, i):
    return set(zip(u.tolist(), i.tolist()))


def test_held_out_pairs_never_reach_message_passing(built):
    g = to_rec_graph(built)
    held = pairs(g.val.user, g.val.item) | pairs(g.test.user, g.test.item)
    assert held, "the split held out nothing"
    mp = g.data["user", "interacted", "item"].edge_index
    assert not held & pairs(mp[0], mp[1])
    rev = g.data["item", "rev_interacted", "user"].edge_index
    assert not held & pairs(rev[1], rev[0])
    # CONTAINS edges, mapped back to the session's user, carry no held-out pair either
    session_user = torch.full((g.data["session"].num_nodes,), -1)
    opened = g.data["user", "opened", "session"].edge_index
    session_user[opened[1]] = opened[0]
    contains = g.data["session", "contains", "item"].edge_index
    assert not held & pairs(session_user[contains[0]], contains[1])
    # and train events are exactly the message-passing pairs
    assert pairs(g.train.user, g.train.item) == pairs(mp[0], mp[1])


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
