"""Evaluation split protocols: which ``(user, item)`` pairs are train, validation or test.

Each protocol is a pure function ``(pairs, split) -> SplitResult``: ``pairs`` has one row
per distinct interacted pair and ``SplitResult.role`` gives each row a role, ``0`` train,
``1`` validation, ``2`` test. The same ``(pairs, split)`` always gives the same roles, and
the row order of ``pairs`` does not matter (random draws run over pairs sorted by
``(src, dst)``). :func:`ctxrec.graph.export.to_rec_graph` applies the roles: no edge of a held-out pair, and no
session made only of held-out events, reaches message passing.

The ``pairs`` frame has the columns ``src`` (user id), ``dst`` (item id), ``first_ts`` (time of
the first interaction) and, for ``context_shift``, ``time`` and ``place`` (time slot and place
of the session of the first interaction, ``""`` when unknown).

Shares are turned into counts by rounding half up, ``round(share * n)``, except in
``temporal``, which floors per user (its historical rule). In every protocol ``val`` is a
share of what is left after the test part, not of the whole: ``test=0.1, val=1/9`` gives
80/10/10.

Example:
    >>> from ctxrec.data import SplitConfig
    >>> from ctxrec.graph.export import to_rec_graph
    >>> g = to_rec_graph(tables, split=SplitConfig(protocol="cold_items", cold=0.15))  # doctest: +SKIP
    >>> g.candidates["test"]  # the only items ranked for test  # doctest: +SKIP
    tensor([ 3, 17, 21, 30, 33, 38])
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List

import numpy as np
import pandas as pd

from ctxrec.data.split_config import FOLD_PROTOCOLS, PROTOCOLS, SplitConfig

__all__ = [
    "SplitConfig",
    "SplitResult",
    "split_roles",
    "temporal_split",
    "random_split",
    "cold_item_split",
    "context_shift_split",
    "files_split",
    "kfold_assign",
    "context_values",
]

TRAIN, VAL, TEST = 0, 1, 2


@dataclass
class SplitResult:
    """Roles of the pairs and facts about how they were chosen.

    Attributes:
        role: int array, one per row of ``pairs``: 0 train, 1 validation, 2 test, -1 left
            out of everything (``files`` only: pairs in no file).
        info: protocol-specific facts (cold item ids, shifted context values, ...),
            JSON-friendly (str, int, float, lists and dicts of them).
    """

    role: np.ndarray
    info: Dict[str, object] = field(default_factory=dict)


def split_roles(pairs: pd.DataFrame, split: SplitConfig) -> SplitResult:
    """Apply ``split.protocol`` to ``pairs``.

    Args:
        pairs (pd.DataFrame): one row per ``(user, item)`` pair; columns as in the module docs.
        split (SplitConfig): the protocol and its settings.

    Returns:
        SplitResult: ``role`` aligned with the rows of ``pairs``; with ``split.refit`` the
        validation pairs are train (``info["refit"]`` counts them).
    """
    result = _FUNCTIONS[split.protocol](pairs, split)
    if split.refit:
        moved = result.role == VAL
        result.role = np.where(moved, TRAIN, result.role)
        result.info = {**result.info, "refit": {"val_pairs_in_train": int(moved.sum())}}
    return result


def temporal_split(pairs: pd.DataFrame, split: SplitConfig) -> SplitResult:
    """Per user, the latest pairs are held out.

    Each user's pairs are ordered by ``(first_ts, dst)``. Of a user's ``n`` pairs the last
    ``floor(n * test)`` are test and, before them, the last ``floor((n - n_test) * val)`` are
    validation. Users with fewer than ``min_pairs`` pairs keep them all in train. ``seed``
    plays no part.
    """
    order = pairs.sort_values(["src", "first_ts", "dst"], kind="stable")
    n = order.groupby("src")["dst"].transform("size").to_numpy()
    rank = order.groupby("src").cumcount().to_numpy()
    n_test = np.floor(n * split.test).astype(int)
    n_val = np.floor((n - n_test) * split.val).astype(int)
    small = n < split.min_pairs
    n_test[small] = 0
    n_val[small] = 0
    role = np.where(rank >= n - n_test, TEST, np.where(rank >= n - n_test - n_val, VAL, TRAIN))
    out = pd.Series(role, index=order.index).reindex(pairs.index).to_numpy()
    return SplitResult(out, {})


def random_split(pairs: pd.DataFrame, split: SplitConfig) -> SplitResult:
    """Pairs drawn at random, over all users at once.

    With ``folds == 1``: a seeded permutation of the pairs; the first ``round(test * n)`` are
    test, the next ``round(val * (n - n_test))`` validation. With ``folds == k``: the
    permutation is cut into ``k`` folds of sizes differing by at most one (see
    :func:`kfold_assign`), fold ``fold`` is test (``test`` is not used) and
    ``round(val * n_rest)`` of the other pairs, drawn with the same seed, are validation.
    ``min_pairs`` is not used, so a user may have no train pair left.
    """
    order = _canonical(pairs)
    rng = np.random.default_rng(split.seed)
    role_sorted = _held_out_roles(len(order), split, split.test, rng)
    return SplitResult(_unsort(role_sorted, order), {})


def cold_item_split(pairs: pd.DataFrame, split: SplitConfig) -> SplitResult:
    """Whole items held out: every pair of a cold item is validation or test.

    The distinct items of ``pairs`` (sorted by id) get a seeded permutation. With
    ``folds == 1`` the first ``round(cold * n_items)`` are test items; with ``folds == k``
    the items are cut into ``k`` folds and fold ``fold`` holds the test items. Of the other
    items, ``round(val * n_rest)`` drawn with the same seed are validation items. All pairs
    of a test (validation) item are test (validation); all other pairs are train. Rank the
    held-out pairs among the held-out items of their split only (``RecGraph.candidates``).

    ``info``: ``test_items`` and ``val_items``, the item ids, sorted.
    """
    items = np.unique(pairs["dst"].astype(str).to_numpy())
    rng = np.random.default_rng(split.seed)
    item_role = _held_out_roles(len(items), split, split.cold, rng)
    role = item_role[np.searchsorted(items, pairs["dst"].astype(str).to_numpy())]
    info = {"test_items": items[item_role == TEST].tolist(), "val_items": items[item_role == VAL].tolist()}
    return SplitResult(role.astype(int), info)


def context_shift_split(pairs: pd.DataFrame, split: SplitConfig) -> SplitResult:
    """Test on contexts that are rare in training.

    A pair's context is the ``context_key`` value of its first occurrence: ``place``,
    ``time`` (slot, e.g. ``sat-evening``) or ``daypart`` (``evening``); see
    :func:`context_values`. Unknown contexts (``""``) are never shifted.

    1. Known context values are ranked by their number of pairs, rarest first (ties by value).
    2. The rarest value is shifted; the next one is shifted too while adding it brings the
       shifted pairs closer to ``round(test * n)``, i.e. while
       ``|covered + c - target| < |covered - target|``.
    3. Of a shifted value's ``c`` pairs, ``min(ceil(c * rare_train), c - 1)`` drawn with
       ``seed`` stay in train (so the context is rare, not absent, in training, unless it
       has a single pair or ``rare_train == 0``); the others are test.
    4. Of the pairs in other contexts, ``round(val * n_rest)`` drawn with ``seed`` are
       validation; the rest train.

    ``info``: ``context_key``, ``shifted`` (values, rarest first), ``shifted_pairs`` (value ->
    its number of pairs) and ``kept_in_train`` (value -> pairs of it left in train).
    """
    order = _canonical(pairs)
    values = context_values(pairs, split.context_key)[order]
    n = len(order)
    rng = np.random.default_rng(split.seed)
    known, counts = np.unique(values[values != ""], return_counts=True)
    rank = np.lexsort((known, counts))  # by count, then value
    target = _count(split.test, n)
    shifted: List[str] = []
    covered = 0
    for j in rank:
        c = int(counts[j])
        if shifted and abs(covered + c - target) >= abs(covered - target):
            break
        shifted.append(str(known[j]))
        covered += c
    role = np.zeros(n, dtype=int)
    kept: Dict[str, int] = {}
    sizes: Dict[str, int] = {}
    for value in shifted:
        rows = np.flatnonzero(values == value)
        n_keep = min(math.ceil(len(rows) * split.rare_train), len(rows) - 1)
        rows = rows[rng.permutation(len(rows))]
        role[rows[n_keep:]] = TEST
        kept[value], sizes[value] = n_keep, len(rows)
    rest = np.flatnonzero(~np.isin(values, shifted))
    role[rest[rng.permutation(len(rest))[:_count(split.val, len(rest))]]] = VAL
    info = {"context_key": split.context_key, "shifted": shifted, "shifted_pairs": sizes, "kept_in_train": kept}
    return SplitResult(_unsort(role, order), info)


def context_values(pairs: pd.DataFrame, key: str) -> np.ndarray:
    """The context value of each pair for ``key`` (``place``, ``time`` or ``daypart``), as str.

    ``daypart`` is the part of the time slot after the dash (``sat-evening`` -> ``evening``).
    Missing values are ``""``.
    """
    column = "time" if key == "daypart" else key
    if column not in pairs.columns:
        raise ValueError(f"context_key={key!r} needs a {column!r} column in pairs; got columns {list(pairs.columns)}")
    values = pairs[column].fillna("").astype(str).to_numpy()
    if key == "daypart":
        values = np.array([v.rsplit("-", 1)[-1] for v in values], dtype=object)
    return values.astype(str)


def kfold_assign(n: int, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold of each of ``n`` units: a permutation cut into ``folds`` parts whose sizes differ
    by at most one. Every unit is in exactly one fold."""
    fold = np.empty(n, dtype=int)
    fold[rng.permutation(n)] = np.arange(n) * folds // max(n, 1)
    return fold


