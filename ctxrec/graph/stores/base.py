"""``GraphStore``: the one store protocol every backend implements.

Public methods check and normalise their arguments (labels and relationship types
only from :mod:`ctxrec.graph.schema`, ids as ``str``, vectors finite and of one
dimension, ``k > 0``) and then call underscored primitives that a backend
implements, the way PyG's ``put_tensor`` calls ``_put_tensor``. Because nothing
but a schema name ever reaches a query's text and every value travels as a
parameter, a backend cannot be handed an injection.
"""
from __future__ import annotations

import abc
import re
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np
import pandas as pd

from ctxrec.graph import schema
from ctxrec.graph.tables import GraphTables, conform_edges, conform_nodes, is_utf8
from ctxrec.optional import require

#: ``via`` choices of :meth:`GraphStore.related`
RELATED_VIA = ("co_interaction", "session", "embedding")
_VECTOR_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")  # fullmatch: "$" would let "text\n" pass
_SHOWN_IDS = 10  # ids listed in an error message
#: longest id, in UTF-8 bytes: Neo4j's uniqueness index refuses keys of about 8 kB, so no store takes more
MAX_ID_BYTES = 4096


class StoreUnavailable(ConnectionError):
    """The store cannot be used now: the graph server cannot be reached (or refused the
    credentials, or went away mid-run), or the embedded store is held by another process."""


def check_vector_name(name: str) -> str:
    """A vector name (``"text"``, ``"image"``, ``"emb"``) or a ValueError.

    Names become part of a property name, so only ``[a-z][a-z0-9_]*`` is accepted.
    """
    if not isinstance(name, str) or not _VECTOR_NAME.fullmatch(name):
        raise ValueError(f"vector name {name!r} is not valid; expected lower-case letters, digits and '_' "
                         f"starting with a letter, e.g. 'text', 'image', 'emb'")
    return name


def check_text(values, what: str, max_bytes: Optional[int] = None) -> None:
    """Raise a ValueError naming the row and value when a string cannot be stored.

    Strings must be valid Unicode (a lone surrogate such as ``"\\ud800"`` has no UTF-8
    form, and the drivers fail on it with a bare ``UnicodeEncodeError``); ids must also be at
    most ``max_bytes`` long in UTF-8 and not end with NUL (numpy string arrays, which
    read_vectors, the vector search and export use, drop a trailing NUL: ``"i1\\x00"`` came
    back as ``"i1"``). Every other string, quotes, NUL and Cypher included, is stored
    verbatim: values travel as query parameters.

    Args:
        values (Sequence): the strings (other values are skipped).
        what (str): where they come from, for the message, e.g. ``"upsert_nodes('Item') column 'id'"``.
        max_bytes (int, optional): the values are ids: longest UTF-8 encoding allowed, and no
            trailing NUL (default: None, any length, any NUL).
    """
    values = values if isinstance(values, list) else list(values)
    try:
        text = "".join(values)  # C-level passes: ~0.1 s per million ids, the slow search only on failure
    except TypeError:  # nulls or numbers among them
        values = [v if isinstance(v, str) else "" for v in values]
        text = "".join(values)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        row = next(r for r, v in enumerate(values) if not is_utf8(v))
        raise ValueError(f"{what}: row {row} value {_short(values[row])} is not valid Unicode text (it holds a lone "
                         f"surrogate, which has no UTF-8 form); decode the source with the right encoding") from None
    if max_bytes is not None and "\x00" in text:
        row = next((r for r, v in enumerate(values) if v.endswith("\x00")), None)
        if row is not None:
            raise ValueError(f"{what}: row {row} value {_short(values[row])} ends with a NUL character (U+0000), "
                             f"which an id may not: ids come back through numpy string arrays, which drop it")
    if max_bytes is not None and values and max(map(len, values)) * 4 > max_bytes:
        for row, value in enumerate(values):
            size = len(value.encode("utf-8"))
            if size > max_bytes:
                raise ValueError(f"{what}: row {row} value {_short(value)} has {size} bytes; an id may have at "
                                 f"most {max_bytes} (UTF-8); use a shorter id or a hash of it")


