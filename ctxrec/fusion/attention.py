"""Attention fusion: a learned query attends over one token per present modality."""
from __future__ import annotations

from typing import Dict, Mapping

import torch
from torch import Tensor, nn

from ctxrec.fusion.base import Fusion, register_fusion


class AttentionFusion(Fusion):
    """Multi-head attention of a learned query token over per-modality tokens.

    Each modality becomes a token :math:`t_{im} = W_m x_{im} + e_m` (projection plus a
    learned modality-type embedding); a learned query :math:`q` attends over the tokens of
    the modalities present (`Vaswani et al., 2017 <https://arxiv.org/abs/1706.03762>`_):

    .. math::
        f_i = \\mathrm{MHA}\\big(q,\\ \\{t_{im} : p_{im} = 1\\}\\big)

    Absent modalities are masked out of the keys, so they get attention weight 0. An item
    with no modality gets a zero vector and zero weights (attention with every key masked
    would be NaN).

    Args:
        dims (Dict[str, int]): modality name -> input width.
        out_dim (int): output width; must be divisible by ``heads``.
        heads (int, optional): number of attention heads (default: :obj:`4`).
        dropout (float, optional): dropout on the attention weights (default: :obj:`0.0`).

    Example:
        >>> fuse = AttentionFusion({"text": 384, "image": 512}, 64, heads=4)
        >>> out = fuse({"text": torch.randn(3, 384), "image": torch.randn(3, 512)},
        ...            {"text": torch.tensor([1, 1, 0]).bool(), "image": torch.tensor([1, 0, 0]).bool()})
        >>> out["fused"].shape, out["weights"].shape  # weights: [N, M], averaged over heads
        (torch.Size([3, 64]), torch.Size([3, 2]))
    """

    def __init__(self, dims: Mapping[str, int], out_dim: int, heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__(dims, out_dim)
        if not isinstance(heads, int) or heads < 1 or out_dim % heads:
            divisors = [k for k in range(1, out_dim + 1) if out_dim % k == 0]
            raise ValueError(f"AttentionFusion: `heads` must be a positive integer dividing out_dim={out_dim}, "
                             f"got {heads!r}; pick one of {divisors} or change `out_dim`")
        self.heads = heads
        self.proj = nn.ModuleDict({m: nn.Linear(d, out_dim) for m, d in self.dims.items()})
        self.type_emb = nn.Parameter(torch.randn(len(self.dims), out_dim) * 0.02)
        self.query = nn.Parameter(torch.randn(1, 1, out_dim) * 0.02)
        self.attn = nn.MultiheadAttention(out_dim, heads, dropout=dropout, batch_first=True)

    def fuse(self, xs: Dict[str, Tensor], ps: Dict[str, Tensor]) -> Dict[str, Tensor]:
        tokens = torch.stack([self.proj[m](xs[m]) for m in self.modalities], dim=1) + self.type_emb  # [N, M, D]
        present = torch.cat([ps[m] for m in self.modalities], dim=1) > 0  # [N, M]
        any_present = present.any(dim=1, keepdim=True)
        # rows with no modality attend to all (input-independent) tokens rather than to
        # none, which would be NaN; their output is zeroed below
        ignore = ~present & any_present
        query = self.query.expand(tokens.size(0), -1, -1)
        out, weights = self.attn(query, tokens, tokens, key_padding_mask=ignore, need_weights=True)
        keep = any_present.to(out.dtype)
        return {"fused": out[:, 0] * keep, "weights": weights[:, 0] * keep}


register_fusion("attention", AttentionFusion)
