"""``ctxrec bench train``: seconds per training epoch of LightGCN and the context GNN on
the synthetic world, with OpenMP threads that spin (``OMP_WAIT_POLICY=ACTIVE``) or sleep
(``PASSIVE``), on an idle machine and with one competing busy process.

Each condition runs in a fresh subprocess (the policy must be set before torch loads);
every figure is the median over repeats, and ratios are against ACTIVE on the idle
machine measured in the same run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Dict

from ctxrec.bench.report import hash_world, median, split_facts, table, write_report

MODELS = ("lightgcn", "context_gnn")


def worker(size: str, epochs: int, repeats: int) -> Dict[str, object]:
    """In-process part: seconds per epoch for each model, ``repeats`` times, and the world's hash
    and split facts under ``_data`` and ``_split``."""
    import torch

    from ctxrec.datasets.graphs import synthetic_graph
    from ctxrec.training.models import make_model
    from ctxrec.training.trainer import TrainConfig

    world, graph = synthetic_graph(size)
    out: Dict[str, object] = {"_data": hash_world(world), "_split": split_facts(graph)}
    for name in MODELS:
        times = []
        for rep in range(repeats):
            cfg = TrainConfig(epochs=epochs, patience=epochs + 1, seed=rep)
            model = make_model(name, train=cfg)
            model.fit(graph)
            times.append(model.history.seconds / len(model.history.loss))
        out[name] = times
    out["_threads"] = [float(torch.get_num_threads())]
    return out


def _busy() -> subprocess.Popen:
    """A competing process that keeps one core busy until killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def run(size: str = "small", epochs: int = 5, repeats: int = 3, out_dir: str = "benchmarks") -> Dict[str, object]:
    """Run every condition and write ``benchmarks/train.json``."""
    results: Dict[str, Dict[str, float]] = {}
    provenance: Dict[str, object] = {}
    rows = []
    for load in ("idle", "busy"):
        for policy in ("ACTIVE", "PASSIVE"):
            env = {**os.environ, "OMP_WAIT_POLICY": policy}
            hog = _busy() if load == "busy" else None
            try:
                time.sleep(0.5 if hog else 0)
                proc = subprocess.run(
                    [sys.executable, "-m", "ctxrec.bench.train", "--worker", size, str(epochs), str(repeats)],
                    env=env, capture_output=True, text=True, check=True)
            finally:
                if hog is not None:
                    hog.kill()
                    hog.wait()
            measured = json.loads(proc.stdout.strip().splitlines()[-1])
            if provenance.setdefault("data", measured["_data"]) != measured["_data"]:
                raise RuntimeError(f"bench train: condition {load}/{policy} trained on other data "
                                   f"({measured['_data']} != {provenance['data']}); synthetic_graph({size!r}) "
                                   "is meant to be the same in every process")
            provenance.setdefault("split", measured["_split"])
            key = f"{load}/{policy}"
            results[key] = {m: median(measured[m]) for m in MODELS}
    ref = results["idle/ACTIVE"]
    for key, vals in results.items():
        for m in MODELS:
            rows.append({"condition": key, "model": m, "s_per_epoch": vals[m], "vs_idle_active": vals[m] / ref[m]})
    print(table(rows, ["condition", "model", "s_per_epoch", "vs_idle_active"]))
    figures = {k: {m: {"s_per_epoch": v[m], "vs_idle_active": v[m] / ref[m]} for m in MODELS}
               for k, v in results.items()}
    figures["_setup"] = {"size": size, "epochs": epochs, "repeats": repeats}
    path = write_report("train", figures, out_dir,
                        command=f"ctxrec bench train --size {size} --epochs {epochs} --repeats {repeats}",
                        data={"hash": provenance["data"], "source": f"synthetic world {size!r} (ctxrec.datasets.SIZES)"},
                        split=provenance["split"])
    print(f"\nwritten to {path}")
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