def _short(value: str, keep: int = 40) -> str:
    return repr(value) if len(value) <= keep else f"{value[:keep]!r}... ({len(value)} characters)"


def _param_strings(value) -> List[str]:
    """Every str inside a query parameter (nested lists, tuples and dicts)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _param_strings(k) + _param_strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _param_strings(v)]
    return []


def _positive(value: int, name: str = "k") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _to_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch.Tensor; torch is not imported here
        values = values.detach().cpu()
        values = (values.float() if values.is_floating_point() else values).numpy()
    return np.asarray(values)


def coerce_properties(frame: pd.DataFrame, props: Dict[str, str]) -> pd.DataFrame:
    """Give each property column one well-defined dtype with nulls as missing values:
    STRING -> object (str or None), INT64 -> Int64, DOUBLE -> float64, BOOLEAN -> boolean."""
    out = frame.copy()
    for name, ptype in props.items():
        if name not in out.columns:
            continue
        col = out[name]
        try:
            if ptype == "STRING":
                out[name] = pd.Series([None if _isnull(v) else v if isinstance(v, str) else str(v) for v in col],
                                      index=col.index, dtype=object)
            elif ptype == "INT64":
                out[name] = col.astype("Int64")
            elif ptype == "DOUBLE":
                out[name] = pd.to_numeric(col).astype("float64")
            elif ptype == "BOOLEAN":
                out[name] = col.astype("boolean")
        except (TypeError, ValueError) as e:
            raise ValueError(f"column {name!r} cannot be read as {ptype}: {e}") from e
    return out


def _check_frame_text(frame: pd.DataFrame, keys: List[str], props: Dict[str, str], what: str) -> None:
    """:func:`check_text` on the key columns (ids: at most :data:`MAX_ID_BYTES`) and STRING properties
    present in ``frame``, before pandas or a driver converts them (either fails on a lone surrogate)."""
    for col in frame.columns:
        if col in keys or props.get(col) == "STRING":
            check_text(frame[col].tolist(), f"{what} column {col!r}", MAX_ID_BYTES if col in keys else None)


def _isnull(v) -> bool:
    return v is None or (not isinstance(v, str) and bool(pd.isna(v)))


def _finish_read(frame: pd.DataFrame, keys: List[str], props: Dict[str, str]) -> pd.DataFrame:
    """The dtypes every store returns: keys str; INT64 int64 (float64 with NaN where nulls);
    DOUBLE float64; BOOLEAN bool (object with None where nulls); STRING object (str or None)."""
    frame = frame.reset_index(drop=True)
    cols = {k: frame[k].astype(str) for k in keys}
    for name, ptype in props.items():
        col = frame[name] if name in frame.columns else pd.Series([None] * len(frame), dtype=object)
        if ptype == "INT64":
            col = col.astype("int64") if col.notna().all() else pd.to_numeric(col).astype("float64")
        elif ptype == "DOUBLE":
            col = pd.to_numeric(col).astype("float64")
        elif ptype == "BOOLEAN" and col.notna().all():
            col = col.astype(bool)
        else:
            col = pd.Series([None if _isnull(v) else v for v in col], dtype=object)
        cols[name] = col
    return pd.DataFrame(cols).sort_values(keys, kind="stable").reset_index(drop=True)


def quote(name: str) -> str:
    """Quote a schema name for Cypher (``CONTAINS`` is also a keyword); both stores accept it."""
    return "`" + name.replace("`", "``") + "`"


def sources_cypher(rel_type: str) -> str:
    """Cypher for the ids of nodes with a ``rel_type`` relationship to the node ``$id``."""
    spec = schema.RELS[rel_type]
    return (f"MATCH (a:{quote(spec.src)})-[:{quote(rel_type)}]->(b:{quote(spec.dst)} {{id: $id}}) "
            f"RETURN a.id")


def co_occurring_cypher(rel_type: str) -> str:
    """Cypher for items sharing ``rel_type`` neighbours with ``$id``: ``id, score``, best ``$k`` first."""
    spec = schema.RELS[rel_type]
    return (f"MATCH (i:{quote(spec.dst)} {{id: $id}})<-[:{quote(rel_type)}]-(s:{quote(spec.src)})-[:{quote(rel_type)}]->"
            f"(j:{quote(spec.dst)}) WHERE j.id <> $id "
            f"RETURN j.id AS id, count(DISTINCT s) AS score ORDER BY score DESC, id ASC LIMIT $k")


class GraphStore(abc.ABC):
    """A property graph with the :mod:`~ctxrec.graph.schema`, item vectors and graph queries.

    Backends implement the underscored primitives; the public methods here check
    arguments first. Use a store as a context manager so it is closed.

    Example:
        >>> with open_store("embedded", "graph.db") as store:  # doctest: +SKIP
        ...     store.ingest(tables)                         # {"User": 40, ...}
        ...     store.write_vectors("Item", "emb", ids, emb)  # emb: [N, 64]
        ...     store.knn(emb[0], k=5)                       # [("i001", 1.0), ...]
    """

    #: a store opened read-only rejects writes before they reach the backend
    read_only: bool = False
    #: from this many vectors on, :meth:`knn` searches with FAISS ``IndexFlatIP`` when installed
    faiss_min_vectors: int = 200_000

    # ------------------------------------------------------------------ writes
    def upsert_nodes(self, label: str, frame: pd.DataFrame, batch_size: int = 50_000) -> int:
        """Insert or update nodes by ``id``; returns the number of rows written.

        Only the property columns present in ``frame`` are set: an existing node keeps
        the properties the frame does not mention. Idempotent.

        Args:
            label (str): node label from the schema, e.g. ``"Item"``.
            frame (pd.DataFrame): ``id`` plus any of the label's properties.
            batch_size (int): rows per write transaction (default: 50_000).
        """
        spec = schema.node_spec(label)
        self._check_writable("upsert_nodes")
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"upsert_nodes: frame must be a pandas DataFrame, got {type(frame).__name__}")
        batch_size = _positive(batch_size, "batch_size")
        given = [c for c in spec.properties if c in frame.columns]
        _check_frame_text(frame, ["id"], spec.properties, f"upsert_nodes({label!r})")
        out = conform_nodes(label, frame)[["id"] + given]
        if out.empty:
            return 0
        return self._upsert_nodes(label, coerce_properties(out, {c: spec.properties[c] for c in given}), batch_size)

    def upsert_edges(self, rel_type: str, frame: pd.DataFrame, batch_size: int = 50_000) -> int:
        """Insert or update relationships by ``(src, dst)`` (MERGE); returns rows written.

        Both endpoints must already exist; otherwise nothing is written and the error
        names the missing ids. Properties absent from ``frame`` are left as they are.

        Args:
            rel_type (str): relationship type from the schema, e.g. ``"INTERACTED"``.
            frame (pd.DataFrame): ``src``, ``dst`` plus any of the type's properties.
            batch_size (int): rows per write transaction (default: 50_000).
        """
        spec = schema.rel_spec(rel_type)
        self._check_writable("upsert_edges")
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"upsert_edges: frame must be a pandas DataFrame, got {type(frame).__name__}")
        batch_size = _positive(batch_size, "batch_size")
        given = [c for c in spec.properties if c in frame.columns]
        _check_frame_text(frame, ["src", "dst"], spec.properties, f"upsert_edges({rel_type!r})")
        out = conform_edges(rel_type, frame)[["src", "dst"] + given]
        if out.empty:
            return 0
        for end, label in (("src", spec.src), ("dst", spec.dst)):
            missing = sorted(self._missing_ids(label, out[end].unique().tolist()))
            if missing:
                raise ValueError(
                    f"upsert_edges({rel_type!r}): {len(missing)} {end} id(s) are not {label} nodes: "
                    f"{missing[:_SHOWN_IDS]}{' ...' if len(missing) > _SHOWN_IDS else ''}; "
                    f"upsert those nodes first")
        return self._upsert_edges(rel_type, coerce_properties(out, {c: spec.properties[c] for c in given}), batch_size)

    def ingest(self, tables: GraphTables, batch_size: int = 50_000, progress: bool = False) -> Dict[str, int]:
        """Upsert every node type, then every relationship type, in schema order.

        Returns:
            dict: rows written per label and relationship type.
        """
        if not isinstance(tables, GraphTables):
            raise TypeError(f"tables must be a GraphTables, got {type(tables).__name__}")
        steps = [(label, True) for label in schema.NODES] + [(rel, False) for rel in schema.RELS]
        if progress:
            steps = require("tqdm", "ingest(progress=True)").tqdm(steps, desc="ingest", unit="type")
        written = {}
        for name, is_node in steps:
            if is_node:
                written[name] = self.upsert_nodes(name, tables.nodes[name], batch_size)
            else:
                written[name] = self.upsert_edges(name, tables.edges[name], batch_size)
        return written

    def write_vectors(self, label: str, name: str, ids: Sequence[str], vectors) -> int:
        """Store one float32 vector per node as vector ``name``, overwriting earlier ones.

        Vectors of other ids are kept. All vectors of one name share a dimension: to
        change it, :meth:`delete_vectors` first.

        Args:
            label (str): node label, e.g. ``"Item"``.
            name (str): vector name, e.g. ``"text"``, ``"image"``, ``"emb"``.
            ids (Sequence[str]): node ids, one per row; the nodes must exist.
            vectors (np.ndarray | torch.Tensor): ``[N, d]``, finite.
        """
        schema.node_spec(label)
        name = check_vector_name(name)
        self._check_writable("write_vectors")
        ids = [str(i) for i in ids]
        mat = _to_numpy(vectors).astype(np.float32, copy=False)
        if mat.ndim != 2 or mat.shape[0] != len(ids):
            raise ValueError(f"vectors must be [len(ids), d] = [{len(ids)}, d], got shape {tuple(mat.shape)}")
        if not ids:
            return 0
        if mat.shape[1] == 0 or not np.isfinite(mat).all():
            rows = np.flatnonzero(~np.isfinite(mat).all(axis=1))
            raise ValueError(f"{label} vectors {name!r} must have d > 0 and be finite; got shape {tuple(mat.shape)}, "
                             f"{int((~np.isfinite(mat)).sum())} non-finite value(s) in rows {rows[:_SHOWN_IDS].tolist()} "
                             f"(ids {[ids[r] for r in rows[:_SHOWN_IDS]]}); replace NaN/inf, or leave those ids out")
        check_text(ids, "write_vectors: ids", MAX_ID_BYTES)
        if len(set(ids)) != len(ids):
            raise ValueError(f"ids repeat: {pd.Series(ids)[pd.Series(ids).duplicated()].tolist()[:_SHOWN_IDS]}")
        dim = self._vector_dim(label, name)
        if dim is not None and dim != mat.shape[1]:
            raise ValueError(f"{label} vectors {name!r} have dimension {dim}, got {mat.shape[1]}; "
                             f"call delete_vectors({label!r}, {name!r}) first to replace them")
        missing = sorted(self._missing_ids(label, ids))
        if missing:
            raise ValueError(f"write_vectors: {len(missing)} id(s) are not {label} nodes: {missing[:_SHOWN_IDS]}")
        self._cache().pop((label, name), None)
        return self._write_vectors(label, name, ids, np.ascontiguousarray(mat))

    def delete_vectors(self, label: str, name: str) -> None:
        """Remove every vector ``name`` of ``label`` (e.g. before writing another dimension)."""
        schema.node_spec(label)
        name = check_vector_name(name)
        self._check_writable("delete_vectors")
        self._cache().pop((label, name), None)
        self._delete_vectors(label, name)

    def clear(self) -> None:
        """Delete every node, relationship and vector."""
        self._check_writable("clear")
        self._cache().clear()
        self._clear()

    # ------------------------------------------------------------------- reads
    def count_nodes(self, label: str) -> int:
        """Number of ``label`` nodes."""
        schema.node_spec(label)
        return int(self._count_nodes(label))

    def count_edges(self, rel_type: str) -> int:
        """Number of ``rel_type`` relationships."""
        schema.rel_spec(rel_type)
        return int(self._count_edges(rel_type))

    def counts(self) -> Dict[str, int]:
        """Count of every label and relationship type, in schema order."""
        return {**{n: self.count_nodes(n) for n in schema.NODES}, **{r: self.count_edges(r) for r in schema.RELS}}

    def read_nodes(self, label: str) -> pd.DataFrame:
        """All ``label`` nodes: ``id`` plus properties, sorted by id; nulls as NaN/None."""
        spec = schema.node_spec(label)
        return _finish_read(self._read_nodes(label), ["id"], spec.properties)

    def read_edges(self, rel_type: str) -> pd.DataFrame:
        """All ``rel_type`` relationships: ``src``, ``dst`` plus properties, sorted by (src, dst)."""
        spec = schema.rel_spec(rel_type)
        return _finish_read(self._read_edges(rel_type), ["src", "dst"], spec.properties)

    def read_subgraph(self) -> GraphTables:
        """Everything in the store as :class:`GraphTables` (for export)."""
        return GraphTables(nodes={n: self.read_nodes(n) for n in schema.NODES},
                           edges={r: self.read_edges(r) for r in schema.RELS})

    def read_vectors(self, label: str, name: str) -> Tuple[np.ndarray, np.ndarray]:
        """``(ids, float32 [N, d])`` sorted by id; ``(empty, zeros((0, 0)))`` when there are none."""
        schema.node_spec(label)
        name = check_vector_name(name)
        ids, mat = self._read_vectors(label, name)
        ids = np.asarray(ids).astype(str)
        if len(ids) == 0:
            return np.array([], dtype=str), np.zeros((0, 0), dtype=np.float32)
        order = np.argsort(ids, kind="stable")
        return ids[order], np.asarray(mat, dtype=np.float32)[order]  # a copy: never a view into the backend

    def vector_names(self, label: str) -> List[str]:
        """Names of the vectors stored for ``label``, sorted."""
        schema.node_spec(label)
        return sorted(self._vector_names(label))

    def query(self, cypher: str, params: Optional[dict] = None) -> pd.DataFrame:
        """Run raw Cypher; pass every value through ``params``, never by formatting the string."""
        if not isinstance(cypher, str) or not cypher.strip():
            raise ValueError(f"cypher must be a non-empty string, got {cypher!r}")
        if params is not None and (not isinstance(params, dict) or not all(isinstance(k, str) for k in params)):
            raise ValueError(f"params must be a dict with str keys, got {params!r}")
        check_text(_param_strings(params or {}), "query: params")
        return self._query(cypher, dict(params or {}))

    # ----------------------------------------------------------------- queries
    def knn(self, vector, k: int = 10, label: str = "Item", name: str = "emb", exclude: Iterable[str] = (),
            category: Optional[str] = None) -> List[Tuple[str, float]]:
        """The ``k`` nodes whose vector ``name`` is most cosine-similar to ``vector``.

        Exact search, best first, ties by id ascending.

        Args:
            vector (np.ndarray | torch.Tensor): query ``[d]`` (or ``[1, d]``).
            k (int): how many (default: 10).
            label (str): node label searched (default: ``"Item"``).
            name (str): vector name (default: ``"emb"``).
            exclude (Iterable[str]): ids never returned (default: none).
            category (str, optional): only items with ``IN_CATEGORY`` to this Category id.
        """
        schema.node_spec(label)
        name = check_vector_name(name)
        k = _positive(k)
        q = _to_numpy(vector)
        if q.ndim == 2 and q.shape[0] == 1:
            q = q[0]
        if q.ndim != 1 or q.size == 0:
            raise ValueError(f"vector must be [d] or [1, d], got shape {tuple(_to_numpy(vector).shape)}")
        q = q.astype(np.float32)
        if not np.isfinite(q).all():
            raise ValueError("vector has non-finite values")
        exclude = {str(e) for e in exclude}
        check_text(sorted(exclude), "knn: exclude")
        allowed = None
        if category is not None:
            if label != "Item":
                raise ValueError(f"category filters Item nodes only; got label={label!r}")
            category = str(category)
            check_text([category], "knn: category")
            if self._missing_ids("Category", [category]):
                raise ValueError(f"category {category!r} is not a Category node id")
            allowed = set(self._sources("IN_CATEGORY", category))
        return self._knn(label, name, q, k, exclude, allowed)

    def related(self, item_id: str, k: int = 10, via: str = "co_interaction") -> List[Tuple[str, float]]:
        """Items related to ``item_id``, best first, ties by id ascending, never the item itself.

        Args:
            item_id (str): an Item id.
            k (int): how many (default: 10).
            via (str): ``"co_interaction"`` (score: users who interacted with both),
                ``"session"`` (score: sessions containing both) or ``"embedding"``
                (cosine of the ``"emb"`` vectors, else the ``"text"`` ones) (default: ``"co_interaction"``).
        """
        if via not in RELATED_VIA:
            raise ValueError(f"via={via!r} is not one of {list(RELATED_VIA)}")
        item_id, k = str(item_id), _positive(k)
        check_text([item_id], "related: item_id")
        if self._missing_ids("Item", [item_id]):
            raise ValueError(f"item_id {item_id!r} is not an Item node id")
        if via == "embedding":
            names = self.vector_names("Item")
            name = next((n for n in ("emb", "text") if n in names), None)
            if name is None:
                raise ValueError("related(via='embedding') needs Item vectors 'emb' or 'text'; write_vectors first")
            ids, normed, _ = self._vector_index("Item", name)
            row = np.searchsorted(ids, item_id)
            if row >= len(ids) or ids[row] != item_id:
                return []
            return self._knn("Item", name, normed[row], k, {item_id}, None)
        rel = "INTERACTED" if via == "co_interaction" else "CONTAINS"
        rows = [(str(i), float(s)) for i, s in self._co_occurring(item_id, rel, k) if str(i) != item_id]
        return sorted(rows, key=lambda r: (-r[1], r[0]))[:k]

    # ------------------------------------------------------- exact vector search
    def _cache(self) -> dict:
        if "_vector_cache" not in self.__dict__:
            self._vector_cache = {}
        return self._vector_cache

    def _vector_index(self, label: str, name: str):
        """``(ids, L2-normalised float32 matrix, faiss index or None)``, cached until a write."""
        cache = self._cache()
        if (label, name) not in cache:
            ids, mat = self.read_vectors(label, name)
            if len(ids) == 0:
                raise ValueError(f"no {label} vectors named {name!r}; have {self.vector_names(label)}; "
                                 f"write_vectors first")
            normed = mat / np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
            index = None
            if len(ids) >= self.faiss_min_vectors:
                from ctxrec.optional import WITH_FAISS

                if WITH_FAISS:
                    import faiss

                    index = faiss.IndexFlatIP(normed.shape[1])
                    index.add(normed)
            cache[(label, name)] = (ids, normed, index)
        return cache[(label, name)]

    def _knn(self, label: str, name: str, q: np.ndarray, k: int, exclude: Set[str],
             allowed: Optional[Set[str]]) -> List[Tuple[str, float]]:
        """Exact cosine search over :meth:`read_vectors`; a backend may override with its own index."""
        ids, normed, index = self._vector_index(label, name)
        if q.shape[0] != normed.shape[1]:
            raise ValueError(f"vector has dimension {q.shape[0]}, {label} vectors {name!r} have {normed.shape[1]}")
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        if index is not None and allowed is None:
            found = min(len(ids), k + len(exclude))
            scores, rows = index.search(q[None, :], found)
            rows, scores = rows[0], scores[0]
            keep = rows >= 0
            rows, scores = rows[keep], scores[keep]
        elif allowed is not None:
            rows = np.flatnonzero(np.isin(ids, list(allowed)))
            scores = normed[rows] @ q
        else:
            rows, scores = np.arange(len(ids)), normed @ q
        if exclude:
            keep = ~np.isin(ids[rows], list(exclude))
            rows, scores = rows[keep], scores[keep]
        if len(rows) > k:  # keep every tie with the k-th score so ties resolve by id
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            keep = scores >= kth
            rows, scores = rows[keep], scores[keep]
        order = np.lexsort((ids[rows], -scores))[:k]
        return [(str(ids[rows[i]]), float(scores[i])) for i in order]

    # -------------------------------------------------------------- lifecycle
    def _check_writable(self, what: str) -> None:
        if self.read_only:
            raise PermissionError(f"{what}: this store was opened read_only=True; reopen it writable")

    def close(self) -> None:
        """Release the database; the store cannot be used afterwards."""
        self._cache().clear()
        self._close()

    def __enter__(self) -> "GraphStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------ primitives (per backend)
    @abc.abstractmethod
    def _upsert_nodes(self, label: str, frame: pd.DataFrame, batch_size: int) -> int:
        """MERGE rows by id, setting the frame's property columns (dtypes as from :func:`coerce_properties`)."""

    @abc.abstractmethod
    def _upsert_edges(self, rel_type: str, frame: pd.DataFrame, batch_size: int) -> int:
        """MERGE rows by (src, dst), setting the frame's property columns; endpoints exist."""

    @abc.abstractmethod
    def _missing_ids(self, label: str, ids: List[str]) -> Set[str]:
        """The subset of ``ids`` (unique) that are not ``label`` nodes."""

    @abc.abstractmethod
    def _count_nodes(self, label: str) -> int: ...

    @abc.abstractmethod
    def _count_edges(self, rel_type: str) -> int: ...

    @abc.abstractmethod
    def _read_nodes(self, label: str) -> pd.DataFrame:
        """Columns ``id`` + properties, any order of rows."""

    @abc.abstractmethod
    def _read_edges(self, rel_type: str) -> pd.DataFrame:
        """Columns ``src``, ``dst`` + properties, any order of rows."""

    @abc.abstractmethod
    def _write_vectors(self, label: str, name: str, ids: List[str], vectors: np.ndarray) -> int: ...

    @abc.abstractmethod
    def _read_vectors(self, label: str, name: str) -> Tuple[Sequence[str], np.ndarray]: ...

    @abc.abstractmethod
    def _vector_dim(self, label: str, name: str) -> Optional[int]:
        """Dimension of the stored vectors ``name``, None when there are none."""

    @abc.abstractmethod
    def _vector_names(self, label: str) -> List[str]: ...

    @abc.abstractmethod
    def _delete_vectors(self, label: str, name: str) -> None: ...

    @abc.abstractmethod
    def _sources(self, rel_type: str, dst_id: str) -> List[str]:
        """Ids of the nodes with a ``rel_type`` relationship to node ``dst_id``."""

    @abc.abstractmethod
    def _co_occurring(self, item_id: str, rel_type: str, k: int) -> List[Tuple[str, float]]:
        """Items sharing ``rel_type`` neighbours with ``item_id`` and how many, best ``k`` first."""

    @abc.abstractmethod
    def _query(self, cypher: str, params: dict) -> pd.DataFrame: ...

    @abc.abstractmethod
    def _clear(self) -> None: ...

    @abc.abstractmethod
    def _close(self) -> None: ...
