"""An oracle recommender that scores with a known preference function, e.g. the
synthetic world's ground truth: the ceiling other models are compared against."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from ctxrec.data import RecGraph
from ctxrec.training.recommender import Context, Recommender

#: (user ids, time slot or None, place or None) -> utilities [len(users), len(item_ids)]
PreferenceFn = Callable[[np.ndarray, Optional[str], Optional[str]], np.ndarray]


class Oracle(Recommender):
    """Scores items with a ground-truth preference function.

    Args:
        preference: the function; its columns follow ``item_ids``.
        item_ids: item ids in the function's column order.
    """

    name = "Oracle"

    def __init__(self, preference: PreferenceFn, item_ids) -> None:
        self.preference = preference
        self.item_ids = np.asarray(item_ids).astype(str)

    def fit(self, graph: RecGraph) -> "Oracle":
        self.graph = graph
        pos = {k: i for i, k in enumerate(self.item_ids)}
        self.columns = torch.as_tensor([pos[k] for k in graph.ids["item"]])
        return self

    def score(self, users: torch.Tensor, context: Optional[Context] = None) -> torch.Tensor:
        g = self.graph
        out = torch.empty(len(users), g.num_items)
        uid = g.ids["user"][users.cpu().numpy()]
        t = context.time.cpu().numpy() if context is not None else np.full(len(users), -1)
        p = context.place.cpu().numpy() if context is not None else np.full(len(users), -1)
        for key in set(zip(t.tolist(), p.tolist())):
            rows = np.flatnonzero((t == key[0]) & (p == key[1]))
            slot = str(g.ids["time"][key[0]]) if key[0] >= 0 else None
            place = str(g.ids["place"][key[1]]) if key[1] >= 0 else None
            util = torch.as_tensor(np.asarray(self.preference(uid[rows], slot, place)), dtype=torch.float)
            out[torch.as_tensor(rows)] = util[:, self.columns]
        return out
