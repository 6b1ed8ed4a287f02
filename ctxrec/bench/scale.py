"""``ctxrec bench scale``: seconds per epoch and peak memory of mini-batch training as the
synthetic world grows (1x, 4x, 16x users; the largest has about 10M interactions).

Each size runs in two fresh processes: one builds the graph (generate -> validate ->
RecGraph, saved to a temporary file), one loads it and trains the context GNN with
neighbour sampling (``TrainConfig.num_neighbors``) and sampled softmax, so each peak RSS
belongs to one phase. Training takes the trainer's own step (forward, loss, backward,
Adam) on shuffled batches: ``batches`` of them after ``warmup``, or a whole epoch with
``batches=0``. Seconds per epoch are the median seconds per batch times the batches in an
epoch, so a busy neighbour moment does not count in the figure. Cost per interaction,
relative to the smallest size in the same run, says whether training grows linearly.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Sequence

from ctxrec.bench.report import hash_world, split_facts, table, write_report

BASE_USERS = 6300  # x 20 sessions x 5 events ~ 630k interactions at 1x, just over 10M at 16x


def _world(factor: int, base_users: int):
    from ctxrec.datasets.synthetic import WorldConfig

    return WorldConfig(n_users=base_users * factor, n_items=1000, n_places=12, sessions_per_user=20,
                       items_per_session=5, days=365, images=False, audio=False)


def _rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # kB on Linux


def build_worker(factor: int, base_users: int, path: str) -> Dict[str, object]:
    """Build and save one size's graph; its figures, then (after them, so they do not count) under
    ``_data`` and ``_split`` the hash of the world and the split facts."""
    import time

    import torch

    from ctxrec.datasets.graphs import synthetic_graph

    t0 = time.perf_counter()
    world, graph = synthetic_graph(_world(factor, base_users))
    seconds = time.perf_counter() - t0
    torch.save(graph, path)
    out: Dict[str, object] = {"interactions": len(world.interactions), "train_events": len(graph.train),
                              "build_s": seconds, "build_peak_rss_gb": _rss_gb()}
    return {**out, "_data": hash_world(world), "_split": split_facts(graph)}


def train_worker(path: str, batch_size: int, fanout: Sequence[int], batches: int, warmup: int = 3) -> Dict[str, float]:
    import statistics
    import time

    import torch

    from ctxrec.training.models import make_model
    from ctxrec.training.sampling import NegativeSampler
    from ctxrec.training.trainer import TrainConfig, _Step

    graph = torch.load(path, weights_only=False)
    cfg = TrainConfig(epochs=1, batch_size=batch_size, num_neighbors=list(fanout), loss="softmax", num_negatives=16)
    torch.manual_seed(cfg.seed)
    model = make_model("context_gnn", features=(), train=cfg)
    model.prepare(graph)
    model.train()
    events = graph.train
    negatives = NegativeSampler(events.user, events.item, graph.num_items)
    step = _Step(model, cfg, negatives)
    sampled = []  # nodes and edges of each batch's sampled subgraph: the work a batch does
    sample = model.sampler.sample

    def counted(seeds):
        out = sample(seeds)
        sampled.append((sum(v.numel() for v in out.node.values()), sum(v.numel() for v in out.row.values())))
        return out

    model.sampler.sample = counted
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(len(events), generator=gen)
    per_epoch = (len(perm) + batch_size - 1) // batch_size
    todo = per_epoch if batches <= 0 else min(per_epoch, warmup + batches)
    seconds, losses = [], []
    for n in range(todo):
        t0 = time.perf_counter()
        b = perm[n * batch_size:(n + 1) * batch_size]
        neg = negatives.sample(events.user[b], cfg.num_negatives, generator=gen)
        loss = step(events.user[b], events.item[b], neg, events.time[b], events.place[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        seconds.append(time.perf_counter() - t0)
    timed = seconds[warmup:] if batches > 0 and len(seconds) > warmup else seconds
    med = statistics.median(timed)
    return {"batches_per_epoch": per_epoch, "batches_timed": len(timed), "s_per_batch": med,
            "s_per_batch_p90": sorted(timed)[int(0.9 * (len(timed) - 1))], "epoch_s": med * per_epoch,
            "measured_s": sum(seconds), "loss_first": losses[0], "loss_last": losses[-1],
            "sampled_nodes_per_batch": statistics.median(n for n, _ in sampled),
            "sampled_edges_per_batch": statistics.median(e for _, e in sampled),
            "train_peak_rss_gb": _rss_gb()}


def run_worker(module: str, args, timeout: float | None = None) -> Dict[str, object]:
    """``python -m module *args`` in a fresh process (so its peak RSS is its own); the JSON of its
    last stdout line. Raises RuntimeError with its stderr when it fails, and
    :class:`subprocess.TimeoutExpired` after ``timeout`` seconds."""
    proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} worker {args[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child(args) -> Dict[str, object]:
    return run_worker("ctxrec.bench.scale", args)


def run(factors: Sequence[int] = (1, 4, 16), base_users: int = BASE_USERS, batch_size: int = 8192,
        fanout: Sequence[int] = (10, 5), batches: int = 60, out_dir: str = "benchmarks") -> Dict[str, object]:
    """Build and train at each size; print the table; write ``benchmarks/scale.json``."""
    figures: Dict[str, object] = {}
    hashes: Dict[str, str] = {}
    splits: Dict[str, object] = {}
    rows = []
    with tempfile.TemporaryDirectory(prefix="ctxrec-scale-") as tmp:
        for f in factors:
            path = str(Path(tmp) / f"graph{f}.pt")
            built = _child(["build", f, base_users, path])
            hashes[f"{f}x"], splits[f"{f}x"] = built.pop("_data"), built.pop("_split")
            trained = _child(["train", path, batch_size, ",".join(map(str, fanout)), batches])
            Path(path).unlink()
            entry = {**built, **trained, "us_per_event": 1e6 * trained["epoch_s"] / built["train_events"]}
            figures[f"{f}x"] = entry
            print(f"{f}x: {entry}", flush=True)
    ref = figures[f"{factors[0]}x"]["us_per_event"]
    for key, e in figures.items():
        e["cost_per_event_vs_1x"] = e["us_per_event"] / ref
        rows.append({"size": key, "interactions": e["interactions"], "s_per_batch": e["s_per_batch"],
                     "edges_per_batch": e["sampled_edges_per_batch"],
                     "epoch_s": e["epoch_s"],
                     "us_per_event": e["us_per_event"], "vs_smallest": e["cost_per_event_vs_1x"],
                     "train_rss_gb": e["train_peak_rss_gb"], "build_s": e["build_s"],
                     "build_rss_gb": e["build_peak_rss_gb"]})
    print(table(rows, ["size", "interactions", "s_per_batch", "edges_per_batch", "epoch_s", "us_per_event", "vs_smallest", "train_rss_gb",
                       "build_s", "build_rss_gb"]))
    figures["_setup"] = {"factors": list(factors), "base_users": base_users, "items": 1000, "batch_size": batch_size,
                         "num_neighbors": list(fanout), "loss": "softmax, 16 sampled negatives",
                         "model": "context_gnn, hidden 64, 2 layers, no features",
                         "timing": (f"median of {batches} batches after 3 warm-up ones, x batches per epoch"
                                    if batches > 0 else "one whole epoch, median batch x batches")}
    path = write_report("scale", figures, out_dir,
                        command=f"ctxrec bench scale --factors {','.join(map(str, factors))} --base-users {base_users} "
                                f"--batch-size {batch_size} --batches {batches}",
                        data={"hash": hashes, "source": f"synthetic worlds of ctxrec.bench.scale._world(factor, "
                                                        f"{base_users}), hash per size"},
                        split=splits)
    print(f"\nwritten to {path}")
    return figures


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "build":
        print(json.dumps(build_worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])))
    elif kind == "train":
        print(json.dumps(train_worker(sys.argv[2], int(sys.argv[3]), [int(x) for x in sys.argv[4].split(",")],
                                      int(sys.argv[5]))))
