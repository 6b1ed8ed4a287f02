"""EASE: a shallow linear autoencoder with a closed-form solution
(Steck, 2019, https://arxiv.org/abs/1905.03375)."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from ctxrec.data import RecGraph
from ctxrec.training.models.interactions import gram, item_dtype, user_times
from ctxrec.training.recommender import Context, Recommender


class EASE(Recommender):
    """Embarrassingly Shallow AutoEncoder on the binary train user-item matrix ``X``.

    The item-item weights minimise :math:`\\|X - XB\\|_F^2 + \\lambda\\|B\\|_F^2` subject to
    :math:`\\mathrm{diag}(B) = 0`, whose solution is

    .. math::
        P = (X^\\top X + \\lambda I)^{-1}, \\qquad B_{ij} = -\\frac{P_{ij}}{P_{jj}} \\; (i \\ne j),
        \\quad B_{jj} = 0, \\qquad \\hat{y}_u = X_u B.

    Context is ignored. ``B`` is a dense ``[I, I]`` matrix: fitting inverts, in place, the
    ``[A, A]`` block of the ``A`` items with training edges (``O(A^3)`` time; float64 up to
    :data:`~ctxrec.training.models.interactions.FLOAT64_UP_TO` items, float32 above: 32 MB for
    2,000 items, 1.6 GB for 20,000) and the weights are ``4 * I^2`` bytes, so EASE suits
    catalogues of up to a few tens of thousands of items.

    Args:
        l2: the L2 weight :math:`\\lambda` (> 0) (default: 500.0).

    Example:
        >>> model = EASE(l2=200.0).fit(graph)  # doctest: +SKIP
        >>> model.weights.shape  # doctest: +SKIP
        torch.Size([graph.num_items, graph.num_items])
    """

    name = "EASE"

    def __init__(self, l2: float = 500.0) -> None:
        if not l2 > 0:
            raise ValueError(f"EASE l2 must be > 0 (it makes X^T X + l2*I invertible), got {l2!r}")
        self.l2 = float(l2)
        self.weights = torch.zeros(0, 0)

    def config(self) -> dict:
        return {"l2": self.l2}

    def prepare(self, graph: RecGraph) -> None:
        self.graph = graph
        self.weights = torch.zeros(graph.num_items, graph.num_items)

    def fit(self, graph: RecGraph) -> "EASE":
        self.prepare(graph)
        self.weights = torch.zeros(0, 0)  # the placeholder goes before the inversion
        # an item without training edges has a zero row and column in X^T X: its row and column
        # of B are 0, so only the active items' block is inverted (exactly the same B)
        active = torch.nonzero(torch.bincount(graph.train.item, minlength=graph.num_items) > 0).view(-1)
        p = gram(graph, dtype=item_dtype(len(active)), items=active)  # float32 above 8192: l2 keeps it well conditioned
        p.diagonal().add_(self.l2)
        torch.linalg.cholesky(p, out=p)  # X^T X + l2*I is symmetric positive definite; in place
        torch.cholesky_inverse(p, out=p)
        p.div_(-p.diagonal().clone().unsqueeze(0))
        p.fill_diagonal_(0)
        self.weights = scatter_block(p, active, graph.num_items)
        return self

    @torch.no_grad()
    def score(self, users: torch.Tensor, context: Optional[Context] = None) -> torch.Tensor:
        return user_times(self.graph, users, self.weights)

    def similar_items(self, items: torch.Tensor, k: int = 10) -> Tuple[torch.Tensor, torch.Tensor]:
        """The items each item's interaction raises most (row ``i`` of ``B``)."""
        return top_rows(self.weights, items, k)

    def state(self) -> Dict[str, torch.Tensor]:
        return {"weights": self.weights}

    def load_state(self, state: Dict[str, torch.Tensor]) -> None:
        self.weights = state["weights"].float()


def scatter_block(block: torch.Tensor, items: torch.Tensor, size: int, chunk: int = 2048) -> torch.Tensor:
    """``[size, size]`` float32 zeros with ``block`` ``[A, A]`` at rows and columns ``items``."""
    if len(items) == size:
        return block.float()
    out = torch.zeros(size, size)
    for lo in range(0, len(items), chunk):
        rows = torch.zeros(min(chunk, len(items) - lo), size)
        rows[:, items] = block[lo: lo + chunk].float()
        out[items[lo: lo + chunk]] = rows
    return out


def top_rows(weights: torch.Tensor, items: torch.Tensor, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` ``(indices, values)`` of the rows ``items`` of an item-item matrix, the item itself left out."""
    items = torch.as_tensor(items, dtype=torch.long)
    sims = weights[items].clone()
    sims[torch.arange(len(items)), items] = float("-inf")
    top = sims.topk(min(k, sims.size(1) - 1), dim=1)
    return top.indices, top.values
