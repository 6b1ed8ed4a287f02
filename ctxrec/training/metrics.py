"""Full-ranking top-K metrics.

Each query has a ranked list of item indices (train items already masked out by
the caller) and a set of relevant items. With ``hits_k = |top_k ∩ relevant|`` and
``rel_r = 1`` when the item at rank ``r`` is relevant:

- Recall@K = hits_k / |relevant|
- Precision@K = hits_k / K
- F1@K = 2 · P@K · R@K / (P@K + R@K), 0 when both are 0 (per query, then averaged)
- HitRate@K = 1 if hits_k > 0 else 0
- NDCG@K = DCG@K / IDCG@K, DCG@K = Σ_{r≤K, item_r relevant} 1 / log2(r + 1),
  IDCG@K the DCG of a perfect list of min(|relevant|, K) hits
- MRR@K = 1 / rank of the first relevant item within K (0 when none)
- MAP@K = mean of AP@K, AP@K = Σ_{r≤K} rel_r · P@r / min(|relevant|, K). The
  normaliser ``min(|relevant|, K)`` is the most hits a K-long list can hold, so a
  perfect list scores 1 even when a query has more than K relevant items.

:func:`ranking_metrics` returns means over queries; :func:`per_query_metrics` the
per-query values behind them (for A/B replay and group reports). Queries with no
relevant items are skipped by both.
"""
from __future__ import annotations

from typing import Dict, Iterable, Sequence, Tuple, Union

import torch

METRICS = ("recall", "ndcg", "hit_rate", "precision", "mrr", "f1", "map")

#: per query the relevant item indices, as a list of iterables or (query index [R], item index [R])
Relevant = Union[Sequence[Iterable[int]], Tuple[torch.Tensor, torch.Tensor]]


def ranking_metrics(topk: torch.Tensor, relevant: Relevant, ks: Sequence[int] = (10, 20)) -> Dict[str, float]:
    """Mean ranking metrics over queries.

    Args:
        topk (LongTensor [Q, K_max]): ranked item indices per query, best first;
            ``K_max >= max(ks)``; ``-1`` pads lists shorter than ``K_max``.
        relevant: per query the relevant item indices, either as a list of
            iterables or as a pair ``(query index [R], item index [R])``.
        ks: cut-offs (default: ``(10, 20)``).

    Returns:
        ``{"recall@10": ..., "ndcg@10": ..., ...}``, every name of :data:`METRICS` at
        every ``k``; all 0.0 when no query has a relevant item.

    Example:
        >>> ranking_metrics(torch.tensor([[3, 1, 2]]), [{1}], ks=(1, 2))["ndcg@2"]
        0.6309...
    """
    values, kept = per_query_metrics(topk, relevant, ks)
    if kept.numel() == 0:
        return {name: 0.0 for name in values}
    return {name: float(v.mean()) for name, v in values.items()}


