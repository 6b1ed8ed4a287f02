"""Interactions as index tensors, and the seen-item sets that rankings mask."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch


@dataclass
class Interactions:
    """Interactions as index tensors, one row per event, with the event's context.

    ``time`` and ``place`` index the ``time`` / ``place`` node types (``-1``: unknown).
    ``prefix`` (``[N, L]``, only when exported with ``SplitConfig.session_len > 0``) holds
    the items opened earlier in each event's session, oldest first, ``-1``-padded: for
    train events only train events count, so held-out items never feed training; for
    held-out events every earlier event of the session counts, as it would at request time.
    ``ts`` (optional) holds each event's time as stored (epoch seconds), for "the user's
    most recent context" in :mod:`ctxrec.training.evaluation`.
    """

    user: torch.Tensor
    item: torch.Tensor
    time: torch.Tensor
    place: torch.Tensor
    session: torch.Tensor
    prefix: Optional[torch.Tensor] = None
    ts: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return int(self.user.numel())

    def empty(self) -> "Interactions":
        """No events, with the same columns (and prefix length) as these."""
        return self.select(slice(0, 0))

    def select(self, rows) -> "Interactions":
        """The events at ``rows`` (a slice, index tensor or boolean mask)."""
        pick = lambda t: None if t is None else t[rows]  # noqa: E731
        return Interactions(*(t[rows] for t in (self.user, self.item, self.time, self.place, self.session)),
                            prefix=pick(self.prefix), ts=pick(self.ts))

    @staticmethod
    def cat(parts) -> "Interactions":
        """The events of ``parts`` one after the other (``prefix``/``ts`` kept when every part has them)."""
        parts = list(parts)
        both = lambda name: None if any(getattr(p, name) is None for p in parts) else torch.cat(  # noqa: E731
            [getattr(p, name) for p in parts])
        return Interactions(*(torch.cat([getattr(p, f) for p in parts])
                              for f in ("user", "item", "time", "place", "session")),
                            prefix=both("prefix"), ts=both("ts"))

    def to(self, device) -> "Interactions":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Interactions(*(t.to(device) for t in (self.user, self.item, self.time, self.place, self.session)),
                            prefix=move(self.prefix), ts=move(self.ts))


class SeenItems:
    """Items per user as CSR (``indptr``, ``indices``), for masking ranked lists."""

    def __init__(self, users: torch.Tensor, items: torch.Tensor, num_users: int) -> None:
        pairs = torch.unique(torch.stack([users.long(), items.long()]), dim=1)
        self.indices = pairs[1]
        counts = torch.bincount(pairs[0], minlength=num_users)
        self.indptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])

    def mask_index(self, users: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(row, col) positions of seen items for a batch of users (rows = batch positions)."""
        start = self.indptr[users]
        count = self.indptr[users + 1] - start
        rows = torch.repeat_interleave(torch.arange(users.numel()), count)
        offset = torch.arange(int(count.sum())) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
        return rows, self.indices[torch.repeat_interleave(start, count) + offset]

