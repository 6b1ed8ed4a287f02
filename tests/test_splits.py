"""Split protocols: known shares, determinism, no leakage, cold items, context shift, folds."""
from __future__ import annotations

import math
from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import pytest
import torch

from ctxrec.datasets.synthetic import SIZES, generate_world
from ctxrec.graph.build import build_graph
from ctxrec.data import SplitConfig
from ctxrec.graph.export import interaction_pairs, to_rec_graph
from ctxrec.data.splits import (
    cold_item_split,
    context_shift_split,
    context_values,
    kfold_assign,
    random_split,
    split_roles,
    temporal_split,
)


def _tables(folder, **overrides):
    world = generate_world(replace(SIZES["tiny"], images=False, audio=False, **overrides))
    files = world.write(folder)
    return build_graph(files["interactions"], files["items"], files["context"]).tables


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """30 users, 40 items, 3 places."""
    return _tables(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny8(tmp_path_factory):
    """The tiny world with 8 places, so that place-based shifts have a choice."""
    return _tables(tmp_path_factory.mktemp("tiny8"), n_places=8, seed=3)


@pytest.fixture(scope="session")
def pairs(tiny):
    return interaction_pairs(tiny)


def _pair_set(u, i):
    return set(zip(u.tolist(), i.tolist()))


def _round(x):
    return int(math.floor(x + 0.5))


def _old_temporal_roles(pairs, test=0.2, val=0.1, min_pairs=3):
    """The split export used before protocols existed, kept verbatim as the reference."""
    order = pairs.sort_values(["src", "first_ts", "dst"], kind="stable")
    n = order.groupby("src")["dst"].transform("size").to_numpy()
    rank = order.groupby("src").cumcount().to_numpy()
    n_test = np.floor(n * test).astype(int)
    n_val = np.floor((n - n_test) * val).astype(int)
    small = n < min_pairs
    n_test[small] = 0
    n_val[small] = 0
    role = np.where(rank >= n - n_test, 2, np.where(rank >= n - n_test - n_val, 1, 0))
    return pd.Series(role, index=order.index).reindex(pairs.index).to_numpy()


PROTOCOL_CONFIGS = [
    SplitConfig(),
    SplitConfig(protocol="random"),
    SplitConfig(protocol="random", folds=5, fold=3),
    SplitConfig(protocol="cold_items"),
    SplitConfig(protocol="cold_items", folds=4, fold=1),
    SplitConfig(protocol="context_shift"),
    SplitConfig(protocol="context_shift", context_key="time"),
    SplitConfig(protocol="context_shift", context_key="daypart"),
]


# --- temporal: unchanged -------------------------------------------------------------------

def test_temporal_default_matches_the_previous_rule(tiny, pairs):
    np.testing.assert_array_equal(temporal_split(pairs, SplitConfig()).role, _old_temporal_roles(pairs))
    cfg = SplitConfig(test=0.3, val=0.2, min_pairs=10)
    np.testing.assert_array_equal(temporal_split(pairs, cfg).role, _old_temporal_roles(pairs, 0.3, 0.2, 10))
    g = to_rec_graph(tiny)
    role = _old_temporal_roles(pairs)
    idx = {k: i for i, k in enumerate(g.ids["user"])}, {k: i for i, k in enumerate(g.ids["item"])}
    expected = {(idx[0][u], idx[1][i]) for u, i in zip(pairs.src[role == 2], pairs.dst[role == 2])}
    assert _pair_set(g.test.user, g.test.item) == expected
    assert g.candidates == {} and g.split_info["protocol"] == "temporal"


def test_temporal_ignores_the_seed(tiny):
    a, b = to_rec_graph(tiny), to_rec_graph(tiny, split=SplitConfig(seed=7))
    for part in ("train", "val", "test"):
        for name in ("user", "item", "time", "place", "session"):
            assert torch.equal(getattr(getattr(a, part), name), getattr(getattr(b, part), name))


# --- shares ----------------------------------------------------------------------------------

def test_random_shares(pairs):
    n = len(pairs)
    role = random_split(pairs, SplitConfig(protocol="random", test=0.1, val=1 / 9)).role
    n_test = _round(0.1 * n)
    assert (role == 2).sum() == n_test and (role == 1).sum() == _round((n - n_test) / 9)
    role = random_split(pairs, SplitConfig(protocol="random")).role
    assert (role == 2).sum() == _round(0.2 * n) and (role == 1).sum() == _round(0.1 * (n - _round(0.2 * n)))


def test_cold_items_shares_and_whole_items(pairs):
    result = cold_item_split(pairs, SplitConfig(protocol="cold_items", cold=0.15, val=0.1))
    n_items = pairs.dst.nunique()
    n_test = _round(0.15 * n_items)
    assert len(result.info["test_items"]) == n_test
    assert len(result.info["val_items"]) == _round(0.1 * (n_items - n_test))
    assert not set(result.info["test_items"]) & set(result.info["val_items"])
    # an item's pairs all share one role
    assert (pairs.assign(role=result.role).groupby("dst")["role"].nunique() == 1).all()
    held = pairs.dst[result.role == 2]
    assert set(held) == set(result.info["test_items"])


def test_context_shift_known_answer():
    # place counts: A 50, B 30, C 12, D 8, unknown 1; target round(0.2 * 101) = 20
    places = ["A"] * 50 + ["B"] * 30 + ["C"] * 12 + ["D"] * 8 + [""]
    n = len(places)
    frame = pd.DataFrame({"src": [f"u{k % 7}" for k in range(n)], "dst": [f"i{k:03d}" for k in range(n)],
                          "first_ts": np.arange(n), "time": "sat-evening", "place": places})
    result = context_shift_split(frame, SplitConfig(protocol="context_shift", test=0.2, val=0.1, rare_train=0.1))
    # D (8) alone is 12 away from 20; D + C (20) hits it; adding B would overshoot: stop
    assert result.info["shifted"] == ["D", "C"]  # the unknown place is rarer but never shifted
    assert result.info["kept_in_train"] == {"D": 1, "C": 2}  # ceil(0.8), ceil(1.2)
    role = result.role
    assert (role[frame.place == "D"] == 2).sum() == 7 and (role[frame.place == "C"] == 2).sum() == 10
    assert (role == 2).sum() == 17 and not (role[~frame.place.isin(["C", "D"])] == 2).any()
    assert (role == 1).sum() == _round(0.1 * 81) and not (role[frame.place.isin(["C", "D"])] == 1).any()
    # a context with a single pair cannot stay in train; rare_train=0 keeps none
    solo = frame.assign(place=["A"] * (n - 1) + ["Z"])
    assert context_shift_split(solo, SplitConfig(protocol="context_shift")).info["kept_in_train"] == {"Z": 0}
    none = context_shift_split(frame, SplitConfig(protocol="context_shift", rare_train=0.0))
    assert none.info["kept_in_train"] == {"D": 0, "C": 0}


def test_context_values_daypart():
    frame = pd.DataFrame({"time": ["sat-evening", "mon-morning", None], "place": ["x", "y", "z"]})
    assert context_values(frame, "daypart").tolist() == ["evening", "morning", ""]
    assert context_values(frame, "time").tolist() == ["sat-evening", "mon-morning", ""]
    with pytest.raises(ValueError, match="'time' column"):
        context_values(frame.drop(columns="time"), "daypart")


# --- determinism -------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [SplitConfig(protocol="random"), SplitConfig(protocol="cold_items"),
                                 SplitConfig(protocol="context_shift", context_key="time"),
                                 SplitConfig(protocol="random", folds=5, fold=2)], ids=lambda c: c.protocol)