def per_query_metrics(topk: torch.Tensor, relevant: Relevant,
                      ks: Sequence[int] = (10, 20)) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
    """Ranking metrics per query, for paired tests and per-group means.

    Args:
        topk (LongTensor [Q, K_max]): ranked item indices per query, as in :func:`ranking_metrics`.
        relevant: per query the relevant item indices, as in :func:`ranking_metrics`.
        ks: cut-offs (default: ``(10, 20)``).

    Returns:
        ``(values, kept)``: ``values`` maps ``"recall@10"``, ... to float tensors
        [Q_kept], one entry per query with at least one relevant item; ``kept``
        (LongTensor [Q_kept]) holds those queries' row indices in ``topk``, so
        ``labels[kept]`` aligns per-query labels with ``values``.

    Example:
        >>> values, kept = per_query_metrics(torch.tensor([[0, 1], [2, 3]]), [[1], []], ks=(2,))
        >>> values["mrr@2"], kept
        (tensor([0.5000]), tensor([0]))
    """
    topk = _check_topk(topk)
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive cut-offs, got {ks}")
    if max(ks) > topk.size(1):
        raise ValueError(f"topk has {topk.size(1)} columns but ks asks for {max(ks)}; rank more items")
    hit, q_rel, _ = match(topk, relevant)
    n_rel = torch.bincount(q_rel, minlength=topk.size(0)).float()
    kept = torch.nonzero(n_rel > 0).flatten()
    hit, n_rel = hit[kept].float(), n_rel[kept]
    ranks = torch.arange(1, topk.size(1) + 1, dtype=torch.float)
    discount = 1.0 / torch.log2(ranks + 1)
    prec_at_r = torch.cumsum(hit, 1) / ranks  # P@r for every r
    out: Dict[str, torch.Tensor] = {}
    for k in ks:
        h = hit[:, :k]
        hits = h.sum(1)
        recall, precision = hits / n_rel, hits / k
        dcg = (h * discount[:k]).sum(1)
        ideal = torch.cumsum(discount[:k], 0)[(n_rel.clamp(max=k) - 1).long()]
        first = torch.where(h.any(1), h.argmax(1).float() + 1.0, torch.full_like(hits, float("inf")))
        both = precision + recall
        out[f"recall@{k}"] = recall
        out[f"ndcg@{k}"] = dcg / ideal
        out[f"hit_rate@{k}"] = (hits > 0).float()
        out[f"precision@{k}"] = precision
        out[f"mrr@{k}"] = 1.0 / first
        out[f"f1@{k}"] = torch.where(both > 0, 2 * precision * recall / both.clamp(min=1e-12), torch.zeros_like(both))
        out[f"map@{k}"] = (prec_at_r[:, :k] * h).sum(1) / n_rel.clamp(max=k)
    return out, kept


def match(topk: torch.Tensor, relevant: Relevant) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which ranked items are relevant, vectorised over all queries.

    Args:
        topk (LongTensor [Q, K]): ranked item indices, ``-1`` for padding.
        relevant: per query the relevant item indices, as in :func:`ranking_metrics`.

    Returns:
        ``(hit, query, item)``: ``hit`` (BoolTensor [Q, K]) marks relevant ranked
        items (padding never hits); ``query`` and ``item`` (LongTensor [R']) are the
        de-duplicated relevant pairs, sorted by query.
    """
    topk = _check_topk(topk)
    q_idx, items = _pairs(relevant, topk.size(0))
    width = int(max(int(items.max()) if items.numel() else 0, int(topk.max()) if topk.numel() else 0)) + 2
    keys = torch.unique(q_idx * width + items)  # de-duplicated relevant pairs, sorted
    q_rel, i_rel = torch.div(keys, width, rounding_mode="floor"), keys % width
    if keys.numel() == 0:
        return torch.zeros(topk.shape, dtype=torch.bool), q_rel, i_rel
    cand = torch.arange(topk.size(0)).unsqueeze(1) * width + topk
    cand = torch.where(topk >= 0, cand, torch.full_like(cand, -1))  # padding never hits
    pos = torch.searchsorted(keys, cand).clamp(max=keys.numel() - 1)
    return (keys[pos] == cand) & (topk >= 0), q_rel, i_rel


def _check_topk(topk) -> torch.Tensor:
    topk = torch.as_tensor(topk).long()
    if topk.dim() != 2:
        raise ValueError(f"topk must be [queries, K], got shape {tuple(topk.shape)}; "
                         "for one query use topk.unsqueeze(0)")
    return topk


def _pairs(relevant, num_queries: int) -> Tuple[torch.Tensor, torch.Tensor]:
    if isinstance(relevant, tuple) and len(relevant) == 2 and isinstance(relevant[0], torch.Tensor):
        q, i = relevant
        if q.shape != i.shape:
            raise ValueError(f"relevant pairs must have equal shapes, got query {tuple(q.shape)} "
                             f"and item {tuple(i.shape)}")
    else:
        if len(relevant) != num_queries:
            raise ValueError(f"relevant has {len(relevant)} queries but topk has {num_queries}")
        lists = [list(r) for r in relevant]
        q = torch.repeat_interleave(torch.arange(len(lists)), torch.tensor([len(r) for r in lists], dtype=torch.long))
        i = torch.tensor([int(x) for r in lists for x in r], dtype=torch.long)
    if q.numel() and (int(q.max()) >= num_queries or int(q.min()) < 0):
        raise ValueError(f"relevant query index out of range 0..{num_queries - 1}")
    return q.long(), i.long()
