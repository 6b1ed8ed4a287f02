"""Mean fusion: project each modality to one width and average the present ones."""
from __future__ import annotations

from typing import Dict, Mapping

import torch
from torch import nn


class MeanFusion(nn.Module):
    """Average of per-modality linear projections over the modalities an item has.

    :math:`f_i = \\frac{\\sum_m p_{im} W_m x_{im}}{\\max(1, \\sum_m p_{im})}` with presence
    :math:`p_{im} \\in \\{0, 1\\}`; an item with no modality gets a zero vector.

    Args:
        dims: modality name -> input width.
        out_dim: output width.

    Example:
        >>> fuse = MeanFusion({"text": 384, "image": 512}, 64)
        >>> out = fuse({"text": torch.randn(3, 384), "image": torch.randn(3, 512)},
        ...            {"text": torch.tensor([1, 1, 0]).bool(), "image": torch.tensor([1, 0, 0]).bool()})
        >>> out["fused"].shape
        torch.Size([3, 64])
    """

    def __init__(self, dims: Mapping[str, int], out_dim: int) -> None:
        super().__init__()
        if not dims:
            raise ValueError("MeanFusion needs at least one modality in `dims`")
        self.proj = nn.ModuleDict({m: nn.Linear(d, out_dim) for m, d in dims.items()})
        self.out_dim = out_dim

    def forward(self, features: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        total, count = None, None
        for m, proj in self.proj.items():
            if m not in features:
                raise KeyError(f"MeanFusion: modality {m!r} missing from features (got {sorted(features)})")
            p = mask[m].to(features[m].dtype).unsqueeze(1)
            term = proj(features[m]) * p
            total = term if total is None else total + term
            count = p if count is None else count + p
        return {"fused": total / count.clamp(min=1.0)}
