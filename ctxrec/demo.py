"""The end-to-end demo behind ``make demo`` / ``ctxrec demo``: synthetic world ->
embedded store -> text features -> PyG export -> training -> evaluation ->
recommendations for one user in two contexts."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ctxrec.graph import context as ctx


@dataclass
class DemoConfig:
    """Settings of the demo.

    Args:
        out: output folder (default: ``runs/demo``).
        size: synthetic world size, a key of ``SIZES`` (default: "small").
        seed: world and training seed (default: 0).
        epochs: maximum training epochs per model (default: 100).
        models: models to train (default: mostpop, lightgcn, context_gnn, item_graph); the
            last one gives the demo's recommendations (the default graph model, ItemGraph, with
            its settings chosen from its default grid on validation).
        modalities: item features to encode and give the context GNN (default: text, audio, which
            scored best on validation); ``"image"`` encodes the pictures with
            :func:`~ctxrec.modalities.image.default_image_encoder`: the pretrained ImageNet CNN
            (``imagenet``), since no CLIP weights ship.
        progress: progress bars (default: True).
    """

    out: Path = Path("runs/demo")
    size: str = "small"
    seed: int = 0
    epochs: int = 100
    models: Sequence[str] = ("mostpop", "lightgcn", "context_gnn", "item_graph")
    modalities: Sequence[str] = ("text", "audio")
    progress: bool = True


def run_demo(config: DemoConfig | None = None, echo=print) -> Dict[str, object]:
    """Run the whole pipeline; write ``metrics.json`` and ``recommendations.json`` to ``config.out``.

    Returns:
        ``{"metrics": {model: {metric: value}}, "recommendations": {context: [item ids]}, "out": path}``
    """
    from ctxrec.datasets.synthetic import SIZES, generate_world
    from ctxrec.graph.export import export_pyg
    from ctxrec.graph.ingest import ingest
    from ctxrec.graph.stores import open_store
    from ctxrec.modalities.features import encode_store
    from ctxrec.training.models import make_model
    from ctxrec.training.models.oracle import Oracle
    from ctxrec.training.evaluation import evaluate
    from ctxrec.training.trainer import TrainConfig
    from ctxrec.training.tuning import DEFAULT_GRIDS, tune

    cfg = config or DemoConfig()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: Dict[str, float] = {}
    t0 = time.perf_counter()
    world = generate_world(replace(SIZES[cfg.size], seed=cfg.seed))
    files = world.write(out / "world")
    timings["synth"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with open_store("embedded", out / "graph.db") as store:
        res = ingest(store, files["interactions"], files["items"], files["context"], reject_path=out / "rejects.csv")
        timings["ingest"] = time.perf_counter() - t0
        echo(f"ingested {res.summary['rows_loaded']} rows ({res.summary['rows_rejected']} rejected): "
             f"{store.count_nodes('User')} users, {store.count_nodes('Item')} items, "
             f"{store.count_nodes('Session')} sessions, {store.count_edges('INTERACTED')} user-item pairs")
        t0 = time.perf_counter()
        for modality in cfg.modalities:
            encoder = modality
            if modality == "image":  # open_clip only with weights; none here: the pretrained ImageNet CNN
                from ctxrec.modalities.image import default_image_encoder

                encoder = default_image_encoder()
            enc = encode_store(store, encoder, cache_dir=out / "cache", progress=cfg.progress)
            echo(f"encoded {modality}: {enc.get('encoded', 0)} new, {enc.get('cached', 0)} from cache, "
                 f"{enc['masked']} without input")
        timings["encode"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        graph = export_pyg(store)
        timings["export"] = time.perf_counter() - t0

    train = TrainConfig(epochs=cfg.epochs, seed=cfg.seed, progress=cfg.progress)
    models = {}
    metrics: Dict[str, Dict[str, float]] = {}
    for name in cfg.models:
        t0 = time.perf_counter()
        extra = {"features": tuple(cfg.modalities)} if name in ("context_gnn", "item_graph") else {}
        if name == "item_graph":  # closed form (+ a small residual): settings chosen on validation
            model, params, _ = tune(name, DEFAULT_GRIDS[name], graph, base={**extra, "seed": cfg.seed},
                                    protocol="per_context")
            echo(f"{model.name}: chose {params} on validation")
        else:
            model = make_model(name) if name == "mostpop" else make_model(name, train=train, **extra)
            model.fit(graph.without_test())
        # per (user, time slot, place): the demo's world makes the choice depend on the context
        metrics[model.name] = {**evaluate(model, graph, "test", protocol="per_context"),
                               "train_s": time.perf_counter() - t0}
        models[model.name] = model
    oracle = Oracle(world.preference, world.item_ids).fit(graph.without_test())
    metrics["Oracle (ground truth)"] = evaluate(oracle, graph, "test", protocol="per_context")

    echo("")
    echo(format_table(metrics, ["ndcg@20", "recall@20", "hit_rate@20", "precision@10", "mrr@20", "train_s"]))
    best = next(reversed(models.values()))
    user, contexts = _demo_contexts(world, graph)
    recs: Dict[str, List[str]] = {}
    for when, where in contexts:
        key = f"user={user} time={ctx.parse_when(when)} place={ctx.normalize_place(where)}"
        ranked = best.recommend_ids(user, 10, time=when, place=where)
        recs[key] = [i for i, _ in ranked]
        info = world.items.set_index("item_id")
        echo(f"\n{best.name} top-10 for {user} on {when} in {where}:")
        for rank, (item, score) in enumerate(ranked, 1):
            row = info.loc[item]
            echo(f"  {rank:2d}. {item}  {row['name']:<28s} {row['mood']:<7s} {row['tempo']:<7s} {score:8.3f}")
    lists = list(recs.values())
    echo(f"\nthe two lists share {len(set(lists[0]) & set(lists[1]))} of 10 items")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "recommendations.json").write_text(json.dumps(recs, indent=2))
    (out / "timings.json").write_text(json.dumps(timings, indent=2))
    echo(f"\noutput folder: {out.resolve()}")
    return {"metrics": metrics, "recommendations": recs, "out": out.resolve(), "graph": graph, "models": models}


def _demo_contexts(world, graph) -> Tuple[str, List[Tuple[str, str]]]:
    """The most active user, on a weekday morning at home vs a Saturday night away."""
    counts = np.bincount(graph.train.user.numpy(), minlength=graph.num_users)
    user = str(graph.ids["user"][int(counts.argmax())])
    home = world.users.set_index("user_id").loc[user, "home"]
    away = next(p for p in world.places if p != home)
    return user, [("mon 08:00", ctx.display_place(home)), ("sat 21:00", ctx.display_place(away))]


def format_table(metrics: Dict[str, Dict[str, float]], columns: Sequence[str]) -> str:
    """A plain-text table: one row per model, one column per metric."""
    width = max(len(m) for m in metrics) + 2
    head = "model".ljust(width) + "".join(c.rjust(13) for c in columns)
    lines = [head, "-" * len(head)]
    for model, vals in metrics.items():
        cells = "".join((f"{vals[c]:13.4f}" if c in vals else " " * 12 + "-") for c in columns)
        lines.append(model.ljust(width) + cells)
    return "\n".join(lines)
