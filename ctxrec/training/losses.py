"""Losses for implicit feedback."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Bayesian Personalised Ranking (Rendle et al., 2009, https://arxiv.org/abs/1205.2618).

    :math:`\\mathcal{L} = -\\frac{1}{B}\\sum_b \\log \\sigma(s^+_b - s^-_b)`, averaged over
    every negative when ``neg`` is [B, N].

    Args:
        pos (Tensor [B]): scores of positive items.
        neg (Tensor [B] or [B, N]): scores of sampled negatives.
    """
    if neg.dim() == 1:
        neg = neg.unsqueeze(1)
    return -F.logsigmoid(pos.unsqueeze(1) - neg).mean()
