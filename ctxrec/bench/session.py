"""``ctxrec bench session``: does reading the session so far help? On the synthetic
"session" world every session is about one category drawn at random (on top of taste and
context), so the first items of a session tell what its later ones are.

One query per held-out event, in its context, with the items opened earlier in its session
(``evaluate(protocol="session")``); those items and the user's train items are masked.
Compared: the context GNN with the session Transformer (``session_len=10``), the same
without it, LightGCN and MostPop; epochs chosen on validation NDCG@20 (session protocol);
mean and std over world seeds. Figures go to ``benchmarks/session_world.json``.
"""
from __future__ import annotations

import time
from typing import Dict, List, Sequence

from ctxrec.bench.report import aggregate, hash_world, split_facts, table, write_report

METRICS = ("ndcg@20", "recall@20", "mrr@20")
SESSION_LEN = 10


def run(seeds: Sequence[int] = (0, 1, 2), world: str = "session", epochs: int = 150,
        out_dir: str = "benchmarks") -> Dict[str, object]:
    """Train every model on each seed's world; print the table; write ``session_world.json``."""
    from ctxrec.datasets.graphs import synthetic_graph
    from ctxrec.data import SplitConfig
    from ctxrec.training.models import make_model
    from ctxrec.training.trainer import TrainConfig

    runs: Dict[str, List[Dict[str, float]]] = {}
    hashes: Dict[str, str] = {}
    splits: Dict[str, Dict[str, object]] = {}
    for seed in seeds:
        w, graph = synthetic_graph(world, seed=seed, split=SplitConfig(session_len=SESSION_LEN))
        hashes[str(seed)], splits[str(seed)] = hash_world(w), split_facts(graph)

        def cfg() -> TrainConfig:
            return TrainConfig(epochs=epochs, seed=seed, patience=10, val_protocol="session")

        models = {
            "mostpop": lambda: make_model("mostpop"),
            "lightgcn": lambda: make_model("lightgcn", train=cfg()),
            "context_gnn": lambda: make_model("context_gnn", features=(), train=cfg()),
            "context_gnn+session": lambda: make_model("context_gnn", features=(), session_len=SESSION_LEN,
                                                      train=cfg()),
        }
        for name, build in models.items():
            t0 = time.perf_counter()
            model = build().fit(graph)
            res = model.evaluate("test", protocol="session")
            runs.setdefault(name, []).append({
                **{m: res[m] for m in METRICS}, "val_ndcg@20": model.evaluate("val", protocol="session")["ndcg@20"],
                "context_ndcg@20": model.evaluate("test")["ndcg@20"], "train_s": time.perf_counter() - t0})
            print(f"seed {seed} {name}: session ndcg@20 {res['ndcg@20']:.4f} ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
    figures: Dict[str, object] = dict(aggregate(runs))
    base = figures["context_gnn"]["ndcg@20"]
    rows = []
    for name in runs:
        entry = figures[name]
        entry["ndcg@20_vs_context_gnn"] = entry["ndcg@20"] / base
        rows.append({"model": name, "ndcg@20": entry["ndcg@20"], "±": entry["ndcg@20_std"],
                     "recall@20": entry["recall@20"], "mrr@20": entry["mrr@20"],
                     "vs_context_gnn": entry["ndcg@20_vs_context_gnn"], "train_s": entry["train_s"]})
    print(table(rows, ["model", "ndcg@20", "±", "recall@20", "mrr@20", "vs_context_gnn", "train_s"]))
    figures["_setup"] = {"world": world, "seeds": list(seeds), "epochs": epochs, "session_len": SESSION_LEN,
                         "protocol": "one query per held-out event with its earlier session items (masked)",
                         "selection": "early stopping on validation NDCG@20, session protocol"}
    path = write_report("session_world", figures, out_dir,
                        command=f"ctxrec bench session --seeds {','.join(map(str, seeds))} --epochs {epochs}",
                        data={"hash": hashes, "source": f"synthetic world {world!r} (ctxrec.datasets.SIZES), "
                                                        f"hash per world seed"},
                        split=splits)
    print(f"\nwritten to {path}")
    return figures
