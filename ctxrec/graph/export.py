"""Export the stored graph to PyG: tables in, a :class:`~ctxrec.data.RecGraph` out (a
``HeteroData`` for message passing, the id maps, and train/val/test interactions split by a
protocol of :mod:`ctxrec.data.splits`; default: temporal per user).

Leakage rule: no edge of the held-out period, of any type, reaches message passing: not the
held-out pairs' ``INTERACTED`` or ``CONTAINS`` edges, not the ``OPENED`` / ``AT_TIME`` /
``AT_PLACE`` edges of sessions made only of held-out events, and under ``temporal`` not a
train pair's repeat event after the user's cut (see :func:`to_rec_graph`).
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Dict, Optional, Tuple

import numpy as np
import pandas as pd
import torch

from ctxrec.data import Interactions, RecGraph, SplitConfig, session_prefixes, split_roles
from ctxrec.graph import schema
from ctxrec.graph.tables import GraphTables

__all__ = ["Vectors", "export_pyg", "interaction_pairs", "read_store", "to_rec_graph"]

#: (label, vector name) -> (ids, float32 [N, d])
Vectors = Dict[Tuple[str, str], Tuple[np.ndarray, np.ndarray]]


def read_store(store) -> Tuple[GraphTables, Vectors]:
    """The whole graph of ``store`` as tables, and every stored node vector."""
    tables = store.read_subgraph()
    vectors: Vectors = {}
    for label in schema.NODES:
        for name in store.vector_names(label):
            vectors[(label, name)] = store.read_vectors(label, name)
    return tables, vectors


def export_pyg(store, split: SplitConfig | None = None, vectors: Optional[Vectors] = None) -> RecGraph:
    """Read the whole graph (and every stored vector) from ``store`` into a :class:`RecGraph`."""
    if vectors is None:
        tables, vectors = read_store(store)
    else:
        tables = store.read_subgraph()
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

    What reaches message passing (``RecGraph.data``) and ``RecGraph.train``: the *training
    events*, i.e. the ``CONTAINS`` rows of train pairs, and

    - under ``temporal``, only those up to the user's cut: a train pair's repeat event later
      than the user's first held-out event belongs to the held-out period and is left out;
    - ``INTERACTED`` edges of train pairs only;
    - ``OPENED``, ``AT_TIME`` and ``AT_PLACE`` edges only of sessions with at least one
      training event: a session made only of held-out events disappears from message passing
      (its node keeps its index, without edges), so the model cannot see when and where a
      user will be active in the held-out period; a session that straddles the cut keeps only
      its training events;
    - ``LIVES_IN`` and ``IN_CATEGORY`` (attributes, not events) whole.

    Args:
        tables (GraphTables): the graph.
        vectors (Vectors, optional): ``(label, name) -> (ids, [N, d] array)`` node features
            (default: none).
        split (SplitConfig, optional): the split protocol (default: ``SplitConfig()``, temporal
            per user); ``refit=True`` puts the validation pairs into training.
    """
    from torch_geometric.data import HeteroData

    split = split or SplitConfig()
    ids = {spec.pyg: np.sort(tables.nodes[label]["id"].astype(str).to_numpy()) for label, spec in schema.NODES.items()}
    index = {t: pd.Index(v) for t, v in ids.items()}

    def idx(node_type: str, keys: pd.Series) -> np.ndarray:
        return index[node_type].get_indexer(keys.astype(str))

    contains = _contains_events(tables)
    pairs = _pairs_with_context(tables, contains)
    result = split_roles(pairs, split)
    pairs["role"] = result.role  # 0 train, 1 val, 2 test, -1 unused

    contains = contains.merge(pairs[["src", "dst", "role"]].rename(columns={"src": "user"}),
                              on=["user", "dst"], how="left")
    contains["role"] = contains["role"].fillna(0).astype(int)

    # ties at equal timestamps: by item id, then the session id (a stable, documented order)
    ordered = contains.sort_values(["user", "ts", "dst", "src"], kind="stable").reset_index(drop=True)
    # split files written from a built-in protocol keep its rules (split_files.MANIFEST)
    made_by = result.info.get("files", {}).get("protocol") or split.protocol
    ordered["passing"] = _training_events(ordered, made_by)
    prefixes = _session_prefixes(ordered, split.session_len, idx)

    def events(frame: pd.DataFrame, prefix: Optional[torch.Tensor] = None) -> Interactions:
        return Interactions(
            user=torch.as_tensor(idx("user", frame["user"]), dtype=torch.long),
            item=torch.as_tensor(idx("item", frame["dst"]), dtype=torch.long),
            time=torch.as_tensor(idx("time", frame["time"]), dtype=torch.long),
            place=torch.as_tensor(idx("place", frame["place"]), dtype=torch.long),
            session=torch.as_tensor(idx("session", frame["src"]), dtype=torch.long),
            prefix=None if prefix is None else prefix[torch.from_numpy(frame.index.to_numpy(dtype=np.int64, copy=True))],
            ts=torch.as_tensor(pd.to_numeric(frame["ts"], errors="coerce").fillna(-1).to_numpy(dtype=np.int64, copy=True)),
        )

    passing = ordered[ordered["passing"]]
    train_events = events(passing, prefixes[0])
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

    live = pd.Index(passing["src"].unique())  # sessions with at least one training event
    for rel, spec in schema.RELS.items():
        frame = tables.edges[rel]
        if rel == "INTERACTED":  # train pairs with a training event (all of them, unless edited files say otherwise)
            trained = pd.MultiIndex.from_frame(passing[["user", "dst"]].drop_duplicates())
            frame = pairs[(pairs["role"] == 0).to_numpy() & pd.MultiIndex.from_frame(pairs[["src", "dst"]]).isin(trained)]
        elif rel == "CONTAINS":
            frame = passing
        elif rel == "OPENED":
            frame = frame[frame["dst"].isin(live)]
        elif rel in ("AT_TIME", "AT_PLACE"):
            frame = frame[frame["src"].isin(live)]
        src_t, rel_name, dst_t = spec.pyg
        ei = torch.as_tensor(np.stack([idx(src_t, frame["src"]), idx(dst_t, frame["dst"])]), dtype=torch.long)
        ei = ei[:, (ei >= 0).all(0)] if ei.numel() else ei.reshape(2, 0)
        data[spec.pyg].edge_index = ei
        data[(dst_t, f"rev_{rel_name}", src_t)].edge_index = ei.flip(0)
    data.validate(raise_on_error=True)
    candidates = {}
    if made_by == "cold_items":
        for name, key in (("val", "val_items"), ("test", "test_items")):
            if (name == "val" and split.refit) or key not in result.info:  # refit: val items are train items
                continue
            held = pd.Series(result.info[key], dtype=object)
            candidates[name] = torch.as_tensor(idx("item", held), dtype=torch.long)
    counts = np.bincount(pairs["role"].to_numpy(dtype=int) + 1, minlength=4)
    split_info = {"protocol": split.protocol, "config": asdict(split),
                  "pairs": {"train": int(counts[1]), "val": int(counts[2]), "test": int(counts[3])},
                  "sessions": {"total": len(tables.nodes["Session"]), "in_message_passing": len(live)},
                  **result.info}
    if counts[0]:
        split_info["pairs"]["unused"] = int(counts[0])
    return RecGraph(data=data, ids=ids, train=train_events, val=val, test=test,
                    candidates=candidates, split_info=split_info)


def _training_events(ordered: pd.DataFrame, protocol: str) -> np.ndarray:
    """Which rows of ``ordered`` (events sorted by user and time) are training events: rows of
    train pairs and, under ``temporal``, not later than the user's first held-out event."""
    passing = (ordered["role"] == 0).to_numpy(copy=True)
    if protocol == "temporal":
        cut = ordered.loc[ordered["role"] > 0].groupby("user")["ts"].min()
        limit = cut.reindex(ordered["user"]).to_numpy(dtype=float)  # NaN: the user holds nothing out
        passing &= ~(ordered["ts"].to_numpy(dtype=float) > limit)
    return passing


def _session_prefixes(ordered: pd.DataFrame, length: int, idx) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """Earlier session items of every row of ``ordered`` (time-sorted events): counting only
    training events (for train events) and counting every row (for held-out events)."""
    if not length:
        return None, None
    session = torch.as_tensor(idx("session", ordered["src"]), dtype=torch.long)
    item = torch.as_tensor(idx("item", ordered["dst"]), dtype=torch.long)
    train = torch.from_numpy(ordered["passing"].to_numpy(dtype=bool, copy=True))
    return session_prefixes(session, item, length, keep=train), session_prefixes(session, item, length)

