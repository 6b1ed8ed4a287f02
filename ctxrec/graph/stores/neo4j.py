"""``Neo4jStore``: the graph on a Neo4j 5 server (or Aura) over Bolt, with the official driver.

How it writes: a batch travels as one list parameter per column and is unwound by index,
``UNWIND range(0, $n - 1) AS i MERGE (n:Item {id: $v_id[i]}) SET n.name = $v_name[i], ...``,
one managed transaction per batch (``execute_write``, so the driver retries transient
errors and lost connections, for at most ``max_retry_time``; see :class:`Neo4jStore`). Column lists rather than ``UNWIND $rows AS r`` over row maps: the pure-Python
driver packs 10k rows of 6 columns in 0.09 s instead of 0.22 s. ``MERGE`` by ``id`` is
served by the uniqueness constraint created on open for every label; relationships are
``MATCH (a {id}) MATCH (b {id}) MERGE (a)-[e]->(b) SET ...``. Setting a property to null
removes it in Neo4j, which is the contract's "a given null clears the value"; columns the
frame does not have are not mentioned, so they are kept.

Vectors are ``LIST<FLOAT>`` properties ``vec_<name>``, written with
``db.create.setNodeVectorProperty`` (stored as float32), with a cosine vector index per
(label, name), ``<Label>_<name>``. The vector indexes are also the record of which vectors
exist. :meth:`GraphStore.knn` stays exact (same answers, same tie order as every store);
:meth:`Neo4jStore.knn_native` asks the HNSW index instead (approximate, see there).

Reads page through a label by ``id`` (``WHERE n.id > $after ORDER BY n.id LIMIT``, served by
the constraint's range index) and return each page as one record of column lists, so the
driver decodes plain lists instead of one Record per row.
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Dict, Iterable, List, Optional, Set, Tuple

import numpy as np
import pandas as pd

from ctxrec.graph import schema
from ctxrec.graph.stores.base import (GraphStore, StoreUnavailable, _positive, _to_numpy, check_text,
                                      check_vector_name, co_occurring_cypher, sources_cypher)
from ctxrec.graph.stores.base import quote as _q
from ctxrec.optional import require

_VEC = "vec_"
#: largest dimension a Neo4j 5 vector index accepts
MAX_VECTOR_DIM = 4096
_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
_FIX = "is the server running? (scripts/neo4j.sh start); check NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD"


class _Param(list):
    """A list parameter whose ``repr`` is short.

    The driver (5.x/6.x, Bolt 5.5+) formats ``" ".join(map(repr, (query, parameters, extra)))``
    for its debug log on every RUN, even when debug logging is off: for a batch of 5,000
    vectors of 384 floats that repr alone took 1.3 s, 70% of ``write_vectors``' time.
    Packing is unchanged (the Rust/Python packers take list subclasses as lists)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} values>"


def _reason(error: BaseException) -> str:
    """The error at the bottom of a chain (the socket error says it best), on one short line."""
    while error.__cause__ is not None:
        error = error.__cause__
    reason = " ".join(str(error).split())
    return reason if len(reason) <= 160 else reason[:157] + "..."


def _values(col: pd.Series) -> list:
    """A column as Python values with every null as None (what the driver can send)."""
    vals = col.tolist()
    mask = col.isna().to_numpy()
    return _Param([None if m else v for v, m in zip(vals, mask)] if mask.any() else vals)


def _columns(frame: pd.DataFrame) -> Dict[str, list]:
    """Parameters ``v_<column>``: one list per column, read as ``$v_<column>[i]``."""
    return {f"v_{c}": _values(frame[c]) for c in frame.columns}


