"""Session prefixes: the items a session opened before each event."""
from __future__ import annotations

from typing import Optional

import torch


def session_prefixes(session: torch.Tensor, item: torch.Tensor, length: int,
                     keep: Optional[torch.Tensor] = None) -> torch.Tensor:
    """For events in time order, the items of each one's session that came before it.

    Args:
        session (LongTensor [N]): session of each event; events are in time order.
        item (LongTensor [N]): item of each event.
        length: most recent items to keep, ``L``.
        keep (BoolTensor [N], optional): only these events may appear in a prefix
            (e.g. training events, so held-out items never feed training).

    Returns:
        LongTensor [N, L]: oldest first, ``-1``-padded on the left.

    Example:
        >>> session_prefixes(torch.tensor([0, 0, 1, 0]), torch.tensor([5, 6, 7, 8]), 2)
        tensor([[-1, -1],
                [-1,  5],
                [-1, -1],
                [ 5,  6]])
    """
    n = session.numel()
    order = torch.argsort(session, stable=True)  # time order within each session
    s, it = session[order], item[order]
    visible = torch.ones(n, dtype=torch.bool) if keep is None else keep[order]
    # position among the session's visible events, counted before each event
    csum = torch.cumsum(visible.long(), 0)
    first = torch.ones(n, dtype=torch.bool)
    first[1:] = s[1:] != s[:-1]
    start = torch.cummax(torch.where(first, torch.arange(n), torch.zeros(n, dtype=torch.long)), 0).values
    base = (csum - visible.long())[start]  # visible events before the session began
    before = csum - visible.long() - base  # visible events of this session before this one
    vis_idx = torch.nonzero(visible).view(-1)  # sorted positions of visible events
    out = torch.full((n, length), -1, dtype=torch.long)
    for back in range(1, length + 1):
        ok = before >= back
        # the back-th visible event before: visible event number (base + before - back)
        rank = (base + before - back).clamp(min=0)
        src = vis_idx[rank.clamp(max=max(vis_idx.numel() - 1, 0))] if vis_idx.numel() else rank
        out[:, length - back] = torch.where(ok, it[src] if vis_idx.numel() else torch.full_like(it, -1), -1)
    result = torch.empty_like(out)
    result[order] = out
    return result

