"""Beyond-accuracy and group measures of top-K lists: catalogue coverage, novelty,
exposure concentration (Gini), popularity groups, and per-group means and gaps.

All are pure functions over tensors. ``topk`` is a LongTensor [Q, K_max] of ranked
item indices per query (``-1`` pads short lists, and padding is never counted);
each measure looks at the first ``k`` columns. Item popularity is the number of
distinct training users per item (:func:`item_popularity`).

Example:
    >>> top = torch.tensor([[0, 1], [0, 2]])
    >>> coverage(top, num_items=4, k=2), gini(top, num_items=4, k=2)
    (0.75, 0.375)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ctxrec.training.metrics import Relevant, _check_topk, match

#: a label per entry: strings (``["F", "M", ...]``) or a 1-D tensor of integer codes
Labels = Union[Sequence, torch.Tensor]

GROUPS = ("head", "mid", "tail")


def item_popularity(users: torch.Tensor, items: torch.Tensor, num_items: int) -> torch.Tensor:
    """Distinct users per item, e.g. over ``graph.train``.

    Args:
        users (LongTensor [E]): user index per event.
        items (LongTensor [E]): item index per event.
        num_items (int): catalogue size.

    Returns:
        LongTensor [num_items]: how many distinct users interacted with each item.

    Example:
        >>> item_popularity(torch.tensor([0, 0, 1]), torch.tensor([2, 2, 2]), 3)
        tensor([0, 0, 2])
    """
    users, items = torch.as_tensor(users).long(), torch.as_tensor(items).long()
    if users.shape != items.shape:
        raise ValueError(f"users {tuple(users.shape)} and items {tuple(items.shape)} must have one entry per event")
    pairs = torch.unique(torch.stack([users.flatten(), items.flatten()]), dim=1)
    return torch.bincount(pairs[1], minlength=num_items)


def coverage(topk: torch.Tensor, num_items: int, k: int) -> float:
    """Catalogue coverage: the share of items that appear in at least one top-``k`` list.

    Args:
        topk (LongTensor [Q, K_max]): ranked item indices, ``K_max >= k``.
        num_items (int): catalogue size.
        k (int): cut-off.

    Returns:
        ``|∪_q top_k(q)| / num_items``, in [0, 1].
    """
    return float((_exposure(topk, num_items, k) > 0).sum()) / num_items


def novelty(topk: torch.Tensor, item_popularity: torch.Tensor, num_users: int, k: int) -> float:
    """Mean self-information of recommended items, in bits.

    ``novelty = mean over top-k slots of -log2(p_i)`` with ``p_i = (count_i + 1) /
    (num_users + 1)``, where ``count_i`` is the number of training users of item
    ``i``. The add-one smoothing keeps never-seen items finite (``log2(num_users + 1)``
    bits) and gives an item every user has 0 bits.

    Args:
        topk (LongTensor [Q, K_max]): ranked item indices, ``K_max >= k``.
        item_popularity (Tensor [num_items]): training users per item.
        num_users (int): number of training users.
        k (int): cut-off.

    Returns:
        Mean bits per recommended item (0.0 when no slot holds an item).
    """
    pop = torch.as_tensor(item_popularity).double()
    top = _slots(topk, pop.numel(), k, "item_popularity")
    if top.numel() == 0:
        return 0.0
    if pop.max() > num_users:
        raise ValueError(f"item_popularity has an item with {int(pop.max())} users but num_users is {num_users}; "
                         "pass the number of training users")
    p = (pop[top] + 1) / (num_users + 1)
    return float((-torch.log2(p)).mean())


def gini(topk: torch.Tensor, num_items: int, k: int) -> float:
    """Gini index of item exposure (how often each item fills a top-``k`` slot).

    With exposures sorted ascending ``x_(1) <= ... <= x_(n)`` over all ``n = num_items``
    items (unrecommended ones count as 0):
    ``G = Σ_i (2i - n - 1) x_(i) / (n Σ_i x_i)``. 0 is equal exposure; one item
    taking every slot gives ``(n - 1) / n``. 0.0 when no slot holds an item.

    Args:
        topk (LongTensor [Q, K_max]): ranked item indices, ``K_max >= k``.
        num_items (int): catalogue size.
        k (int): cut-off.
    """
    x = _exposure(topk, num_items, k).double().sort().values
    total = x.sum()
    if total == 0:
        return 0.0
    i = torch.arange(1, num_items + 1, dtype=torch.double)
    return float(((2 * i - num_items - 1) * x).sum() / (num_items * total))


def popularity_groups(item_popularity: torch.Tensor, shares: Sequence[float] = (0.2, 0.6, 0.2)) -> List[str]:
    """Label each item ``"head"``, ``"mid"`` or ``"tail"`` by its popularity rank.

    Items are sorted by popularity, most popular first (ties by item index); the
    first ``round(shares[0] * n)`` items are head, the last ``round(shares[2] * n)``
    are tail, the rest mid. The split is by share of *items*, not of interactions.

    Args:
        item_popularity (Tensor [num_items]): training users (or interactions) per item.
        shares: head, mid and tail shares of the items, summing to 1 (default: ``(0.2, 0.6, 0.2)``).

    Returns:
        A label per item, in item order.

    Example:
        >>> popularity_groups(torch.tensor([5, 0, 9, 1, 3]), shares=(0.2, 0.6, 0.2))
        ['mid', 'tail', 'head', 'mid', 'mid']
    """
    pop = torch.as_tensor(item_popularity)
    if pop.dim() != 1:
        raise ValueError(f"item_popularity must be [num_items], got shape {tuple(pop.shape)}")
    if len(shares) != 3 or min(shares) < 0 or not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
        raise ValueError(f"shares must be three non-negative (head, mid, tail) shares summing to 1, "
                         f"got {tuple(shares)}")
    n = pop.numel()
    n_head, n_tail = round(shares[0] * n), round(shares[2] * n)
    n_tail = min(n_tail, n - n_head)
    order = torch.sort(-pop.double(), stable=True).indices  # most popular first
    code = torch.ones(n, dtype=torch.long)
    code[order[:n_head]] = 0
    code[order[n - n_tail:]] = 2
    return [GROUPS[c] for c in code.tolist()]


def exposure_by_group(topk: torch.Tensor, item_groups: Labels, k: int) -> Dict[str, float]:
    """Share of top-``k`` slots that go to each item group.

    Args:
        topk (LongTensor [Q, K_max]): ranked item indices, ``K_max >= k``.
        item_groups: a label per item, e.g. from :func:`popularity_groups`.
        k (int): cut-off.

    Returns:
        ``{group: share}`` over every group in ``item_groups`` (sorted), summing to 1 (all 0.0
        when no slot holds an item).

    Example:
        >>> exposure_by_group(torch.tensor([[0, 1], [0, 2]]), ["head", "tail", "tail"], k=2)
        {'head': 0.5, 'tail': 0.5}
    """
    codes, names = _encode(item_groups, "item_groups")
    top = _slots(topk, codes.numel(), k, "item_groups")
    counts = torch.bincount(codes[top], minlength=len(names)).double()
    shares = counts / counts.sum() if top.numel() else counts
    return {name: float(s) for name, s in zip(names, shares)}


def recall_by_item_group(topk: torch.Tensor, relevant: Relevant, item_groups: Labels, k: int) -> Dict[str, float]:
    """Recall@k restricted to the relevant items of each item group, pooled over queries.

    ``recall_g = (relevant items of group g in the top k, over all queries) /
    (relevant items of group g, over all queries)``; e.g. how well a model finds
    the tail items users went on to consume.

    Args:
        topk (LongTensor [Q, K_max]): ranked item indices, ``K_max >= k``.
        relevant: per query the relevant item indices, as in :func:`~ctxrec.training.metrics.ranking_metrics`.
        item_groups: a label per item.
        k (int): cut-off.

    Returns:
        ``{group: recall}``; NaN for a group with no relevant item.
    """
    codes, names = _encode(item_groups, "item_groups")
    top = _check_topk(topk)
    _check_k(top, k)
    hit, _, rel_items = match(top[:, :k], relevant)
    if rel_items.numel() and int(rel_items.max()) >= codes.numel():
        raise ValueError(f"relevant has item {int(rel_items.max())} but item_groups labels "
                         f"{codes.numel()} items; pass a label for every item")
    hits = torch.bincount(codes[top[:, :k][hit]], minlength=len(names)).double()
    total = torch.bincount(codes[rel_items], minlength=len(names)).double()
    return {name: float(h / t) if t > 0 else float("nan") for name, h, t in zip(names, hits, total)}


@dataclass
class GroupReport:
    """Per-group means of per-query metrics.

    Attributes:
        means: group -> metric -> mean over the group's queries.
        counts: group -> number of queries.
        gap: metric -> max minus min of the group means.
    """

    means: Dict[str, Dict[str, float]]
    counts: Dict[str, int]
    gap: Dict[str, float]

    def __str__(self) -> str:
        metrics = list(self.gap)
        width = max([len(g) for g in self.means] + [5])
        lines = [f"{'group':<{width}}  {'n':>6}  " + "  ".join(f"{m:>12}" for m in metrics)]
        for g, row in self.means.items():
            lines.append(f"{g:<{width}}  {self.counts[g]:>6}  " + "  ".join(f"{row[m]:>12.4f}" for m in metrics))
        lines.append(f"{'gap':<{width}}  {'':>6}  " + "  ".join(f"{self.gap[m]:>12.4f}" for m in metrics))
        return "\n".join(lines)


def group_report(per_query_values: Dict[str, torch.Tensor], query_groups: Labels,
                 kept: Optional[torch.Tensor] = None) -> GroupReport:
    """Mean of each per-query metric within each query group, and the gap between groups.

    Args:
        per_query_values: metric name -> Tensor [Q_kept], e.g. the first output of
            :func:`~ctxrec.training.metrics.per_query_metrics`.
        query_groups: a label per query (age band, gender, ...): [Q_kept], or [Q] together with ``kept``.
        kept (LongTensor [Q_kept], optional): the kept query indices from
            ``per_query_metrics``; given, ``query_groups[kept]`` labels the values (default: None).

    Returns:
        :class:`GroupReport`; ``gap[m] = max_g mean_g(m) - min_g mean_g(m)``. Groups
        with no query are left out.

    Example:
        >>> r = group_report({"recall@10": torch.tensor([1.0, 0.0, 0.5])}, ["F", "M", "M"])
        >>> r.means["M"]["recall@10"], r.gap["recall@10"]
        (0.25, 0.75)
    """
    codes, names = _encode(query_groups, "query_groups")
    if kept is not None:
        codes = codes[torch.as_tensor(kept).long()]
    n = torch.bincount(codes, minlength=len(names))
    present = [g for g in range(len(names)) if n[g] > 0]
    means: Dict[str, Dict[str, float]] = {names[g]: {} for g in present}
    gap: Dict[str, float] = {}
    for metric, values in per_query_values.items():
        values = torch.as_tensor(values).double().flatten()
        if values.numel() != codes.numel():
            raise ValueError(f"{metric} has {values.numel()} values but there are {codes.numel()} query labels; "
                             "label the kept queries (pass kept=... from per_query_metrics)")
        sums = torch.zeros(len(names), dtype=torch.double).index_add_(0, codes, values)
        group_means = sums[present] / n[present]
        for g, m in zip(present, group_means.tolist()):
            means[names[g]][metric] = m
        gap[metric] = float(group_means.max() - group_means.min()) if present else 0.0
    return GroupReport(means, {names[g]: int(n[g]) for g in present}, gap)


def beyond_accuracy(topk: torch.Tensor, num_items: int, item_popularity: torch.Tensor, num_users: int,
                    ks: Sequence[int] = (10, 20)) -> Dict[str, float]:
    """Coverage, novelty and Gini at each cut-off.

    Args:
        topk (LongTensor [Q, K_max]): ranked item indices, ``K_max >= max(ks)``.
        num_items (int): catalogue size.
        item_popularity (Tensor [num_items]): training users per item.
        num_users (int): number of training users.
        ks: cut-offs (default: ``(10, 20)``).

    Returns:
        ``{"coverage@10": ..., "novelty@10": ..., "gini@10": ..., "coverage@20": ...}``.
    """
    out: Dict[str, float] = {}
    for k in ks:
        out[f"coverage@{k}"] = coverage(topk, num_items, k)
        out[f"novelty@{k}"] = novelty(topk, item_popularity, num_users, k)
        out[f"gini@{k}"] = gini(topk, num_items, k)
    return out


def _check_k(topk: torch.Tensor, k: int) -> None:
    if k < 1 or k > topk.size(1):
        raise ValueError(f"k must be in 1..{topk.size(1)} (the columns of topk), got {k}; rank more items")


def _slots(topk: torch.Tensor, num_items: int, k: int, what: str = "num_items") -> torch.Tensor:
    """The item indices filling the first k slots, padding dropped, range checked."""
    top = _check_topk(topk)
    _check_k(top, k)
    top = top[:, :k]
    top = top[top >= 0]
    if top.numel() and int(top.max()) >= num_items:
        raise ValueError(f"topk holds item {int(top.max())} but {what} covers {num_items} items; "
                         "pass the catalogue size of the graph the lists come from")
    return top


def _exposure(topk: torch.Tensor, num_items: int, k: int) -> torch.Tensor:
    return torch.bincount(_slots(topk, num_items, k), minlength=num_items)


def _encode(labels: Labels, what: str) -> Tuple[torch.Tensor, List[str]]:
    """Labels -> (codes LongTensor, sorted distinct label names)."""
    if isinstance(labels, torch.Tensor):
        if labels.dim() != 1:
            raise ValueError(f"{what} must be one label per entry, got shape {tuple(labels.shape)}")
        uniq, codes = torch.unique(labels, return_inverse=True)
        return codes.long(), [str(v) for v in uniq.tolist()]
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one label per entry, got shape {arr.shape}")
    uniq, codes = np.unique(arr, return_inverse=True)
    return torch.as_tensor(codes.reshape(-1), dtype=torch.long), [str(v) for v in uniq.tolist()]
