"""Library peers: matrix factorisation from the ``implicit`` package, run on ctxrec's split.

These are not re-implementations: :meth:`fit` hands the train user-item matrix to
``implicit``'s own CPU models (Frederickson, https://github.com/benfred/implicit), so a
benchmark row for them is what a user of that library would get on the same split. The
learned factors are then copied into torch tensors, so scoring, saving and loading need
neither ``implicit`` nor its threads.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np
import torch

from ctxrec.data import RecGraph
from ctxrec.optional import require
from ctxrec.training.recommender import Context, Recommender


class ImplicitMF(Recommender):
    """What the ``implicit`` peers share: the train matrix, fitting, factors, persistence.

    The train matrix ``X`` ``[num_users, num_items]`` is binary: 1 for each distinct train
    ``(user, item)`` pair however often it repeats (as for EASE and ItemKNN). Users and
    items without a train pair are rows and columns of zeros; ``implicit`` leaves their
    factors at exactly 0, so they score 0 (for BPR, the item bias too). Scores are
    :math:`\\hat{y}_{ui} = \\mathbf{u}_u^\\top \\mathbf{v}_i`; context is ignored.

    Subclasses set :meth:`make_implicit` and the hyperparameters.
    """

    def __init__(self, factors: int, iterations: int, seed: int, num_threads: int) -> None:
        what = type(self).__name__
        for arg, value in (("factors", factors), ("iterations", iterations)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{what} {arg} must be a positive integer, got {value!r}")
        if not isinstance(num_threads, (int, np.integer)) or num_threads < 0:
            raise ValueError(f"{what} num_threads must be an integer >= 0 (0: all cores), got {num_threads!r}")
        self.factors, self.iterations = int(factors), int(iterations)
        self.seed, self.num_threads = int(seed), int(num_threads)
        self.user_factors = torch.zeros(0, 0)
        self.item_factors = torch.zeros(0, 0)

    def config(self) -> Dict[str, Any]:
        return {"factors": self.factors, "iterations": self.iterations, "seed": self.seed,
                "num_threads": self.num_threads}

    def make_implicit(self) -> Any:
        """The ``implicit`` CPU model to fit, built from this model's config."""
        raise NotImplementedError

    def prepare(self, graph: RecGraph) -> None:
        self.graph = graph
        self.user_factors = torch.zeros(graph.num_users, self.factors)
        self.item_factors = torch.zeros(graph.num_items, self.factors)

    def fit(self, graph: RecGraph) -> "ImplicitMF":
        require("implicit", type(self).__name__)
        # importing implicit loads scipy's OpenBLAS, so limit threads after it: implicit
        # warns (and runs several times slower) when BLAS threads compete with its own
        from scipy.sparse import csr_matrix
        from threadpoolctl import threadpool_limits

        self.prepare(graph)
        pairs = torch.unique(torch.stack([graph.train.user, graph.train.item]), dim=1).numpy()
        x = csr_matrix((np.ones(pairs.shape[1], dtype=np.float32), (pairs[0], pairs[1])),
                       shape=(graph.num_users, graph.num_items))
        with threadpool_limits(1, "blas"):
            model = self.make_implicit()
            model.fit(x, show_progress=False)
        self.user_factors = torch.from_numpy(np.ascontiguousarray(model.user_factors, dtype=np.float32))
        self.item_factors = torch.from_numpy(np.ascontiguousarray(model.item_factors, dtype=np.float32))
        return self

    @torch.no_grad()
    def score(self, users: torch.Tensor, context: Optional[Context] = None) -> torch.Tensor:
        return self.user_factors[torch.as_tensor(users, dtype=torch.long).cpu()] @ self.item_factors.T

    def item_embeddings(self) -> torch.Tensor:
        return self.item_factors[:, : self.factors]

    def state(self) -> Dict[str, torch.Tensor]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def load_state(self, state: Dict[str, torch.Tensor]) -> None:
        self.user_factors = state["user_factors"].float()
        self.item_factors = state["item_factors"].float()


