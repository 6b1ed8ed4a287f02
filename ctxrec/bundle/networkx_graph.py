"""The graph as a networkx ``MultiDiGraph``, from the stored tables or a ``RecGraph``.

Nodes are keyed ``"<node type>:<id>"`` (``"item:i0007"``) and carry ``type`` (PyG node
type), ``label`` (database label) and ``id``; from :class:`~ctxrec.graph.tables.GraphTables`
also every non-null property (``name``, ``category``, ...). Edges run source to
destination, keyed by the relationship (``"interacted"``), with ``type`` and, from tables,
their properties (``action``, ``ts``, ``weight``, ...).

From a ``RecGraph`` the edges are its message-passing graph: training interactions only
(held-out pairs are not edges there), forward direction only (``rev_*`` skipped).

Example:
    >>> g = to_networkx(store.read_subgraph())                    # doctest: +SKIP
    >>> g.nodes["item:i0007"]["name"], g.out_degree("user:u0001")  # doctest: +SKIP
    ('Red fox', 23)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    import networkx as nx

    from ctxrec.data import RecGraph
    from ctxrec.graph.tables import GraphTables

#: file suffixes :func:`write_networkx` understands
FORMATS = (".graphml", ".json")


def node_key(node_type: str, node_id: str) -> str:
    """The networkx key of a node: ``"<node type>:<id>"``."""
    return f"{node_type}:{node_id}"


def _clean(value):
    """A property value networkx files can hold (Python scalars), or None for a missing one."""
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def _rows(frame, keys):
    """``(key value(s), {property: value})`` per row of ``frame``, missing properties left out."""
    props = [c for c in frame.columns if c not in keys]
    for values in zip(*(frame[c].tolist() for c in (*keys, *props))):
        key = values[0] if len(keys) == 1 else values[:len(keys)]
        attrs = {c: v for c, v in zip(props, map(_clean, values[len(keys):])) if v is not None}
        yield key, attrs


def to_networkx(source: Union["GraphTables", "RecGraph"], vectors: bool = False) -> "nx.MultiDiGraph":
    """Build a ``networkx.MultiDiGraph`` of the graph.

    Args:
        source (GraphTables | RecGraph): ``store.read_subgraph()`` (the whole graph with
            properties) or an exported ``RecGraph`` (the training graph, node indices).
        vectors (bool): ``RecGraph`` only: attach node features ``x_<name>`` as numpy rows
            (not writable to GraphML) (default: False).

    Returns:
        networkx.MultiDiGraph: typed nodes and edges as described above.
    """
    import networkx as nx

    from ctxrec.graph import schema
    from ctxrec.graph.tables import GraphTables

    g = nx.MultiDiGraph()
    if isinstance(source, GraphTables):
        if vectors:
            raise ValueError("vectors=True needs a RecGraph (tables hold no vectors); pass export_pyg(store)")
        for label, spec in schema.NODES.items():
            for node_id, attrs in _rows(source.nodes[label], ("id",)):
                g.add_node(node_key(spec.pyg, node_id), type=spec.pyg, label=label, id=str(node_id), **attrs)
        for rel, spec in schema.RELS.items():
            src_t, rel_name, dst_t = spec.pyg
            for (src, dst), attrs in _rows(source.edges[rel], ("src", "dst")):
                g.add_edge(node_key(src_t, src), node_key(dst_t, dst), key=rel_name, type=rel_name, **attrs)
        return g
    data = getattr(source, "data", None)
    if data is None or not hasattr(source, "ids"):
        raise TypeError(f"to_networkx takes GraphTables or a RecGraph, got {type(source).__name__}")
    for t in data.node_types:
        feats = {k: data[t][k].detach().cpu().numpy() for k in data[t].keys() if k.startswith("x_")} if vectors else {}
        for i, node_id in enumerate(source.ids[t]):
            g.add_node(node_key(t, node_id), type=t, label=schema.label_of(t), id=str(node_id),
                       **{k: v[i] for k, v in feats.items()})
    for et in data.edge_types:
        src_t, rel_name, dst_t = et
        if rel_name.startswith("rev_"):
            continue
        src_ids, dst_ids = source.ids[src_t], source.ids[dst_t]
        for s, d in data[et].edge_index.t().tolist():
            g.add_edge(node_key(src_t, src_ids[s]), node_key(dst_t, dst_ids[d]), key=rel_name, type=rel_name)
    return g


def write_networkx(graph: "nx.MultiDiGraph", path: str | Path) -> Path:
    """Write ``graph`` as GraphML (``.graphml``) or node-link JSON (``.json``).

    Args:
        graph (networkx.MultiDiGraph): from :func:`to_networkx` (without vectors).
        path (str | Path): the file; its suffix picks the format.
    """
    import networkx as nx

    path = Path(path)
    if path.suffix not in FORMATS:
        raise ValueError(f"networkx file {str(path)!r}: unknown suffix {path.suffix!r}; use one of {list(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".graphml":
        nx.write_graphml(graph, path)
    else:
        path.write_text(json.dumps(nx.node_link_data(graph, edges="edges")))
    return path
