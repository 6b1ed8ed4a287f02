"""``LadybugStore``: the embedded store, LadybugDB (the maintained Kùzu fork) in a folder.

How it writes (measured with ladybug 0.22 on 2 cores; batches are Arrow tables passed as
parameters, ``LOAD FROM $t`` / ``COPY T FROM $t``):

- nodes: ``COPY`` into an empty table, else ``LOAD FROM $t MERGE (n {id: v_id}) SET ...``
  (100k nodes in ~0.7 s either way);
- relationships (100k, 5 properties): ``COPY`` of the pairs that do not exist yet (0.6 s)
  and ``MATCH (a {id})-[e]->(b) WHERE b.id = v_dst SET ...`` of existing pairs whose
  properties differ (~1 s per property; none when nothing changed). A plain
  ``MATCH (a) MATCH (b) MERGE (a)-[e]->(b) SET ...`` gives the same result in ~5 s, and
  with both endpoints in one comma-separated MATCH it is planned as a cross product of the
  two node tables (minutes).

Vectors are ``BLOB`` properties ``vec_<name>`` (little-endian float32 bytes) added with
``ALTER TABLE`` on first write, so they live, and are cleared, with the nodes in one file.
Not ``FLOAT[]``: SET of a list property took 3-150 s for 20k x 384 (and ``FLOAT[384]``
400 s), against ~5 s for 100k x 384 as BLOB; reading 100k back takes ~1.3 s. The
vector/fts extensions cannot be installed offline, so search is exact, beside the
database (:meth:`GraphStore._knn`).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Set, Tuple

import numpy as np
import pandas as pd

from ctxrec.graph import schema
from ctxrec.graph.stores.base import (GraphStore, StoreUnavailable, co_occurring_cypher, coerce_properties,
                                      sources_cypher)
from ctxrec.graph.stores.base import quote as _q
from ctxrec.optional import require

#: the database file inside the store's folder
DB_FILE = "graph.lbug"
_DDL_TYPE = {"STRING": "STRING", "INT64": "INT64", "DOUBLE": "DOUBLE", "BOOLEAN": "BOOL"}
_VEC = "vec_"


def _arrow_type(ptype: str):
    import pyarrow as pa

    return {"STRING": pa.string(), "INT64": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_()}[ptype]


class LadybugStore(GraphStore):
    """The embedded graph store: a LadybugDB database in a folder, no server.

    Args:
        path (str | Path, optional): the store's folder (created if absent; the database
            file ``graph.lbug`` lies inside), or an existing LadybugDB file. ``None`` keeps
            everything in memory (default: None).
        read_only (bool): open for reading only; several read-only stores may share a
            folder (default: False).
        buffer_pool_size (int): LadybugDB buffer pool in bytes, 0 for its default of ~80%
            of memory (default: 0).

    Example:
        >>> with LadybugStore("graph.db") as store:  # doctest: +SKIP
        ...     store.ingest(tables)
        ...     store.related("i001", k=5)           # [("i007", 3.0), ...]
    """

    def __init__(self, path: str | Path | None = None, read_only: bool = False, buffer_pool_size: int = 0):
        lb = require("ladybug", "LadybugStore")
        self.read_only = bool(read_only)
        if path is None or str(path) == ":memory:":
            if self.read_only:
                raise ValueError("read_only=True needs a path; an in-memory store starts empty")
            self.path, db_file = None, ":memory:"
        else:
            self.path = Path(path)
            if self.path.is_file():
                db_file = self.path
            else:
                db_file = self.path / DB_FILE
                if self.read_only and not db_file.exists():
                    raise FileNotFoundError(f"read_only=True but there is no store at {str(self.path)!r} "
                                            f"(no {DB_FILE}); open it writable first to create it")
                self.path.mkdir(parents=True, exist_ok=True)
        self._lb = lb
        try:
            self._db = lb.Database(str(db_file), read_only=self.read_only, buffer_pool_size=buffer_pool_size)
        except RuntimeError as e:
            if "lock" not in str(e).lower():
                raise
            # The lock is an OS file lock, so a killed process leaves none behind: the holder is alive.
            raise StoreUnavailable(
                f"the embedded store {str(db_file)!r} is open for writing in another process ({str(e).splitlines()[0]}); "
                f"close that process (an ingest, `ctxrec serve`, a notebook) or open this one read_only=True; "
                f"a lock of a killed process is released by the OS, so there is no lock file to delete") from None
        self._conn = lb.Connection(self._db)
        if not self.read_only:
            self._create_schema()

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else ":memory:"
        return f"LadybugStore({where!r}{', read_only=True' if self.read_only else ''})"

    # ----------------------------------------------------------------- helpers
    def _run(self, cypher: str, params: Optional[dict] = None, fetch=None):
        """Execute, and return ``fetch(result)`` (default: the result itself)."""
        if self._conn is None:
            raise RuntimeError(f"{self!r} is closed; open a new store")
        params = params or {}
        if not any(type(v).__module__.split(".")[0] in ("pyarrow", "pandas", "polars") for v in params.values()):
            result = self._conn.execute(cypher, params)
            return fetch(result) if fetch else result
        # A connection caches one prepared statement per scanned table object and keeps its
        # memory until closed (~200 MB per 100k-row batch, measured), so scans get their own.
        with self._lb.Connection(self._db) as conn:
            result = conn.execute(cypher, params)
            return fetch(result) if fetch else None

    def _arrow(self, cypher: str, params: Optional[dict] = None):
        return self._run(cypher, params, fetch=lambda r: r.get_as_arrow(0))

    def _scalar(self, cypher: str, params: Optional[dict] = None):
        frame = self._arrow(cypher, params)
        return frame.column(0)[0].as_py() if frame.num_rows else None

    def _columns(self, table: str) -> List[str]:
        return [str(c) for c in self._arrow(f"CALL table_info('{table}') RETURN *").column("name").to_pylist()]

    def _create_schema(self) -> None:
        """Create every table of the schema that is absent and add properties it lacks."""
        for label, spec in schema.NODES.items():
            props = "".join(f", {_q(p)} {_DDL_TYPE[t]}" for p, t in spec.properties.items())
            self._run(f"CREATE NODE TABLE IF NOT EXISTS {_q(label)}(id STRING PRIMARY KEY{props})")
            self._add_missing(label, spec.properties)
        for rel, spec in schema.RELS.items():
            props = "".join(f", {_q(p)} {_DDL_TYPE[t]}" for p, t in spec.properties.items())
            self._run(f"CREATE REL TABLE IF NOT EXISTS {_q(rel)}(FROM {_q(spec.src)} TO {_q(spec.dst)}{props})")
            self._add_missing(rel, spec.properties)

    def _add_missing(self, table: str, props: dict) -> None:
        have = set(self._columns(table))
        for p, t in props.items():
            if p not in have:
                self._run(f"ALTER TABLE {_q(table)} ADD {_q(p)} {_DDL_TYPE[t]}")

    @staticmethod
    def _table(frame: pd.DataFrame, columns: dict):
        """Arrow table ``{out name: (frame column or None for nulls, schema type)}``."""
        import pyarrow as pa

        n = len(frame)
        return pa.table({out: pa.array(frame[col] if col is not None else [None] * n,
                                       type=_arrow_type(ptype), from_pandas=True)
                         for out, (col, ptype) in columns.items()})

    # ------------------------------------------------------------------ writes
    def _upsert_nodes(self, label: str, frame: pd.DataFrame, batch_size: int) -> int:
        props = schema.NODES[label].properties
        given = [c for c in frame.columns if c != "id"]
        fresh = self._count_nodes(label) == 0
        if fresh:  # nothing to merge with: bulk COPY, absent properties as nulls
            cols = {"id": ("id", "STRING"), **{p: (p if p in given else None, t) for p, t in props.items()}}
            cypher = f"COPY {_q(label)}({', '.join(_q(c) for c in cols)}) FROM $t"
        else:
            cols = {"v_id": ("id", "STRING"), **{f"v_{p}": (p, props[p]) for p in given}}
            sets = ", ".join(f"n.{_q(p)} = v_{p}" for p in given)
            cypher = f"LOAD FROM $t MERGE (n:{_q(label)} {{id: v_id}})" + (f" SET {sets}" if sets else "")
        for start in range(0, len(frame), batch_size):
            self._run(cypher, {"t": self._table(frame.iloc[start:start + batch_size], cols)})
        return len(frame)

    def _upsert_edges(self, rel_type: str, frame: pd.DataFrame, batch_size: int) -> int:
        spec = schema.RELS[rel_type]
        given = [c for c in frame.columns if c not in ("src", "dst")]
        # MERGE semantics without MERGE (~1 s per property per 100k rows): per batch, read the
        # pairs that exist with their given properties, SET only the values that differ and
        # COPY the new pairs. Pairs are distinct within the frame and existing ones are filtered
        # out, so COPY cannot duplicate; re-upserting unchanged rows writes nothing.
        keys = {"v_src": ("src", "STRING"), "v_dst": ("dst", "STRING")}
        match = (f"LOAD FROM $t MATCH (a:{_q(spec.src)} {{id: v_src}})-[e:{_q(rel_type)}]->(b:{_q(spec.dst)}) "
                 f"WHERE b.id = v_dst")
        read_cypher = match + " RETURN v_src AS src, v_dst AS dst" + "".join(f", e.{_q(p)} AS {_q(p)}" for p in given)
        copy_cols = {"from": ("src", "STRING"), "to": ("dst", "STRING"),
                     **{p: (p if p in given else None, t) for p, t in spec.properties.items()}}
        props = ", ".join(_q(p) for p in spec.properties)
        copy_cypher = f"COPY {_q(rel_type)}" + (f"({props})" if props else "") + " FROM $t"
        for start in range(0, len(frame), batch_size):
            batch = frame.iloc[start:start + batch_size].reset_index(drop=True)
            old = self._arrow(read_cypher, {"t": self._table(batch, keys)}).to_pandas()
            old = coerce_properties(old, {p: spec.properties[p] for p in given})
            both = batch.merge(old, on=["src", "dst"], how="left", suffixes=("", "_old"), indicator=True)
            exists = (both["_merge"] == "both").to_numpy()
            for p in given:  # one SET per property, of the rows where it changed
                new, was = both[p], both[f"{p}_old"]
                same = ((new == was).fillna(False).astype(bool) | (new.isna() & was.isna())).to_numpy()
                changed = exists & ~same
                if changed.any():
                    self._run(f"{match} SET e.{_q(p)} = v_value",
                              {"t": self._table(batch[changed], {**keys, "v_value": (p, spec.properties[p])})})
            if not exists.all():
                self._run(copy_cypher, {"t": self._table(batch[~exists], copy_cols)})
        return len(frame)

    def _missing_ids(self, label: str, ids: List[str]) -> Set[str]:
        if not ids:
            return set()
        t = self._table(pd.DataFrame({"id": ids}), {"v_id": ("id", "STRING")})
        found = self._arrow(f"LOAD FROM $t OPTIONAL MATCH (n:{_q(label)} {{id: v_id}}) "
                            f"WITH v_id, n WHERE n IS NULL RETURN v_id", {"t": t})
        return set(found.column(0).to_pylist())

    # ------------------------------------------------------------------- reads
    def _count_nodes(self, label: str) -> int:
        return self._scalar(f"MATCH (n:{_q(label)}) RETURN count(n)")

    def _count_edges(self, rel_type: str) -> int:
        return self._scalar(f"MATCH ()-[e:{_q(rel_type)}]->() RETURN count(e)")

    def _read_nodes(self, label: str) -> pd.DataFrame:
        props = "".join(f", n.{_q(p)} AS {_q(p)}" for p in schema.NODES[label].properties)
        return self._arrow(f"MATCH (n:{_q(label)}) RETURN n.id AS id{props}").to_pandas()

    def _read_edges(self, rel_type: str) -> pd.DataFrame:
        spec = schema.RELS[rel_type]
        props = "".join(f", e.{_q(p)} AS {_q(p)}" for p in spec.properties)
        return self._arrow(f"MATCH (a:{_q(spec.src)})-[e:{_q(rel_type)}]->(b:{_q(spec.dst)}) "
                           f"RETURN a.id AS src, b.id AS dst{props}").to_pandas()

    # ----------------------------------------------------------------- vectors
    def _vector_names(self, label: str) -> List[str]:
        return [c[len(_VEC):] for c in self._columns(label) if c.startswith(_VEC)]

    def _vector_dim(self, label: str, name: str) -> Optional[int]:
        if name not in self._vector_names(label):
            return None
        col = _q(_VEC + name)
        size = self._scalar(f"MATCH (n:{_q(label)}) WHERE n.{col} IS NOT NULL RETURN octet_length(n.{col}) LIMIT 1")
        return None if size is None else int(size) // 4

    def _write_vectors(self, label: str, name: str, ids: List[str], vectors: np.ndarray) -> int:
        import pyarrow as pa

        col = _q(_VEC + name)
        self._run(f"ALTER TABLE {_q(label)} ADD IF NOT EXISTS {col} BLOB")
        cypher = f"LOAD FROM $t MATCH (n:{_q(label)} {{id: v_id}}) SET n.{col} = v_vec"
        n, d = vectors.shape
        step = max(1, min(50_000, (64 << 20) // (4 * d)))  # about 64 MiB of vectors per batch
        for start in range(0, n, step):
            chunk = np.ascontiguousarray(vectors[start:start + step], dtype="<f4")
            offsets = np.arange(0, chunk.size * 4 + 1, d * 4, dtype=np.int32)
            blobs = pa.Array.from_buffers(pa.binary(), len(chunk), [None, pa.py_buffer(offsets),
                                                                     pa.py_buffer(chunk.tobytes())])
            self._run(cypher, {"t": pa.table({"v_id": pa.array(ids[start:start + step], pa.string()),
                                              "v_vec": blobs})})
        return n

    def _read_vectors(self, label: str, name: str) -> Tuple[List[str], np.ndarray]:
        import pyarrow as pa

        if name not in self._vector_names(label):
            return [], np.zeros((0, 0), dtype=np.float32)
        col = _q(_VEC + name)
        found = self._arrow(f"MATCH (n:{_q(label)}) WHERE n.{col} IS NOT NULL RETURN n.id AS id, n.{col} AS v")
        if found.num_rows == 0:
            return [], np.zeros((0, 0), dtype=np.float32)
        blobs = found.column("v").combine_chunks()
        width = 8 if pa.types.is_large_binary(blobs.type) else 4
        offsets = np.frombuffer(blobs.buffers()[1], dtype=f"<i{width}")[blobs.offset:blobs.offset + len(blobs) + 1]
        sizes = np.diff(offsets)
        if sizes.min() != sizes.max() or sizes[0] % 4:
            raise ValueError(f"{label} vectors {name!r} in the database have mixed byte sizes {sorted(set(sizes))}")
        flat = np.frombuffer(blobs.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]].view("<f4")
        return found.column("id").to_numpy(zero_copy_only=False), flat.reshape(len(blobs), -1)

    def _delete_vectors(self, label: str, name: str) -> None:
        self._run(f"ALTER TABLE {_q(label)} DROP IF EXISTS {_q(_VEC + name)}")

    # ----------------------------------------------------------------- queries
    def _sources(self, rel_type: str, dst_id: str) -> List[str]:
        return self._arrow(sources_cypher(rel_type), {"id": dst_id}).column(0).to_pylist()

    def _co_occurring(self, item_id: str, rel_type: str, k: int) -> List[Tuple[str, float]]:
        found = self._arrow(co_occurring_cypher(rel_type), {"id": item_id, "k": k})
        return list(zip(found.column("id").to_pylist(), found.column("score").to_pylist()))

    def _query(self, cypher: str, params: dict) -> pd.DataFrame:
        # several statements give a list of results: the last one's rows
        return self._run(cypher, params, fetch=lambda r: (r[-1] if isinstance(r, list) else r).get_as_df())

    # -------------------------------------------------------------- lifecycle
    def _clear(self) -> None:
        # Dropping and re-creating the tables is faster than deleting rows and also
        # removes the vector columns.
        for rel in schema.RELS:
            self._run(f"DROP TABLE IF EXISTS {_q(rel)}")
        for label in schema.NODES:
            self._run(f"DROP TABLE IF EXISTS {_q(label)}")
        self._create_schema()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._db.close()
            self._conn = self._db = None
