"""The graph as plain numpy files, and its loader into a DGL heterograph.

This module imports only the standard library and numpy (``dgl`` and ``torch`` inside
:func:`load_dgl_heterograph`), so it runs in the separate DGL environment
(``scripts/dgl_env.sh`` builds ``.venv-dgl``: DGL 2.1.0 needs torch <= 2.2.1, the core
venv has torch 2.11) with nothing else from ctxrec installed there.

Layout of a graph-arrays folder (written by :func:`write_graph_arrays`; from a
``RecGraph`` by :func:`ctxrec.bundle.write_dgl_bundle` or ``ctxrec export --dgl DIR``)::

    graph.json                     format, node types, num_nodes, canonical edge types, files, meta
    ids/<node type>.npy            unicode [N]: database id of each node index
    edges/<src>__<rel>__<dst>.npy  int64 [2, E]: source and destination node indices
    nodes/<node type>/<name>.npy   float32 [N, d]: node vectors (features ``x_text``, embeddings ``emb``)
    nodes/<node type>/<name>.mask.npy  bool [N]: which rows hold a vector (absent: all do)

Every array loads with ``np.load(path, allow_pickle=False)``.

Example:
    >>> g = load_dgl_heterograph("bundle/graph")          # doctest: +SKIP
    >>> g.num_nodes("item"), g.nodes["item"].data["emb"].shape  # doctest: +SKIP
    (40, torch.Size([40, 64]))
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

GRAPH_JSON = "graph.json"
KIND = "ctxrec-graph-arrays"
FORMAT_VERSION = 1

EdgeType = Tuple[str, str, str]


@dataclass
class GraphArrays:
    """A heterogeneous graph as numpy arrays.

    Args:
        num_nodes: node type -> number of nodes.
        edges: canonical edge type ``(src, rel, dst)`` -> int64 ``[2, E]`` node indices.
        ids: node type -> database id of each node index (``[N]``).
        vectors: node type -> vector name -> float32 ``[N, d]`` (default: none).
        masks: node type -> vector name -> bool ``[N]``, which rows hold a vector
            (default: every row does).
        meta: JSON-serialisable facts kept beside the arrays (default: none).
    """

    num_nodes: Dict[str, int]
    edges: Dict[EdgeType, np.ndarray]
    ids: Dict[str, np.ndarray]
    vectors: Dict[str, Dict[str, np.ndarray]] = field(default_factory=dict)
    masks: Dict[str, Dict[str, np.ndarray]] = field(default_factory=dict)
    meta: Dict[str, object] = field(default_factory=dict)

    def check(self) -> "GraphArrays":
        """Raise a ValueError naming the first array that does not fit the node counts."""
        for t, n in self.num_nodes.items():
            if len(self.ids.get(t, ())) != n:
                raise ValueError(f"ids[{t!r}] has {len(self.ids.get(t, ()))} entries, num_nodes[{t!r}] is {n}")
        for et, ei in self.edges.items():
            if len(et) != 3 or et[0] not in self.num_nodes or et[2] not in self.num_nodes:
                raise ValueError(f"edge type {et!r} must be (src, rel, dst) of node types {sorted(self.num_nodes)}")
            if ei.ndim != 2 or ei.shape[0] != 2:
                raise ValueError(f"edges[{et!r}] must be [2, E], got shape {ei.shape}")
            for row, t in ((0, et[0]), (1, et[2])):
                if ei.shape[1] and (ei[row].min() < 0 or ei[row].max() >= self.num_nodes[t]):
                    raise ValueError(f"edges[{et!r}] row {row} has node indices outside 0..{self.num_nodes[t] - 1} "
                                     f"of {t!r}: min {ei[row].min()}, max {ei[row].max()}")
        for t, named in self.vectors.items():
            for name, mat in named.items():
                if mat.ndim != 2 or mat.shape[0] != self.num_nodes.get(t, -1):
                    raise ValueError(f"vectors[{t!r}][{name!r}] must be [num_nodes={self.num_nodes.get(t)}, d], "
                                     f"got shape {mat.shape}")
                mask = self.masks.get(t, {}).get(name)
                if mask is not None and mask.shape != (mat.shape[0],):
                    raise ValueError(f"masks[{t!r}][{name!r}] must be [{mat.shape[0]}], got shape {mask.shape}")
        return self


def _edge_file(et: EdgeType) -> str:
    return f"edges/{et[0]}__{et[1]}__{et[2]}.npy"


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array, allow_pickle=False)


def write_graph_arrays(out: str | Path, arrays: GraphArrays) -> Path:
    """Write ``arrays`` to the folder ``out`` (created; files of the same names are replaced).

    Args:
        out (str | Path): the folder.
        arrays (GraphArrays): the graph; checked first.

    Returns:
        Path: the folder.
    """
    arrays.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: Dict[str, object] = {"ids": {}, "edges": {}, "vectors": {}}
    for t in arrays.num_nodes:
        rel = f"ids/{t}.npy"
        _save(out / rel, np.asarray(arrays.ids[t]).astype(str))
        files["ids"][t] = rel
    for et, ei in arrays.edges.items():
        rel = _edge_file(et)
        _save(out / rel, np.ascontiguousarray(ei, dtype=np.int64))
        files["edges"]["__".join(et)] = rel
    for t, named in arrays.vectors.items():
        for name, mat in named.items():
            rel = f"nodes/{t}/{name}.npy"
            _save(out / rel, np.ascontiguousarray(mat, dtype=np.float32))
            entry = {"file": rel, "dim": int(mat.shape[1])}
            mask = arrays.masks.get(t, {}).get(name)
            if mask is not None:
                entry["mask"] = f"nodes/{t}/{name}.mask.npy"
                _save(out / entry["mask"], np.asarray(mask, dtype=bool))
            files["vectors"].setdefault(t, {})[name] = entry
    doc = {"kind": KIND, "format": FORMAT_VERSION, "node_types": list(arrays.num_nodes),
           "num_nodes": {t: int(n) for t, n in arrays.num_nodes.items()},
           "edge_types": [list(et) for et in arrays.edges], "files": files, "meta": arrays.meta}
    tmp = out / (GRAPH_JSON + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, out / GRAPH_JSON)  # graph.json last: a folder with it is complete
    return out


def read_graph_arrays(path: str | Path, vectors: bool = True) -> GraphArrays:
    """Read a folder written by :func:`write_graph_arrays`.

    Args:
        path (str | Path): the folder (the one holding ``graph.json``).
        vectors (bool): also read node vectors and masks (default: True).

    Raises:
        FileNotFoundError: no ``graph.json`` there (the message says how to write one).
        ValueError: the folder holds another kind or a newer format.
    """
    path = Path(path)
    doc_path = path / GRAPH_JSON
    if not doc_path.is_file():
        raise FileNotFoundError(f"no {GRAPH_JSON} in {path}; write one with `ctxrec export --dgl {path}` "
                                "or ctxrec.bundle.write_dgl_bundle(graph, path) (a bundle keeps it in <bundle>/graph)")
    doc = json.loads(doc_path.read_text())
    if doc.get("kind") != KIND or int(doc.get("format", -1)) > FORMAT_VERSION:
        raise ValueError(f"{doc_path}: kind {doc.get('kind')!r} format {doc.get('format')!r} is not "
                         f"{KIND!r} format <= {FORMAT_VERSION}; re-export it with this ctxrec version")
    files = doc["files"]

    def load(rel: str) -> np.ndarray:
        return np.load(path / rel, allow_pickle=False)

    ids = {t: load(files["ids"][t]) for t in doc["node_types"]}
    edges = {tuple(et): load(files["edges"]["__".join(et)]) for et in doc["edge_types"]}
    vecs: Dict[str, Dict[str, np.ndarray]] = {}
    masks: Dict[str, Dict[str, np.ndarray]] = {}
    if vectors:
        for t, named in files["vectors"].items():
            for name, entry in named.items():
                vecs.setdefault(t, {})[name] = load(entry["file"])
                if "mask" in entry:
                    masks.setdefault(t, {})[name] = load(entry["mask"])
    return GraphArrays(num_nodes={t: int(n) for t, n in doc["num_nodes"].items()}, edges=edges, ids=ids,
                       vectors=vecs, masks=masks, meta=doc.get("meta", {}))


def load_dgl_heterograph(path: str | Path, vectors: bool = True, device: Optional[str] = None):
    """Load a graph-arrays folder into a ``dgl.heterograph``. Runs where DGL is installed
    (``.venv-dgl``, see ``scripts/dgl_env.sh``).

    Node vectors become ``g.nodes[t].data[name]`` (float32 ``[N, d]``), their masks
    ``g.nodes[t].data[name + "_mask"]`` (bool ``[N]``); database ids stay in
    :func:`read_graph_arrays` (``.ids[t][i]`` is node ``i``'s id), since DGL holds no strings.

    Args:
        path (str | Path): the folder holding ``graph.json`` (``<bundle>/graph`` of a bundle).
        vectors (bool): attach node vectors (default: True).
        device (str, optional): move the graph there, e.g. ``"cuda"`` (default: CPU).

    Returns:
        dgl.DGLGraph: one node type per node type of the folder, one canonical edge type
        per edge file (forward and ``rev_*`` edges, as ctxrec passes messages), int64 ids.

    Example:
        >>> g = load_dgl_heterograph("bundle/graph")      # doctest: +SKIP
        >>> g.canonical_etypes[0]                           # doctest: +SKIP
        ('user', 'interacted', 'item')
    """
    try:
        import dgl
        import torch
    except ImportError as e:
        raise ImportError(f"load_dgl_heterograph needs 'dgl' (which needs torch <= 2.2.1): build its venv with "
                          f"scripts/dgl_env.sh and run .venv-dgl/bin/python ({e})") from e
    arrays = read_graph_arrays(path, vectors=vectors)
    data = {et: (torch.from_numpy(ei[0].copy()), torch.from_numpy(ei[1].copy())) for et, ei in arrays.edges.items()}
    g = dgl.heterograph(data, num_nodes_dict=dict(arrays.num_nodes), idtype=torch.int64)
    for t, named in arrays.vectors.items():
        for name, mat in named.items():
            g.nodes[t].data[name] = torch.from_numpy(mat.copy())
            mask = arrays.masks.get(t, {}).get(name)
            if mask is not None:
                g.nodes[t].data[f"{name}_mask"] = torch.from_numpy(mask.copy())
    return g.to(device) if device else g
