"""ItemGraph: a user's recency-weighted edges propagated through two item-item graphs,
the collaborative one and the modality one, with the request's context as a prior.

A user is the set of their training edges, each weighted by how recent it is among the
user's own edges: :math:`w_{uj} = \\exp(-r_{uj} / \\tau)`, with :math:`r_{uj}` the edge's
rank counted from the user's latest one (0 for the latest). One propagation step through
the **collaborative item graph** :math:`B` (the closed-form EASE weights, Steck 2019,
https://arxiv.org/abs/1905.03375, fitted on the binary train matrix) gives

.. math::
    s^{cf}_u = \\tilde{\\mathbf{x}}_u B .

The **modality item graph** :math:`K` links each item to its ``k`` nearest items with
training edges by the cosine of their item vectors (per modality mean-centred and scaled to
unit length, then concatenated: text and image, say), :math:`K_{ij} \\propto \\max(0,
\\cos_{ij})`, rows summing to one (the frozen item-item graph of FREEDOM, Zhou and Shen
2023, https://arxiv.org/abs/2211.06924). A second step through it spreads the
collaborative scores to similar items. For an item with training edges

.. math::
    s_{ui} = s^{cf}_{ui} + \\beta\\,(K s^{cf}_u)_i ,

and for an item without (a cold item), which :math:`B` cannot score, the step through
:math:`K` (from the user's unweighted edges :math:`\\mathbf{x}_u`, scaled by
:math:`\\|\\tilde{\\mathbf{x}}_u\\|_1 / \\|\\mathbf{x}_u\\|_1` to the weighted edges' total so that
cold and warm scores compare: recency did not help cold items on validation) plus the content match of the user's mean item vector
:math:`\\mathbf{p}_u` with the item's, rescaled to the same spread over the cold items:

.. math::
    s_{ui} = (K\\,\\mathbf{x}_u B)_i + \\eta\\,\\frac{\\sigma_u(K \\mathbf{x}_u B)}
    {\\sigma_u(\\cos)}\\,\\cos(\\mathbf{p}_u, \\mathbf{z}_i) ,

and then a content-to-collaborative mapping (``mapping``, :math:`\\mu`) reorders the cold items:
a ridge regression from the warm items' vectors to their columns of :math:`B`,
:math:`W = (Z_w^\\top Z_w + \\rho I)^{-1} Z_w^\\top B_{ww}^\\top`, predicts a cold item's column
:math:`\\hat B_{\\cdot i} = W^\\top \\mathbf{z}_i` (the linear mapping of cold-start recommenders,
e.g. Gantner et al. 2010, https://doi.org/10.1109/ICDM.2010.129; stored in :math:`B`'s cold
columns), and the cold score becomes the standardised sum :math:`\\mathrm{std}(s_u) + \\mu\\,
\\mathrm{std}(\\mathbf{x}_u \\hat B)`, put back on the mean and spread of :math:`s_u` over the cold
items, so that how cold items compare with warm ones does not change.

With a request context (time slot, place) the score adds
:math:`\\gamma\\,\\sigma_u\\,(\\mathrm{pmi}(i, t) + \\mathrm{pmi}(i, p))`, the smoothed
pointwise mutual information of the item with the context node in the training events,
scaled by :math:`\\sigma_u`, the spread of the user's scores, so that ``context`` means the
same for every user.

Without ``factors`` nothing is trained by gradient descent: a fit is one ``[I, I]`` matrix
inversion (as EASE), a k-NN search over the item vectors and a few counts; it takes seconds on
MovieLens-100K. With ``factors > 0`` a learned residual
(:class:`~ctxrec.training.models.residual.ContextResidual`) is fitted on top, in logit space:
user, item, time-slot and place embeddings with the score above (standardised per user) as an
offset, so that a user's choice can move with the context of the request, which the additive
prior cannot express. Every weight (``l2``, ``recency``, ``modality``, ``content``,
``context``, ``factors``) is a setting chosen on validation
(:data:`ctxrec.training.tuning.DEFAULT_GRIDS`).

Without event times (``graph.train.ts`` is None) every edge weighs 1, and
``recency`` has no effect; ``recency=None`` is that ablation.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

from ctxrec.data import RecGraph
from ctxrec.training.models.content_knn import fit_centering, vectors_and_mask
from ctxrec.training.models.ease import EASE
from ctxrec.training.models.interactions import sparse_csr, sparse_rows, times_rows
from ctxrec.training.models.residual import ContextResidual, fit_residual, residual_scores, standardise
from ctxrec.training.recommender import Context


class ItemGraph(EASE):
    """Recency-weighted user edges through a collaborative and a modality item graph, with a context prior.

    Args:
        l2: ridge of the collaborative item graph (EASE's :math:`\\lambda`, > 0) (default: 300.0).
        recency: :math:`\\tau`, in edges: the weight of a user's edge halves about every
            ``0.69 * recency`` more recent edges of theirs; ``None`` weighs every edge 1
            (default: 10.0).
        features: item vectors for the modality graph, ``x_<name>`` on the graph's items;
            names the graph lacks are skipped, and with none left there is no modality
            graph (default: ``("text", "image")``).
        k: neighbours per item in the modality graph (default: 20).
        modality: :math:`\\beta`, the weight of the modality step on items with training
            edges (default: 0.1).
        content: :math:`\\eta`, the weight of the content match on items without training
            edges. 0.25 had the best validation NDCG@20 on MovieLens in both the ``temporal`` and
            ``cold_items`` protocols, among 0 to 4 with the cold-item mapping on (BENCHMARKS.md).
            (default: 0.25)
        mapping: :math:`\\mu`, the weight of the content-to-collaborative mapping on items
            without training edges; 0 turns it off (default: 1.0).
        context: :math:`\\gamma`, the weight of the context prior; 0 ignores the context
            (default: 0.0).
        factors: width of the learned context-aware residual; 0 fits none (default: 0).
        epochs: passes of the residual over the training events (default: 6).
        seed: seed of the residual's initialisation and batches (default: 0).

    Example:
        >>> model = ItemGraph(recency=10.0).fit(graph.without_test())  # doctest: +SKIP
        >>> evaluate(model, graph, "test", protocol="per_user")  # doctest: +SKIP
    """

    name = "ItemGraph"

    def __init__(self, l2: float = 300.0, recency: Optional[float] = 10.0,
                 features: Sequence[str] = ("text", "image"), k: int = 20, modality: float = 0.1,
                 content: float = 0.25, mapping: float = 1.0, context: float = 0.0, factors: int = 0, epochs: int = 6,
                 seed: int = 0) -> None:
        super().__init__(l2)  # the collaborative item graph: EASE's fit, weights, similar_items and state
        if recency is not None and not recency > 0:
            raise ValueError(f"ItemGraph recency must be > 0 (edges) or None (every edge weighs 1), got {recency!r}")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"ItemGraph k must be a positive integer (neighbours per item), got {k!r}")
        for name, value in (("modality", modality), ("content", content), ("mapping", mapping), ("context", context)):
            if not value >= 0:
                raise ValueError(f"ItemGraph {name} must be >= 0 (0 turns it off), got {value!r}")
        for name, value in (("factors", factors), ("epochs", epochs)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"ItemGraph {name} must be an integer >= 0, got {value!r}")
        self.recency, self.features = None if recency is None else float(recency), tuple(features)
        self.factors, self.epochs, self.seed = factors, epochs, int(seed)
        self.residual: Optional[ContextResidual] = None
        self.k, self.modality, self.content, self.context = k, float(modality), float(content), float(context)
        self.mapping = float(mapping)
        self.pmi: Dict[str, torch.Tensor] = {}

    def config(self) -> dict:
        return {"l2": self.l2, "recency": self.recency, "features": list(self.features), "k": self.k,
                "modality": self.modality, "content": self.content, "mapping": self.mapping, "context": self.context,
                "factors": self.factors, "epochs": self.epochs, "seed": self.seed}

    def prepare(self, graph: RecGraph) -> None:
        """Everything but the collaborative graph (which :meth:`EASE.fit` computes after this):
        user edges, modality graph, context counts."""
        self.graph = graph
        self.users = user_edges(graph, self.recency)
        self.plain = self.users if self.recency is None else user_edges(graph, None)
        warm = torch.bincount(graph.train.item, minlength=graph.num_items) > 0
        self.warm_items, self.cold_items = torch.nonzero(warm).view(-1), torch.nonzero(~warm).view(-1)
        self.vectors = item_space(graph, self.features)  # [I, d] (d = 0 without features)
        self.knn_warm = modality_graph(self.vectors, self.warm_items, self.warm_items, self.k)
        self.knn_cold = modality_graph(self.vectors, self.cold_items, self.warm_items, self.k)
        self.profiles = self.plain.mean_of(self.vectors) if self.vectors.size(1) else self.vectors
        self.pmi = {kind: context_pmi(graph, kind) for kind in ("time", "place")} if self.context else {}
        self.weights = torch.zeros(graph.num_items, graph.num_items)
        self.residual = None

    def fit(self, graph: RecGraph) -> "ItemGraph":
        super().fit(graph)  # prepare, then the collaborative graph
        if self.mapping and len(self.cold_items) and self.vectors.size(1):
            self.weights[:, self.cold_items] = mapped_columns(self.weights, self.vectors, self.warm_items,
                                                              self.cold_items)
        if self.factors and self.epochs:
            self.residual = fit_residual(graph, self.closed_form, self.factors, self.epochs, seed=self.seed)
        return self

    @torch.no_grad()
    def score(self, users: torch.Tensor, context: Optional[Context] = None) -> torch.Tensor:
        users = torch.as_tensor(users, dtype=torch.long).cpu()
        out = self.closed_form(users)
        if self.residual is not None:
            out = residual_scores(self.residual, out, users, context)
        if self.context and context is not None:
            prior = torch.zeros_like(out)
            for kind, index in (("time", context.time), ("place", context.place)):
                index = index.cpu()
                known = index >= 0
                if kind in self.pmi and bool(known.any()):
                    prior[known] += self.pmi[kind][index[known]]
            out = out + self.context * out.std(1, keepdim=True) * prior
        return out

    @torch.no_grad()
    def closed_form(self, users: torch.Tensor) -> torch.Tensor:
        """``[B, I]``: the scores of the two item graphs, before context and residual."""
        cf = times_rows(self.users.sparse(users), self.weights)
        out = cf.clone()
        if self.modality and self.knn_warm._nnz():
            out[:, self.warm_items] += self.modality * (self.knn_warm @ cf.T).T
        if len(self.cold_items):
            if self.recency is None:
                plain = cf
            else:  # unweighted edges, scaled to the weighted edges' total so cold and warm scores compare
                mass = self.users.totals(users) / self.plain.totals(users).clamp(min=1)
                plain = times_rows(self.plain.sparse(users), self.weights) * mass.unsqueeze(1)
            spread = (self.knn_cold @ plain.T).T  # [B, cold]: the cold items' neighbours' scores
            if self.content and self.profiles.numel():
                cos = self.profiles[users] @ self.vectors[self.cold_items].T
                scale = spread.std(1, keepdim=True) / cos.std(1, keepdim=True).clamp(min=1e-12)
                spread = spread + self.content * torch.nan_to_num(scale) * cos
            if self.mapping and self.vectors.size(1) and len(self.cold_items) > 1:
                # the mapping reorders the cold items among themselves; their mean and spread per user
                # stay those of the graph's score, so how they compare with warm items does not change
                mapped = plain[:, self.cold_items]
                mean, std = spread.mean(1, keepdim=True), spread.std(1, keepdim=True)
                mixed = standardise(spread) + self.mapping * standardise(mapped)
                spread = mean + std * standardise(mixed)
            out[:, self.cold_items] = spread
        return out

    def state(self) -> Dict[str, torch.Tensor]:
        residual = {} if self.residual is None else {f"residual.{k}": v for k, v in self.residual.state_dict().items()}
        return {**super().state(), **residual}

    def load_state(self, state: Dict[str, torch.Tensor]) -> None:
        super().load_state(state)
        residual = {k[len("residual."):]: v for k, v in state.items() if k.startswith("residual.")}
        if residual:
            sizes = {k: v.shape for k, v in residual.items()}
            self.residual = ContextResidual(sizes["tables.user"][0], sizes["tables.item"][0], sizes["tables.time"][0],
                                            sizes["tables.place"][0], sizes["tables.user"][1])
            self.residual.load_state_dict(residual)
            self.residual.eval()


class UserEdges:
    """Each user's training items with a weight, as CSR arrays; :meth:`rows` builds dense rows."""

    def __init__(self, offsets: torch.Tensor, items: torch.Tensor, weights: torch.Tensor, num_items: int) -> None:
        self.offsets, self.items, self.weights, self.num_items = offsets, items, weights, num_items
        self.cumulative = torch.cat([torch.zeros(1), torch.cumsum(weights, 0)])  # for totals()

    def _entries(self, users: torch.Tensor):
        start, end = self.offsets[users], self.offsets[users + 1]
        counts = end - start
        row = torch.repeat_interleave(torch.arange(len(users)), counts)
        pos = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        at = torch.repeat_interleave(start, counts) + pos
        return row, self.items[at], self.weights[at]

    def rows(self, users: torch.Tensor) -> torch.Tensor:
        """``[len(users), num_items]``: each user's edge weights, 0 elsewhere."""
        row, item, weight = self._entries(users)
        out = torch.zeros(len(users), self.num_items)
        out[row, item] = weight
        return out

    def sparse(self, users: torch.Tensor) -> torch.Tensor:
        """:meth:`rows` as a sparse CSR matrix."""
        row, item, weight = self._entries(users)
        return sparse_rows(row, item, weight, (len(users), self.num_items))

    def totals(self, users: torch.Tensor) -> torch.Tensor:
        """``[len(users)]``: the sum of each user's edge weights."""
        return self.cumulative[self.offsets[users + 1]] - self.cumulative[self.offsets[users]]

    def mean_of(self, vectors: torch.Tensor) -> torch.Tensor:
        """``[U, d]``: each user's weighted mean of their items' ``vectors``, scaled to unit length."""
        user = torch.repeat_interleave(torch.arange(len(self.offsets) - 1), self.offsets.diff())
        total = torch.zeros(len(self.offsets) - 1, vectors.size(1)).index_add_(
            0, user, vectors[self.items] * self.weights.unsqueeze(1))
        return F.normalize(total, dim=1)


def user_edges(graph: RecGraph, recency: Optional[float]) -> UserEdges:
    """Each ``(user, item)`` train pair once, weighted :math:`\\exp(-r/\\tau)` by its rank
    :math:`r` from the user's latest pair (a pair's time is its latest event; equal times keep
    the later row as the more recent, as :func:`~ctxrec.training.evaluation.last_context` does)."""
    train, ni = graph.train, graph.num_items
    n = len(train)
    order = torch.argsort(train.ts, stable=True) if train.ts is not None else torch.arange(n)
    position = torch.empty(n, dtype=torch.long)
    position[order] = torch.arange(n)  # each event's place in time order
    key = train.user * ni + train.item
    pairs, inverse = torch.unique(key, return_inverse=True)
    latest = torch.full((len(pairs),), -1, dtype=torch.long).scatter_reduce(0, inverse, position, reduce="amax")
    user, item = pairs // ni, pairs % ni
    by_time = torch.argsort(latest, descending=True, stable=True)  # newest first ...
    by_time = by_time[torch.argsort(user[by_time], stable=True)]  # ... within each user
    counts = torch.bincount(user, minlength=graph.num_users)
    offsets = torch.zeros(graph.num_users + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(counts, 0)
    rank = torch.arange(len(pairs)) - offsets[user[by_time]]
    weights = torch.ones(len(pairs)) if recency is None or train.ts is None else torch.exp(-rank.float() / recency)
    return UserEdges(offsets, item[by_time], weights, ni)


def item_space(graph: RecGraph, features: Sequence[str]) -> torch.Tensor:
    """``[I, d]`` unit item vectors: per feature the graph has, its vectors mean-centred over the
    catalogue (:func:`~ctxrec.training.models.content_knn.fit_centering`) and scaled to unit
    length, concatenated, then scaled to unit length again (items with no vector stay 0);
    ``[I, 0]`` when the graph has none of ``features``."""
    store = graph.data["item"]
    parts = []
    for name in (f for f in features if f"x_{f}" in store):
        x, mask = vectors_and_mask(graph, name)
        mean, _ = fit_centering(x, mask)
        parts.append(F.normalize(x - mean, dim=1) * mask.unsqueeze(1))
    if not parts:
        return torch.zeros(graph.num_items, 0)
    return F.normalize(torch.cat(parts, 1), dim=1)


def modality_graph(vectors: torch.Tensor, rows: torch.Tensor, candidates: torch.Tensor, k: int,
                   chunk: int = 2048) -> torch.Tensor:
    """``[len(rows), I]`` sparse CSR: row ``r`` links item ``rows[r]`` to its ``k`` most similar
    ``candidates`` (never itself) by the cosine of ``vectors``, weights ``max(0, cos)``
    summing to 1; no entries without vectors or candidates."""
    ni = vectors.size(0)
    k = min(k, len(candidates) - 1)
    if vectors.size(1) == 0 or len(rows) == 0 or k < 1:
        return sparse_csr(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), (len(rows), ni))
    pool = vectors[candidates]
    parts_r, parts_c, parts_v = [], [], []
    for lo in range(0, len(rows), chunk):
        batch = rows[lo: lo + chunk]
        sim = vectors[batch] @ pool.T
        sim[batch.unsqueeze(1) == candidates.unsqueeze(0)] = float("-inf")  # not itself
        top = sim.topk(k, dim=1)
        w = top.values.clamp(min=0)
        w = w / w.sum(1, keepdim=True).clamp(min=1e-12)
        parts_r.append(torch.arange(lo, lo + len(batch)).repeat_interleave(k))
        parts_c.append(candidates[top.indices].reshape(-1))
        parts_v.append(w.reshape(-1))
    index = torch.stack([torch.cat(parts_r), torch.cat(parts_c)])
    return sparse_csr(index, torch.cat(parts_v), (len(rows), ni))


def mapped_columns(weights: torch.Tensor, vectors: torch.Tensor, warm: torch.Tensor, cold: torch.Tensor,
                   ridge: float = 10.0) -> torch.Tensor:
    """``[I, len(cold)]``: the cold items' columns of the item-item ``weights`` predicted from
    their ``vectors`` by a ridge regression (weight ``ridge``) fitted on the ``warm`` items'
    columns (rows outside ``warm`` stay 0). ``weights`` is 0 outside the warm rows and columns
    (EASE's fit)."""
    zw = vectors[warm].double()
    lhs = zw.T @ zw
    lhs.diagonal().add_(ridge)
    rhs = (weights @ vectors)[warm].T.double()  # [d, W]: Z_w^T B_ww^T (B's other columns are 0), without copying B
    mapping = torch.linalg.solve(lhs, rhs).float()
    out = torch.zeros(weights.size(0), len(cold))
    out[warm] = (vectors[cold] @ mapping).T
    return out


def context_pmi(graph: RecGraph, kind: str, smoothing: float = 10.0) -> torch.Tensor:
    """``[n_<kind>, I]``: :math:`\\log \\frac{(c_{ti} + a\\,p_i)/(c_t + a)}{p_i}`, the smoothed
    pointwise mutual information of each item with each ``kind`` node (``"time"`` or
    ``"place"``) over the training events; :math:`p_i` is the item's share of events and
    :math:`a` the ``smoothing`` (pseudo-events); a node without events gets 0."""
    train = graph.train
    index = getattr(train, kind)
    size = graph.data[kind].num_nodes if kind in graph.data.node_types else 0
    size = max(size, int(index.max()) + 1 if len(index) else 0)
    known = index >= 0
    counts = torch.zeros(size, graph.num_items)
    counts.index_put_((index[known], train.item[known]), torch.ones(int(known.sum())), accumulate=True)
    pop = torch.bincount(train.item, minlength=graph.num_items).float()
    p = (pop + 1) / (pop.sum() + graph.num_items)
    cond = (counts + smoothing * p) / (counts.sum(1, keepdim=True) + smoothing)
    return torch.log(cond / p)