class Neo4jStore(GraphStore):
    """The graph store on a Neo4j 5 server: uniqueness constraints, ``UNWIND`` batches, vector indexes.

    Connection settings come from the arguments, else from the environment variables
    ``NEO4J_URI``, ``NEO4J_USER``, ``NEO4J_PASSWORD`` and ``NEO4J_DATABASE``.

    Args:
        uri (str, optional): e.g. ``"bolt://127.0.0.1:7687"`` or ``"neo4j+s://xxxx.databases.neo4j.io"``
            (default: ``$NEO4J_URI``, else ``"bolt://127.0.0.1:7687"``).
        user (str, optional): (default: ``$NEO4J_USER``, else ``"neo4j"``).
        password (str, optional): (default: ``$NEO4J_PASSWORD``).
        database (str, optional): database name; ``None`` is the server's default
            (default: ``$NEO4J_DATABASE``).
        batch_size (int): most rows per write transaction; a call's ``batch_size`` can only
            lower it (default: 10_000).
        max_retries (int): tries to reach the server on open, 0.25 s apart, doubling (default: 3).
        connect_timeout (float): seconds per connection attempt; waiting for a pooled
            connection is capped at ``max(10, 2 * connect_timeout)`` s (default: 2.0).
        max_retry_time (float, optional): seconds the driver keeps retrying a transaction
            that failed with a transient error or a lost connection, waiting 1, 2, 4, 8 ... s
            (+-20% jitter) between tries; then :class:`StoreUnavailable` is raised, naming the
            server. With the default, a stopped server fails a call after 4 tries in 7-8 s;
            ``0`` still tries twice, 1 s apart (default: ``$NEO4J_MAX_RETRY_TIME``, else 5.0).
        read_only (bool): refuse writes (sessions in read mode, so the server refuses raw
            Cypher writes too) and skip creating constraints (default: False).
        vector_quantization (bool): let new vector indexes quantize vectors to int8 (Neo4j
            5.23+ does by default): ~4x less index memory, but scores off by up to ~0.03
            and a different order in :meth:`knn_native` (default: False).

    Raises:
        StoreUnavailable: the server cannot be reached or refuses the credentials (on open),
            or went away and did not come back within ``max_retry_time`` (on any call).

    Example:
        >>> with Neo4jStore() as store:            # doctest: +SKIP
        ...     store.ingest(tables)               # {"User": 40, ...}
        ...     store.write_vectors("Item", "emb", ids, emb)   # emb: [N, 64]
        ...     store.knn_native(emb[0], k=5)      # [("i001", 1.0), ...], approximate
    """

    def __init__(self, uri: Optional[str] = None, user: Optional[str] = None, password: Optional[str] = None,
                 database: Optional[str] = None, batch_size: int = 10_000, max_retries: int = 3,
                 connect_timeout: float = 2.0, read_only: bool = False, vector_quantization: bool = False,
                 max_retry_time: Optional[float] = None):
        neo4j = require("neo4j", "Neo4jStore")
        self._exc = neo4j.exceptions
        self._read_mode = neo4j.READ_ACCESS
        self.uri = uri or os.environ.get("NEO4J_URI") or "bolt://127.0.0.1:7687"
        self.user = user or os.environ.get("NEO4J_USER") or "neo4j"
        password = password if password is not None else os.environ.get("NEO4J_PASSWORD")
        self.database = database or os.environ.get("NEO4J_DATABASE") or None
        self.batch_size = _positive(batch_size, "batch_size")
        self.read_only = bool(read_only)
        self.vector_quantization = bool(vector_quantization)
        max_retries = _positive(max_retries, "max_retries")
        retry = max_retry_time if max_retry_time is not None else os.environ.get("NEO4J_MAX_RETRY_TIME", 5.0)
        try:
            self.max_retry_time = float(retry)
        except (TypeError, ValueError):
            self.max_retry_time = -1.0
        if not 0 <= self.max_retry_time < float("inf"):
            raise ValueError(f"max_retry_time (or $NEO4J_MAX_RETRY_TIME) must be seconds >= 0, got {retry!r}")
        scheme = self.uri.split("://", 1)[0] if "://" in self.uri else None
        if scheme not in _SCHEMES:
            raise ValueError(f"uri={self.uri!r} is not a Bolt URI; expected a scheme from {list(_SCHEMES)}, "
                             f"e.g. 'bolt://127.0.0.1:7687' or 'neo4j+s://xxxx.databases.neo4j.io'")
        auth = (self.user, password) if password is not None else None
        try:
            self._driver = neo4j.GraphDatabase.driver(
                self.uri, auth=auth, connection_timeout=connect_timeout,
                connection_acquisition_timeout=max(10.0, 2 * connect_timeout),
                max_transaction_retry_time=self.max_retry_time)
        except (ValueError, self._exc.ConfigurationError) as e:
            raise ValueError(f"uri={self.uri!r} is not a Neo4j URI ({e}); expected e.g. "
                             f"'bolt://127.0.0.1:7687' or 'neo4j+s://host'") from None
        self._connect(max_retries, password is None)
        if not self.read_only:
            self._create_schema()

    def __repr__(self) -> str:
        db = f", database={self.database!r}" if self.database else ""
        return f"Neo4jStore({self.uri!r}{db}{', read_only=True' if self.read_only else ''})"

    # ----------------------------------------------------------------- helpers
    def _connect(self, max_retries: int, no_password: bool) -> None:
        last = None
        for attempt in range(max_retries):
            if attempt:
                time.sleep(0.25 * 2 ** (attempt - 1))  # 0.25, 0.5, 1, ... s
            try:
                self._driver.verify_connectivity()
                return
            except self._exc.AuthError as e:
                self._driver.close()
                hint = "NEO4J_PASSWORD is not set" if no_password else "check NEO4J_USER and NEO4J_PASSWORD"
                raise StoreUnavailable(f"Neo4j at {self.uri} refused user {self.user!r}: {e.message}; "
                                       f"{hint}") from None
            except (self._exc.DriverError, self._exc.Neo4jError, OSError) as e:
                last = e
        self._driver.close()
        raise StoreUnavailable(f"cannot reach Neo4j at {self.uri} after {max_retries} tries ({_reason(last)}); "
                               f"{_FIX}") from None

    @contextlib.contextmanager
    def _lost_server(self, what: str):
        """Turn a lost server (after the driver's retries) into :class:`StoreUnavailable`."""
        start = time.monotonic()
        try:
            yield
        except (self._exc.DriverError, self._exc.Neo4jError) as e:
            lost = (self._exc.ServiceUnavailable, self._exc.SessionExpired, self._exc.IncompleteCommit)
            if not isinstance(e, lost) and not (isinstance(e, self._exc.Neo4jError) and e.is_retryable()):
                raise
            raise StoreUnavailable(
                f"lost Neo4j at {self.uri} during a {what} ({_reason(e)}); gave up after retrying for "
                f"{time.monotonic() - start:.1f} s (max_retry_time={self.max_retry_time:g} s). Each batch is one "
                f"transaction, so none is half-written: once the server is back, rerun the same command "
                f"(ingestion is idempotent); {_FIX}") from None

    def _session(self):
        if self._driver is None:
            raise RuntimeError(f"{self!r} is closed; open a new store")
        if self.read_only:  # the server then refuses writes, raw Cypher in query() too
            return self._driver.session(database=self.database, default_access_mode=self._read_mode)
        return self._driver.session(database=self.database)

    def _run(self, cypher: str, params: Optional[dict] = None, write: bool = False, fetch=None):
        """Run in a managed transaction; return ``fetch(result)`` (default: all rows as lists)."""
        fetch = fetch or (lambda r: r.values())

        def work(tx):
            return fetch(tx.run(cypher, params or {}))

        with self._lost_server("write" if write else "read"), self._session() as session:
            try:
                return (session.execute_write if write else session.execute_read)(work)
            except self._exc.ClientError as e:
                if e.code and e.code.endswith("DatabaseNotFound"):
                    raise StoreUnavailable(f"Neo4j at {self.uri} has no database {self.database!r}; "
                                           f"check NEO4J_DATABASE") from None
                raise

    def _scalar(self, cypher: str, params: Optional[dict] = None):
        rows = self._run(cypher, params)
        return rows[0][0] if rows else None

    def _write_batches(self, cypher: str, frame: pd.DataFrame, batch_size: int, **params) -> None:
        """Run ``cypher`` once per batch of ``frame`` rows, with the columns as ``$v_<column>``
        lists; ``cypher`` starts from ``UNWIND range(0, $n - 1) AS i``."""
        for start in range(0, len(frame), batch_size):
            batch = frame.iloc[start:start + batch_size]
            self._run(cypher, {**params, **_columns(batch), "n": len(batch)}, write=True, fetch=lambda r: r.consume())

    def _create_schema(self) -> None:
        for label in schema.NODES:
            self._run(f"CREATE CONSTRAINT {_q('ctxrec_' + label.lower() + '_id')} IF NOT EXISTS "
                      f"FOR (n:{_q(label)}) REQUIRE n.id IS UNIQUE", write=True, fetch=lambda r: r.consume())

    def constraints(self) -> List[Tuple[str, str]]:
        """``(label, property)`` of every uniqueness constraint, sorted."""
        rows = self._run("SHOW CONSTRAINTS YIELD type, labelsOrTypes, properties "
                         "WHERE type = 'UNIQUENESS' OR type = 'NODE_PROPERTY_UNIQUENESS' "
                         "RETURN labelsOrTypes, properties")
        return sorted((lab, prop) for labs, props in rows for lab in labs for prop in props)

    # ------------------------------------------------------------------ writes
    def _upsert_nodes(self, label: str, frame: pd.DataFrame, batch_size: int) -> int:
        sets = ", ".join(f"n.{_q(p)} = $v_{p}[i]" for p in frame.columns if p != "id")
        cypher = (f"UNWIND range(0, $n - 1) AS i MERGE (n:{_q(label)} {{id: $v_id[i]}})"
                  + (f" SET {sets}" if sets else ""))
        self._write_batches(cypher, frame, min(batch_size, self.batch_size))
        return len(frame)

    def _upsert_edges(self, rel_type: str, frame: pd.DataFrame, batch_size: int) -> int:
        spec = schema.RELS[rel_type]
        sets = ", ".join(f"e.{_q(p)} = $v_{p}[i]" for p in frame.columns if p not in ("src", "dst"))
        cypher = (f"UNWIND range(0, $n - 1) AS i MATCH (a:{_q(spec.src)} {{id: $v_src[i]}}) "
                  f"MATCH (b:{_q(spec.dst)} {{id: $v_dst[i]}}) "
                  f"MERGE (a)-[e:{_q(rel_type)}]->(b)" + (f" SET {sets}" if sets else ""))
        self._write_batches(cypher, frame, min(batch_size, self.batch_size))
        return len(frame)

    def _missing_ids(self, label: str, ids: List[str]) -> Set[str]:
        missing: Set[str] = set()
        step = 50_000
        for start in range(0, len(ids), step):
            found = self._scalar(f"UNWIND $ids AS id OPTIONAL MATCH (n:{_q(label)} {{id: id}}) "
                                 f"WITH id, n WHERE n IS NULL RETURN collect(id)",
                                 {"ids": _Param(ids[start:start + step])})
            missing.update(found or [])
        return missing

    # ------------------------------------------------------------------- reads
    def _count_nodes(self, label: str) -> int:
        return self._scalar(f"MATCH (n:{_q(label)}) RETURN count(n)")

    def _count_edges(self, rel_type: str) -> int:
        return self._scalar(f"MATCH ()-[e:{_q(rel_type)}]->() RETURN count(e)")

    def _pages(self, label: str, tail: str, step: int, params: Optional[dict] = None) -> Iterable[dict]:
        """Page through ``label`` nodes ``n`` by id, ``step`` at a time; ``tail`` continues from
        ``WITH n`` (ordered) and returns ``last`` (the page's largest id) plus column lists."""
        after = None
        while True:
            where = "n.id IS NOT NULL" if after is None else "n.id > $after"
            page = self._run(f"MATCH (n:{_q(label)}) WHERE {where} WITH n ORDER BY n.id LIMIT $step {tail}",
                             {**(params or {}), "after": after, "step": step}, fetch=lambda r: r.single().data())
            if page["last"] is None:
                return
            yield page
            after = page["last"]

    def _read_columns(self, label: str, tail: str, columns: List[str], step: int, **params) -> pd.DataFrame:
        parts: Dict[str, list] = {c: [] for c in columns}
        for page in self._pages(label, tail, step, params):
            for c in columns:
                parts[c].extend(page[c])
        return pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in parts.items()}, columns=columns)

    def _read_nodes(self, label: str) -> pd.DataFrame:
        props = list(schema.NODES[label].properties)
        cols = "".join(f", [x IN ns | x.{_q(p)}] AS {_q(p)}" for p in props)
        tail = f"WITH collect(n) AS ns RETURN ns[-1].id AS last, [x IN ns | x.id] AS id{cols}"
        return self._read_columns(label, tail, ["id"] + props, 50_000)

    def _read_edges(self, rel_type: str) -> pd.DataFrame:
        spec = schema.RELS[rel_type]
        props = list(spec.properties)
        # page by source node, sized so a page holds about 50k relationships
        n_src, n_edges = self._count_nodes(spec.src), self._count_edges(rel_type)
        step = max(1, int(50_000 * n_src / max(n_edges, 1)))
        cols = "".join(f", [x IN es | x.{_q(p)}] AS {_q(p)}" for p in props)
        tail = (f"OPTIONAL MATCH (n)-[e:{_q(rel_type)}]->(:{_q(spec.dst)}) "
                f"WITH max(n.id) AS last, collect(e) AS es "
                f"RETURN last, [x IN es | startNode(x).id] AS src, [x IN es | endNode(x).id] AS dst{cols}")
        return self._read_columns(spec.src, tail, ["src", "dst"] + props, step)

    # ----------------------------------------------------------------- vectors
    def vector_indexes(self, label: str) -> Dict[str, Tuple[str, int]]:
        """Vector name -> ``(index name, dimension)`` for the ``label`` vectors that exist."""
        spec = schema.node_spec(label)
        rows = self._run("SHOW VECTOR INDEXES YIELD name, labelsOrTypes, properties, options "
                         "WHERE labelsOrTypes = [$label] RETURN name, properties, options", {"label": spec.label})
        found = {}
        for name, props, options in rows:
            if len(props) == 1 and props[0].startswith(_VEC):
                vec = props[0][len(_VEC):]
                # an index outlives its vectors only when nodes were deleted by hand
                if self._scalar(f"MATCH (n:{_q(label)}) WHERE n.{_q(props[0])} IS NOT NULL RETURN 1 LIMIT 1"):
                    found[vec] = (name, int(options["indexConfig"]["vector.dimensions"]))
        return found

    def _vector_names(self, label: str) -> List[str]:
        return list(self.vector_indexes(label))

    def _vector_dim(self, label: str, name: str) -> Optional[int]:
        found = self.vector_indexes(label).get(name)
        return None if found is None else found[1]

    def _write_vectors(self, label: str, name: str, ids: List[str], vectors: np.ndarray) -> int:
        n, d = vectors.shape
        if d > MAX_VECTOR_DIM:
            raise ValueError(f"Neo4j vector indexes take at most {MAX_VECTOR_DIM} dimensions, got {d}; "
                             f"reduce the vectors (e.g. PCA) or use the embedded store")
        prop, index = _VEC + name, f"{label}_{name}"
        new_index = self._vector_dim(label, name) is None
        if new_index:  # an index without vectors may have another dimension
            self._drop_index(index)
        # ~32 MB of parameters per batch; the list wrappers keep the driver from repr-ing them
        step = max(1, min(self.batch_size, (32 << 20) // (16 * d)))
        cypher = (f"UNWIND range(0, $n - 1) AS i MATCH (n:{_q(label)} {{id: $v_id[i]}}) "
                  f"CALL db.create.setNodeVectorProperty(n, $prop, $v_vec[i])")
        for start in range(0, n, step):
            part = vectors[start:start + step]
            self._run(cypher, {"v_id": _Param(ids[start:start + step]), "v_vec": _Param(part.tolist()),
                               "n": len(part), "prop": prop}, write=True, fetch=lambda r: r.consume())
        if new_index:
            # A new index is populated from the written vectors in one pass (HNSW build, bound by
            # the server's CPU): ~1.3x faster than inserting into an existing index per transaction,
            # which also leaves many small Lucene segments that every query then searches.
            self._create_vector_index(label, prop, index, d)
        self._run("CALL db.awaitIndex($index, 600)", {"index": index}, fetch=lambda r: r.consume())
        return n

    def _create_vector_index(self, label: str, prop: str, index: str, d: int) -> None:
        config = f"`vector.dimensions`: {int(d)}, `vector.similarity_function`: 'cosine'"
        create = f"CREATE VECTOR INDEX {_q(index)} IF NOT EXISTS FOR (n:{_q(label)}) ON (n.{_q(prop)}) OPTIONS "
        try:
            quant = "true" if self.vector_quantization else "false"
            self._run(create + f"{{indexConfig: {{{config}, `vector.quantization.enabled`: {quant}}}}}",
                      write=True, fetch=lambda r: r.consume())
        except self._exc.ClientError:  # before Neo4j 5.23 there is no quantization setting
            self._run(create + f"{{indexConfig: {{{config}}}}}", write=True, fetch=lambda r: r.consume())

    def _read_vectors(self, label: str, name: str) -> Tuple[List[str], np.ndarray]:
        if name not in self._vector_names(label):
            return [], np.zeros((0, 0), dtype=np.float32)
        prop = _q(_VEC + name)
        dim = self._vector_dim(label, name) or 1
        has = f"x IN ns WHERE x.{prop} IS NOT NULL"
        tail = f"WITH collect(n) AS ns RETURN ns[-1].id AS last, [{has} | x.id] AS id, [{has} | x.{prop}] AS vec"
        ids, vecs = [], []
        for page in self._pages(label, tail, max(1, min(50_000, (32 << 20) // (16 * dim)))):
            ids.extend(page["id"])
            vecs.extend(page["vec"])
        if not ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        return ids, np.asarray(vecs, dtype=np.float32)

    def _delete_vectors(self, label: str, name: str) -> None:
        self._drop_index(f"{label}_{name}")
        prop = _q(_VEC + name)
        # by id pages, so no page scans the nodes already done
        after = None
        while True:
            where = "n.id IS NOT NULL" if after is None else "n.id > $after"
            after = self._run(f"MATCH (n:{_q(label)}) WHERE {where} WITH n ORDER BY n.id LIMIT $step "
                              f"REMOVE n.{prop} RETURN max(n.id)", {"after": after, "step": self.batch_size},
                              write=True)[0][0]
            if after is None:
                return

    def knn_native(self, vector, k: int = 10, label: str = "Item", name: str = "emb", exclude: Iterable[str] = (),
                   category: Optional[str] = None, candidates: Optional[int] = None) -> List[Tuple[str, float]]:
        """Like :meth:`GraphStore.knn`, answered by Neo4j's vector index (HNSW) and graph filters.

        The index is approximate: HNSW asked for exactly ``k`` misses some true neighbours
        (measured: 1.4% of the top 50 of 2,000 random 64-d vectors; none when asked for 200),
        so the index is asked for ``candidates`` and the best ``k`` that pass the filters are
        kept; when fewer pass, it is asked for 4 times more, until all were seen. Its scores
        are float32 ``(1 + cos) / 2``, returned as ``cos``, so near-ties (within ~1e-6) can
        order differently from the exact :meth:`knn`, and with ``vector_quantization=True``
        scores move by up to ~0.03. All-zero vectors are stored but not indexed, so only
        :meth:`knn` returns them (with score 0).

        Args:
            vector (np.ndarray | torch.Tensor): query ``[d]`` (or ``[1, d]``).
            k (int): how many (default: 10).
            label (str): node label searched (default: ``"Item"``).
            name (str): vector name (default: ``"emb"``).
            exclude (Iterable[str]): ids never returned (default: none).
            category (str, optional): only items with ``IN_CATEGORY`` to this Category id.
            candidates (int, optional): how many the index is asked for first
                (default: ``4 * k + len(exclude)``).
        """
        schema.node_spec(label)
        name, k = check_vector_name(name), _positive(k)
        q = _to_numpy(vector)
        q = q[0] if q.ndim == 2 and q.shape[0] == 1 else q
        if q.ndim != 1 or q.size == 0 or not np.isfinite(q.astype(np.float64)).all():
            raise ValueError(f"vector must be finite, [d] or [1, d]; got shape {tuple(_to_numpy(vector).shape)}")
        if not np.any(q):
            raise ValueError("vector is all zeros; cosine search needs a non-zero query")
        if category is not None:
            if label != "Item":
                raise ValueError(f"category filters Item nodes only; got label={label!r}")
            category = str(category)
        exclude = sorted({str(e) for e in exclude})
        check_text(exclude + ([category] if category is not None else []), "knn_native: exclude / category")
        # One round trip when the answer is full (the usual case): the index name is known
        # (<Label>_<name>), so the checks below (SHOW VECTOR INDEXES, a vector exists, the
        # dimension, the category exists: 3-4 more round trips, ~5 ms) only run when the
        # query fails or returns fewer than k, and then raise the same errors as before.
        cypher = ("CALL db.index.vector.queryNodes($index, $fetch, $q) YIELD node, score "
                  "WHERE NOT node.id IN $exclude AND ($category IS NULL OR "
                  "EXISTS { (node)-[:IN_CATEGORY]->(:Category {id: $category}) }) "
                  "RETURN node.id AS id, 2 * score - 1 AS cos ORDER BY cos DESC, id ASC LIMIT $k")
        params = {"index": f"{label}_{name}", "q": _Param(q.astype(np.float64).tolist()),
                  "exclude": _Param(exclude), "category": category, "k": k}
        fetch = _positive(candidates, "candidates") if candidates is not None else 4 * k + len(exclude)
        total = None
        while True:
            try:
                rows = self._run(cypher, {**params, "fetch": max(fetch, 1)})
            except self._exc.ClientError:
                self._check_knn(label, name, q, category)  # raises the ValueError that explains it
                raise
            if len(rows) >= k:
                return [(str(i), float(s)) for i, s in rows]
            if total is None:
                self._check_knn(label, name, q, category)
                total = self._count_nodes(label)
            if fetch >= total:
                return [(str(i), float(s)) for i, s in rows]
            fetch = min(total, fetch * 4)

    def _check_knn(self, label: str, name: str, q: np.ndarray, category: Optional[str]) -> None:
        """The argument errors of :meth:`knn_native` that need the server."""
        found = self.vector_indexes(label).get(name)
        if found is None:
            raise ValueError(f"no {label} vectors named {name!r}; have {self.vector_names(label)}; "
                             f"write_vectors first")
        if q.shape[0] != found[1]:
            raise ValueError(f"vector has dimension {q.shape[0]}, {label} vectors {name!r} have {found[1]}")
        if category is not None and self._missing_ids("Category", [category]):
            raise ValueError(f"category {category!r} is not a Category node id")

    # ----------------------------------------------------------------- queries
    def _sources(self, rel_type: str, dst_id: str) -> List[str]:
        return [r[0] for r in self._run(sources_cypher(rel_type), {"id": dst_id})]

    def _co_occurring(self, item_id: str, rel_type: str, k: int) -> List[Tuple[str, float]]:
        return [(r[0], r[1]) for r in self._run(co_occurring_cypher(rel_type), {"id": item_id, "k": k})]

    def _query(self, cypher: str, params: dict) -> pd.DataFrame:
        # an auto-commit transaction, so CALL { ... } IN TRANSACTIONS works too
        with self._lost_server("query"), self._session() as session:
            return session.run(cypher, params).to_df()

    # -------------------------------------------------------------- lifecycle
    def _clear(self) -> None:
        """Delete the schema's nodes (in batches) and their vector indexes; constraints stay."""
        for label in schema.NODES:
            while self._run(f"MATCH (n:{_q(label)}) WITH n LIMIT $step DETACH DELETE n RETURN count(*)",
                            {"step": self.batch_size}, write=True)[0][0]:
                pass
        for name, labels, props in self._run("SHOW VECTOR INDEXES YIELD name, labelsOrTypes, properties "
                                             "RETURN name, labelsOrTypes, properties"):
            if set(labels or []) <= set(schema.NODES) and all(p.startswith(_VEC) for p in props or []):
                self._drop_index(name)

    def _drop_index(self, name: str) -> None:
        self._run(f"DROP INDEX {_q(name)} IF EXISTS", write=True, fetch=lambda r: r.consume())

    def _close(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None
