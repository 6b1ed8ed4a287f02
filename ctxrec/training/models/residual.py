"""A learned, context-aware residual on top of a fixed score: low-rank user, item, time-slot
and place embeddings fitted in logit space with a full softmax over the items, the fixed score
(standardised per user) entering as an offset with a learned weight:

.. math::
    \\mathrm{logit}(i \\mid u, t, p) = a\\,z_{ui} + (\\mathbf{e}_u + \\mathbf{e}_t + \\mathbf{e}_p)^\\top \\mathbf{e}_i .

The offset carries what a closed form already knows (a user's items, their recency, the
modality graph); the embeddings learn what it cannot express: how a user's choice moves with
the time slot and the place of the request. Fitted for a fixed number of epochs (a setting
chosen on validation like every other) with Adam and an L2 penalty on the embeddings.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ctxrec.data import RecGraph
from ctxrec.training.losses import drawn_softmax
from ctxrec.training.recommender import Context


class ContextResidual(nn.Module):
    """Embeddings of users, items, time slots and places, and the offset's weight ``a``.

    Args:
        num_users, num_items, num_times, num_places: table sizes (a context table of size 0
            has no embedding and adds nothing).
        dim: embedding width.
        seed: seed of the initialisation (normal, std 0.01).
    """

    def __init__(self, num_users: int, num_items: int, num_times: int, num_places: int, dim: int,
                 seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.tables = nn.ParameterDict({
            name: nn.Parameter(torch.randn(n, dim, generator=gen) * 0.01)
            for name, n in (("user", num_users), ("item", num_items), ("time", num_times), ("place", num_places))})
        self.a = nn.Parameter(torch.ones(()))

    def query(self, users: Tensor, time: Optional[Tensor] = None, place: Optional[Tensor] = None) -> Tensor:
        """``[B, dim]``: the user's embedding plus the known context nodes' (index ``-1``: unknown)."""
        q = self.tables["user"][users]
        for kind, index in (("time", time), ("place", place)):
            table = self.tables[kind]
            if index is not None and len(table):
                known = (index >= 0) & (index < len(table))
                q = q + table[index.clamp(min=0, max=len(table) - 1)] * known.unsqueeze(1)
        return q

    def forward(self, offset: Tensor, users: Tensor, time: Optional[Tensor] = None,
                place: Optional[Tensor] = None) -> Tensor:
        """``[B, I]`` logits from the standardised ``offset`` ``[B, I]``."""
        return self.a * offset + self.query(users, time, place) @ self.tables["item"].T

    def loss(self, z: Tensor, users: Tensor, items: Tensor, time: Tensor, place: Tensor,
             columns: Optional[Tensor] = None) -> Tensor:
        """Cross-entropy of ``items`` among every item, or among the drawn ``columns`` with the
        log-Q correction (:func:`~ctxrec.training.losses.drawn_softmax`); ``z`` ``[U, I]`` are
        every user's standardised offsets."""
        if columns is None:
            return F.cross_entropy(self(z[users], users, time, place), items)
        q, table = self.query(users, time, place), self.tables["item"]
        pos = self.a * z[users, items] + (q * table[items]).sum(1)
        neg = self.a * z[users.unsqueeze(1), columns.unsqueeze(0)] + q @ table[columns].T
        return drawn_softmax(pos, neg, columns, items, z.size(1))


def standardise(scores: Tensor) -> Tensor:
    """Each row minus its mean, over its standard deviation (rows that are constant become 0)."""
    centred = scores - scores.mean(1, keepdim=True)
    return centred / scores.std(1, keepdim=True).clamp(min=1e-12)


def fit_residual(graph: RecGraph, offset: Callable[[Tensor], Tensor], dim: int, epochs: int,
                 lr: float = 0.01, l2: float = 1.0, batch_size: int = 2048, seed: int = 0,
                 chunk: int = 1024, min_steps: int = 100, softmax_items: int = 4096) -> ContextResidual:
    """Fit a :class:`ContextResidual` on ``graph.train``'s events.

    Args:
        graph: the training graph.
        offset: users ``[B]`` -> their fixed scores ``[B, I]`` (standardised here).
        dim, epochs, lr, batch_size, seed: as named; ``l2`` is the penalty on the embeddings,
            divided by the number of events.
        min_steps: at least this many Adam steps: a small graph (a few batches an epoch) gets
            more passes than ``epochs`` (8k events: 25 passes instead of 6, which lifted the
            demo world's validation NDCG@20 from 0.229 to about 0.25).
        chunk: users per call of ``offset`` when the offsets are computed once before training.
        softmax_items: above this many items, each step ranks the positive among this many
            drawn items instead of all (as :class:`~ctxrec.training.trainer.TrainConfig`'s).
    """
    train = graph.train
    sizes = {kind: graph.data[kind].num_nodes if kind in graph.data.node_types else 0 for kind in ("time", "place")}
    model = ContextResidual(graph.num_users, graph.num_items, sizes["time"], sizes["place"], dim, seed)
    with torch.no_grad():
        z = torch.cat([standardise(offset(torch.arange(lo, min(lo + chunk, graph.num_users))))
                       for lo in range(0, graph.num_users, chunk)]) if graph.num_users else torch.zeros(0, graph.num_items)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(train)
    gen = torch.Generator().manual_seed(seed)
    tables = list(model.tables.values())
    per_epoch = max(1, -(-n // batch_size))
    for _ in range(max(epochs, -(-min_steps // per_epoch)) if epochs else 0):
        for batch in torch.randperm(n, generator=gen).split(batch_size):
            users = train.user[batch]
            columns = None
            if graph.num_items > softmax_items:
                columns = torch.randint(graph.num_items, (softmax_items,), generator=gen)
            loss = model.loss(z, users, train.item[batch], train.time[batch], train.place[batch], columns)
            loss = loss + l2 * sum(t.pow(2).sum() for t in tables) / n
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def residual_scores(model: ContextResidual, offset: Tensor, users: Tensor, context: Optional[Context]) -> Tensor:
    """The fitted logits for ``users`` with their fixed scores ``offset`` and the request's context."""
    time = context.time.cpu() if context is not None else None
    place = context.place.cpu() if context is not None else None
    return model(standardise(offset), users, time, place)
