"""Offline A/B replay: the paired statistics on generated rewards, and replay of
two recommenders on a tiny hand-made graph whose answers are known."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pytest
import torch

from ctxrec.data import Interactions, RecGraph
from ctxrec.training import replay
from ctxrec.training.models import MostPop
from ctxrec.training.recommender import Context, Recommender
from ctxrec.training.replay import ABResult, evaluate_per_query, replay_ab, replay_policies


def bernoulli(p: float, n: int, seed: int) -> torch.Tensor:
    return (torch.rand(n, generator=torch.Generator().manual_seed(seed)) < p).double()


def test_identical_policies_give_zero_difference():
    a = bernoulli(0.4, 200, seed=1)
    res = replay_ab(a, a.clone())
    assert isinstance(res, ABResult)
    assert res.diff == 0.0 and res.a == res.b and res.n == 200
    assert res.ci_low <= 0.0 <= res.ci_high and res.normal_low <= 0.0 <= res.normal_high
    assert res.p_value == 1.0 and not res.significant


def test_clearly_better_policy_excludes_zero():
    a, b = bernoulli(0.3, 500, seed=1), bernoulli(0.6, 500, seed=2)
    res = replay_ab(a, b)
    assert res.diff == pytest.approx(float(b.mean() - a.mean()))
    assert res.ci_low > 0 and res.normal_low > 0 and res.significant
    assert res.ci_low < res.diff < res.ci_high
    assert res.p_value < 1e-6
    # the other way round: the same interval, negated
    rev = replay_ab(b, a)
    assert rev.ci_high < 0 and rev.diff == pytest.approx(-res.diff)


def test_unpaired_noise_is_not_significant():
    a, b = bernoulli(0.5, 400, seed=3), bernoulli(0.5, 400, seed=4)
    res = replay_ab(a, b)
    assert res.ci_low < 0 < res.ci_high and res.p_value > 0.05


def test_bootstrap_is_deterministic_by_seed():
    a, b = bernoulli(0.3, 300, seed=5), bernoulli(0.4, 300, seed=6)
    assert replay_ab(a, b, seed=7) == replay_ab(a, b, seed=7)
    other = replay_ab(a, b, seed=8)
    assert (other.ci_low, other.ci_high) != (replay_ab(a, b, seed=7).ci_low, replay_ab(a, b, seed=7).ci_high)
    assert other.diff == replay_ab(a, b, seed=7).diff and other.p_value == replay_ab(a, b, seed=7).p_value


def test_interval_width_shrinks_with_n():
    widths = []
    for n in (100, 1000, 10000):
        res = replay_ab(bernoulli(0.3, n, seed=n), bernoulli(0.35, n, seed=n + 1))
        widths.append(res.ci_high - res.ci_low)
        # bootstrap and normal intervals agree roughly
        assert res.ci_high - res.ci_low == pytest.approx(res.normal_high - res.normal_low, rel=0.25)
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] == pytest.approx(10, rel=0.3)  # ~ 1 / sqrt(n)


def test_confidence_level_widens_the_interval():
    a, b = bernoulli(0.3, 300, seed=9), bernoulli(0.4, 300, seed=10)
    narrow, wide = replay_ab(a, b, confidence=0.8), replay_ab(a, b, confidence=0.99)
    assert wide.ci_high - wide.ci_low > narrow.ci_high - narrow.ci_low
    assert "99% CI" in str(wide)


def test_bootstrap_chunks_keep_every_resample(monkeypatch):
    monkeypatch.setattr(replay, "_CHUNK", 7)  # 7 // 3 = 2 resamples per chunk
    means = replay._bootstrap_means(torch.tensor([0.0, 1.0, 2.0], dtype=torch.double), 5, seed=0)
    assert means.shape == (5,) and bool(((means >= 0) & (means <= 2)).all())


def test_str_is_one_readable_line():
    line = str(replay_ab(torch.tensor([0.0, 1.0, 0.0]), torch.tensor([1.0, 1.0, 0.0]), metric="ndcg@10"))
    assert "\n" not in line and line.startswith("ndcg@10: A=0.3333 B=0.6667 B-A=+0.3333 95% CI [")
    assert "p=" in line and line.endswith("n=3")


def test_replay_ab_errors_name_the_problem():
    with pytest.raises(ValueError, match="same queries in the same order"):
        replay_ab(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="at least 2"):
        replay_ab(torch.zeros(1), torch.zeros(1))
    with pytest.raises(ValueError, match="confidence"):
        replay_ab(torch.zeros(3), torch.zeros(3), confidence=95)
    with pytest.raises(ValueError, match="finite"):
        replay_ab(torch.tensor([0.0, float("nan")]), torch.zeros(2))


# --- replay of fitted recommenders on a hand-made graph --------------------------------

def events(rows) -> Interactions:
    """(user, item, time) rows, place 0, session 0."""
    t = torch.tensor(rows, dtype=torch.long).reshape(-1, 3)
    zero = torch.zeros(len(t), dtype=torch.long)
    return Interactions(t[:, 0], t[:, 1], t[:, 2], zero, zero)


@pytest.fixture(scope="module")
def tiny():
    """3 users, 6 items, 2 time slots. Test queries (user, time) -> relevant item:
    (u0, t0) -> i3, (u0, t1) -> i4, (u1, t0) -> i1, (u2, t0) -> i5."""
    ids = {"user": np.array(["u0", "u1", "u2"]), "item": np.array([f"i{j}" for j in range(6)]),
           "time": np.array(["mon-morning", "sat-evening"]), "place": np.array(["springfield"])}
    train = events([[0, 0, 0], [0, 1, 0], [1, 0, 0], [2, 2, 0]])
    val = events([[0, 2, 0]])
    test = events([[0, 3, 0], [0, 4, 1], [1, 1, 0], [2, 5, 0]])
    return RecGraph(data=None, ids=ids, train=train, val=val, test=test)


class FixedOrder(Recommender):
    """The same ranking for everyone: i2 > i0 > i1 > i3 > i4 > i5."""

    name = "FixedOrder"

    def fit(self, graph: RecGraph) -> "FixedOrder":
        self.graph = graph
        return self

    def score(self, users: torch.Tensor, context: Optional[Context] = None) -> torch.Tensor:
        base = torch.tensor([5.0, 4.0, 6.0, 3.0, 2.0, 1.0])
        return base.expand(len(users), -1).clone()


class Knowing(FixedOrder):
    """FixedOrder, but u1 wants i1, u2 wants i5, and anyone on Saturday evening wants i4."""

    name = "Knowing"

    def score(self, users: torch.Tensor, context: Optional[Context] = None) -> torch.Tensor:
        s = super().score(users, context)
        s[users == 1, 1] = 10.0
        s[users == 2, 5] = 10.0
        if context is not None:
            s[context.time == 1, 4] = 10.0
        return s


def test_evaluate_per_query_masks_train_and_val_for_test(tiny):
    values, kept, queries = evaluate_per_query(FixedOrder().fit(tiny), "test", ks=(1,))
    assert queries.user.tolist() == [0, 0, 1, 2] and queries.time.tolist() == [0, 1, 0, 0]
    assert kept.tolist() == [0, 1, 2, 3]
    # u0: i2 (val), i0, i1 (train) masked -> i3 first, a hit at t0, a miss at t1
    # u1: i0 masked -> i2, a miss; u2: i2 masked -> i0, a miss
    assert values["hit_rate@1"].tolist() == [1.0, 0.0, 0.0, 0.0]
    val_values, _, _ = evaluate_per_query(FixedOrder().fit(tiny), "val", ks=(1,))
    assert val_values["hit_rate@1"].tolist() == [1.0]  # on val only train is masked: i2 first


def test_replay_policies_by_hand(tiny):
    a, b = FixedOrder().fit(tiny), Knowing().fit(tiny)
    res = replay_policies(a, b, metric="hit_rate@1", resamples=200)
    assert (res.a, res.b, res.diff, res.n) == (0.25, 1.0, 0.75, 4)
    assert res.metric == "hit_rate@1" and res.ci_low <= 0.75 <= res.ci_high
    # the same numbers evaluate reports
    assert res.a == pytest.approx(a.evaluate("test", ks=(1,))["hit_rate@1"])
    assert res.b == pytest.approx(b.evaluate("test", ks=(1,))["hit_rate@1"])


def test_replay_policies_identical_and_mostpop(tiny):
    model = Knowing().fit(tiny)
    same = replay_policies(model, model, metric="ndcg@3")
    assert same.diff == 0.0 and same.ci_low == same.ci_high == 0.0 and same.p_value == 1.0
    pop = MostPop().fit(tiny)
    res = replay_policies(pop, model, metric="recall@3")
    assert res.a == pytest.approx(pop.evaluate("test", ks=(3,))["recall@3"])
    assert res.b == pytest.approx(model.evaluate("test", ks=(3,))["recall@3"])


def test_replay_policies_errors(tiny):
    a = FixedOrder().fit(tiny)
    with pytest.raises(ValueError, match="'<name>@<k>'"):
        replay_policies(a, a, metric="hits@10")
    with pytest.raises(RuntimeError, match="model_b .* not fitted"):
        replay_policies(a, FixedOrder())
    other = RecGraph(data=None, ids=tiny.ids, train=tiny.train, val=tiny.val, test=tiny.test)
    with pytest.raises(ValueError, match="different graph objects"):
        replay_policies(a, FixedOrder().fit(other), metric="hit_rate@1")
