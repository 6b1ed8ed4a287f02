"""Full-ranking top-K metrics.

Each query has a ranked list of item indices (train items already masked out by
the caller) and a set of relevant items. With ``hits_k = |top_k ∩ relevant|``:

- Recall@K = hits_k / |relevant|
- Precision@K = hits_k / K
- HitRate@K = 1 if hits_k > 0 else 0
- NDCG@K = DCG@K / IDCG@K, DCG@K = Σ_{r≤K, item_r relevant} 1 / log2(r + 1),
  IDCG@K the DCG of a perfect list of min(|relevant|, K) hits
- MRR@K = 1 / rank of the first relevant item within K (0 when none)

Values are means over queries; queries with no relevant items are skipped.
"""
from __future__ import annotations

from typing import Dict, Iterable, Sequence, Tuple, Union

import torch

METRICS = ("recall", "ndcg", "hit_rate", "precision", "mrr")


def ranking_metrics(topk: torch.Tensor, relevant: Union[Sequence[Iterable[int]], Tuple[torch.Tensor, torch.Tensor]],
                    ks: Sequence[int] = (10, 20)) -> Dict[str, float]:
    """Mean ranking metrics over queries.

    Args:
        topk (LongTensor [Q, K_max]): ranked item indices per query, best first;
            ``K_max >= max(ks)``; ``-1`` pads lists shorter than ``K_max``.
        relevant: per query the relevant item indices, either as a list of
            iterables or as a pair ``(query index [R], item index [R])``.
        ks: cut-offs (default: ``(10, 20)``).

    Returns:
        ``{"recall@10": ..., "ndcg@10": ..., ...}``.

    Example:
        >>> ranking_metrics(torch.tensor([[3, 1, 2]]), [{1}], ks=(1, 2))["ndcg@2"]
        0.6309...
    """
    topk = torch.as_tensor(topk).long()
    if topk.dim() != 2:
        raise ValueError(f"topk must be [queries, K], got shape {tuple(topk.shape)}")
    if max(ks) > topk.size(1):
        raise ValueError(f"topk has {topk.size(1)} columns but ks asks for {max(ks)}; rank more items")
    q_idx, items = _pairs(relevant, topk.size(0))
    width = int(max(int(items.max()) if items.numel() else 0, int(topk.max()) if topk.numel() else 0)) + 2
    keys = torch.unique(q_idx * width + items)  # de-duplicated relevant pairs, sorted
    n_rel = torch.bincount(torch.div(keys, width, rounding_mode="floor"), minlength=topk.size(0)).float()
    keep = n_rel > 0
    if not keep.any():
        return {f"{m}@{k}": 0.0 for k in ks for m in METRICS}
    cand = torch.arange(topk.size(0)).unsqueeze(1) * width + topk
    cand = torch.where(topk >= 0, cand, torch.full_like(cand, -1))  # padding never hits
    pos = torch.searchsorted(keys, cand).clamp(max=keys.numel() - 1)
    hit = ((keys[pos] == cand) & (topk >= 0)).float()[keep]
    n_rel = n_rel[keep]
    discount = 1.0 / torch.log2(torch.arange(2, topk.size(1) + 2, dtype=torch.float))
    out: Dict[str, float] = {}
    for k in ks:
        h = hit[:, :k]
        hits = h.sum(1)
        dcg = (h * discount[:k]).sum(1)
        ideal = torch.cumsum(discount[:k], 0)[(n_rel.clamp(max=k) - 1).long()]
        first = torch.where(h.any(1), h.argmax(1).float() + 1.0, torch.full_like(hits, float("inf")))
        out[f"recall@{k}"] = float((hits / n_rel).mean())
        out[f"ndcg@{k}"] = float((dcg / ideal).mean())
        out[f"hit_rate@{k}"] = float((hits > 0).float().mean())
        out[f"precision@{k}"] = float((hits / k).mean())
        out[f"mrr@{k}"] = float((1.0 / first).mean())
    return out


def _pairs(relevant, num_queries: int) -> Tuple[torch.Tensor, torch.Tensor]:
    if isinstance(relevant, tuple) and len(relevant) == 2 and isinstance(relevant[0], torch.Tensor):
        q, i = relevant
    else:
        if len(relevant) != num_queries:
            raise ValueError(f"relevant has {len(relevant)} queries but topk has {num_queries}")
        lists = [list(r) for r in relevant]
        q = torch.repeat_interleave(torch.arange(len(lists)), torch.tensor([len(r) for r in lists], dtype=torch.long))
        i = torch.tensor([int(x) for r in lists for x in r], dtype=torch.long)
    if q.numel() and (int(q.max()) >= num_queries or int(q.min()) < 0):
        raise ValueError(f"relevant query index out of range 0..{num_queries - 1}")
    return q.long(), i.long()
