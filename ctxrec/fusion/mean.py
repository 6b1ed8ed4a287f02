"""Mean fusion: project each modality to one width and average the present ones."""
from __future__ import annotations

from typing import Dict, Mapping

from torch import Tensor, nn

from ctxrec.fusion.base import Fusion, register_fusion


class MeanFusion(Fusion):
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
        super().__init__(dims, out_dim)
        self.proj = nn.ModuleDict({m: nn.Linear(d, out_dim) for m, d in dims.items()})

    def fuse(self, xs: Dict[str, Tensor], ps: Dict[str, Tensor]) -> Dict[str, Tensor]:
        total = sum(self.proj[m](xs[m]) * ps[m] for m in self.modalities)
        count = sum(ps[m] for m in self.modalities)
        return {"fused": total / count.clamp(min=1.0)}


register_fusion("mean", MeanFusion)
