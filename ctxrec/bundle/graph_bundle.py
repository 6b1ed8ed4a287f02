"""A :class:`~ctxrec.data.RecGraph` as plain numpy files (DGL-ready), and back.

:func:`write_dgl_bundle` writes the message-passing graph of a ``RecGraph`` (train edges
and their ``rev_*`` reverses, in the graph's edge-type order), its node features
(``x_<name>`` with masks), optional node embeddings (``emb``) and id maps in the
graph-arrays layout of :mod:`ctxrec.bundle.dgl_loader`, plus ``splits.npz`` (the train,
validation and test interactions and candidate items). :func:`read_rec_graph` rebuilds
the same ``RecGraph`` from them, with no store and no re-split: that is how an exported
bundle serves without the database.

Example:
    >>> write_dgl_bundle(graph, "out/dgl", embeddings={"item": emb})   # doctest: +SKIP
    >>> # in .venv-dgl: ctxrec.bundle.dgl_loader.load_dgl_heterograph("out/dgl")
    >>> read_rec_graph("out/dgl").num_items                              # doctest: +SKIP
    40
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Mapping, Optional

import numpy as np

from ctxrec.bundle.dgl_loader import GraphArrays, read_graph_arrays, write_graph_arrays

if TYPE_CHECKING:  # torch stays out of `import ctxrec.bundle` (the DGL venv imports this package)
    from ctxrec.data import Interactions, RecGraph

SPLITS = "splits.npz"
_FIELDS = ("user", "item", "time", "place", "session", "prefix")


def graph_arrays(graph: "RecGraph", embeddings: Optional[Mapping[str, np.ndarray]] = None) -> GraphArrays:
    """The message-passing graph, features and ``embeddings`` of ``graph`` as :class:`GraphArrays`.

    Args:
        graph (RecGraph): the exported graph.
        embeddings (Mapping[str, np.ndarray], optional): node type -> ``[N, d]`` vectors,
            stored as vector ``emb`` (default: none).
    """
    data = graph.data
    num_nodes = {t: int(data[t].num_nodes) for t in data.node_types}
    vectors: Dict[str, Dict[str, np.ndarray]] = {}
    masks: Dict[str, Dict[str, np.ndarray]] = {}
    for t in data.node_types:
        for key in data[t].keys():
            if key.startswith("x_"):
                mat = data[t][key].detach().cpu().numpy()
                mask = data[t].get(f"mask_{key[2:]}")  # to_rec_graph always sets it; a hand-made graph may not
                vectors.setdefault(t, {})[key] = mat
                masks.setdefault(t, {})[key] = np.ones(len(mat), bool) if mask is None else mask.cpu().numpy()
    for t, emb in (embeddings or {}).items():
        if t not in num_nodes:
            raise ValueError(f"embeddings for node type {t!r}, which the graph does not have; "
                             f"expected some of {sorted(num_nodes)}")
        vectors.setdefault(t, {})["emb"] = np.asarray(emb, dtype=np.float32)
    edges = {tuple(et): data[et].edge_index.detach().cpu().numpy() for et in data.edge_types}
    meta = {"split_info": _jsonable(graph.split_info)}
    return GraphArrays(num_nodes=num_nodes, edges=edges, ids={t: np.asarray(graph.ids[t]) for t in num_nodes},
                       vectors=vectors, masks=masks, meta=meta).check()


def write_dgl_bundle(graph: "RecGraph", out: str | Path,
                     embeddings: Optional[Mapping[str, np.ndarray]] = None) -> Path:
    """Write ``graph`` as numpy files that DGL (or any numpy reader) loads, plus its splits.

    Load it with :func:`ctxrec.bundle.dgl_loader.load_dgl_heterograph` in the DGL venv, or
    with :func:`read_rec_graph` in the core one.

    Args:
        graph (RecGraph): the exported graph.
        out (str | Path): the folder (created).
        embeddings (Mapping[str, np.ndarray], optional): node type -> ``[N, d]`` vectors,
            e.g. :func:`ctxrec.bundle.node_embeddings` of a model (default: none).

    Returns:
        Path: the folder.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    splits: Dict[str, np.ndarray] = {}
    for split in ("train", "val", "test"):
        events = getattr(graph, split)
        for name in _FIELDS:
            value = getattr(events, name)
            if value is not None:
                splits[f"{split}.{name}"] = value.detach().cpu().numpy()
    for split, items in graph.candidates.items():
        splits[f"candidates.{split}"] = items.detach().cpu().numpy()
    np.savez(out / SPLITS, **splits)
    return write_graph_arrays(out, graph_arrays(graph, embeddings))


def read_rec_graph(path: str | Path) -> "RecGraph":
    """Rebuild the :class:`~ctxrec.data.RecGraph` written by :func:`write_dgl_bundle`.

    Node indices, edges, features, splits and candidates are those of the written graph,
    so a model saved for it loads and ranks as it did (``Recommender.load(dir, graph)``).

    Raises:
        FileNotFoundError: the folder lacks ``graph.json`` or ``splits.npz``.
    """
    import torch
    from torch_geometric.data import HeteroData

    from ctxrec.data import RecGraph

    path = Path(path)
    arrays = read_graph_arrays(path)
    if not (path / SPLITS).is_file():
        raise FileNotFoundError(f"no {SPLITS} in {path}: it holds a graph but not its train/val/test "
                                "interactions; write it with ctxrec.bundle.write_dgl_bundle(graph, path)")
    with np.load(path / SPLITS, allow_pickle=False) as z:
        splits = {k: torch.from_numpy(z[k].copy()) for k in z.files}
    data = HeteroData()
    for t, n in arrays.num_nodes.items():
        data[t].num_nodes = n
        data[t].node_id = torch.arange(n)
        for name, mat in arrays.vectors.get(t, {}).items():
            if name.startswith("x_"):
                data[t][name] = torch.from_numpy(mat.copy())
                data[t][f"mask_{name[2:]}"] = torch.from_numpy(arrays.masks[t][name].copy())
    for et, ei in arrays.edges.items():
        data[et].edge_index = torch.from_numpy(ei.copy())
    data.validate(raise_on_error=True)
    events = {split: _interactions({f: splits.get(f"{split}.{f}") for f in _FIELDS})
              for split in ("train", "val", "test")}
    candidates = {k.split(".", 1)[1]: v for k, v in splits.items() if k.startswith("candidates.")}
    ids = {t: np.array([str(i) for i in v], dtype=object) for t, v in arrays.ids.items()}
    return RecGraph(data=data, ids=ids, candidates=candidates,
                    split_info=dict(arrays.meta.get("split_info", {})), **events)


def _interactions(fields: Dict[str, object]) -> "Interactions":
    from ctxrec.data import Interactions

    return Interactions(**fields)


def _jsonable(value):
    """``value`` with numpy scalars and arrays turned into plain Python, for JSON."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
