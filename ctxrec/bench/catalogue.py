"""``ctxrec bench catalogue``: fit seconds and peak memory of every model on a large catalogue
(a synthetic world of 20k items and about 70k events, the size a new user tried), each model
in a fresh process so that its peak RSS is its own.

The graph is built once (generate -> validate -> RecGraph with text vectors, saved to a
temporary file); each model then loads it and fits once on ``graph.without_test()`` with its
defaults (trained models for ``epochs`` epochs, no early stopping, so the figure is the cost of
that many epochs), or is stopped at ``timeout`` seconds and reported as such. Validation
NDCG@20 (per_user) says the fit did something. Figures go to ``benchmarks/catalogue.json``.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Sequence

from ctxrec.bench.report import hash_world, split_facts, table, write_report
from ctxrec.bench.scale import _rss_gb, run_worker

#: model rows: label -> (model name, settings); trained models get ``train.epochs``
MODELS: Dict[str, tuple] = {
    "mostpop": ("mostpop", {}),
    "itemknn": ("itemknn", {}),
    "ease": ("ease", {}),
    "implicit_als": ("implicit_als", {}),
    "mf_bpr": ("mf_bpr", {"train": {}}),
    "lightgcn": ("lightgcn", {"train": {}}),
    "context_gnn": ("context_gnn", {"features": ("text",), "train": {}}),
    "item_graph": ("item_graph", {"features": ("text",)}),
    "item_graph_residual": ("item_graph", {"features": ("text",), "factors": 32}),
}


def _world(items: int, users: int):
    from ctxrec.datasets.synthetic import WorldConfig

    return WorldConfig(n_users=users, n_items=items, n_places=12, sessions_per_user=10, items_per_session=5,
                       days=365, images=False, audio=False)


def build_worker(items: int, users: int, path: str, cache_dir: str) -> Dict[str, object]:
    import torch

    from ctxrec.datasets.graphs import synthetic_graph

    t0 = time.perf_counter()
    world, graph = synthetic_graph(_world(items, users), features=("text",), cache_dir=cache_dir)
    seconds = time.perf_counter() - t0
    torch.save(graph, path)
    return {"items": graph.num_items, "users": graph.num_users, "interactions": len(world.interactions),
            "train_events": len(graph.train), "build_s": seconds, "build_peak_rss_gb": _rss_gb(),
            "_data": hash_world(world), "_split": split_facts(graph)}


def fit_worker(path: str, label: str, epochs: int) -> Dict[str, float]:
    import torch

    from ctxrec.training.models import make_model

    graph = torch.load(path, weights_only=False)
    loaded = _rss_gb()
    name, settings = MODELS[label]
    settings = dict(settings)
    if "train" in settings:  # a dict, so each model keeps its own training defaults (MF's BPR loss)
        settings["train"] = {**settings["train"], "epochs": epochs, "patience": epochs, "seed": 0}
    model = make_model(name, **settings)
    t0 = time.perf_counter()
    model.fit(graph.without_test())
    seconds = time.perf_counter() - t0
    peak = _rss_gb()
    val = model.evaluate("val", protocol="per_user")["ndcg@20"]
    return {"fit_s": seconds, "peak_rss_gb": peak, "loaded_rss_gb": loaded, "val_ndcg@20": val}


def _child(args, timeout: float) -> Dict[str, object]:
    """:func:`~ctxrec.bench.scale.run_worker` of this module; a timeout or a failure becomes the row."""
    try:
        return run_worker("ctxrec.bench.catalogue", args, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"timeout_s": timeout}
    except RuntimeError as e:
        return {"error": str(e).strip().splitlines()[-1][:300]}


def run(items: int = 20000, users: int = 1400, models: Sequence[str] = tuple(MODELS), epochs: int = 20,
        timeout: float = 600.0, cache_dir: str = ".ctxrec/cache", out_dir: str = "benchmarks") -> Dict[str, object]:
    """Build the catalogue once, fit every model in its own process; print the table; write ``catalogue.json``."""
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown model row(s) {unknown}; choose among {list(MODELS)}")
    figures: Dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="ctxrec-catalogue-") as tmp:
        path = str(Path(tmp) / "graph.pt")
        built = _child(["build", items, users, path, cache_dir], timeout=3600)
        if "_data" not in built:
            raise RuntimeError(f"bench catalogue: building the world failed: {built}")
        data, split = built.pop("_data"), built.pop("_split")
        print(f"catalogue: {built}", flush=True)
        for label in models:
            figures[label] = _child(["fit", path, label, epochs], timeout=timeout)
            print(f"{label}: {figures[label]}", flush=True)
    rows = []
    for label, f in figures.items():
        status = "ok" if "fit_s" in f else ("timeout" if "timeout_s" in f else "error")
        rows.append({"model": label, "fit_s": f.get("fit_s", f.get("timeout_s", float("nan"))),
                     "peak_rss_gb": f.get("peak_rss_gb", float("nan")), "val_ndcg@20": f.get("val_ndcg@20", float("nan")),
                     "status": status})
    print(table(rows, ["model", "fit_s", "peak_rss_gb", "val_ndcg@20", "status"]))
    figures["_setup"] = {"world": built, "epochs_of_trained_models": epochs, "timeout_s": timeout,
                         "target": "every model fits in <= 180 s with <= 4 GB peak (issue #16)",
                         "fit": "one fit on graph.without_test() with the model's defaults, own process; peak RSS "
                                "of that process (includes torch and the loaded graph, loaded_rss_gb)"}
    out = write_report("catalogue", figures, out_dir,
                       command=f"ctxrec bench catalogue --items {items} --users {users} --models {','.join(models)} "
                               f"--epochs {epochs} --timeout {timeout:g}",
                       data={"hash": data, "source": f"synthetic world ctxrec.bench.catalogue._world({items}, {users})"},
                       split=split)
    print(f"\nwritten to {out}")
    return figures


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "build":
        print(json.dumps(build_worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])))
    elif kind == "fit":
        print(json.dumps(fit_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
