"""``ctxrec bench ingest``: how fast the stores take the synthetic world and answer queries.

For each store (embedded LadybugDB, Neo4j), on the same data in the same run:

- batched idempotent upserts (the store's ``ingest``): nodes/s and relationships/s on
  a first load and on a re-load that must change no counts;
- one ``MERGE`` per row, each its own transaction, for the first ``per_row``
  user-item relationships: relationships/s, and the batched/per-row ratio;
- latency p50/p99 of ``related`` (co-interaction and shared sessions) on that graph;
- latency p50/p99 of k-nearest items among ``knn_items`` vectors (Neo4j: its vector
  index through ``knn_native``; embedded: exact search).

Figures go to ``benchmarks/ingest.json`` under ``embedded`` and ``neo4j``.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

import numpy as np
import pandas as pd

from ctxrec.bench.report import hash_tables, table, write_report
from ctxrec.graph import schema

PER_ROW_MERGE = """
MATCH (a:User {id: $src})
MATCH (b:Item {id: $dst})
MERGE (a)-[e:INTERACTED]->(b)
SET e.action = $action, e.first_ts = $first_ts, e.ts = $ts, e.weight = $weight, e.`count` = $count
"""


@dataclass
class IngestBenchConfig:
    """Settings of ``ctxrec bench ingest``.

    Args:
        users: synthetic users; interactions are ~users x 100 (default: 1000 -> ~100k).
        per_row: relationships written one MERGE per row (default: 2000).
        knn_items: items with vectors for the knn latency (default: 100_000).
        dim: vector width (default: 384, the text model's).
        queries: timed queries per latency figure (default: 200).
        batch_size: rows per upsert batch (default: 10_000).
        seed: seed (default: 0).
    """

    users: int = 1000
    per_row: int = 2000
    knn_items: int = 100_000
    dim: int = 384
    queries: int = 200
    batch_size: int = 10_000
    seed: int = 0


def world_tables(users: int, seed: int):
    """GraphTables of a synthetic world with ~100 interactions per user (no media)."""
    from ctxrec.datasets.synthetic import WorldConfig, generate_world
    from ctxrec.graph.build import build_graph

    cfg = WorldConfig(n_users=users, n_items=max(200, users), n_places=8, sessions_per_user=20,
                      items_per_session=5, images=False, audio=False, seed=seed, days=365)
    with tempfile.TemporaryDirectory() as tmp:
        files = generate_world(cfg).write(tmp)
        return build_graph(files["interactions"], files["items"], files["context"]).tables


def _latency(fn: Callable[[int], object], n: int) -> Dict[str, float]:
    fn(0)  # warm-up: caches, query plans
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def _load_nodes(store, tables, batch_size) -> float:
    t = time.perf_counter()
    for label in schema.NODES:
        store.upsert_nodes(label, tables.nodes[label], batch_size)
    return time.perf_counter() - t


def _load_rels(store, tables, batch_size) -> float:
    t = time.perf_counter()
    for rel in schema.RELS:
        store.upsert_edges(rel, tables.edges[rel], batch_size)
    return time.perf_counter() - t


def bench_store(store, tables, cfg: IngestBenchConfig, native_knn: bool) -> Dict[str, float]:
    """Every figure for one open store; the store is cleared first and left loaded."""
    n_nodes = sum(len(f) for f in tables.nodes.values())
    n_rels = sum(len(f) for f in tables.edges.values())
    out: Dict[str, float] = {"nodes": n_nodes, "rels": n_rels}

    # one MERGE per row, each its own transaction, on an otherwise empty store
    store.clear()
    _load_nodes(store, tables, cfg.batch_size)
    rows = tables.edges["INTERACTED"].head(cfg.per_row)
    t = time.perf_counter()
    for r in rows.itertuples(index=False):
        store.query(PER_ROW_MERGE, {"src": r.src, "dst": r.dst, "action": r.action, "first_ts": int(r.first_ts),
                                    "ts": int(r.ts), "weight": float(r.weight), "count": int(r.count)})
    per_row_s = time.perf_counter() - t
    out["per_row_rels_per_s"] = len(rows) / per_row_s

    # batched first load, then an idempotent re-load of the same tables
    store.clear()
    nodes_s = _load_nodes(store, tables, cfg.batch_size)
    rels_s = _load_rels(store, tables, cfg.batch_size)
    counts = store.counts()
    again_s = _load_nodes(store, tables, cfg.batch_size) + _load_rels(store, tables, cfg.batch_size)
    out.update({
        "batched_nodes_per_s": n_nodes / nodes_s,
        "batched_rels_per_s": n_rels / rels_s,
        "reload_rows_per_s": (n_nodes + n_rels) / again_s,
        "idempotent": float(store.counts() == counts),
    })
    out["batched_vs_per_row"] = out["batched_rels_per_s"] / out["per_row_rels_per_s"]

    rng = np.random.default_rng(cfg.seed)
    items = tables.nodes["Item"]["id"].to_numpy()
    picks = rng.choice(items, size=cfg.queries + 1)
    for via in ("co_interaction", "session"):
        lat = _latency(lambda i, via=via: store.related(str(picks[i]), k=10, via=via), cfg.queries)
        out.update({f"related_{via}_{k}": v for k, v in lat.items()})

    # knn among knn_items vectors on extra Item nodes
    ids = np.array([f"knn{i:07d}" for i in range(cfg.knn_items)])
    store.upsert_nodes("Item", pd.DataFrame({"id": ids}), cfg.batch_size)
    vecs = rng.standard_normal((cfg.knn_items, cfg.dim)).astype(np.float32)
    t = time.perf_counter()
    store.write_vectors("Item", "bench", ids, vecs)
    out["write_vectors_per_s"] = cfg.knn_items / (time.perf_counter() - t)
    qs = rng.standard_normal((cfg.queries + 1, cfg.dim)).astype(np.float32)
    exact = _latency(lambda i: store.knn(qs[i], k=10, name="bench"), cfg.queries)
    out.update({f"knn_exact_{k}": v for k, v in exact.items()})
    if native_knn:
        nat = _latency(lambda i: store.knn_native(qs[i], k=10, name="bench"), cfg.queries)
        out.update({f"knn_native_{k}": v for k, v in nat.items()})
        top_exact = [i for i, _ in store.knn(qs[0], k=10, name="bench")]
        top_native = [i for i, _ in store.knn_native(qs[0], k=10, name="bench")]
        out["knn_native_recall_at_10_q0"] = len(set(top_exact) & set(top_native)) / 10
    out["knn_p50_ms"] = out.get("knn_native_p50_ms", out["knn_exact_p50_ms"])
    out["knn_p99_ms"] = out.get("knn_native_p99_ms", out["knn_exact_p99_ms"])
    return out


def run(stores: Sequence[str] = ("embedded", "neo4j"), config: IngestBenchConfig | None = None,
        uri: str | None = None, out_dir: str = "benchmarks") -> Dict[str, object]:
    """Run the benchmark on each store and write ``benchmarks/ingest.json``."""
    from ctxrec.graph.stores import open_store

    cfg = config or IngestBenchConfig()
    t = time.perf_counter()
    tables = world_tables(cfg.users, cfg.seed)
    build_s = time.perf_counter() - t
    figures: Dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in stores:
            store = open_store("neo4j", uri=uri) if kind == "neo4j" else open_store("embedded", f"{tmp}/{kind}")
            with store:
                figures[kind] = bench_store(store, tables, cfg, native_knn=kind == "neo4j")
                store.clear()
    keys = ["nodes", "rels", "batched_nodes_per_s", "batched_rels_per_s", "reload_rows_per_s", "idempotent",
            "per_row_rels_per_s", "batched_vs_per_row", "related_co_interaction_p50_ms",
            "related_co_interaction_p99_ms", "related_session_p50_ms", "related_session_p99_ms",
            "write_vectors_per_s", "knn_exact_p50_ms", "knn_exact_p99_ms", "knn_native_p50_ms", "knn_native_p99_ms",
            "knn_native_recall_at_10_q0"]
    rows: List[Dict[str, object]] = [{"figure": k, **{s: figures[s].get(k, "-") for s in stores}} for k in keys]
    print(table(rows, ["figure", *stores]))
    figures["_setup"] = {**cfg.__dict__, "interactions": int(tables.edges["CONTAINS"].shape[0]),
                         "build_tables_s": build_s}
    cmd = (f"ctxrec bench ingest --stores {','.join(stores)} --users {cfg.users} --per-row {cfg.per_row} "
           f"--knn-items {cfg.knn_items} --dim {cfg.dim} --queries {cfg.queries}")
    data = {"hash": hash_tables(tables), "source": f"ctxrec.bench.ingest.world_tables({cfg.users}, seed={cfg.seed})"}
    path = write_report("ingest", figures, out_dir, command=cmd, data=data)
    print(f"\nwritten to {path}")
    return figures
