"""Gated fusion: per-modality projections mixed by a learned, input-dependent gate."""
from __future__ import annotations

from typing import Dict, Mapping

import torch
from torch import Tensor, nn

from ctxrec.fusion.base import Fusion, register_fusion


class GatedFusion(Fusion):
    """Weighted sum of per-modality projections, the weights a softmax gate over present modalities.

    In the spirit of the Gated Multimodal Unit (`Arevalo et al., 2017
    <https://arxiv.org/abs/1702.01992>`_):

    .. math::
        h_{im} = p_{im} W_m x_{im}, \\qquad
        g_i = \\mathrm{softmax}_{m:\\,p_{im}=1}\\big(G [h_{i1} \\,\\|\\, \\dots \\,\\|\\, h_{iM}] + b\\big), \\qquad
        f_i = \\textstyle\\sum_m g_{im} h_{im}

    Absent modalities get weight 0 and the weights of the present ones sum to 1; an item
    with no modality gets a zero vector and zero weights.

    Args:
        dims (Dict[str, int]): modality name -> input width.
        out_dim (int): output width.

    Example:
        >>> fuse = GatedFusion({"text": 384, "image": 512}, 64)
        >>> out = fuse({"text": torch.randn(3, 384), "image": torch.randn(3, 512)},
        ...            {"text": torch.tensor([1, 1, 0]).bool(), "image": torch.tensor([1, 0, 0]).bool()})
        >>> out["fused"].shape, out["weights"].shape  # weights: [N, M], in `dims` order
        (torch.Size([3, 64]), torch.Size([3, 2]))
    """

    def __init__(self, dims: Mapping[str, int], out_dim: int) -> None:
        super().__init__(dims, out_dim)
        self.proj = nn.ModuleDict({m: nn.Linear(d, out_dim) for m, d in self.dims.items()})
        self.gate = nn.Linear(len(self.dims) * out_dim, len(self.dims))

    def fuse(self, xs: Dict[str, Tensor], ps: Dict[str, Tensor]) -> Dict[str, Tensor]:
        h = torch.stack([self.proj[m](xs[m]) * ps[m] for m in self.modalities], dim=1)  # [N, M, D]
        present = torch.cat([ps[m] for m in self.modalities], dim=1)  # [N, M]
        logits = self.gate(h.flatten(1))
        # a finite fill, not -inf: a row with no modality then gives a uniform softmax
        # (zeroed below) instead of NaN, whose gradient would poison the gate's weights
        logits = logits.masked_fill(present == 0, torch.finfo(logits.dtype).min)
        weights = torch.softmax(logits, dim=1) * present
        return {"fused": (weights.unsqueeze(2) * h).sum(1), "weights": weights}


register_fusion("gated", GatedFusion)
