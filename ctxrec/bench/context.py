"""``ctxrec bench context``: does the context GNN use context? On the synthetic world
whose right answer depends on (time slot, place) by construction, compare it with
LightGCN (which ignores context) and with the ground-truth oracle, over several seeds.

Every model is selected on validation (early stopping); test NDCG@20 / Recall@20 are
reported as mean and std over seeds, with ratios to the oracle measured on the same
world and split. Figures go to ``benchmarks/context_world.json``.
"""
from __future__ import annotations

import time
from typing import Dict, List, Sequence

from ctxrec.bench.report import aggregate, hash_world, split_facts, table, write_report

METRICS = ("ndcg@20", "recall@20")


def run(seeds: Sequence[int] = (0, 1, 2), world: str = "context", epochs: int = 100,
        cache_dir: str = ".ctxrec/cache", out_dir: str = "benchmarks") -> Dict[str, object]:
    """Train every model on each seed's world; print the table; write ``context_world.json``."""
    from ctxrec.datasets.graphs import synthetic_graph
    from ctxrec.training.models import make_model
    from ctxrec.training.models.oracle import Oracle
    from ctxrec.training.trainer import TrainConfig
    from ctxrec.training.tuning import DEFAULT_GRIDS

    runs: Dict[str, List[Dict[str, float]]] = {}
    hashes: Dict[str, str] = {}
    splits: Dict[str, Dict[str, object]] = {}
    for seed in seeds:
        w, graph = synthetic_graph(world, seed=seed, features=("text",), cache_dir=cache_dir)
        hashes[str(seed)], splits[str(seed)] = hash_world(w), split_facts(graph)
        models = {
            "oracle": lambda: Oracle(w.preference, w.item_ids),
            "mostpop": lambda: make_model("mostpop"),
            "lightgcn": lambda: make_model("lightgcn", train=TrainConfig(epochs=epochs, seed=seed)),
            "context_gnn": lambda: make_model("context_gnn", features=("text",),
                                              train=TrainConfig(epochs=epochs, seed=seed)),
            # closed form: its grid (DEFAULT_GRIDS, with the text vectors) is chosen on validation
            "item_graph": lambda: _Tuned("item_graph", {**DEFAULT_GRIDS["item_graph"], "features": [["text"]]}),
        }
        for name, build in models.items():
            t0 = time.perf_counter()
            model = build().fit(graph)
            res = model.evaluate("test")
            hist = getattr(model, "history", None)
            runs.setdefault(name, []).append({
                **{m: res[m] for m in METRICS}, "val_ndcg@20": model.evaluate("val")["ndcg@20"],
                "train_s": time.perf_counter() - t0,
                "epochs": len(hist.loss) if hist is not None else 0})
            print(f"seed {seed} {name}: test ndcg@20 {res['ndcg@20']:.4f} recall@20 {res['recall@20']:.4f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    figures: Dict[str, object] = dict(aggregate(runs))
    rows = []
    oracle = figures["oracle"]["ndcg@20"]
    for name in runs:
        entry = figures[name]
        entry["ndcg@20_vs_oracle"] = entry["ndcg@20"] / oracle
        rows.append({"model": name, "ndcg@20": entry["ndcg@20"], "±": entry["ndcg@20_std"],
                     "recall@20": entry["recall@20"], "vs_oracle": entry["ndcg@20_vs_oracle"],
                     "train_s": entry["train_s"]})
    print(table(rows, ["model", "ndcg@20", "±", "recall@20", "vs_oracle", "train_s"]))
    figures["_setup"] = {"world": world, "seeds": list(seeds), "epochs": epochs, "features": ["text"],
                         "split": "temporal per user, test = last 20%, val = last 10% of the rest",
                         "selection": "early stopping on validation NDCG@20; item_graph: its grid on validation NDCG@20"}
    seeds_arg = ",".join(map(str, seeds))
    path = write_report("context_world", figures, out_dir,
                        command=f"ctxrec bench context --seeds {seeds_arg} --world {world} --epochs {epochs}",
                        data={"hash": hashes, "source": f"synthetic world {world!r} (ctxrec.datasets.SIZES), "
                                                        f"hash per world seed"},
                        split=splits)
    print(f"\nwritten to {path}")
    return figures


class _Tuned:
    """``fit(graph)`` chooses ``name``'s setting from ``grid`` on validation (this bench's
    per-context protocol) and returns the fitted model."""

    def __init__(self, name: str, grid: Dict[str, list]) -> None:
        self.name, self.grid = name, grid

    def fit(self, graph):
        from ctxrec.training.tuning import tune

        model, params, _ = tune(self.name, self.grid, graph, protocol="per_context")
        model.graph = graph  # tune fits on the test-free view; this bench evaluates on the full graph
        print(f"{self.name}: chose {params} on validation", flush=True)
        return model
