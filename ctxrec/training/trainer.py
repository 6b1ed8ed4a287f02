"""One training loop for every trainable model: mini-batches of training events,
BPR with sampled negatives, validation each epoch, early stopping on validation
only, the best weights restored at the end."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch

from ctxrec.graph.export import RecGraph
from ctxrec.training.recommender import Context
from ctxrec.training.sampling import NegativeSampler


@dataclass
class TrainConfig:
    """Training settings.

    Args:
        epochs: maximum epochs (default: 100).
        batch_size: training events per step (default: 4096).
        lr: Adam learning rate (default: 0.005).
        weight_decay: Adam weight decay (default: 0.0).
        num_negatives: sampled negatives per positive (default: 4).
        patience: epochs without a better validation metric before stopping (default: 10).
        metric: validation metric for early stopping and model selection (default: "ndcg@20").
        seed: seed for initialisation, shuffling and sampling (default: 0).
        device: "cpu", "cuda", or None for automatic (default: None).
        progress: show a progress bar with the loss and validation metric (default: False).
    """

    epochs: int = 100
    batch_size: int = 4096
    lr: float = 0.005
    weight_decay: float = 0.0
    num_negatives: int = 4
    patience: int = 10
    metric: str = "ndcg@20"
    seed: int = 0
    device: Optional[str] = None
    progress: bool = False


@dataclass
class History:
    """Per-epoch loss and validation metric, and the chosen epoch."""

    loss: List[float] = field(default_factory=list)
    val: List[float] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = -math.inf
    seconds: float = 0.0

    def as_dict(self) -> Dict[str, object]:
        return {"loss": self.loss, "val": self.val, "best_epoch": self.best_epoch,
                "best_val": self.best_val, "seconds": self.seconds}


def resolve_device(device: Optional[str]) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Trainer:
    """Fits a model that has ``prepare(graph)`` and ``loss(users, items, negatives, context)``."""

    def __init__(self, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()

    def fit(self, model, graph: RecGraph) -> History:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        device = resolve_device(cfg.device)
        model.prepare(graph)
        model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        events = graph.train
        sampler = NegativeSampler(events.user, events.item, graph.num_items)
        hist = History()
        best_state = copy.deepcopy(model.state_dict())
        bad_epochs = 0
        start = time.perf_counter()
        bar = None
        if cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.epochs, desc=f"train {model.name}", leave=False)
        for epoch in range(cfg.epochs):
            model.train()
            perm = torch.randperm(len(events), generator=gen)
            total, steps = 0.0, 0
            for lo in range(0, len(perm), cfg.batch_size):
                b = perm[lo: lo + cfg.batch_size]
                users, items = events.user[b], events.item[b]
                neg = sampler.sample(users, cfg.num_negatives, generator=gen)
                ctx = Context(events.time[b], events.place[b])
                loss = model.loss(users.to(device), items.to(device), neg.to(device), ctx.to(device))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
                steps += 1
            model.eval()
            val = model.evaluate("val").get(cfg.metric, 0.0)
            hist.loss.append(total / max(steps, 1))
            hist.val.append(val)
            if val > hist.best_val:
                hist.best_val, hist.best_epoch, bad_epochs = val, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_epochs += 1
            if bar is not None:
                bar.set_postfix(loss=f"{hist.loss[-1]:.4f}", **{cfg.metric: f"{val:.4f}"})
                bar.update(1)
            if bad_epochs >= cfg.patience:
                break
        if bar is not None:
            bar.close()
        model.load_state_dict(best_state)
        model.eval()
        hist.seconds = time.perf_counter() - start
        return hist
