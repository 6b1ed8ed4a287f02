"""Matrix factorisation trained with BPR (Rendle et al., 2009, https://arxiv.org/abs/1205.2618):
LightGCN without propagation, through the same :class:`~ctxrec.training.trainer.Trainer`."""
from __future__ import annotations

from dataclasses import asdict
from typing import Dict, Optional

import torch

from ctxrec.data import RecGraph
from ctxrec.training.losses import BatchEmbeddings
from ctxrec.training.recommender import Context, Recommender
from ctxrec.training.trainer import Trainer, TrainConfig


class MFBPR(torch.nn.Module, Recommender):
    """Matrix factorisation: :math:`\\hat{y}_{ui} = \\mathbf{p}_u^\\top \\mathbf{q}_i`.

    One learned vector per user and per item, nothing else (no features, no context). The
    loss comes from the :class:`TrainConfig`; unlike the project-wide default
    (``full_softmax``), MF's default is ``"bpr"``, also when ``train`` is a dict without
    ``loss``, so ``MFBPR(train={"lr": 1e-3})`` is still MF-BPR.

    Args:
        embedding_dim: embedding size (default: 64).
        reg: L2 weight on the batch's embeddings (default: 1e-4).
        init_std: standard deviation of the normal initialisation (default: 0.1).
        train: a :class:`TrainConfig` or its fields as a dict
            (default: ``TrainConfig(loss="bpr")``).

    Example:
        >>> model = MFBPR(embedding_dim=32, train={"epochs": 20}).fit(graph)  # doctest: +SKIP
        >>> model.item_embeddings().shape  # doctest: +SKIP
        torch.Size([graph.num_items, 32])
    """

    name = "MF-BPR"

    def __init__(self, embedding_dim: int = 64, reg: float = 1e-4, init_std: float = 0.1,
                 train: TrainConfig | dict | None = None) -> None:
        torch.nn.Module.__init__(self)
        if not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(f"MFBPR embedding_dim must be a positive integer, got {embedding_dim!r}")
        self.embedding_dim, self.reg, self.init_std = embedding_dim, reg, init_std
        if isinstance(train, dict):
            train = TrainConfig(**{"loss": "bpr", **train})
        self.train_config = train or TrainConfig(loss="bpr")
        if self.train_config.loss != "bpr":  # keep tables honest about what was trained
            self.name = f"MF-{self.train_config.loss}"
        self.user_emb: Optional[torch.nn.Embedding] = None
        self.item_emb: Optional[torch.nn.Embedding] = None
        self.history = None

    def config(self) -> dict:
        return {"embedding_dim": self.embedding_dim, "reg": self.reg, "init_std": self.init_std,
                "train": asdict(self.train_config)}

    def prepare(self, graph: RecGraph) -> None:
        self.graph = graph
        torch.manual_seed(self.train_config.seed)
        self.user_emb = torch.nn.Embedding(graph.num_users, self.embedding_dim)
        self.item_emb = torch.nn.Embedding(graph.num_items, self.embedding_dim)
        torch.nn.init.normal_(self.user_emb.weight, std=self.init_std)
        torch.nn.init.normal_(self.item_emb.weight, std=self.init_std)

    def fit(self, graph: RecGraph) -> "MFBPR":
        self.history = Trainer(self.train_config).fit(self, graph)
        return self

    def batch(self, users, items, negatives, context: Context, catalogue: bool = False) -> BatchEmbeddings:
        u, p, n = self.user_emb(users), self.item_emb(items), self.item_emb(negatives)
        reg = (u.pow(2).sum() + p.pow(2).sum() + n.pow(2).sum()) / len(users)
        out = BatchEmbeddings(u, p, n, self.reg * reg)
        if catalogue:
            out.catalogue, out.targets = self.item_emb.weight, items
        return out

    @torch.no_grad()
    def score(self, users: torch.Tensor, context: Optional[Context] = None) -> torch.Tensor:
        w = self.user_emb.weight
        return w[users.to(w.device)] @ self.item_emb.weight.T

    def item_embeddings(self) -> torch.Tensor:
        return self.item_emb.weight.detach()

    def state(self) -> Dict[str, torch.Tensor]:
        return dict(self.state_dict())

    def load_state(self, state: Dict[str, torch.Tensor]) -> None:
        self.load_state_dict(state)
        self.eval()
