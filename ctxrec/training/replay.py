"""Offline A/B replay: compare two policies on the same held-out queries.

Each policy gets a reward per query (hit@k, NDCG@k, ... from
:func:`~ctxrec.training.metrics.per_query_metrics`); since both answer the same
queries, the comparison is paired: on ``d_q = reward_B(q) - reward_A(q)``.

- diff = mean(d)
- bootstrap CI: percentiles ``(1 ± confidence) / 2`` of mean(d) over ``resamples``
  resamplings of the queries with replacement (seeded, so reproducible)
- normal CI: ``diff ± z · sd(d) / sqrt(n)`` with ``z`` the normal quantile
- p-value: two-sided paired z-test of mean(d) = 0 (the normal approximation to the
  paired t-test; the bootstrap gives no p-value finer than 1 / resamples)

Example:
    >>> res = replay_ab(torch.tensor([0., 1., 0., 1.]), torch.tensor([1., 1., 0., 1.]))
    >>> res.diff, res.n
    (0.25, 4)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Dict, Optional, Sequence, Tuple

import torch

from ctxrec.data import Interactions, RecGraph
from ctxrec.training.metrics import METRICS, per_query_metrics
from ctxrec.training.recommender import Recommender

#: bootstrap resamples x queries held in memory at once
_CHUNK = 2 ** 22


@dataclass
class ABResult:
    """The outcome of a paired A/B comparison.

    Attributes:
        a, b: mean reward of policy A and of policy B.
        diff: ``b - a``.
        ci_low, ci_high: paired bootstrap confidence interval of ``diff``.
        n: number of paired queries.
        p_value: two-sided paired z-test of ``diff == 0``.
        normal_low, normal_high: normal-approximation confidence interval of ``diff``.
        confidence: the intervals' level, e.g. 0.95.
        metric: what the reward is, for printing (default: ``"reward"``).
    """

    a: float
    b: float
    diff: float
    ci_low: float
    ci_high: float
    n: int
    p_value: float
    normal_low: float
    normal_high: float
    confidence: float
    metric: str = "reward"

    @property
    def significant(self) -> bool:
        """Whether the bootstrap interval excludes 0."""
        return self.ci_low > 0 or self.ci_high < 0

    def __str__(self) -> str:
        return (f"{self.metric}: A={self.a:.4f} B={self.b:.4f} B-A={self.diff:+.4f} "
                f"{self.confidence:.0%} CI [{self.ci_low:+.4f}, {self.ci_high:+.4f}] "
                f"(normal [{self.normal_low:+.4f}, {self.normal_high:+.4f}]) p={self.p_value:.3g} n={self.n}")


def replay_ab(rewards_a: torch.Tensor, rewards_b: torch.Tensor, confidence: float = 0.95, resamples: int = 1000,
              seed: int = 0, metric: str = "reward") -> ABResult:
    """Paired comparison of two policies' per-query rewards.

    Args:
        rewards_a (Tensor [n]): policy A's reward per query.
        rewards_b (Tensor [n]): policy B's reward on the same queries, in the same order.
        confidence (float): level of both intervals (default: 0.95).
        resamples (int): bootstrap resamples (default: 1000).
        seed (int): seed of the bootstrap's generator (default: 0).
        metric (str): name of the reward, for printing (default: ``"reward"``).

    Returns:
        :class:`ABResult`.

    Example:
        >>> a = torch.tensor([0., 1., 0., 0., 1., 0.])
        >>> print(replay_ab(a, torch.ones(6), metric="hit_rate@10"))  # doctest: +ELLIPSIS
        hit_rate@10: A=0.3333 B=1.0000 B-A=+0.6667 95% CI [...] ... n=6
    """
    a = torch.as_tensor(rewards_a).double()
    b = torch.as_tensor(rewards_b).double()
    if a.dim() != 1 or a.shape != b.shape:
        raise ValueError(f"rewards_a {tuple(a.shape)} and rewards_b {tuple(b.shape)} must be 1-D with one reward "
                         "per query, the same queries in the same order")
    n = a.numel()
    if n < 2:
        raise ValueError(f"need at least 2 paired queries, got {n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError("rewards must be finite; drop queries without a reward (per_query_metrics does)")
    d = b - a
    diff = float(d.mean())
    means = _bootstrap_means(d, resamples, seed)
    alpha = 1 - confidence
    low, high = torch.quantile(means, torch.tensor([alpha / 2, 1 - alpha / 2], dtype=torch.double)).tolist()
    se = float(d.std(unbiased=True)) / math.sqrt(n)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    if se > 0:
        p = math.erfc(abs(diff / se) / math.sqrt(2))
    else:  # every query moved by the same amount: certain, either way
        p = 1.0 if diff == 0 else 0.0
    return ABResult(a=float(a.mean()), b=float(b.mean()), diff=diff, ci_low=low, ci_high=high, n=n, p_value=p,
                    normal_low=diff - z * se, normal_high=diff + z * se, confidence=confidence, metric=metric)


def evaluate_per_query(model: Recommender, split: str = "test", ks: Sequence[int] = (10, 20),
                       batch_size: int = 1024, protocol: str = "per_context", graph: Optional[RecGraph] = None
                       ) -> Tuple[Dict[str, torch.Tensor], torch.Tensor, Interactions]:
    """Per-query metrics of a fitted model on the queries :meth:`Recommender.evaluate` uses.

    The queries, their relevant items and the masking (train pairs, plus val pairs
    for ``"test"``; the split's candidates) come from
    :func:`~ctxrec.training.evaluation.eval_queries` and
    :func:`~ctxrec.training.evaluation.rank_queries`, so the means of the values equal
    ``evaluate(model, graph, split, ks, protocol=protocol)``.

    Args:
        model: a fitted recommender.
        split (str): ``"val"`` or ``"test"`` (default: ``"test"``).
        ks: cut-offs (default: ``(10, 20)``).
        batch_size (int): queries ranked at once (default: 1024).
        protocol (str): ``"per_context"``, ``"per_user"`` or ``"session"``, as in
            :func:`~ctxrec.training.evaluation.evaluate` (default: ``"per_context"``).
        graph (RecGraph, optional): the graph holding the split (default: the model's own).

    Returns:
        ``(values, kept, queries)``: metric name -> Tensor [Q_kept]; the kept query
        indices; the queries (``queries.user[kept]`` are the users behind the values,
        e.g. to label them by age band for :func:`~ctxrec.training.beyond.group_report`).

    Example:
        >>> values, kept, queries = evaluate_per_query(model, "test", ks=(10,))  # doctest: +SKIP
        >>> values["ndcg@10"].shape == kept.shape  # doctest: +SKIP
        True
    """
    from ctxrec.training.evaluation import eval_queries, rank_queries

    graph = graph if graph is not None else model.graph
    if graph is None:
        raise RuntimeError(f"{type(model).__name__} is not fitted; call fit(graph) first")
    queries, relevant = eval_queries(graph, split, protocol)
    top = rank_queries(model, graph, split, queries, max(ks), batch_size)
    values, kept = per_query_metrics(top, relevant, ks)
    return values, kept, queries


def replay_policies(model_a: Recommender, model_b: Recommender, split: str = "test", metric: str = "hit_rate@10",
                    confidence: float = 0.95, resamples: int = 1000, seed: int = 0, batch_size: int = 1024,
                    protocol: str = "context") -> ABResult:
    """Offline A/B test of two fitted recommenders on one graph's held-out queries.

    Args:
        model_a: policy A (the control), fitted.
        model_b: policy B (the treatment), fitted on the same graph object.
        split (str): ``"val"`` or ``"test"`` (default: ``"test"``).
        metric (str): per-query reward, ``"<name>@<k>"`` with a name of
            :data:`~ctxrec.training.metrics.METRICS` (default: ``"hit_rate@10"``).
        confidence, resamples, seed: as in :func:`replay_ab`.
        batch_size (int): queries ranked at once (default: 1024).
        protocol (str): query protocol of ``evaluate``, ``"context"`` or ``"session"`` (default: ``"context"``).

    Returns:
        :class:`ABResult` of B against A.

    Example:
        >>> print(replay_policies(MostPop().fit(g), LightGCN().fit(g), metric="ndcg@20"))  # doctest: +SKIP
        ndcg@20: A=0.0412 B=0.0655 B-A=+0.0243 95% CI [+0.0190, +0.0297] ... n=943
    """
    name, _, k = metric.partition("@")
    if name not in METRICS or not k.isdigit() or int(k) < 1:
        raise ValueError(f"metric must be '<name>@<k>' with name in {METRICS} and k > 0, got {metric!r}")
    for label, model in (("model_a", model_a), ("model_b", model_b)):
        if model.graph is None:
            raise RuntimeError(f"{label} ({type(model).__name__}) is not fitted; call fit(graph) first")
    if model_a.graph is not model_b.graph:
        raise ValueError("model_a and model_b were fitted on different graph objects; replay needs the same "
                         "held-out queries, so fit both on one RecGraph")
    ks = (int(k),)
    rewards = []
    for model in (model_a, model_b):
        values, _, _ = evaluate_per_query(model, split, ks, batch_size, protocol)
        rewards.append(values[metric])
    return replay_ab(rewards[0], rewards[1], confidence=confidence, resamples=resamples, seed=seed, metric=metric)


def _bootstrap_means(d: torch.Tensor, resamples: int, seed: int) -> torch.Tensor:
    """Means of ``d`` over ``resamples`` resamplings with replacement, in memory-bounded chunks."""
    gen = torch.Generator().manual_seed(seed)
    n = d.numel()
    step = max(1, _CHUNK // n)
    out = []
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        idx = torch.randint(n, (rows, n), generator=gen)
        out.append(d[idx].mean(1))
    return torch.cat(out)
