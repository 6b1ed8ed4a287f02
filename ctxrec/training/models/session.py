"""A small Transformer over the items of the session so far.

The behaviour-sequence idea (Chen et al., 2019, "Behavior Sequence Transformer",
https://arxiv.org/abs/1905.06874): the items a user opened earlier in this session say
what they are after now. The encoder reads their vectors with learned positions and a
leading summary token, and returns the summary token's output; a session with no earlier
items reads only the summary token, so it needs no special case.
"""
from __future__ import annotations

import torch
from torch import nn


class SessionEncoder(nn.Module):
    """Encodes ``[B, L, d]`` item vectors (``-1``-padded ids) into ``[B, d]``.

    Args:
        dim: vector size ``d``.
        max_len: most recent items read per session, ``L`` (default: 10).
        layers: Transformer encoder layers (default: 1).
        heads: attention heads; must divide ``dim`` (default: 2).
        dropout: dropout inside the Transformer (default: 0.1).

    Example:
        >>> enc = SessionEncoder(32)
        >>> enc(torch.randn(4, 10, 32), torch.tensor([[-1] * 9 + [7]] * 4)).shape
        torch.Size([4, 32])
    """

    def __init__(self, dim: int, max_len: int = 10, layers: int = 1, heads: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"SessionEncoder: heads={heads} must divide dim={dim}")
        self.max_len = max_len
        self.summary = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Embedding(max_len, dim)
        nn.init.normal_(self.position.weight, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, vectors: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Session vectors.

        Args:
            vectors (Tensor [B, L, d]): the vectors of ``items`` (any value where padded).
            items (LongTensor [B, L]): item ids, oldest first, ``-1`` where there is none.

        Returns:
            Tensor [B, d].
        """
        if items.dim() != 2 or items.size(1) > self.max_len:
            raise ValueError(f"session items must be [batch, <= {self.max_len}], got {tuple(items.shape)}")
        length = items.size(1)
        pos = self.position.weight[self.max_len - length:]  # the newest item always gets the last position
        x = torch.cat([self.summary.expand(len(items), -1, -1), vectors + pos], 1)
        pad = torch.cat([torch.zeros_like(items[:, :1], dtype=torch.bool), items < 0], 1)
        return self.norm(self.encoder(x, src_key_padding_mask=pad)[:, 0])

