"""What models train on: the message-passing graph, the id maps and the split's events."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np
import torch

from ctxrec.data.interactions import Interactions, SeenItems


@dataclass
class RecGraph:
    """What models train on.

    Attributes:
        data: message-passing graph (train edges only, plus reverse edges ``rev_*``);
            ``data[t].x_<name>`` holds vectors named ``<name>`` and ``mask_<name>`` their presence.
        ids: PyG node type -> array of database ids, by node index.
        train: every training event (one per session occurrence of a train pair).
        val, test: held-out pairs, one row each, with the context of their first occurrence;
            ``val`` is empty for a refit graph (``SplitConfig(refit=True)``), ``test`` in the
            view models are fitted on (:meth:`without_test`).
        candidates: split name (``"val"``, ``"test"``) -> LongTensor of the item indices that
            may be ranked for that split; a split not in it (the default) ranks all items.
            ``cold_items`` fills it with that split's held-out items.
        split_info: how the split was made: ``protocol``, ``config`` (the
            :class:`SplitConfig` as a dict), ``pairs`` (number per role) and the protocol's
            facts (e.g. ``shifted`` context values, ``test_items``).
    """

    data: "object"
    ids: Dict[str, np.ndarray]
    train: Interactions
    val: Interactions
    test: Interactions
    candidates: Dict[str, torch.Tensor] = field(default_factory=dict)
    split_info: Dict[str, object] = field(default_factory=dict)
    index: Dict[str, Dict[str, int]] = field(default_factory=dict)
    _seen_train: Optional["SeenItems"] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {t: {k: i for i, k in enumerate(v)} for t, v in self.ids.items()}

    def without_test(self) -> "RecGraph":
        """The view a model is fitted on: the same message-passing graph, ids and train/val
        events, with no test pair (and no test candidates), so ``fit`` cannot read them.

        Evaluate the fitted model on the full graph with
        :func:`ctxrec.training.evaluation.evaluate` ``(model, graph, "test")``.
        """
        return RecGraph(data=self.data, ids=self.ids, train=self.train, val=self.val, test=self.test.empty(),
                        candidates={k: v for k, v in self.candidates.items() if k != "test"},
                        split_info=self.split_info, index=self.index, _seen_train=self._seen_train)

    @property
    def num_users(self) -> int:
        return len(self.ids["user"])

    @property
    def num_items(self) -> int:
        return len(self.ids["item"])

    def lookup(self, node_type: str, key: str) -> int:
        """Index of a database id, or a ValueError naming the id and node type."""
        try:
            return self.index[node_type][str(key)]
        except KeyError:
            raise ValueError(f"unknown {node_type} id {key!r}; it is not in the exported graph") from None

    def seen(self, *splits: Interactions) -> "SeenItems":
        """The (user, item) pairs in ``splits`` (default: train), for masking."""
        if not splits:  # the common case (every recommend call): built once
            if self._seen_train is None:
                self._seen_train = SeenItems(self.train.user, self.train.item, self.num_users)
            return self._seen_train
        return SeenItems(torch.cat([s.user for s in splits]), torch.cat([s.item for s in splits]), self.num_users)

