"""``GraphTables``: nodes and edges per type as pandas DataFrames.

This is the hand-off between :mod:`ctxrec.graph.build` (tables in) and the graph
stores (tables out). Node frames have a string ``id`` column plus the properties
named in :mod:`ctxrec.graph.schema`; edge frames have string ``src`` and ``dst``
columns plus the relationship's properties. Ids are stable across runs: they are
derived from the input data, never from row order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

import pandas as pd

from ctxrec.graph import schema


def _empty_node_frame(label: str) -> pd.DataFrame:
    spec = schema.node_spec(label)
    return pd.DataFrame({c: pd.Series(dtype=_dtype(t)) for c, t in {"id": "STRING", **spec.properties}.items()})


def _empty_edge_frame(rel: str) -> pd.DataFrame:
    spec = schema.rel_spec(rel)
    cols = {"src": "STRING", "dst": "STRING", **spec.properties}
    return pd.DataFrame({c: pd.Series(dtype=_dtype(t)) for c, t in cols.items()})


def _dtype(prop_type: str) -> str:
    return {"STRING": "object", "INT64": "int64", "DOUBLE": "float64", "BOOLEAN": "bool"}[prop_type]


def conform_nodes(label: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with exactly the schema's columns for ``label``, in order.

    Missing property columns are added as nulls; unknown columns raise.

    Raises:
        ValueError: when ``id`` is missing, ids repeat, or a column is not in the schema.
    """
    spec = schema.node_spec(label)
    return _conform(f"node {label}", frame, ["id"], spec.properties, key=["id"])


def conform_edges(rel: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with exactly the schema's columns for relationship ``rel``."""
    spec = schema.rel_spec(rel)
    return _conform(f"relationship {rel}", frame, ["src", "dst"], spec.properties, key=["src", "dst"])


def _conform(what, frame, keys, props, key):
    missing = [k for k in keys if k not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing key column(s) {missing}; got columns {list(frame.columns)}")
    unknown = [c for c in frame.columns if c not in keys and c not in props]
    if unknown:
        raise ValueError(f"{what}: column(s) {unknown} are not in the schema; allowed: {keys + list(props)}")
    out = pd.DataFrame(index=frame.index)
    for k in keys:
        col = frame[k]
        if col.isna().any():
            raise ValueError(f"{what}: column {k!r} has {int(col.isna().sum())} missing value(s)")
        try:
            out[k] = col.astype(str)
        except UnicodeEncodeError:  # pandas' str dtype is Arrow: a lone surrogate has no UTF-8 form
            row = next(r for r, v in enumerate(col.tolist()) if not is_utf8(str(v)))
            raise ValueError(f"{what}: column {k!r} row {row} value {str(col.iloc[row])[:40]!r} is not valid Unicode "
                             f"text (a lone surrogate); decode the source with the right encoding") from None
    for name, ptype in props.items():
        if name in frame.columns:
            out[name] = frame[name]
        else:
            out[name] = pd.Series([None] * len(frame), index=frame.index, dtype="object")
        if ptype in ("INT64",) and out[name].notna().all():
            out[name] = out[name].astype("int64")
        elif ptype == "DOUBLE":
            out[name] = pd.to_numeric(out[name], errors="raise").astype("float64")
    dup = out.duplicated(subset=key)
    if dup.any():
        raise ValueError(f"{what}: {int(dup.sum())} duplicate key(s), first {out.loc[dup, key].iloc[0].tolist()}")
    return out.reset_index(drop=True)


def is_utf8(value: str) -> bool:
    """Whether ``value`` has a UTF-8 form (no lone surrogate), the only text the stores refuse."""
    try:
        value.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


@dataclass
class GraphTables:
    """Nodes and edges of the heterogeneous graph, one DataFrame per type.

    Args:
        nodes: database label -> frame with ``id`` and the label's properties.
        edges: relationship type -> frame with ``src``, ``dst`` and the type's properties.
    """

    nodes: Dict[str, pd.DataFrame] = field(default_factory=dict)
    edges: Dict[str, pd.DataFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for label in schema.NODES:
            frame = self.nodes.get(label)
            self.nodes[label] = _empty_node_frame(label) if frame is None else conform_nodes(label, frame)
        for rel in schema.RELS:
            frame = self.edges.get(rel)
            self.edges[rel] = _empty_edge_frame(rel) if frame is None else conform_edges(rel, frame)
        extra = set(self.nodes) - set(schema.NODES) | set(self.edges) - set(schema.RELS)
        if extra:
            raise ValueError(f"GraphTables: types {sorted(extra)} are not in the schema")

    def counts(self) -> Dict[str, int]:
        """Row count per node label and relationship type."""
        return {**{k: len(v) for k, v in self.nodes.items()}, **{k: len(v) for k, v in self.edges.items()}}
