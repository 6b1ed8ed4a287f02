"""Negative sampling that never returns one of the user's positives."""
from __future__ import annotations

import torch


class NegativeSampler:
    """Uniform item negatives, re-drawn while they hit a known positive.

    Args:
        users (LongTensor [E]): user of each positive pair.
        items (LongTensor [E]): item of each positive pair.
        num_items: number of items.
        max_tries: re-draw rounds before giving up on a collision (default: 20); only
            users who interacted with nearly every item can exhaust it.
        pool (LongTensor, optional): the items negatives are drawn from (default: all).
    """

    def __init__(self, users: torch.Tensor, items: torch.Tensor, num_items: int, max_tries: int = 20,
                 pool: torch.Tensor | None = None) -> None:
        self.num_items = int(num_items)
        self.pool = pool
        self.keys = torch.unique(users.long() * self.num_items + items.long())
        self.max_tries = max_tries

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Whether each (user, item) is a known positive."""
        key = users.long() * self.num_items + items.long()
        if self.keys.numel() == 0:
            return torch.zeros_like(key, dtype=torch.bool)
        pos = torch.searchsorted(self.keys, key).clamp(max=self.keys.numel() - 1)
        return self.keys[pos] == key

    def sample(self, users: torch.Tensor, num: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """Negatives [B, num] for a batch of users."""
        users = users.reshape(-1, 1).expand(-1, num)
        neg = self._draw(users.shape, generator)
        for _ in range(self.max_tries):
            bad = self.is_positive(users, neg)
            if not bad.any():
                break
            neg[bad] = self._draw((int(bad.sum()),), generator)
        return neg

    def _draw(self, shape, generator) -> torch.Tensor:
        if self.pool is None:
            return torch.randint(self.num_items, shape, generator=generator)
        return self.pool[torch.randint(len(self.pool), shape, generator=generator)]