def _held_out_roles(n: int, split: SplitConfig, test_share: float, rng: np.random.Generator) -> np.ndarray:
    """Roles of ``n`` units (pairs or items): test by share or by fold, then a validation
    share of the rest, both drawn with ``rng``."""
    role = np.zeros(n, dtype=int)
    if split.folds > 1:
        role[kfold_assign(n, split.folds, rng) == split.fold] = TEST
    else:
        role[rng.permutation(n)[:_count(test_share, n)]] = TEST
    rest = np.flatnonzero(role == TRAIN)
    role[rest[rng.permutation(len(rest))[:_count(split.val, len(rest))]]] = VAL
    return role


def _count(share: float, n: int) -> int:
    """``share * n`` rounded half up (Python's ``round`` rounds half to even)."""
    return int(math.floor(share * n + 0.5))


def _canonical(pairs: pd.DataFrame) -> np.ndarray:
    """Row positions of ``pairs`` sorted by (src, dst), so draws ignore the input order."""
    return np.lexsort((pairs["dst"].astype(str).to_numpy(), pairs["src"].astype(str).to_numpy()))


def _unsort(role_sorted: np.ndarray, order: np.ndarray) -> np.ndarray:
    out = np.empty(len(order), dtype=int)
    out[order] = role_sorted
    return out


