"""Alignment: projection heads that put several modalities into one shared space.

Encoders that were not trained together (MiniLM text, a CLIP image tower, log-mel audio)
write into unrelated spaces. :class:`Alignment` learns one head per modality with CLIP's
symmetric InfoNCE loss over the items that have both modalities of a pair, so that an
item's text and its image (or sound) land close together. A text query projected by the
text head then finds items by their projected image vectors. The pairs are an item's own
modalities; no interactions are used, so fitting it on the whole catalogue leaks nothing.

Example:
    >>> align = Alignment({"text": 384, "image": 512}, dim=64).fit(features, masks)  # doctest: +SKIP
    >>> q = align.project("text", text_encoder.encode(["a red star"])[0])             # doctest: +SKIP
    >>> scores = q @ align.project("image", features["image"]).T                      # doctest: +SKIP
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ctxrec.fusion.base import Standardize


def info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE between row-aligned, L2-normalised ``a`` and ``b`` (`CLIP
    <https://arxiv.org/abs/2103.00020>`_): row ``i`` of ``a`` should pick row ``i`` of ``b``
    among all rows of ``b``, and the other way round."""
    logits = a @ b.T / temperature
    target = torch.arange(a.size(0), device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


class Alignment(nn.Module):
    """Per-modality heads into a shared, L2-normalised space.

    Args:
        dims: modality name -> input width.
        dim: width of the shared space (default: 64).
        temperature: InfoNCE temperature (default: 0.1).
        hidden: width of a hidden layer in each head; ``None`` for linear heads (default: None).
    """

    def __init__(self, dims: Mapping[str, int], dim: int = 64, temperature: float = 0.1,
                 hidden: Optional[int] = None) -> None:
        super().__init__()
        if len(dims) < 2:
            raise ValueError(f"Alignment needs at least two modalities, got {sorted(dims)}")
        if not (isinstance(dim, int) and dim > 0) or not temperature > 0:
            raise ValueError(f"Alignment: `dim` must be a positive integer and `temperature` > 0, "
                             f"got dim={dim!r}, temperature={temperature!r}")
        self.dims, self.dim, self.temperature, self.hidden = dict(dims), dim, float(temperature), hidden
        self.scale = Standardize(dims)

        def head(d: int) -> nn.Module:
            if hidden is None:
                return nn.Linear(d, dim)
            return nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, dim))

        self.heads = nn.ModuleDict({m: head(d) for m, d in dims.items()})
        self.history: List[Tuple[float, float]] = []
        self.best_epoch = 0

    @property
    def modalities(self) -> List[str]:
        return list(self.dims)

    def config(self) -> dict:
        return {"dims": self.dims, "dim": self.dim, "temperature": self.temperature, "hidden": self.hidden}

    def project(self, modality: str, x: Tensor) -> Tensor:
        """``x`` ([N, dims[modality]]) in the shared space, L2-normalised."""
        if modality not in self.heads:
            raise KeyError(f"Alignment has no head for {modality!r}; it aligns {self.modalities}")
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.dim() != 2 or x.size(1) != self.dims[modality]:
            raise ValueError(f"Alignment.project({modality!r}): expected [N, {self.dims[modality]}], "
                             f"got {tuple(x.shape)}")
        out = F.normalize(self.heads[modality](self.scale(modality, x)), dim=-1)
        return out if self.training else out.detach()  # after fit: plain vectors for search and plots

    def pairs(self) -> List[Tuple[str, str]]:
        return list(itertools.combinations(self.modalities, 2))

    def loss(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor],
             rows: Optional[Tensor] = None) -> Tensor:
        """Mean InfoNCE over modality pairs, each on the ``rows`` present in both."""
        total, n = 0.0, 0
        for a, b in self.pairs():
            both = mask[a].bool() & mask[b].bool()
            if rows is not None:
                both = both[rows]
            idx = (rows[both] if rows is not None else both.nonzero().squeeze(1))
            if idx.numel() < 2:
                continue
            total = total + info_nce(self.project(a, features[a][idx]), self.project(b, features[b][idx]),
                                     self.temperature)
            n += 1
        if n == 0:
            raise ValueError("Alignment.loss: no modality pair has two or more rows present in both")
        return total / n

    def fit(self, features: Mapping[str, Tensor], mask: Mapping[str, Tensor], epochs: int = 200,
            lr: float = 1e-2, batch_size: int = 1024, weight_decay: float = 1e-4, seed: int = 0,
            val_fraction: float = 0.1, patience: int = 10,
            val_rows: Optional[Sequence[int]] = None) -> "Alignment":
        """Fit the standardisation and the heads on ``features`` / ``mask`` (``[N, d_m]`` / ``[N]``).

        Mini-batches of ``batch_size`` rows. A ``val_fraction`` of the rows (or the given
        ``val_rows``) is held out and the heads of the epoch with the lowest held-out loss are
        kept (training stops after ``patience`` epochs without improvement): with a few
        hundred items, heads from a 384-wide text space memorise the pairs within a hundred
        epochs otherwise. The standardisation is fitted on the other rows only.
        :attr:`history` gets ``(train loss, held-out loss)`` per epoch, :attr:`best_epoch`
        the number of epochs of the heads kept.

        Args:
            val_rows: row indices to hold out for early stopping, instead of a random
                ``val_fraction`` (e.g. a benchmark's validation items) (default: None).
        """
        features = {m: torch.as_tensor(features[m], dtype=torch.float32) for m in self.dims}
        mask = {m: torch.as_tensor(mask[m]).bool() for m in self.dims}
        n = {x.size(0) for x in features.values()} | {p.size(0) for p in mask.values()}
        if len(n) != 1:
            raise ValueError(f"Alignment.fit: features and masks must have one row count, got {sorted(n)}")
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        for head in self.heads.values():
            for p in head.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
                else:
                    nn.init.zeros_(p)
        opt = torch.optim.Adam(self.heads.parameters(), lr=lr, weight_decay=weight_decay)
        n = n.pop()
        order = torch.randperm(n, generator=gen)
        if val_rows is not None:
            val = torch.as_tensor(list(val_rows), dtype=torch.long).unique()
            if len(val) and (val.min() < 0 or val.max() >= n):
                raise ValueError(f"Alignment.fit: val_rows must be row indices in [0, {n}), "
                                 f"got {int(val.min())}..{int(val.max())}")
            held_out = torch.zeros(n, dtype=torch.bool)
            held_out[val] = True
            fit_rows = order[~held_out[order]]
            n_val = len(val)
        else:
            n_val = int(n * val_fraction) if n * val_fraction >= 8 else 0
            val, fit_rows = order[:n_val], order[n_val:]
        in_fit = torch.zeros(n, dtype=torch.bool)
        in_fit[fit_rows] = True
        # the held-out rows' statistics stay out of the scaling, as their pairs stay out of the loss
        self.scale.fit(features, {m: p & in_fit for m, p in mask.items()})
        self.history = []
        self.best_epoch = 0
        best, best_state, waited = float("inf"), None, 0
        for _ in range(epochs):
            self.train()
            perm = fit_rows[torch.randperm(len(fit_rows), generator=gen)]
            losses = []
            for start in range(0, len(perm), batch_size):
                loss = self.loss(features, mask, perm[start:start + batch_size])
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            if not n_val:
                self.history.append((sum(losses) / len(losses), float("nan")))
                self.best_epoch = len(self.history)
                continue
            self.eval()
            with torch.no_grad():
                held = float(self.loss(features, mask, val))
            self.history.append((sum(losses) / len(losses), held))
            if held < best - 1e-4:
                best, waited, self.best_epoch = held, 0, len(self.history)
                best_state = {k: v.detach().clone() for k, v in self.heads.state_dict().items()}
            else:
                waited += 1
                if waited >= patience:
                    break
        if best_state is not None:
            self.heads.load_state_dict(best_state)
        self.eval()
        return self

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.safetensors`` and ``<path>.json``; returns the JSON path."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path.with_suffix(".safetensors")))
        meta = path.with_suffix(".json")
        meta.write_text(json.dumps({"config": self.config(), "history": self.history[-5:]}, indent=2))
        return meta

    @classmethod
    def load(cls, path: str | Path) -> "Alignment":
        from safetensors.torch import load_file

        path = Path(path)
        meta = path.with_suffix(".json")
        if not meta.exists():
            raise FileNotFoundError(f"No alignment at {meta}; write one with Alignment.save(path)")
        align = cls(**json.loads(meta.read_text())["config"])
        align.load_state_dict(load_file(str(path.with_suffix(".safetensors"))))
        return align.eval()


