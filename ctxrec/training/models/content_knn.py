"""ContentKNN: content-based recommendation from item feature vectors (e.g. text embeddings)."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from ctxrec.data import RecGraph
from ctxrec.training.recommender import Context, Recommender

#: the item-vector transforms of :class:`ContentKNN` (``center=``)
CENTERS = ("none", "mean", "whiten")


class ContentKNN(Recommender):
    """Cosine between a user's profile and each item's (transformed) feature vector.

    .. math::
        \\mathbf{z}_i = \\frac{T(\\mathbf{x}_i)}{\\|T(\\mathbf{x}_i)\\|}, \\qquad
        \\mathbf{p}_u = \\frac{1}{|I_u|}\\sum_{i \\in I_u} \\mathbf{z}_i, \\qquad
        \\hat{y}_{uj} = \\cos(\\mathbf{p}_u, \\mathbf{z}_j)

    with :math:`I_u` the user's train items and :math:`\\mathbf{x}_i` the item vectors
    ``graph.data["item"].x_<feature>``, first scaled to unit length. The transform
    :math:`T` is ``center``:

    * ``"none"``: :math:`T(\\mathbf{x}) = \\mathbf{x}`, the raw cosine.
    * ``"mean"``: :math:`T(\\mathbf{x}) = \\mathbf{x} - \\boldsymbol{\\mu}`, with
      :math:`\\boldsymbol{\\mu}` the mean unit vector. Encoder embeddings share a large
      common direction, so raw cosines are all close to 1 and rank by that direction;
      removing it leaves what tells items apart (Mu and Viswanath, 2018,
      https://arxiv.org/abs/1702.01417).
    * ``"whiten"``: mean-centre, then ZCA-whiten: with the centred vectors' covariance
      :math:`\\Sigma = U \\Lambda U^\\top`,
      :math:`T(\\mathbf{x}) = (\\mathbf{x} - \\boldsymbol{\\mu})\\, U_k
      (\\Lambda_k + \\epsilon \\bar\\lambda I)^{-1/2} U_k^\\top`, where :math:`U_k` keeps
      the ``whiten_dim`` largest components and :math:`\\bar\\lambda` is the mean
      eigenvalue, so ``whiten_eps`` is relative and does not depend on the vectors'
      scale. Every direction then counts equally (Su et al., 2021,
      https://arxiv.org/abs/2103.15316).

    :math:`\\boldsymbol{\\mu}` and :math:`\\Sigma` are taken over **every catalogue item
    that has a vector** (``mask_<feature>`` True), not only the train items: item
    vectors are inputs, not labels, so using cold and held-out items leaks no answer,
    and it is what serving does with the catalogue it has. They are recomputed from the
    graph's vectors on :meth:`prepare`, so a saved model holds only its config.

    Items whose mask is False count as zero vectors (they add nothing to a profile and
    score 0). Items without train interactions (cold items) are scored like any other,
    which collaborative models cannot do; users without train items score 0 everywhere.
    Context is ignored.

    Args:
        feature: the item vectors to use, ``x_<feature>`` on the graph's items (default: "text").
        center: ``"none"``, ``"mean"`` or ``"whiten"``, as above; ``"none"`` keeps configs
            saved before this option scoring as they did (default: "none").
        whiten_eps: ridge :math:`\\epsilon` added to each eigenvalue, relative to the mean
            eigenvalue, so near-zero directions are not blown up. The default, 1, whitens
            softly (a direction's variance :math:`\\lambda` becomes
            :math:`\\lambda / (\\lambda + \\bar\\lambda)`): near-exact whitening (1e-3) scaled
            noise directions up as far as signal and ranked worse on MovieLens-100K
            validation; as it grows, ``"whiten"`` tends to ``"mean"`` (default: 1.0). Only
            for ``center="whiten"``.
        whiten_dim: keep only the top ``whiten_dim`` principal components (the rest are
            dropped, not scaled up; the vectors stay ``d``-dimensional, and cosines are
            those of the ``whiten_dim``-dimensional PCA-whitened vectors); ``None`` keeps
            all ``d`` (default: None). Only for ``center="whiten"``.

    Example:
        >>> _, graph = synthetic_graph("tiny", features=("text",))  # doctest: +SKIP
        >>> ContentKNN(center="mean").fit(graph).score(torch.tensor([0])).shape  # doctest: +SKIP
        torch.Size([1, 40])
    """

    name = "ContentKNN"

    def __init__(self, feature: str = "text", center: str = "none", whiten_eps: float = 1.0,
                 whiten_dim: Optional[int] = None) -> None:
        if center not in CENTERS:
            raise ValueError(f"ContentKNN center={center!r} is not a transform; choose from {list(CENTERS)}")
        if not whiten_eps > 0:
            raise ValueError(f"ContentKNN whiten_eps must be > 0 (a ridge on the covariance's eigenvalues), "
                             f"got {whiten_eps!r}")
        if whiten_dim is not None and (not isinstance(whiten_dim, int) or whiten_dim < 1):
            raise ValueError(f"ContentKNN whiten_dim must be a positive integer or None (keep all components), "
                             f"got {whiten_dim!r}")
        self.feature, self.center = feature, center
        self.whiten_eps, self.whiten_dim = float(whiten_eps), whiten_dim
        self.items = torch.zeros(0, 0)
        self.profiles = torch.zeros(0, 0)

    def config(self) -> dict:
        return {"feature": self.feature, "center": self.center, "whiten_eps": self.whiten_eps,
                "whiten_dim": self.whiten_dim}

    def prepare(self, graph: RecGraph) -> None:
        self.graph = graph
        x, mask = vectors_and_mask(graph, self.feature)
        if self.center != "none":
            mean, w = fit_centering(x, mask, whiten=self.center == "whiten", eps=self.whiten_eps,
                                    dim=self.whiten_dim)
            x = (x - mean) if w is None else (x - mean) @ w
            x = F.normalize(x, dim=1) * mask.unsqueeze(1)
        self.items = x
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


def fit_centering(x: torch.Tensor, mask: torch.Tensor, whiten: bool = False, eps: float = 1.0,
                  dim: Optional[int] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """The mean ``[d]`` of the rows of ``x`` where ``mask`` is True, and their ZCA whitening ``[d, d]``.

    Args:
        x (Tensor [N, d]): item vectors.
        mask (BoolTensor [N]): the rows to fit on.
        whiten: also return :math:`W = U_k (\\Lambda_k + \\epsilon \\bar\\lambda I)^{-1/2} U_k^\\top`
            (otherwise ``None``) (default: False).
        eps: ridge relative to the mean eigenvalue :math:`\\bar\\lambda` (default: 1.0).
        dim: principal components kept, ``None`` for all (default: None).

    Returns:
        ``(mean, W)``; ``(x - mean) @ W`` has covariance close to the identity on the kept
        components (exactly :math:`\\Lambda/(\\Lambda + \\epsilon\\bar\\lambda)`).

    Example:
        >>> mean, w = fit_centering(torch.randn(100, 8), torch.ones(100, dtype=torch.bool), whiten=True)
        >>> (mean.shape, w.shape)
        (torch.Size([8]), torch.Size([8, 8]))
    """
    rows = x[mask].double()
    if len(rows) == 0:  # nothing to centre on: leave the (all-zero) vectors as they are
        return torch.zeros(x.size(1), dtype=x.dtype), (torch.eye(x.size(1), dtype=x.dtype) if whiten else None)
    mean = rows.mean(0)
    if not whiten:
        return mean.to(x.dtype), None
    z = rows - mean
    cov = z.T @ z / len(rows)
    lam, u = torch.linalg.eigh(cov)  # ascending
    lam = lam.clamp(min=0)
    keep = len(lam) if dim is None else min(dim, len(lam))
    lam, u = lam[-keep:], u[:, -keep:]
    mean_lam = float(cov.diagonal().mean())  # trace / d
    w = (u / torch.sqrt(lam + eps * (mean_lam if mean_lam > 0 else 1.0))) @ u.T
    return mean.to(x.dtype), w.to(x.dtype)


def item_vectors(graph: RecGraph, feature: str) -> torch.Tensor:
    """Unit-length ``x_<feature>`` item vectors ``[num_items, d]``, zero where the mask is False.

    Raises:
        ValueError: the graph has no ``x_<feature>`` on items; the message lists the
            vectors it has and how to add them.
    """
    return vectors_and_mask(graph, feature)[0]


def vectors_and_mask(graph: RecGraph, feature: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`item_vectors` and the ``mask_<feature>`` ``[num_items]`` (all True when the graph has none)."""
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
    mask = store[f"mask_{feature}"].bool() if f"mask_{feature}" in store else torch.ones(len(x), dtype=torch.bool)
    return F.normalize(x, dim=1) * mask.unsqueeze(1), mask