def files_split(pairs: pd.DataFrame, split: SplitConfig) -> SplitResult:
    """The roles written in the files of ``split.split_dir`` (see :mod:`ctxrec.data.split_files`):
    0, 1, 2 as everywhere, and ``-1`` for pairs in no file, which are left out of everything.

    A folder without a val file gets validation pairs for model selection from its train
    pairs, made the way the test pairs look made (:func:`held_out_rule`): when the test pairs
    follow the train pairs in time, by the ``temporal`` rule (each user's latest
    ``floor(n * split.val)`` train pairs by ``(first_ts, dst)``; users with fewer than
    ``min_pairs`` keep them all); otherwise by the ``random`` rule (``round(split.val * n)``
    train pairs drawn with ``split.seed``). Validation that looks like test matters: a model
    that follows the users' latest items wins on a temporal split and loses on a random one.
    With ``refit=True`` they are train again, so the refit trains on exactly the train file.
    ``info["files"]["val_from_train"]`` counts them and ``info["files"]["val_rule"]`` names the rule.
    """
    from ctxrec.data.split_files import files_roles, split_file

    role, info = files_roles(pairs, split.split_dir)
    if split_file(split.split_dir, "val") is None and split.val > 0:
        train = np.flatnonzero(role == TRAIN)
        rule = held_out_rule(pairs, role)
        carve = SplitConfig(test=split.val, val=0.0, min_pairs=split.min_pairs, seed=split.seed)
        carved = _FUNCTIONS[rule](pairs.iloc[train], carve).role == TEST
        role[train[carved]] = VAL
        info["files"]["val_from_train"] = int(carved.sum())
        info["files"]["val_rule"] = rule
    return SplitResult(role, info)


def held_out_rule(pairs: pd.DataFrame, role: np.ndarray, share: float = 0.9) -> str:
    """``"temporal"`` when, for at least ``share`` of the users with train and test pairs, no
    test pair is earlier than the user's latest train pair (by ``first_ts``); else ``"random"``
    (also when no pair has a time)."""
    ts = pd.to_numeric(pairs["first_ts"], errors="coerce").to_numpy(dtype=float)
    users = pairs["src"].astype(str).to_numpy()
    train, test = (role == TRAIN) & ~np.isnan(ts), (role == TEST) & ~np.isnan(ts)
    if not train.any() or not test.any():
        return "random"
    latest = pd.Series(ts[train]).groupby(users[train]).max()
    earliest = pd.Series(ts[test]).groupby(users[test]).min()
    both = latest.index.intersection(earliest.index)
    if len(both) == 0:
        return "random"
    after = (earliest[both] >= latest[both]).mean()
    return "temporal" if after >= share else "random"


_FUNCTIONS: Dict[str, Callable[[pd.DataFrame, SplitConfig], SplitResult]] = {
    "temporal": temporal_split,
    "random": random_split,
    "cold_items": cold_item_split,
    "context_shift": context_shift_split,
    "files": files_split,
}
assert tuple(_FUNCTIONS) == PROTOCOLS and set(FOLD_PROTOCOLS) <= set(_FUNCTIONS)