def fit_alignment(vectors: Mapping[str, Tuple[Sequence[str], Tensor]], **kwargs) -> Alignment:
    """Align vectors given per modality as ``(ids, [N, d])`` over the union of ids.

    A row of zeros counts as absent (the stores keep masked items as zero vectors).
    ``kwargs`` go to :class:`Alignment` (``dim``, ``temperature``, ``hidden``) and
    :meth:`Alignment.fit` (``epochs``, ``lr``, ...).
    """
    init_keys = {"dim", "temperature", "hidden"}
    ids = sorted(set().union(*(map(str, i) for i, _ in vectors.values())))
    pos = {i: k for k, i in enumerate(ids)}
    feats: Dict[str, Tensor] = {}
    masks: Dict[str, Tensor] = {}
    for m, (mids, mat) in vectors.items():
        mat = torch.as_tensor(mat, dtype=torch.float32)
        x = torch.zeros(len(ids), mat.size(1))
        rows = torch.tensor([pos[str(i)] for i in mids], dtype=torch.long)
        x[rows] = mat
        feats[m], masks[m] = x, x.abs().sum(1) > 0
    align = Alignment({m: x.size(1) for m, x in feats.items()}, **{k: v for k, v in kwargs.items() if k in init_keys})
    return align.fit(feats, masks, **{k: v for k, v in kwargs.items() if k not in init_keys})
