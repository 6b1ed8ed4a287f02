"""How ``(user, item)`` pairs are split into train, validation and test: the settings."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

#: split protocols, implemented in :mod:`ctxrec.data.splits`; ``files`` reads the roles from
#: ``SplitConfig.split_dir`` (:mod:`ctxrec.data.split_files`)
PROTOCOLS = ("temporal", "random", "cold_items", "context_shift", "files")
#: protocols that support ``folds > 1``
FOLD_PROTOCOLS = ("random", "cold_items")
#: what ``context_shift`` can shift on
CONTEXT_KEYS = ("place", "time", "daypart")


@dataclass
class SplitConfig:
    """How ``(user, item)`` pairs are split into train, validation and test.

    The rules of each protocol are in :mod:`ctxrec.data.splits`. ``val`` is always a
    share of what is left after the test part.

    Args:
        test: share held out for test: of each user's pairs (``temporal``), of all pairs
            (``random``) or the target share of pairs in shifted contexts (``context_shift``);
            unused by ``cold_items`` and when ``folds > 1`` (default: 0.2).
        val: share of the non-test pairs (of the non-test items for ``cold_items``, of the
            pairs outside shifted contexts for ``context_shift``) held out for validation
            (default: 0.1).
        min_pairs: ``temporal`` only: users with fewer pairs keep all of them in train
            (default: 3).
        protocol: one of :data:`PROTOCOLS`: ``"temporal"`` (latest pairs per user),
            ``"random"``, ``"cold_items"`` (whole items held out), ``"context_shift"``
            (test on the rarest contexts) or ``"files"`` (the roles of the files in
            ``split_dir``) (default: "temporal").
        seed: seed of every random draw; ``temporal`` draws nothing (default: 0).
        cold: ``cold_items``: share of the items held out for test (default: 0.15).
        folds: number of folds for k-fold splits, over pairs (``random``) or items
            (``cold_items``); 1 means no folds (default: 1).
        fold: which fold is the test part, ``0 <= fold < folds`` (default: 0).
        context_key: ``context_shift``: the context of a pair, taken from its first
            occurrence, one of :data:`CONTEXT_KEYS` (default: "place").
        rare_train: ``context_shift``: share of the pairs of each shifted context kept in
            train, so the context is rare there rather than absent (default: 0.1).
        session_len: keep each event's ``session_len`` earlier session items as
            ``Interactions.prefix``, for session encoders and ``evaluate(protocol="session")``;
            0 keeps none (default: 0).
        split_dir: ``files`` only: the folder of ``train``, optional ``val`` and ``test`` files
            (CSV or Parquet, columns ``user,item`` and optional ``time``), see
            :func:`ctxrec.data.split_files.read_split_dir` (default: None).
        refit: validation pairs become training pairs (in message passing too), for the
            refit on train+val after model selection; test stays held out (default: False).

    Example:
        >>> SplitConfig(protocol="random", folds=5, fold=2, val=0.1)  # doctest: +ELLIPSIS
        SplitConfig(test=0.2, val=0.1, min_pairs=3, protocol='random', ...)
    """

    test: float = 0.2
    val: float = 0.1
    min_pairs: int = 3
    protocol: str = "temporal"
    seed: int = 0
    cold: float = 0.15
    folds: int = 1
    fold: int = 0
    context_key: str = "place"
    rare_train: float = 0.1
    session_len: int = 0
    split_dir: Optional[str] = None
    refit: bool = False

    def __post_init__(self) -> None:
        for name in ("test", "val", "cold", "rare_train"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not 0 <= value < 1:
                raise ValueError(f"SplitConfig.{name} must be a share in [0, 1), got {value!r}")
        for name, low in (("min_pairs", 0), ("seed", 0), ("folds", 1), ("fold", 0), ("session_len", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"SplitConfig.{name} must be an integer >= {low}, got {value!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"SplitConfig.protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.context_key not in CONTEXT_KEYS:
            raise ValueError(f"SplitConfig.context_key must be one of {CONTEXT_KEYS}, got {self.context_key!r}")
        if self.folds > 1 and self.protocol not in FOLD_PROTOCOLS:
            raise ValueError(f"SplitConfig.folds={self.folds} needs a protocol in {FOLD_PROTOCOLS}, "
                             f"got protocol={self.protocol!r}; use folds=1")
        if (self.protocol == "files") != (self.split_dir is not None):
            raise ValueError("SplitConfig: protocol='files' and split_dir go together: give split_dir=<folder of "
                             f"train/val/test files> with protocol='files' (got protocol={self.protocol!r}, "
                             f"split_dir={self.split_dir!r})")
        if self.split_dir is not None:
            self.split_dir = str(self.split_dir)
        if not isinstance(self.refit, bool):
            raise ValueError(f"SplitConfig.refit must be True or False, got {self.refit!r}")
        if self.fold >= self.folds:
            raise ValueError(f"SplitConfig.fold must be in 0..{self.folds - 1} (folds={self.folds}), got {self.fold!r}")

