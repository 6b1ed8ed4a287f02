"""Evaluation: a fitted model, the graph and a split in, full-ranking metrics out.

Evaluation is a function of ``(model, graph, split)``, not a method that reads held-out pairs
off the model: a model is fitted on :meth:`RecGraph.without_test` and sees no test pair; the
caller then passes the full graph here. Every protocol ranks all items (or the split's
candidates, ``RecGraph.candidates``, e.g. the cold items) with the user's known pairs masked:
train pairs for ``"val"``, train and validation pairs for ``"test"``.

Protocols (:data:`PROTOCOLS`):

- ``"per_user"`` (the standard one, what RecBole, MMRec or implicit report): one query per
  user with held-out pairs; relevant are all of the user's held-out items of the split.
  Context-aware models score the query in the user's **most recent known context**: the time
  slot and place of the user's latest event among those the model may know (train events for
  ``"val"``, train and validation events for ``"test"``; by ``Interactions.ts``, ties to the
  later row). A user with no known event is scored without context (``-1``).
- ``"per_context"``: one query per (user, time slot, place) group of the held-out pairs (the
  context of a pair is that of its first occurrence); relevant are the group's items, and
  the query carries that context. Masked are the train (+ validation) pairs, *not* the
  user's held-out items of other groups: the question is "what does the user pick in this
  context", so an item the user picked in another context is a wrong answer here and counts
  as a miss when ranked. This rewards models that tell contexts apart; no other library
  reports it, so compare across libraries with ``per_user``.
- ``"session"``: one query per held-out event, in its context, with the items opened earlier
  in its session as ``Context.session_items`` (also masked); needs a graph exported with
  ``SplitConfig(session_len > 0)``.

Example:
    >>> model.fit(graph.without_test())  # doctest: +SKIP
    >>> evaluate(model, graph, "test", protocol="per_user")["ndcg@20"]  # doctest: +SKIP
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import torch

from ctxrec.data import Interactions, RecGraph, SeenItems
from ctxrec.training.metrics import ranking_metrics

__all__ = ["PROTOCOLS", "evaluate", "eval_queries", "rank_queries", "last_context", "held_out", "known_events",
           "check_protocol"]

PROTOCOLS = ("per_user", "per_context", "session")
#: older names of the protocols, still accepted
ALIASES = {"context": "per_context", "user": "per_user"}

Relevant = Tuple[torch.Tensor, torch.Tensor]


def check_protocol(protocol: str) -> str:
    """The canonical protocol name, or a ValueError listing the choices."""
    protocol = ALIASES.get(protocol, protocol)
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return protocol


def held_out(graph: RecGraph, split: str) -> Interactions:
    """The held-out pairs of ``split`` (``"val"`` or ``"test"``)."""
    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    return graph.val if split == "val" else graph.test


def known_events(graph: RecGraph, split: str) -> Interactions:
    """The events a model may know when ``split`` is scored: train (+ validation for test)."""
    return graph.train if split == "val" else Interactions.cat([graph.train, graph.val])


def masked(graph: RecGraph, split: str) -> SeenItems:
    """The pairs masked when ranking for ``split``."""
    return graph.seen() if split == "val" else graph.seen(graph.train, graph.val)


def eval_queries(graph: RecGraph, split: str, protocol: str = "per_user") -> Tuple[Interactions, Relevant]:
    """The queries of ``protocol`` on ``split`` and their relevant ``(query index, item)`` pairs."""
    protocol = check_protocol(protocol)
    held = held_out(graph, split)
    if protocol == "per_context":
        return group_queries(held)
    if protocol == "session":
        if held.prefix is None:
            raise ValueError("protocol='session' needs session prefixes; export the graph with "
                             "SplitConfig(session_len=...) > 0")
        return held, (torch.arange(len(held)), held.item)
    users, inv = torch.unique(held.user, return_inverse=True)
    time, place = last_context(known_events(graph, split), users)
    empty = torch.zeros(0, dtype=torch.long)
    return Interactions(users, empty, time, place, empty), (inv, held.item)


def group_queries(events: Interactions) -> Tuple[Interactions, Relevant]:
    """Group held-out pairs by (user, time, place): one query per group.

    Returns:
        ``(queries, (query index, item))``: the queries' users and contexts, and the
        relevant items of each query as pairs.
    """
    key = torch.stack([events.user, events.time, events.place], 1)
    uniq, inv = torch.unique(key, dim=0, return_inverse=True)
    empty = torch.zeros(0, dtype=torch.long)
    return Interactions(uniq[:, 0], empty, uniq[:, 1], uniq[:, 2], empty), (inv, events.item)


def last_context(events: Interactions, users: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(time, place)`` of each user's latest event in ``events`` (``-1`` for users without one).

    Latest by ``events.ts`` when present, ties (and no ``ts``) going to the later row.
    """
    none = torch.full_like(users, -1)
    n = len(events)
    if n == 0:
        return none, none.clone()
    # rows by time (ties keep row order), and each row's rank in that order
    by_rank = torch.argsort(events.ts, stable=True) if events.ts is not None else torch.arange(n)
    rank = torch.empty(n, dtype=torch.long)
    rank[by_rank] = torch.arange(n)
    size = max(int(users.max()) if users.numel() else -1, int(events.user.max())) + 1
    best = torch.full((size,), -1, dtype=torch.long).scatter_reduce_(0, events.user, rank, reduce="amax")
    latest = best[users]
    row = by_rank[latest.clamp(min=0)]
    time = torch.where(latest >= 0, events.time[row], none)
    place = torch.where(latest >= 0, events.place[row], none)
    return time, place


