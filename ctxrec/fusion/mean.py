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
        for m, d in dims.items():
            self.register_buffer(f"mean_{m}", torch.zeros(d))
            self.register_buffer(f"std_{m}", torch.ones(d))

    @torch.no_grad()
    def fit_scale(self, features: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor]) -> "MeanFusion":
        """Standardise each modality's inputs per dimension over the rows present.

        Encoders such as log-mel statistics give vectors whose cosines all sit near 1;
        centring and scaling them over the catalogue lets the projection see what differs.
        """
        for m in self.proj:
            rows = features[m][mask[m].bool()]
            if rows.size(0) > 1:
                getattr(self, f"mean_{m}").copy_(rows.mean(0))
                getattr(self, f"std_{m}").copy_(rows.std(0).clamp(min=1e-6))
        return self

    def forward(self, features: Mapping[str, torch.Tensor], mask: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        total, count = None, None
        for m, proj in self.proj.items():
            if m not in features:
                raise KeyError(f"MeanFusion: modality {m!r} missing from features (got {sorted(features)})")
            p = mask[m].to(features[m].dtype).unsqueeze(1)
            x = (features[m] - getattr(self, f"mean_{m}")) / getattr(self, f"std_{m}")
            term = proj(x) * p
            total = term if total is None else total + term
            count = p if count is None else count + p
        return {"fused": total / count.clamp(min=1.0)}