def test_seeded_and_independent_of_row_order(pairs, cfg):
    a = split_roles(pairs, cfg).role
    np.testing.assert_array_equal(a, split_roles(pairs, cfg).role)
    assert not np.array_equal(a, split_roles(pairs, replace(cfg, seed=1)).role)
    shuffled = pairs.sample(frac=1.0, random_state=0)
    b = pd.Series(split_roles(shuffled, cfg).role, index=shuffled.index).reindex(pairs.index).to_numpy()
    np.testing.assert_array_equal(a, b)


# --- no leakage, every protocol -----------------------------------------------------------------

@pytest.mark.parametrize("cfg", PROTOCOL_CONFIGS, ids=lambda c: f"{c.protocol}-{c.context_key}-f{c.folds}")
def test_held_out_pairs_never_reach_message_passing(tiny, cfg):
    g = to_rec_graph(tiny, split=cfg)
    held = _pair_set(g.val.user, g.val.item) | _pair_set(g.test.user, g.test.item)
    assert len(g.test) > 0
    mp = g.data["user", "interacted", "item"].edge_index
    assert not held & _pair_set(mp[0], mp[1])
    rev = g.data["item", "rev_interacted", "user"].edge_index
    assert not held & _pair_set(rev[1], rev[0])
    session_user = torch.full((g.data["session"].num_nodes,), -1)
    opened = g.data["user", "opened", "session"].edge_index
    session_user[opened[1]] = opened[0]
    contains = g.data["session", "contains", "item"].edge_index
    assert not held & _pair_set(session_user[contains[0]], contains[1])
    assert _pair_set(g.train.user, g.train.item) == _pair_set(mp[0], mp[1])
    info = g.split_info
    assert info["protocol"] == cfg.protocol and info["config"] == asdict(cfg)
    assert info["pairs"] == {"train": len(_pair_set(mp[0], mp[1])), "val": len(g.val), "test": len(g.test)}


# --- cold items ------------------------------------------------------------------------------

@pytest.mark.parametrize("folds", [1, 4])
def test_cold_items_have_no_train_edges_and_are_the_candidates(tiny, folds):
    g = to_rec_graph(tiny, split=SplitConfig(protocol="cold_items", folds=folds, fold=folds - 1))
    test_items, val_items = set(g.candidates["test"].tolist()), set(g.candidates["val"].tolist())
    assert g.candidates["test"].dtype == torch.long and test_items and val_items
    assert test_items == set(g.test.item.tolist()) and val_items == set(g.val.item.tolist())
    assert not test_items & val_items
    assert [g.ids["item"][i] for i in sorted(test_items)] == g.split_info["test_items"]
    cold = torch.tensor(sorted(test_items | val_items))
    for rel in (("user", "interacted", "item"), ("session", "contains", "item")):
        assert not torch.isin(g.data[rel].edge_index[1], cold).any()
    assert not torch.isin(g.data["item", "rev_interacted", "user"].edge_index[0], cold).any()
    assert not torch.isin(g.train.item, cold).any()


