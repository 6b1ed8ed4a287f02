"""A FAISS index over item embeddings: cosine similarity as inner product of
L2-normalised vectors (``IndexFlatIP``, exact; or ``IndexHNSWFlat``, approximate).

On disk (:meth:`ItemIndex.save`): ``items.faiss`` (``faiss.write_index``), ``ids.npy``
(row -> item id) and ``index.json`` (kind, dim, count, metric). Any FAISS user can read
the first two without ctxrec.

Example:
    >>> index = ItemIndex.build(graph.ids["item"], emb)          # emb: [num_items, d]
    >>> ids, scores = index.search(emb[:2], k=5)                 # doctest: +SKIP
    >>> ids.shape, scores.shape                                   # doctest: +SKIP
    ((2, 5), (2, 5))
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np

INDEX_FILE = "items.faiss"
IDS_FILE = "ids.npy"
META_FILE = "index.json"
KINDS = ("flat", "hnsw")


def _faiss():
    from ctxrec.optional import require

    return require("faiss", "ItemIndex")


def normalise(vectors) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), float32, C-contiguous."""
    mat = np.asarray(vectors, dtype=np.float32)
    mat = mat / np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
    return np.ascontiguousarray(mat, dtype=np.float32)


class ItemIndex:
    """Nearest items by cosine similarity, answered by FAISS.

    Args:
        index: a FAISS index over normalised vectors with inner-product metric.
        ids (Sequence[str]): the item id of each row of the index.
        kind (str): ``"flat"`` or ``"hnsw"`` (default: ``"flat"``).
    """

    def __init__(self, index, ids: Sequence[str], kind: str = "flat") -> None:
        if index.ntotal != len(ids):
            raise ValueError(f"the index holds {index.ntotal} vectors but {len(ids)} ids were given")
        self.index, self.ids, self.kind = index, np.asarray([str(i) for i in ids]), kind

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(cls, ids: Sequence[str], vectors, kind: str = "flat", hnsw_m: int = 32) -> "ItemIndex":
        """Index ``vectors`` ``[N, d]`` (row ``i`` is item ``ids[i]``).

        Args:
            ids (Sequence[str]): item ids, one per row.
            vectors (np.ndarray | torch.Tensor): ``[N, d]`` finite item vectors.
            kind (str): ``"flat"`` (exact; fine up to ~1M vectors) or ``"hnsw"`` (default: ``"flat"``).
            hnsw_m (int): HNSW neighbours per node (default: 32).
        """
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is not one of {list(KINDS)}")
        if hasattr(vectors, "detach"):
            vectors = vectors.detach().cpu().numpy()
        mat = np.asarray(vectors, dtype=np.float32)
        if mat.ndim != 2 or mat.shape[0] != len(ids) or mat.shape[1] == 0:
            raise ValueError(f"vectors must be [len(ids), d] = [{len(ids)}, d], got shape {mat.shape}")
        if not np.isfinite(mat).all():
            raise ValueError("vectors have non-finite values; export them from a fitted model")
        faiss = _faiss()
        d = mat.shape[1]
        index = faiss.IndexFlatIP(d) if kind == "flat" else faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.add(normalise(mat))
        return cls(index, ids, kind)

    def search(self, queries, k: int = 10) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most cosine-similar to each query, best first.

        Args:
            queries (np.ndarray | torch.Tensor): ``[Q, d]`` or ``[d]``.
            k (int): how many per query (at most the index size) (default: 10).

        Returns:
            ``(ids [Q, k], scores [Q, k])``: item ids (``""`` where fewer were found) and cosines.
        """
        if hasattr(queries, "detach"):
            queries = queries.detach().cpu().numpy()
        q = np.asarray(queries, dtype=np.float32)
        q = q[None, :] if q.ndim == 1 else q
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must be [Q, {self.dim}] or [{self.dim}], got shape {np.shape(queries)}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        scores, rows = self.index.search(normalise(q), min(int(k), len(self)))
        found = np.where(rows >= 0, self.ids[np.clip(rows, 0, None)], "")
        return found, scores

    def save(self, folder: str | Path) -> Path:
        """Write ``items.faiss``, ``ids.npy`` and ``index.json`` into ``folder`` (created)."""
        faiss = _faiss()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / INDEX_FILE))
        np.save(folder / IDS_FILE, self.ids, allow_pickle=False)
        meta = {"kind": self.kind, "dim": self.dim, "count": len(self), "metric": "inner_product",
                "normalised": True, "faiss": getattr(faiss, "__version__", "unknown")}
        (folder / META_FILE).write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "ItemIndex":
        """Read an index written by :meth:`save` (``<bundle>/faiss``)."""
        folder = Path(folder)
        if not (folder / INDEX_FILE).is_file():
            raise FileNotFoundError(f"no {INDEX_FILE} in {folder}; build one with `ctxrec export --faiss` "
                                    "or ItemIndex.build(ids, vectors).save(folder)")
        faiss = _faiss()
        meta = json.loads((folder / META_FILE).read_text())
        return cls(faiss.read_index(str(folder / INDEX_FILE)), np.load(folder / IDS_FILE, allow_pickle=False),
                   meta.get("kind", "flat"))
