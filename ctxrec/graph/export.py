"""Export the stored graph to PyG: a :class:`RecGraph` holding a ``HeteroData`` for
message passing, the id maps, and train/val/test interactions split by a protocol of
:mod:`ctxrec.training.splits` (default: temporal per user).

Leakage rule: the ``(user, item)`` pairs held out for validation or test never
appear in message passing — neither as ``INTERACTED`` edges nor as ``CONTAINS``
edges from any of that user's sessions.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np
import pandas as pd
import torch

from ctxrec.graph import schema
from ctxrec.graph.tables import GraphTables

#: (label, vector name) -> (ids, float32 [N, d])
Vectors = Dict[Tuple[str, str], Tuple[np.ndarray, np.ndarray]]


@dataclass
class Interactions:
    """Interactions as index tensors, one row per event, with the event's context.

    ``time`` and ``place`` index the ``time`` / ``place`` node types (``-1``: unknown).
    ``prefix`` (``[N, L]``, only when exported with ``SplitConfig.session_len > 0``) holds
    the items opened earlier in each event's session, oldest first, ``-1``-padded: for
    train events only train events count, so held-out items never feed training; for
    held-out events every earlier event of the session counts, as it would at request time.
    """

    user: torch.Tensor
    item: torch.Tensor
    time: torch.Tensor
    place: torch.Tensor
    session: torch.Tensor
    prefix: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return int(self.user.numel())

    def to(self, device) -> "Interactions":
        prefix = None if self.prefix is None else self.prefix.to(device)
        return Interactions(*(t.to(device) for t in (self.user, self.item, self.time, self.place, self.session)),
                            prefix=prefix)


#: split protocols, implemented in :mod:`ctxrec.training.splits`
PROTOCOLS = ("temporal", "random", "cold_items", "context_shift")
#: protocols that support ``folds > 1``
FOLD_PROTOCOLS = ("random", "cold_items")
#: what ``context_shift`` can shift on
CONTEXT_KEYS = ("place", "time", "daypart")


@dataclass
class SplitConfig:
    """How ``(user, item)`` pairs are split into train, validation and test.

    The rules of each protocol are in :mod:`ctxrec.training.splits`. ``val`` is always a
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
            ``"random"``, ``"cold_items"`` (whole items held out) or ``"context_shift"``
            (test on the rarest contexts) (default: "temporal").
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
        if self.fold >= self.folds:
            raise ValueError(f"SplitConfig.fold must be in 0..{self.folds - 1} (folds={self.folds}), got {self.fold!r}")


@dataclass
class RecGraph:
    """What models train on.

    Attributes:
        data: message-passing graph (train edges only, plus reverse edges ``rev_*``);
            ``data[t].x_<name>`` holds vectors named ``<name>`` and ``mask_<name>`` their presence.
        ids: PyG node type -> array of database ids, by node index.
        train: every training event (one per session occurrence of a train pair).
        val, test: held-out pairs, one row each, with the context of their first occurrence.
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
        self.index = {t: {k: i for i, k in enumerate(v)} for t, v in self.ids.items()}

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


def export_pyg(store, split: SplitConfig | None = None, vectors: Optional[Vectors] = None) -> RecGraph:
    """Read the whole graph (and every stored vector) from ``store`` into a :class:`RecGraph`."""
    tables = store.read_subgraph()
    if vectors is None:
        vectors = {}
        for label in schema.NODES:
            for name in store.vector_names(label):
                vectors[(label, name)] = store.read_vectors(label, name)
    return to_rec_graph(tables, vectors, split)


def interaction_pairs(tables: GraphTables) -> pd.DataFrame:
    """The ``(user, item)`` pairs that split protocols assign roles to, one row per
    ``INTERACTED`` edge.

    Returns:
        pd.DataFrame: columns ``src`` (user id), ``dst`` (item id), ``first_ts``, and ``time``
        (time slot) and ``place`` of the session of the pair's first occurrence (``""`` when
        unknown), in the row order of ``tables.edges["INTERACTED"]``.
    """
    return _pairs_with_context(tables, _contains_events(tables))


def _contains_events(tables: GraphTables) -> pd.DataFrame:
    """``CONTAINS`` rows with the session's user, time slot and place."""
    sessions = tables.nodes["Session"].set_index("id")
    contains = tables.edges["CONTAINS"].copy()
    contains["user"] = sessions["user_id"].reindex(contains["src"]).to_numpy()
    contains["time"] = sessions["time_slot"].reindex(contains["src"]).to_numpy()
    contains["place"] = sessions["place"].reindex(contains["src"]).fillna("").to_numpy()
    return contains


def _pairs_with_context(tables: GraphTables, contains: pd.DataFrame) -> pd.DataFrame:
    pairs = tables.edges["INTERACTED"][["src", "dst", "first_ts"]].copy()
    # the context of a pair is that of its first occurrence, the row that val/test report
    first_seen = (contains.sort_values(["user", "ts", "dst"], kind="stable")
                  .drop_duplicates(["user", "dst"], keep="first")
                  .set_index(["user", "dst"]))
    at = pd.MultiIndex.from_arrays([pairs["src"], pairs["dst"]])
    pairs["time"] = first_seen["time"].reindex(at).fillna("").to_numpy()
    pairs["place"] = first_seen["place"].reindex(at).fillna("").to_numpy()
    return pairs


