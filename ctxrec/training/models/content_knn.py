"""ContentKNN: content-based recommendation from item feature vectors (e.g. text embeddings)."""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F

from ctxrec.graph.export import RecGraph
from ctxrec.training.recommender import Context, Recommender


class ContentKNN(Recommender):
    """Cosine between a user's profile and each item's feature vector.

    .. math::
        \\mathbf{p}_u = \\frac{1}{|I_u|}\\sum_{i \\in I_u} \\frac{\\mathbf{x}_i}{\\|\\mathbf{x}_i\\|},
        \\qquad \\hat{y}_{uj} = \\cos(\\mathbf{p}_u, \\mathbf{x}_j)

    with :math:`I_u` the user's train items and :math:`\\mathbf{x}_i` the item vectors
    ``graph.data["item"].x_<feature>``. Items whose ``mask_<feature>`` is False count as
    zero vectors (they add nothing to a profile and score 0). Items without train
    interactions (cold items) are scored like any other, which collaborative models
    cannot do; users without train items score 0 everywhere. Context is ignored. Nothing
    is learned, so nothing is saved besides the config: profiles are rebuilt from the graph.

    Args:
        feature: the item vectors to use, ``x_<feature>`` on the graph's items (default: "text").

    Example:
        >>> _, graph = synthetic_graph("tiny", features=("text",))  # doctest: +SKIP
        >>> ContentKNN().fit(graph).score(torch.tensor([0])).shape  # doctest: +SKIP
        torch.Size([1, 40])
    """

    name = "ContentKNN"

    def __init__(self, feature: str = "text") -> None:
        self.feature = feature
        self.items = torch.zeros(0, 0)
        self.profiles = torch.zeros(0, 0)

    def config(self) -> dict:
        return {"feature": self.feature}

    def prepare(self, graph: RecGraph) -> None:
        self.graph = graph
        self.items = item_vectors(graph, self.feature)
        pairs = torch.unique(torch.stack([graph.train.user, graph.train.item]), dim=1)
        total = torch.zeros(graph.num_users, self.items.size(1)).index_add_(0, pairs[0], self.items[pairs[1]])
        count = torch.bincount(pairs[0], minlength=graph.num_users).clamp(min=1)
        # the mean's length does not change a cosine; normalising once makes score a matmul
        self.profiles = F.normalize(total / count.unsqueeze(1), dim=1)

    def fit(self, graph: RecGraph) -> "ContentKNN":
        self.prepare(graph)
        return self

    @torch.no_grad()
    def score(self, users: torch.Tensor, context: Optional[Context] = None) -> torch.Tensor:
        return self.profiles[torch.as_tensor(users, dtype=torch.long).cpu()] @ self.items.T

    def item_embeddings(self) -> torch.Tensor:
        return self.items

    def state(self) -> Dict[str, torch.Tensor]:
        return {}


def item_vectors(graph: RecGraph, feature: str) -> torch.Tensor:
    """Unit-length ``x_<feature>`` item vectors ``[num_items, d]``, zero where the mask is False.

    Raises:
        ValueError: the graph has no ``x_<feature>`` on items; the message lists the
            vectors it has and how to add them.
    """
    store = graph.data["item"]
    key = f"x_{feature}"
    if key not in store:
        have = sorted(k[2:] for k in store.keys() if k.startswith("x_"))
        other = f"; or choose feature= from {have}" if have else ""
        raise ValueError(
            f"ContentKNN feature={feature!r}: the graph has no item vectors graph.data['item'].{key} "
            f"(item vectors it has: {have or 'none'}). Encode the items first (`ctxrec encode --encoder {feature}`, "
            f"then export again), or pass the vectors to the export: to_rec_graph(tables, vectors) / "
            f"synthetic_graph(..., features=({feature!r},)){other}.")
    x = store[key].float()
    mask = store[f"mask_{feature}"] if f"mask_{feature}" in store else torch.ones(len(x), dtype=torch.bool)
    return F.normalize(x, dim=1) * mask.unsqueeze(1)