def test_only_cold_items_fills_candidates(tiny):
    for protocol in ("random", "context_shift"):
        assert to_rec_graph(tiny, split=SplitConfig(protocol=protocol)).candidates == {}


# --- context shift -------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["place", "time"])
def test_context_shift_tests_on_the_rarest_contexts(tiny8, key):
    cfg = SplitConfig(protocol="context_shift", context_key=key)
    pairs = interaction_pairs(tiny8)
    g = to_rec_graph(tiny8, split=cfg)
    shifted = g.split_info["shifted"]
    counts = pd.Series(context_values(pairs, key)).value_counts()
    others = counts.drop(shifted)
    assert shifted and counts[shifted].max() <= others.min()
    assert list(counts[shifted]) == sorted(counts[shifted])  # rarest first
    # the stop rule: the covered share is closer to the target than with one value more or less
    target, covered = _round(cfg.test * len(pairs)), int(counts[shifted].sum())
    assert abs(covered + others.min() - target) >= abs(covered - target)
    if len(shifted) > 1:
        assert abs(covered - counts[shifted[-1]] - target) > abs(covered - target)
    # every test row is in a shifted context; test holds all of them but the kept ones
    test_ctx = g.ids[key][getattr(g.test, key).numpy()]
    assert set(test_ctx) <= set(shifted)
    kept = g.split_info["kept_in_train"]
    assert len(g.test) == sum(int(counts[v]) - kept[v] for v in shifted)
    # in train, the shifted contexts are rare but present (each has >= 2 pairs here)
    train_pairs = pairs.assign(role=split_roles(pairs, cfg).role).query("role == 0")
    train_counts = pd.Series(context_values(train_pairs, key)).value_counts()
    for value in shifted:
        assert counts[value] >= 2 and train_counts.get(value, 0) == kept[value] > 0
        assert kept[value] / len(train_pairs) < counts[value] / len(pairs)
    assert not (g.val.place < 0).any()


# --- folds ------------------------------------------------------------------------------------

def test_kfold_assign_partitions():
    fold = kfold_assign(13, 5, np.random.default_rng(0))
    assert sorted(np.bincount(fold, minlength=5).tolist()) == [2, 2, 3, 3, 3]


def test_random_folds_partition_the_pairs(pairs):
    tests = [random_split(pairs, SplitConfig(protocol="random", folds=5, fold=i)).role == 2 for i in range(5)]
    stacked = np.stack(tests)
    assert (stacked.sum(0) == 1).all()  # each pair is test in exactly one fold
    sizes = stacked.sum(1)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == len(pairs)
    role = random_split(pairs, SplitConfig(protocol="random", folds=5, fold=0, val=0.1)).role
    assert (role == 1).sum() == _round(0.1 * (len(pairs) - sizes[0]))


def test_cold_item_folds_partition_the_items(pairs):
    held = [cold_item_split(pairs, SplitConfig(protocol="cold_items", folds=4, fold=i)).info["test_items"]
            for i in range(4)]
    flat = [item for fold in held for item in fold]
    assert sorted(flat) == sorted(pairs.dst.unique()) and len(flat) == len(set(flat))
    assert max(map(len, held)) - min(map(len, held)) <= 1


# --- configuration errors ---------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"test": 1.0}, r"SplitConfig\.test must be a share in \[0, 1\), got 1\.0"),
    ({"val": -0.1}, r"SplitConfig\.val .* got -0\.1"),
    ({"cold": True}, r"SplitConfig\.cold .* got True"),
    ({"rare_train": "0.1"}, r"SplitConfig\.rare_train .* got '0\.1'"),
    ({"min_pairs": 2.5}, r"SplitConfig\.min_pairs must be an integer >= 0, got 2\.5"),
    ({"seed": -1}, r"SplitConfig\.seed must be an integer >= 0, got -1"),
    ({"folds": 0}, r"SplitConfig\.folds must be an integer >= 1, got 0"),
    ({"protocol": "leave_one_out"}, r"SplitConfig\.protocol must be one of \('temporal', 'random', "
                                    r"'cold_items', 'context_shift', 'files'\), got 'leave_one_out'"),
    ({"context_key": "weather"},
     r"SplitConfig\.context_key must be one of \('place', 'time', 'daypart'\), got 'weather'"),
    ({"folds": 3}, r"SplitConfig\.folds=3 needs a protocol in \('random', 'cold_items'\), got protocol='temporal'"),
    ({"protocol": "random", "folds": 5, "fold": 5}, r"SplitConfig\.fold must be in 0\.\.4 \(folds=5\), got 5"),
])
def test_bad_config_values_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SplitConfig(**kwargs)