@torch.no_grad()
def rank_queries(model, graph: RecGraph, split: str, queries: Interactions, k: int,
                 batch_size: int = 1024) -> torch.Tensor:
    """Top-``k`` items [Q, k] per query (``-1`` where fewer than ``k`` may be ranked), known
    pairs masked, only the split's candidates ranked when the graph names them."""
    from ctxrec.training.recommender import Context

    seen = masked(graph, split)
    allowed = graph.candidates.get(split)
    keep = None
    if allowed is not None and len(allowed):
        keep = torch.zeros(graph.num_items, dtype=torch.bool)
        keep[allowed] = True
    tops = []
    for start in range(0, len(queries.user), batch_size):
        sl = slice(start, start + batch_size)
        users = queries.user[sl]
        context = Context.of(queries)[sl]
        scores = model.score(users, context).float().cpu().clone()
        scores[seen.mask_index(users)] = float("-inf")
        if context.session_items is not None:
            rows, cols = torch.nonzero(context.session_items >= 0, as_tuple=True)
            scores[rows, context.session_items[rows, cols]] = float("-inf")
        if keep is not None:
            scores[:, ~keep] = float("-inf")
        top = scores.topk(min(k, scores.size(1)), dim=1)
        tops.append(torch.where(torch.isfinite(top.values), top.indices, -1))
    return torch.cat(tops) if tops else torch.zeros(0, k, dtype=torch.long)


@torch.no_grad()
def evaluate(model, graph: Optional[RecGraph] = None, split: str = "test", ks: Sequence[int] = (10, 20),
             protocol: str = "per_user", batch_size: int = 1024) -> Dict[str, float]:
    """Full-ranking metrics of a fitted ``model`` on ``split`` of ``graph``.

    Args:
        model: a fitted :class:`~ctxrec.training.recommender.Recommender`.
        graph: the graph holding the split's pairs, usually the full export whose
            :meth:`~RecGraph.without_test` view the model was fitted on (default: the model's own
            graph, which has no test pairs when fitted on that view).
        split: ``"val"`` or ``"test"`` (default: "test").
        ks: cut-offs (default: ``(10, 20)``).
        protocol: one of :data:`PROTOCOLS` (default: "per_user").
        batch_size: queries scored at once (default: 1024).

    Returns:
        ``{"ndcg@20": ..., ...}`` as :func:`~ctxrec.training.metrics.ranking_metrics`; ``{}``
        when the split is empty. :func:`eval_queries` gives the queries behind them.

    Raises:
        ValueError: an unknown split or protocol, or a graph that holds no pairs of ``split``
            while its export did (the model's fit view): pass the full graph.
    """
    graph = graph if graph is not None else getattr(model, "graph", None)
    if graph is None:
        raise RuntimeError(f"{type(model).__name__} is not fitted; call fit(graph) first")
    held = held_out(graph, split)
    if len(held) == 0:
        if graph.split_info.get("pairs", {}).get(split, 0) and split == "test":
            raise ValueError("this graph holds no test pairs (it is the view a model is fitted on); evaluate on "
                             "the full export: evaluate(model, graph, 'test')")
        return {}
    queries, relevant = eval_queries(graph, split, protocol)
    top = rank_queries(model, graph, split, queries, max(ks), batch_size)
    return ranking_metrics(top, relevant, ks)