class ImplicitALS(ImplicitMF):
    """Weighted ALS for implicit feedback (Hu, Koren and Volinsky, 2008,
    https://doi.org/10.1109/ICDM.2008.22), through ``implicit.cpu.als.AlternatingLeastSquares``.

    .. math::
        \\min_{U, V} \\sum_{u, i} c_{ui} (p_{ui} - \\mathbf{u}_u^\\top \\mathbf{v}_i)^2
        + \\lambda \\Big(\\sum_u \\|\\mathbf{u}_u\\|^2 + \\sum_i \\|\\mathbf{v}_i\\|^2\\Big)

    with :math:`p_{ui} = X_{ui}` and, in ``implicit`` 0.7's convention,
    :math:`c_{ui} = \\alpha` for train pairs and 1 elsewhere (the paper's
    :math:`1 + \\alpha`). Solved with the library's conjugate-gradient steps.

    Each user's (and each item's) least-squares solve depends only on the other side's
    factors, so the result does not depend on ``num_threads``: the same ``seed`` gives the
    same factors with any thread count (the default, 1, leaves the other cores alone).

    Args:
        factors: latent dimension (default: 64).
        regularization: the L2 weight :math:`\\lambda` (>= 0) (default: 0.01).
        alpha: the confidence :math:`\\alpha` (> 0) of a train pair (default: 1.0).
        iterations: ALS sweeps (default: 15).
        seed: seeds the factors' random start (``random_state``) (default: 0).
        num_threads: ``implicit``'s threads, 0 for all cores (default: 1).

    Example:
        >>> model = ImplicitALS(factors=32, alpha=10.0).fit(graph)  # doctest: +SKIP
        >>> model.score(torch.tensor([0, 1])).shape  # doctest: +SKIP
        torch.Size([2, graph.num_items])
    """

    name = "implicit-ALS"

    def __init__(self, factors: int = 64, regularization: float = 0.01, alpha: float = 1.0, iterations: int = 15,
                 seed: int = 0, num_threads: int = 1) -> None:
        super().__init__(factors, iterations, seed, num_threads)
        if not regularization >= 0:
            raise ValueError(f"ImplicitALS regularization must be >= 0, got {regularization!r}")
        if not alpha > 0:
            raise ValueError(f"ImplicitALS alpha must be > 0 (the confidence of a train pair), got {alpha!r}")
        self.regularization, self.alpha = float(regularization), float(alpha)

    def config(self) -> Dict[str, Any]:
        return {**super().config(), "regularization": self.regularization, "alpha": self.alpha}

    def make_implicit(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization, alpha=self.alpha, iterations=self.iterations,
            random_state=self.seed, num_threads=self.num_threads)


class ImplicitBPR(ImplicitMF):
    """BPR matrix factorisation (Rendle et al., 2009, https://arxiv.org/abs/1205.2618),
    through ``implicit.cpu.bpr.BayesianPersonalizedRanking``.

    .. math::
        \\max_{U, V} \\sum_{(u, i, j)} \\ln \\sigma(\\hat{y}_{ui} - \\hat{y}_{uj})
        - \\lambda \\|\\Theta\\|^2, \\qquad \\hat{y}_{ui} = \\mathbf{u}_u^\\top \\mathbf{v}_i + b_i

    by SGD over sampled triples (a train pair ``(u, i)`` and an item ``j`` the user has not
    consumed). ``implicit`` stores the item bias :math:`b_i` as an extra factor column
    (the user's is a constant 1), so the saved factors are ``[*, factors + 1]`` and
    :meth:`item_embeddings` drops that column.

    With ``num_threads`` > 1, ``implicit`` updates the factors from several threads at once
    without locks (Hogwild), and the result changes from run to run; only
    ``num_threads=1`` (the default) gives the same factors for the same ``seed``.

    Args:
        factors: latent dimension, without the bias (default: 64).
        learning_rate: SGD step (> 0) (default: 0.01).
        regularization: the L2 weight :math:`\\lambda` (>= 0) (default: 0.01).
        iterations: epochs over the train pairs (default: 100).
        seed: seeds the factors and the sampling (``random_state``) (default: 0).
        num_threads: ``implicit``'s threads, 0 for all cores; 1 for reproducible factors
            (default: 1).

    Example:
        >>> model = ImplicitBPR(factors=32, learning_rate=0.05).fit(graph)  # doctest: +SKIP
        >>> model.user_factors.shape  # doctest: +SKIP
        torch.Size([graph.num_users, 33])
    """

    name = "implicit-BPR"

    def __init__(self, factors: int = 64, learning_rate: float = 0.01, regularization: float = 0.01,
                 iterations: int = 100, seed: int = 0, num_threads: int = 1) -> None:
        super().__init__(factors, iterations, seed, num_threads)
        if not learning_rate > 0:
            raise ValueError(f"ImplicitBPR learning_rate must be > 0, got {learning_rate!r}")
        if not regularization >= 0:
            raise ValueError(f"ImplicitBPR regularization must be >= 0, got {regularization!r}")
        self.learning_rate, self.regularization = float(learning_rate), float(regularization)

    def config(self) -> Dict[str, Any]:
        return {**super().config(), "learning_rate": self.learning_rate, "regularization": self.regularization}

    def prepare(self, graph: RecGraph) -> None:
        super().prepare(graph)
        self.user_factors = torch.zeros(graph.num_users, self.factors + 1)  # + the bias column
        self.item_factors = torch.zeros(graph.num_items, self.factors + 1)

    def make_implicit(self) -> Any:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(
            factors=self.factors, learning_rate=self.learning_rate, regularization=self.regularization,
            iterations=self.iterations, random_state=self.seed, num_threads=self.num_threads)
