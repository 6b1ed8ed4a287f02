"""One training loop for every trainable model.

Mini-batches of training events (user, item, context) with negatives that are never the
user's positives, a loss chosen by name (BPR or sampled softmax, optionally with in-batch
negatives), validation each epoch, early stopping and model selection on validation only,
the best weights restored at the end. The same loop runs on CPU or GPU (AMP with bfloat16
on CUDA), resumes from a safetensors checkpoint, and runs data-parallel under ``torchrun``
(each process takes a shard of every batch; gradients are averaged by DDP).

A model plugs in with ``prepare(graph)``, ``batch(users, items, negatives, context) ->
BatchEmbeddings`` and the :class:`~ctxrec.training.recommender.Recommender` interface.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import torch
from torch import nn

from ctxrec.data import RecGraph
from ctxrec.training.losses import LOSSES, batch_loss
from ctxrec.training.metrics import METRICS
from ctxrec.training.recommender import Context
from ctxrec.training.sampling import NegativeSampler


@dataclass
class TrainConfig:
    """Training settings.

    Args:
        epochs: maximum epochs (default: 100).
        batch_size: training events per step, over all processes (default: 4096).
        lr: Adam learning rate (default: 0.005).
        weight_decay: Adam weight decay (default: 0.0).
        num_negatives: sampled negatives per positive (default: 4).
        loss: ``"bpr"``, ``"softmax"`` (sampled) or ``"full_softmax"`` (over every item;
            ``num_negatives`` is then unused) (default: "full_softmax").
        softmax_items: ``full_softmax`` ranks each positive among every item of a catalogue of
            up to this many items; above it, among this many items drawn uniformly for each step
            (shared by the batch), with the log-Q correction, so a step costs ``batch_size x
            softmax_items`` scores whatever the catalogue's size (default: 4096).
        temperature: softmax temperature (default: 1.0).
        in_batch_negatives: also use the batch's other positive items as negatives, except
            the user's own positives (default: False).
        num_neighbors: neighbours sampled per hop for mini-batch message passing (e.g.
            ``[10, 5]``; ``-1`` takes all); ``None`` propagates over the full graph for every
            batch, which is faster for small graphs (default: None).
        patience: epochs without a better validation metric before stopping (default: 10).
        metric: validation metric for early stopping and model selection (default: "ndcg@20").
        val_protocol: how validation queries are made, as in
            :func:`ctxrec.training.evaluation.evaluate`: ``"per_context"``, ``"per_user"`` or
            ``"session"`` (default: "per_context").
        seed: seed for initialisation, shuffling and sampling (default: 0).
        device: "cpu", "cuda", "cuda:1", or None for automatic (default: None).
        amp: bfloat16 autocast when training on CUDA; ignored on CPU (default: True).
        checkpoint_dir: write a checkpoint there after every epoch (default: None).
        resume: continue from the checkpoint in ``checkpoint_dir`` when there is one (default: True).
        progress: show a progress bar with the loss and validation metric (default: False).
    """

    epochs: int = 100
    batch_size: int = 4096
    lr: float = 0.005
    weight_decay: float = 0.0
    num_negatives: int = 4
    loss: str = "full_softmax"
    softmax_items: int = 4096
    temperature: float = 1.0
    in_batch_negatives: bool = False
    num_neighbors: Optional[List[int]] = None
    patience: int = 10
    metric: str = "ndcg@20"
    val_protocol: str = "per_context"
    seed: int = 0
    device: Optional[str] = None
    amp: bool = True
    checkpoint_dir: Optional[str] = None
    resume: bool = True
    progress: bool = False

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"TrainConfig.loss must be one of {LOSSES}, got {self.loss!r}")
        for name in ("epochs", "batch_size", "patience", "softmax_items"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.num_negatives, int) or self.num_negatives < 0:
            raise ValueError(f"TrainConfig.num_negatives must be >= 0, got {self.num_negatives!r}")
        if self.num_negatives == 0 and not self.in_batch_negatives and self.loss != "full_softmax":
            raise ValueError("TrainConfig: num_negatives=0 needs in_batch_negatives=True (no negatives otherwise)")
        from ctxrec.training.evaluation import ALIASES, PROTOCOLS

        self.val_protocol = ALIASES.get(self.val_protocol, self.val_protocol)
        if self.val_protocol not in PROTOCOLS:
            raise ValueError(f"TrainConfig.val_protocol must be one of {PROTOCOLS}, got {self.val_protocol!r}")
        for name in ("lr", "temperature"):
            if not 0 < getattr(self, name) < math.inf:
                raise ValueError(f"TrainConfig.{name} must be finite and > 0, got {getattr(self, name)!r}")
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"TrainConfig.weight_decay must be finite and >= 0, got {self.weight_decay!r}")
        name, _, k = str(self.metric).partition("@")
        if name not in METRICS or k not in ("10", "20"):  # validation computes these cut-offs only
            raise ValueError(f"TrainConfig.metric must be one of {METRICS} at @10 or @20 (e.g. 'ndcg@20'), "
                             f"got {self.metric!r}")
        if self.device is not None:
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError) as e:
                raise ValueError(f"TrainConfig.device {self.device!r} is not a device ({e}); use 'cpu', 'cuda' "
                                 "or 'cuda:1'") from None


@dataclass
class History:
    """Per-epoch loss and validation metric, and the chosen epoch."""

    loss: List[float] = field(default_factory=list)
    val: List[float] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = -math.inf
    seconds: float = 0.0
    epoch_seconds: List[float] = field(default_factory=list)  # training steps only, no validation
    resumed_from: int = -1

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)


def resolve_device(device: Optional[str]) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _dist():
    """``(rank, world_size)`` of an initialised process group, else ``(0, 1)``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _Step(nn.Module):
    """A model's training loss as ``forward``, so DistributedDataParallel can wrap it."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, sampler: NegativeSampler,
                 known: Optional[torch.Tensor] = None, allowed: Optional[int] = None) -> None:
        super().__init__()
        self.model, self.cfg, self.sampler, self.known = model, cfg, sampler, known
        # how many items the softmax ranks, which drawn columns come from (None: every item)
        self.allowed = sampler.num_items if allowed is None else allowed

    def forward(self, users, items, negatives, time_slot, place, session_items=None, columns=None):
        full = self.cfg.loss == "full_softmax"
        emb = self.model.batch(users, items, negatives, Context(time_slot, place, session_items), catalogue=full)
        in_batch = None
        if self.cfg.in_batch_negatives:
            other = items.unsqueeze(0).expand(len(items), -1)
            in_batch = ~self.sampler.is_positive(users.unsqueeze(1).expand_as(other).cpu(), other.cpu()).to(users.device)
            in_batch &= items.unsqueeze(0) != items.unsqueeze(1)
        known = None if self.known is None else self.known.to(users.device)
        return batch_loss(emb, self.cfg.loss, self.cfg.temperature, in_batch, known, columns, self.allowed)


class Trainer:
    """Fits a model that has ``prepare(graph)`` and ``batch(...) -> BatchEmbeddings``."""

    def __init__(self, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()

    def fit(self, model, graph: RecGraph) -> History:
        from ctxrec.training.checkpoint import load_checkpoint, save_checkpoint

        cfg = self.config
        rank, world = _dist()
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)  # the same on every process: one global batch order
        device = resolve_device(cfg.device)
        model.prepare(graph)
        model.to(device)
        events = graph.train
        if len(events) == 0:
            raise ValueError(f"{model.name}: the graph has no training events ({graph.num_users} users, "
                             f"{graph.num_items} items); ingest interactions that reference known items first")
        # items without a training event (e.g. held out as cold) are neither negatives nor in
        # the full softmax: training must not learn that unseen items are bad
        known = torch.bincount(events.item, minlength=graph.num_items) > 0
        pool = None if bool(known.all()) else torch.nonzero(known).view(-1)
        sampler = NegativeSampler(events.user, events.item, graph.num_items, pool=pool)
        allowed = torch.arange(graph.num_items) if pool is None else pool
        step = _Step(model, cfg, sampler, None if pool is None else known, len(allowed))
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            step = DistributedDataParallel(step, device_ids=[device.index] if device.type == "cuda" else None,
                                           find_unused_parameters=True)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        hist, best_state, bad_epochs, first = History(), copy.deepcopy(model.state_dict()), 0, 0
        if cfg.checkpoint_dir and cfg.resume:
            meta = load_checkpoint(cfg.checkpoint_dir, model, opt, gen)
            if meta is not None:
                hist = History(**meta["history"])
                hist.resumed_from = first = meta["epoch"] + 1
                bad_epochs = meta["bad_epochs"]
                best_state = meta["best_state"] or best_state
        amp = cfg.amp and device.type == "cuda"
        # without validation pairs (a refit on train+val for a chosen number of epochs) there is
        # nothing to select on: no early stopping, and the last epoch's weights are the result
        validate = len(graph.val) > 0
        start = time.perf_counter() - hist.seconds
        bar = None
        if cfg.progress and rank == 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.epochs, initial=first, desc=f"train {model.name}", leave=False)
        for epoch in range(first, cfg.epochs):
            if bad_epochs >= cfg.patience:
                break
            model.train()
            perm = torch.randperm(len(events), generator=gen)
            total, steps, epoch_start = 0.0, 0, time.perf_counter()
            for lo in range(0, len(perm), cfg.batch_size):
                b = perm[lo: lo + cfg.batch_size]
                if cfg.loss == "full_softmax":
                    neg = torch.zeros(len(b), 0, dtype=torch.long)
                else:
                    neg = sampler.sample(events.user[b], cfg.num_negatives, generator=gen)
                share = 1.0
                if world > 1:  # this process's shard of the global batch (and of its negatives)
                    shard = torch.arange(rank, len(b), world)
                    # DDP averages the shards' gradients; weighting each shard's mean loss by its
                    # share of the batch makes that the whole batch's mean gradient, as on one
                    # process, also when the shards differ in size
                    share = len(shard) * world / len(b)
                    if len(shard) == 0:  # fewer events than processes: join DDP's all-reduce with weight 0
                        shard = shard.new_zeros(1)
                    b, neg = b[shard], neg[shard]
                args = (events.user[b], events.item[b], neg, events.time[b], events.place[b])
                if events.prefix is not None and getattr(model, "session_len", 0):
                    args += (events.prefix[b],)
                columns = None
                if cfg.loss == "full_softmax" and len(allowed) > cfg.softmax_items:  # the same draw on every process
                    columns = allowed[torch.randint(len(allowed), (cfg.softmax_items,), generator=gen)].to(device)
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                    loss = step(*(a.to(device) for a in args), columns=columns) * share
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
                steps += 1
            if world > 1:  # the epoch's loss over every shard, not this process's alone
                import torch.distributed as dist

                t = torch.tensor([total / world], dtype=torch.float64, device=device if device.type == "cuda" else "cpu")
                dist.all_reduce(t)
                total = float(t.item())
            hist.epoch_seconds.append(time.perf_counter() - epoch_start)
            model.eval()
            hist.loss.append(total / max(steps, 1))
            val = self._validate(model, cfg, rank, world, device) if validate else math.nan
            hist.val.append(val)
            if not validate:  # a refit: every epoch runs and the last one is kept
                hist.best_epoch, best_state = epoch, None
            elif val > hist.best_val:
                hist.best_val, hist.best_epoch, bad_epochs = val, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_epochs += 1
            hist.seconds = time.perf_counter() - start
            if cfg.checkpoint_dir and rank == 0:  # one file, replaced atomically: a kill leaves this epoch or the last
                save_checkpoint(cfg.checkpoint_dir, model, opt, gen,
                                {"epoch": epoch, "bad_epochs": bad_epochs, "history": hist.as_dict(),
                                 "config": asdict(cfg), "model": model.name}, best_state=best_state)
            if bar is not None:
                bar.set_postfix(loss=f"{hist.loss[-1]:.4f}", **{cfg.metric: f"{val:.4f}"})
                bar.update(1)
        if bar is not None:
            bar.close()
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        hist.seconds = time.perf_counter() - start
        return hist

    @staticmethod
    def _validate(model, cfg: TrainConfig, rank: int, world: int, device: torch.device) -> float:
        """Validation metric, computed on rank 0 and shared so every process stops together."""
        val = model.evaluate("val", protocol=cfg.val_protocol).get(cfg.metric, 0.0) if rank == 0 else 0.0
        if world > 1:
            import torch.distributed as dist

            t = torch.tensor([val], dtype=torch.float64, device=device if device.type == "cuda" else "cpu")
            dist.broadcast(t, 0)
            val = float(t.item())
        return val