def to_rec_graph(tables: GraphTables, vectors: Optional[Vectors] = None, split: SplitConfig | None = None) -> RecGraph:
    """Build a :class:`RecGraph` from :class:`GraphTables` and node vectors.

    Node indices follow sorted ids, so they are stable across runs and stores.

    Args:
        tables (GraphTables): the graph.
        vectors (Vectors, optional): ``(label, name) -> (ids, [N, d] array)`` node features
            (default: none).
        split (SplitConfig, optional): the split protocol; held-out pairs are left out of
            message passing (default: ``SplitConfig()``, temporal per user).
    """
    from torch_geometric.data import HeteroData

    # ctxrec.training imports this module, so the split protocols are imported on use
    from ctxrec.training.splits import split_roles

    split = split or SplitConfig()
    ids = {spec.pyg: np.sort(tables.nodes[label]["id"].astype(str).to_numpy()) for label, spec in schema.NODES.items()}
    index = {t: pd.Index(v) for t, v in ids.items()}

    def idx(node_type: str, keys: pd.Series) -> np.ndarray:
        out = index[node_type].get_indexer(keys.astype(str))
        return out

    contains = _contains_events(tables)
    pairs = _pairs_with_context(tables, contains)
    result = split_roles(pairs, split)
    pairs["role"] = result.role  # 0 train, 1 val, 2 test

    contains = contains.merge(pairs[["src", "dst", "role"]].rename(columns={"src": "user"}),
                              on=["user", "dst"], how="left")
    contains["role"] = contains["role"].fillna(0).astype(int)

    ordered = contains.sort_values(["user", "ts", "dst"], kind="stable").reset_index(drop=True)
    prefixes = _session_prefixes(ordered, split.session_len, idx)

    def events(frame: pd.DataFrame, prefix: Optional[torch.Tensor] = None) -> Interactions:
        return Interactions(
            user=torch.as_tensor(idx("user", frame["user"]), dtype=torch.long),
            item=torch.as_tensor(idx("item", frame["dst"]), dtype=torch.long),
            time=torch.as_tensor(idx("time", frame["time"]), dtype=torch.long),
            place=torch.as_tensor(idx("place", frame["place"]), dtype=torch.long),
            session=torch.as_tensor(idx("session", frame["src"]), dtype=torch.long),
            prefix=None if prefix is None else prefix[torch.from_numpy(frame.index.to_numpy(dtype=np.int64, copy=True))],
        )

    train_rows = ordered[ordered["role"] == 0]
    train_events = events(train_rows, prefixes[0])
    first = ordered.drop_duplicates(["user", "dst"], keep="first")
    val = events(first[first["role"] == 1], prefixes[1])
    test = events(first[first["role"] == 2], prefixes[1])

    data = HeteroData()
    for label, spec in schema.NODES.items():
        data[spec.pyg].num_nodes = len(ids[spec.pyg])
        data[spec.pyg].node_id = torch.arange(len(ids[spec.pyg]))
    for (label, name), (vid, vec) in (vectors or {}).items():
        t = schema.node_spec(label).pyg
        vec = np.asarray(vec, dtype=np.float32)
        if vec.size == 0:
            continue
        pos = index[t].get_indexer(pd.Index(np.asarray(vid).astype(str)))
        keep = pos >= 0
        x = torch.zeros(len(ids[t]), vec.shape[1])
        mask = torch.zeros(len(ids[t]), dtype=torch.bool)
        x[torch.as_tensor(pos[keep])] = torch.as_tensor(vec[keep])
        mask[torch.as_tensor(pos[keep])] = torch.as_tensor(np.isfinite(vec[keep]).all(1) & (np.abs(vec[keep]).sum(1) > 0))
        data[t][f"x_{name}"] = x
        data[t][f"mask_{name}"] = mask

    train_pairs = pairs[pairs["role"] == 0]
    for rel, spec in schema.RELS.items():
        frame = tables.edges[rel]
        if rel == "INTERACTED":
            frame = train_pairs
        elif rel == "CONTAINS":
            frame = contains[contains["role"] == 0]
        src_t, rel_name, dst_t = spec.pyg
        ei = torch.as_tensor(np.stack([idx(src_t, frame["src"]), idx(dst_t, frame["dst"])]), dtype=torch.long)
        ei = ei[:, (ei >= 0).all(0)] if ei.numel() else ei.reshape(2, 0)
        data[spec.pyg].edge_index = ei
        data[(dst_t, f"rev_{rel_name}", src_t)].edge_index = ei.flip(0)
    data.validate(raise_on_error=True)
    candidates = {}
    if split.protocol == "cold_items":
        for name, key in (("val", "val_items"), ("test", "test_items")):
            held = pd.Series(result.info[key], dtype=object)
            candidates[name] = torch.as_tensor(idx("item", held), dtype=torch.long)
    counts = np.bincount(pairs["role"].to_numpy(dtype=int), minlength=3)
    split_info = {"protocol": split.protocol, "config": asdict(split),
                  "pairs": {"train": int(counts[0]), "val": int(counts[1]), "test": int(counts[2])}, **result.info}
    return RecGraph(data=data, ids=ids, train=train_events, val=val, test=test,
                    candidates=candidates, split_info=split_info)


def _session_prefixes(ordered: pd.DataFrame, length: int, idx) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """Earlier session items of every row of ``ordered`` (time-sorted events): counting only
    train rows (for train events) and counting every row (for held-out events)."""
    if not length:
        return None, None
    session = torch.as_tensor(idx("session", ordered["src"]), dtype=torch.long)
    item = torch.as_tensor(idx("item", ordered["dst"]), dtype=torch.long)
    train = torch.from_numpy((ordered["role"] == 0).to_numpy(dtype=bool, copy=True))
    return session_prefixes(session, item, length, keep=train), session_prefixes(session, item, length)


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
