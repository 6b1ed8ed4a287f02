"""Concat fusion: concatenate every modality and its presence bit, then an MLP."""
from __future__ import annotations

from typing import Dict, Mapping, Optional

import torch
from torch import Tensor, nn

from ctxrec.fusion.base import Fusion, register_fusion


class ConcatFusion(Fusion):
    """MLP over the concatenation of all modalities (zeros where absent) and presence bits.

    :math:`f_i = [\\textstyle\\bigvee_m p_{im}] \\cdot
    W_2\\,\\mathrm{ReLU}(W_1 [x_{i1} \\,\\|\\, \\dots \\,\\|\\, x_{iM} \\,\\|\\, p_{i1} \\dots p_{iM}] + b_1) + b_2`;
    the presence bits let the MLP tell "absent" from "present and near the mean", and an
    item with no modality gets a zero vector.

    Args:
        dims (Dict[str, int]): modality name -> input width.
        out_dim (int): output width.
        hidden (int, optional): width of the MLP's hidden layer (default: ``out_dim``).

    Example:
        >>> fuse = ConcatFusion({"text": 384, "image": 512}, 64, hidden=128)
        >>> out = fuse({"text": torch.randn(3, 384), "image": torch.randn(3, 512)},
        ...            {"text": torch.tensor([1, 1, 0]).bool(), "image": torch.tensor([1, 0, 0]).bool()})
        >>> out["fused"].shape
        torch.Size([3, 64])
    """

    def __init__(self, dims: Mapping[str, int], out_dim: int, hidden: Optional[int] = None) -> None:
        super().__init__(dims, out_dim)
        hidden = out_dim if hidden is None else hidden
        if not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"ConcatFusion: `hidden` must be a positive integer, got {hidden!r}")
        self.hidden = hidden
        in_dim = sum(self.dims.values()) + len(self.dims)
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def fuse(self, xs: Dict[str, Tensor], ps: Dict[str, Tensor]) -> Dict[str, Tensor]:
        z = torch.cat([xs[m] for m in self.modalities] + [ps[m] for m in self.modalities], dim=1)
        # the biases would give no-modality rows a constant vector; the contract says zeros
        any_present = (sum(ps[m] for m in self.modalities) > 0).to(z.dtype)
        return {"fused": self.mlp(z) * any_present}


register_fusion("concat", ConcatFusion)
