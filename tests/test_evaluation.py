"""Evaluation protocols on a hand-made graph whose answers are worked out by hand, and the
trainer's refit (no validation pairs: every epoch runs, the last one is kept)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ctxrec.data import Interactions, RecGraph, SplitConfig
from ctxrec.graph.export import to_rec_graph
from ctxrec.training.evaluation import eval_queries, evaluate, known_events, last_context, rank_queries
from ctxrec.training.models import EASE, LightGCN, make_model
from ctxrec.training.recommender import Recommender
from ctxrec.training.tuning import refit_params, tune
from tests.test_export import board_tables


def events(rows, ts=True) -> Interactions:
    """Interactions from ``(user, item, time, place, session, ts)`` rows."""
    cols = [torch.tensor(c, dtype=torch.long) for c in zip(*rows)] if rows else [torch.zeros(0, dtype=torch.long)] * 6
    return Interactions(*cols[:5], ts=cols[5] if ts else None)


#  users a=0, b=1, c=2; items 0..5; time slots 0..2; places 0..1
TRAIN = [(0, 0, 0, 0, 0, 10),
         (0, 1, 1, 1, 1, 30),  # a's latest train event (a later row, i0 again, is older)
         (0, 0, 2, 0, 2, 20),
         (1, 1, 0, 0, 3, 5),
         (1, 2, 2, 1, 3, 5)]  # b: a tie at ts 5 goes to this later row
VAL = [(0, 2, 0, 1, 4, 40)]  # a's latest known event when test is scored
TEST = [(0, 3, 1, 0, 5, 50),
        (0, 4, 0, 1, 6, 60),
        (1, 4, 1, 0, 7, 50),
        (2, 0, 0, 0, 8, 70)]  # c has no known event


@pytest.fixture
def hand():
    ids = {"user": np.array(["a", "b", "c"]), "item": np.array([f"i{j}" for j in range(6)]),
           "time": np.array(["t0", "t1", "t2"]), "place": np.array(["p0", "p1"]),
           "session": np.array([f"s{j}" for j in range(9)])}
    # evaluation never reads message passing, so there is none
    return RecGraph(data=None, ids=ids, train=events(TRAIN), val=events(VAL), test=events(TEST),
                    split_info={"pairs": {"train": 4, "val": 1, "test": 4}})


class Ranked(Recommender):
    """Prefers lower item indices (score ``-item``); with ``boost``, the item ``boost[time]``
    of the query's time slot gets +10. Records every context it is asked about."""

    name = "ranked"

    def __init__(self, graph: RecGraph, boost=None) -> None:
        self.graph, self.boost, self.calls = graph, boost or {}, []

    def fit(self, graph):
        return self

    def score(self, users, context=None):
        self.calls.append((users.tolist(), context.time.tolist(), context.place.tolist()))
        scores = -torch.arange(self.graph.num_items, dtype=torch.float).repeat(len(users), 1)
        for row, t in enumerate(context.time.tolist()):
            if t in self.boost:
                scores[row, self.boost[t]] += 10
        return scores


def as_sets(relevant, n):
    query, item = relevant
    return [set(item[query == q].tolist()) for q in range(n)]


# --- the user's most recent known context -------------------------------------------------------

def test_last_context_is_the_latest_event_by_time_ties_to_the_later_row(hand):
    time, place = last_context(hand.train, torch.tensor([0, 1, 2]))
    assert time.tolist() == [1, 2, -1] and place.tolist() == [1, 1, -1]
    # without ts, the last row is the latest
    time, place = last_context(events(TRAIN, ts=False), torch.tensor([0, 1]))
    assert time.tolist() == [2, 2] and place.tolist() == [0, 1]
    time, place = last_context(events([]), torch.tensor([0, 2]))
    assert time.tolist() == [-1, -1] and place.tolist() == [-1, -1]


def test_known_events_for_test_include_validation(hand):
    assert len(known_events(hand, "val")) == 5 and len(known_events(hand, "test")) == 6
    time, place = last_context(known_events(hand, "test"), torch.tensor([0]))
    assert (time.item(), place.item()) == (0, 1)  # a's val event, not its latest train event


# --- queries --------------------------------------------------------------------------------------

def test_per_user_one_query_per_user_with_held_out_pairs(hand):
    queries, relevant = eval_queries(hand, "test", "per_user")
    assert queries.user.tolist() == [0, 1, 2]
    assert queries.time.tolist() == [0, 2, -1] and queries.place.tolist() == [1, 1, -1]
    assert as_sets(relevant, 3) == [{3, 4}, {4}, {0}]
    queries, relevant = eval_queries(hand, "val", "per_user")
    assert queries.user.tolist() == [0] and (queries.time.item(), queries.place.item()) == (1, 1)
    assert as_sets(relevant, 1) == [{2}]


def test_per_context_one_query_per_user_time_place_group(hand):
    queries, relevant = eval_queries(hand, "test", "per_context")
    groups = list(zip(queries.user.tolist(), queries.time.tolist(), queries.place.tolist()))
    assert groups == [(0, 0, 1), (0, 1, 0), (1, 1, 0), (2, 0, 0)]
    assert as_sets(relevant, 4) == [{4}, {3}, {4}, {0}]


# --- masking and ranking --------------------------------------------------------------------------

def test_known_pairs_are_masked_train_for_val_train_and_val_for_test(hand):
    model = Ranked(hand)
    queries, _ = eval_queries(hand, "test", "per_user")
    top = rank_queries(model, hand, "test", queries, k=3)
    assert top.tolist() == [[3, 4, 5], [0, 3, 4], [0, 1, 2]]  # a: 0, 1, 2 masked; b: 1, 2; c: none
    queries, _ = eval_queries(hand, "val", "per_user")
    assert rank_queries(model, hand, "val", queries, k=3).tolist() == [[2, 3, 4]]  # a's val item not masked
    hand.candidates["test"] = torch.tensor([3, 4])
    queries, _ = eval_queries(hand, "test", "per_user")
    assert rank_queries(model, hand, "test", queries, k=3).tolist() == [[3, 4, -1], [3, 4, -1], [3, 4, -1]]


