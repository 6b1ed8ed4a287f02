"""MostPop: rank items by how many training users interacted with them."""
from __future__ import annotations

from typing import Dict, Optional

import torch

from ctxrec.data import RecGraph
from ctxrec.training.recommender import Context, Recommender


class MostPop(Recommender):
    """The popularity baseline: the same list for everyone, in every context."""

    name = "MostPop"

    def __init__(self) -> None:
        self.counts = torch.zeros(0)

    def prepare(self, graph: RecGraph) -> None:
        self.graph = graph
        self.counts = torch.zeros(graph.num_items)

    def fit(self, graph: RecGraph) -> "MostPop":
        self.prepare(graph)
        pairs = torch.unique(torch.stack([graph.train.user, graph.train.item]), dim=1)
        self.counts = torch.bincount(pairs[1], minlength=graph.num_items).float()
        return self

    def score(self, users: torch.Tensor, context: Optional[Context] = None) -> torch.Tensor:
        return self.counts.unsqueeze(0).expand(len(users), -1)

    def state(self) -> Dict[str, torch.Tensor]:
        return {"counts": self.counts}

    def load_state(self, state: Dict[str, torch.Tensor]) -> None:
        self.counts = state["counts"]
