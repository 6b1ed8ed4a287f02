"""Export the stored graph to PyG: a :class:`RecGraph` holding a ``HeteroData`` for
message passing, the id maps, and temporal per-user train/val/test interactions.

Leakage rule: the ``(user, item)`` pairs held out for validation or test never
appear in message passing — neither as ``INTERACTED`` edges nor as ``CONTAINS``
edges from any of that user's sessions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
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
    """

    user: torch.Tensor
    item: torch.Tensor
    time: torch.Tensor
    place: torch.Tensor
    session: torch.Tensor

    def __len__(self) -> int:
        return int(self.user.numel())

    def to(self, device) -> "Interactions":
        return Interactions(*(t.to(device) for t in (self.user, self.item, self.time, self.place, self.session)))


@dataclass
class SplitConfig:
    """Temporal per-user split of ``(user, item)`` pairs ordered by first interaction.

    Args:
        test: share of each user's pairs held out for test, the latest ones (default: 0.2).
        val: share of the remaining pairs held out for validation, the latest ones (default: 0.1).
        min_pairs: users with fewer pairs keep all of them in train (default: 3).
    """

    test: float = 0.2
    val: float = 0.1
    min_pairs: int = 3


@dataclass
class RecGraph:
    """What models train on.

    Attributes:
        data: message-passing graph (train edges only, plus reverse edges ``rev_*``);
            ``data[t].x_<name>`` holds vectors named ``<name>`` and ``mask_<name>`` their presence.
        ids: PyG node type -> array of database ids, by node index.
        train: every training event (one per session occurrence of a train pair).
        val, test: held-out pairs, one row each, with the context of their first occurrence.
    """

    data: "object"
    ids: Dict[str, np.ndarray]
    train: Interactions
    val: Interactions
    test: Interactions
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


def to_rec_graph(tables: GraphTables, vectors: Optional[Vectors] = None, split: SplitConfig | None = None) -> RecGraph:
    """Build a :class:`RecGraph` from :class:`GraphTables` and node vectors.

    Node indices follow sorted ids, so they are stable across runs and stores.
    """
    from torch_geometric.data import HeteroData

    split = split or SplitConfig()
    ids = {spec.pyg: np.sort(tables.nodes[label]["id"].astype(str).to_numpy()) for label, spec in schema.NODES.items()}
    index = {t: pd.Index(v) for t, v in ids.items()}

    def idx(node_type: str, keys: pd.Series) -> np.ndarray:
        out = index[node_type].get_indexer(keys.astype(str))
        return out

    sessions = tables.nodes["Session"].set_index("id")
    pairs = tables.edges["INTERACTED"][["src", "dst", "first_ts"]].copy()
    role = _temporal_roles(pairs, split)  # 0 train, 1 val, 2 test
    pairs["role"] = role

    contains = tables.edges["CONTAINS"].copy()
    contains["user"] = sessions["user_id"].reindex(contains["src"]).to_numpy()
    contains = contains.merge(pairs[["src", "dst", "role"]].rename(columns={"src": "user"}),
                              on=["user", "dst"], how="left")
    contains["role"] = contains["role"].fillna(0).astype(int)
    contains["time"] = sessions["time_slot"].reindex(contains["src"]).to_numpy()
    contains["place"] = sessions["place"].reindex(contains["src"]).fillna("").to_numpy()

    def events(frame: pd.DataFrame) -> Interactions:
        return Interactions(
            user=torch.as_tensor(idx("user", frame["user"]), dtype=torch.long),
            item=torch.as_tensor(idx("item", frame["dst"]), dtype=torch.long),
            time=torch.as_tensor(idx("time", frame["time"]), dtype=torch.long),
            place=torch.as_tensor(idx("place", frame["place"]), dtype=torch.long),
            session=torch.as_tensor(idx("session", frame["src"]), dtype=torch.long),
        )

    ordered = contains.sort_values(["user", "ts", "dst"], kind="stable")
    train_events = events(ordered[ordered["role"] == 0])
    first = ordered.drop_duplicates(["user", "dst"], keep="first")
    val = events(first[first["role"] == 1])
    test = events(first[first["role"] == 2])

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
    return RecGraph(data=data, ids=ids, train=train_events, val=val, test=test)


def _temporal_roles(pairs: pd.DataFrame, split: SplitConfig) -> np.ndarray:
    """Per user, order pairs by (first time, item id): the last ``test`` share is test,
    the last ``val`` share of the rest is validation."""
    order = pairs.sort_values(["src", "first_ts", "dst"], kind="stable")
    n = order.groupby("src")["dst"].transform("size").to_numpy()
    rank = order.groupby("src").cumcount().to_numpy()
    n_test = np.floor(n * split.test).astype(int)
    n_val = np.floor((n - n_test) * split.val).astype(int)
    small = n < split.min_pairs
    n_test[small] = 0
    n_val[small] = 0
    role = np.where(rank >= n - n_test, 2, np.where(rank >= n - n_test - n_val, 1, 0))
    out = pd.Series(role, index=order.index).reindex(pairs.index).to_numpy()
    return out