def test_metrics_per_protocol(hand):
    model = Ranked(hand)
    per_user = evaluate(model, hand, "test", ks=(1, 2), protocol="per_user")
    # a: [3, 4] of {3, 4}; b: [0, 3] of {4}; c: [0, 1] of {0}
    assert per_user["recall@1"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert per_user["recall@2"] == pytest.approx((1 + 0 + 1) / 3)
    queries, _ = eval_queries(hand, "test", "per_user")
    assert (len(queries.user), len(set(queries.user.tolist()))) == (3, 3)
    # per context, a's item held out in another context is not masked: (a, t0, p1) ranks i3 first, a miss
    per_context = evaluate(model, hand, "test", ks=(1,), protocol="per_context")
    assert per_context["hit_rate@1"] == pytest.approx(2 / 4)
    queries, _ = eval_queries(hand, "test", "per_context")
    assert (len(queries.user), len(set(queries.user.tolist()))) == (4, 3)
    assert evaluate(model, hand, "val", ks=(1,), protocol="per_user")["hit_rate@1"] == 1.0


def test_per_user_scores_in_the_last_known_context(hand):
    boost = {0: 3, 1: 5, 2: 4}  # t0 -> i3, t1 -> i5 (never relevant), t2 -> i4
    model = Ranked(hand, boost)
    result = evaluate(model, hand, "test", ks=(1,), protocol="per_user")
    assert model.calls == [([0, 1, 2], [0, 2, -1], [1, 1, -1])]
    # a in t0 (its val event) ranks i3 first, b in t2 (the later of two ts-5 rows) i4, c without context i0:
    # all hits; a's latest train context (t1) or b's earlier row (t0) would have given a miss
    assert result["hit_rate@1"] == 1.0
    assert evaluate(Ranked(hand), hand, "test", ks=(1,), protocol="per_user")["hit_rate@1"] == pytest.approx(2 / 3)


def test_unknown_split_and_protocol(hand):
    with pytest.raises(ValueError, match=r"split must be 'val' or 'test', got 'train'"):
        evaluate(Ranked(hand), hand, "train")
    with pytest.raises(ValueError, match=r"protocol must be one of \('per_user', 'per_context', 'session'\), "
                                         r"got 'per_item'"):
        evaluate(Ranked(hand), hand, "test", protocol="per_item")


# --- on an exported graph ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return board_tables(tmp_path_factory, "eval", context_board=False)  # the checkerboard


@pytest.fixture(scope="module")
def graph(tables):
    return to_rec_graph(tables)


def test_the_fit_view_has_no_test_pairs_and_says_where_they_are(graph):
    view = graph.without_test()
    assert len(view.test) == 0 and len(view.val) == len(graph.val)
    model = EASE(l2=50.0).fit(view)
    with pytest.raises(ValueError, match=r"holds no test pairs .* evaluate on the full export: "
                                         r"evaluate\(model, graph, 'test'\)"):
        evaluate(model, view, "test")
    with pytest.raises(ValueError, match=r"evaluate on the full export"):
        model.evaluate("test")
    result = evaluate(model, graph, "test")
    queries, _ = eval_queries(graph, "test", "per_user")
    assert len(queries.user) == len(torch.unique(graph.test.user))
    assert result["ndcg@20"] > 0.5  # the checkerboard: each user's group is easy to find


TRAIN_CFG = {"embedding_dim": 8, "num_layers": 1,
             "train": {"batch_size": 256, "device": "cpu", "lr": 0.05, "seed": 0}}


def test_a_refit_graph_trains_every_epoch_and_keeps_the_last(tables):
    refit = to_rec_graph(tables, split=SplitConfig(refit=True))
    assert len(refit.val) == 0
    model = LightGCN(**{**TRAIN_CFG, "train": {**TRAIN_CFG["train"], "epochs": 3, "patience": 1}})
    model.fit(refit.without_test())
    history = model.history
    assert len(history.loss) == 3 and history.best_epoch == 2  # patience=1 stops nothing: no validation
    assert all(math.isnan(v) for v in history.val)
    # the weights are the last epoch's: one more epoch from the same start changes them
    longer = LightGCN(**{**TRAIN_CFG, "train": {**TRAIN_CFG["train"], "epochs": 4, "patience": 1}})
    longer.fit(refit.without_test())
    assert not torch.equal(model.model.embedding.weight, longer.model.embedding.weight)


def test_refit_params_fix_the_epochs_chosen_on_validation(tables, graph):
    base = {**TRAIN_CFG, "train": {**TRAIN_CFG["train"], "epochs": 6, "patience": 2}}
    model, params, trials = tune("lightgcn", {"num_layers": [1]}, graph, base=base)
    best = model.history.best_epoch
    assert len(trials) == 1
    assert 0 <= best < base["train"]["epochs"] - 1  # else a refit on base's epochs would pass too
    out = refit_params(model, params, base)
    assert out["train"]["epochs"] == best + 1
    assert {k: v for k, v in out["train"].items() if k != "epochs"} == {k: v for k, v in base["train"].items()
                                                                         if k != "epochs"}
    again = make_model("lightgcn", **out).fit(to_rec_graph(tables, split=SplitConfig(refit=True)).without_test())
    assert len(again.history.loss) == best + 1 and again.history.best_epoch == best
