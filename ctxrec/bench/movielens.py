"""``ctxrec benchmark movielens``: every model on MovieLens-100K under one protocol.

The folder (the layout of ``shared/data/ml100k``) is loaded with
:func:`~ctxrec.datasets.movielens.load_movielens`, built into the graph, and its items get
text vectors (title + genres + plot, all-MiniLM-L6-v2) and poster vectors (an open_clip
image tower; random weights unless ``image_options`` point at real ones). For each seed
the graph is split by the protocol (:mod:`ctxrec.data.splits`); every model's
hyper-parameters are chosen on validation NDCG@20 from a small stated grid
(:data:`ctxrec.training.tuning.DEFAULT_GRIDS`), and only the chosen model sees test.

Reported per model (mean and std over seeds): Recall, NDCG, HitRate, Precision, F1,
MRR, MAP at 10 and 20; coverage, novelty and Gini at 20; recall gaps across age bands
and genders; exposure and recall by item popularity group; train seconds. An offline
A/B replay compares the context GNN with the best baseline on test queries (paired
bootstrap CI). Figures go to ``benchmarks/movielens_<protocol>.json``, plots next to it,
and the table into BENCHMARKS.md between markers.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ctxrec.bench.report import aggregate, table, write_report

MODELS = ("mostpop", "itemknn", "ease", "mf_bpr", "lightgcn", "content_knn", "context_gnn")
#: shown in the printed table and BENCHMARKS.md
COLUMNS = ("ndcg@20", "recall@20", "hit_rate@20", "precision@20", "map@20", "mrr@20", "ndcg@10", "recall@10",
           "coverage@20", "novelty@20", "gini@20")
#: split settings per protocol (the rest are SplitConfig's defaults): random is 80/10/10
SPLITS = {"temporal": {}, "random": {"test": 0.1, "val": 1 / 9}, "cold_items": {}, "context_shift": {}}
#: grid changes per protocol. Cold items: the context GNN may also drop item ID embeddings (a
#: cold item's ID vector never trains), chosen on the cold validation items; the ID-only models
#: cannot score an item without interactions whatever their settings, so they get one each
PROTOCOL_GRIDS = {"cold_items": {"context_gnn": {"item_ids": [True, False]}, "lightgcn": {"num_layers": [2]},
                                 "mf_bpr": {"train.lr": [0.005]}, "itemknn": {"k": [50]}, "ease": {"l2": [500.0]}}}
#: the poster encoder when no options are given: a small open_clip ViT with random weights
SMALL_CLIP = {
    "arch": "ctxrec-small-clip",
    "arch_config": {
        "embed_dim": 128,
        "vision_cfg": {"image_size": 96, "layers": 4, "width": 128, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 2},
    },
}


def prepare(data: str | Path, work_dir: str | Path = ".ctxrec/movielens", cache_dir: str | Path = ".ctxrec/cache",
            features: Sequence[str] = ("text", "image"), image_options: Optional[dict] = None):
    """Load, build and encode the folder once: ``(tables, vectors, users frame, facts)``."""
    import pandas as pd

    from ctxrec.datasets.movielens import load_movielens
    from ctxrec.graph.build import build_graph
    from ctxrec.modalities.features import encode_tables
    from ctxrec.modalities.registry import get_encoder

    t0 = time.perf_counter()
    ml = load_movielens(data)
    files = ml.write(work_dir)
    tables = build_graph(files["interactions"], files["items"], files["context"],
                         reject_path=Path(work_dir) / "rejects.csv").tables
    facts = {"ratings": len(ml.interactions), "users": len(ml.users), "items": len(ml.items),
             "load_rejects": len(ml.rejects), "build_s": time.perf_counter() - t0}
    vectors = {}
    for name in features:
        t1 = time.perf_counter()
        if name == "text":
            vectors.update(encode_tables(tables, "text", cache_dir=cache_dir))
        elif name == "image":
            enc = get_encoder("image", **(image_options or SMALL_CLIP))
            vectors.update(encode_tables(tables, enc, cache_dir=cache_dir, labels=["Item"], name="image"))
        else:
            raise ValueError(f"unknown feature {name!r}; MovieLens items have 'text' and 'image'")
        facts[f"encode_{name}_s"] = time.perf_counter() - t1
    users = pd.read_csv(files["users"], dtype=str)
    return tables, vectors, users, facts


def _model_kwargs(name: str, epochs: int, features: Sequence[str]) -> dict:
    """Fixed arguments per model (the grid varies the rest)."""
    if name in ("lightgcn", "mf_bpr", "context_gnn"):
        out: dict = {"train.epochs": epochs, "train.patience": 5}
        if name == "context_gnn":
            out["features"] = tuple(features)
        return out
    if name == "content_knn":
        return {"feature": "text"}
    return {}


def evaluate_model(model, graph, user_groups: Dict[str, np.ndarray], ks=(10, 20)) -> Dict[str, object]:
    """Test metrics, beyond-accuracy and group measures of a fitted model."""
    import torch

    from ctxrec.training import beyond
    from ctxrec.training.metrics import per_query_metrics

    queries, relevant = model.eval_queries("test")
    top = model.rank_queries("test", queries, max(ks))
    values, kept = per_query_metrics(top, relevant, ks)
    out: Dict[str, object] = {m: float(v.mean()) for m, v in values.items()}
    pop = beyond.item_popularity(graph.train.user, graph.train.item, graph.num_items)
    allowed = graph.candidates.get("test")
    if allowed is not None and len(allowed):  # coverage and Gini over the ranked catalogue only
        position = torch.full((graph.num_items,), -1, dtype=torch.long)
        position[allowed] = torch.arange(len(allowed))
        ranked = torch.where(top >= 0, position[top.clamp(min=0)], -1)
        out.update(beyond.beyond_accuracy(ranked, len(allowed), pop[allowed], graph.num_users, ks))
    else:
        out.update(beyond.beyond_accuracy(top, graph.num_items, pop, graph.num_users, ks))
    users = queries.user[kept]
    for key, labels in user_groups.items():
        report = beyond.group_report({"recall@20": values["recall@20"], "ndcg@20": values["ndcg@20"]},
                                     list(labels[users.numpy()]))
        out[f"groups_{key}"] = {"means": report.means, "gap_recall@20": report.gap["recall@20"]}
        out[f"recall@20_gap_{key}"] = report.gap["recall@20"]
    groups = beyond.popularity_groups(pop)
    out["exposure@20_by_popularity"] = beyond.exposure_by_group(top, groups, 20)
    out["recall@20_by_popularity"] = beyond.recall_by_item_group(top, relevant, groups, 20)
    out["_per_query_ndcg@20"] = values["ndcg@20"]
    out["_kept"] = kept
    return out


def run(data: str | Path, protocol: str = "temporal", seeds: Sequence[int] = (0, 1, 2),
        models: Sequence[str] = MODELS, epochs: int = 60, features: Sequence[str] = ("text", "image"),
        image_options: Optional[dict] = None, out_dir: str | Path = "benchmarks",
        cache_dir: str | Path = ".ctxrec/cache", markdown: Optional[str | Path] = "BENCHMARKS.md",
        grids: Optional[Dict[str, Dict[str, list]]] = None) -> Dict[str, object]:
    """Train and evaluate every model; print the table; write JSON, plots and BENCHMARKS.md rows."""
    from ctxrec.data import SplitConfig
    from ctxrec.graph.export import to_rec_graph
    from ctxrec.training.replay import replay_ab
    from ctxrec.training.tuning import DEFAULT_GRIDS, expand_params, tune

    grids = {**DEFAULT_GRIDS, **PROTOCOL_GRIDS.get(protocol, {}), **(grids or {})}
    unknown = [m for m in models if m not in grids and m not in ("mostpop",)]
    if unknown:
        raise ValueError(f"no tuning grid for {unknown}; known: {sorted(grids)}")
    tables, vectors, users, facts = prepare(data, cache_dir=cache_dir, features=features,
                                            image_options=image_options)
    print(f"MovieLens: {facts}", flush=True)
    runs: Dict[str, List[Dict[str, object]]] = {m: [] for m in models}
    ab: List[Dict[str, object]] = []
    split_info = {}
    for seed in seeds:
        graph = to_rec_graph(tables, vectors, SplitConfig(protocol=protocol, seed=seed, **SPLITS[protocol]))
        split_info = {"train": len(graph.train), "val": len(graph.val), "test": len(graph.test),
                      **{k: v for k, v in getattr(graph, "split_info", {}).items() if k != "config"}}
        by_user = users.set_index("user_id")
        user_groups = {g: by_user[g].reindex(graph.ids["user"]).fillna("unknown").to_numpy()
                       for g in ("age_band", "gender")}
        per_query = {}
        for name in models:
            t0 = time.perf_counter()
            fixed = _model_kwargs(name, epochs, features)
            if "train.epochs" in fixed:
                fixed["train.seed"] = seed
            model, params, results = tune(name, grids.get(name, {}), graph, metric="ndcg@20",
                                          base=expand_params(fixed))
            tune_s = time.perf_counter() - t0
            chosen = max(results, key=lambda r: r[1])
            res = evaluate_model(model, graph, user_groups)
            per_query[name] = (res.pop("_per_query_ndcg@20"), res.pop("_kept"))
            res.update({"train_s": chosen[2], "tune_s": tune_s, "val_ndcg@20": chosen[1],
                        "params": params, "grid_size": len(results)})
            runs[name].append(res)
            print(f"[{protocol} seed {seed}] {name}: test ndcg@20 {res['ndcg@20']:.4f} recall@20 {res['recall@20']:.4f} "
                  f"val {chosen[1]:.4f} params {res['params']} ({tune_s:.0f} s)", flush=True)
        if "context_gnn" in per_query:
            baselines = [m for m in models if m != "context_gnn"]
            if baselines:
                best = max(baselines, key=lambda m: runs[m][-1]["val_ndcg@20"])  # chosen on validation
                a, b = per_query[best][0], per_query["context_gnn"][0]
                result = replay_ab(a, b, metric="ndcg@20", seed=seed)
                ab.append({"seed": seed, "baseline": best, "model": "context_gnn", **_ab_dict(result)})
                print(f"A/B replay, {best} -> context_gnn: {result}", flush=True)
    figures = aggregate(runs)
    figures["_ab_replay"] = ab
    figures["_setup"] = {"protocol": protocol, "seeds": list(seeds), "epochs_max": epochs, "patience": 5,
                         "features": list(features), "image_encoder": image_options or SMALL_CLIP,
                         "selection": "grid per model chosen on validation NDCG@20; test only for the chosen one",
                         "grids": {m: grids.get(m, {}) for m in models}, "data": facts, "split": split_info}
    rows = [{"model": m, **{c: figures[m][c] for c in COLUMNS}, "±ndcg@20": figures[m]["ndcg@20_std"],
             "train_s": figures[m]["train_s"]} for m in models]
    cols = ["model", "ndcg@20", "±ndcg@20", *COLUMNS[1:], "train_s"]
    print(table(rows, cols))
    command = (f"ctxrec benchmark movielens --data {data} --protocol {protocol} --seeds {','.join(map(str, seeds))}"
               f" --epochs {epochs}")
    path = write_report(f"movielens_{protocol}", figures, out_dir, command=command)
    plots = _plots(figures, models, protocol, Path(out_dir))
    if markdown:
        write_markdown(Path(markdown), protocol, figures, models, command, plots)
    print(f"\nwritten to {path}")
    return figures


def sweep(data: str | Path, configs: Sequence[Dict[str, object]], protocol: str = "temporal",
          model: str = "context_gnn", seed: int = 0, epochs: int = 60, features: Sequence[str] = ("text", "image"),
          image_options: Optional[dict] = None, out_dir: str | Path = "benchmarks",
          cache_dir: str | Path = ".ctxrec/cache") -> List[Dict[str, object]]:
    """Validation NDCG@20 of one model under each of ``configs`` (changes to its benchmark
    settings, in :func:`~ctxrec.training.tuning.expand_params` form); test is never scored.

    For trying settings before adding them to a grid. Prints a line per configuration and
    writes ``benchmarks/movielens_<protocol>_sweep_<model>.json``, adding to the rows an earlier
    sweep with the same seed, epochs and features wrote there.
    """
    from ctxrec.data import SplitConfig
    from ctxrec.graph.export import to_rec_graph
    from ctxrec.training.tuning import expand_params, tune

    tables, vectors, _, _ = prepare(data, cache_dir=cache_dir, features=features, image_options=image_options)
    graph = to_rec_graph(tables, vectors, SplitConfig(protocol=protocol, seed=seed, **SPLITS[protocol]))
    rows: List[Dict[str, object]] = []
    for config in configs:
        fixed = {**_model_kwargs(model, epochs, features), **dict(config)}
        if "train.epochs" in fixed:
            fixed["train.seed"] = seed
        fitted, _, trials = tune(model, {}, graph, metric="ndcg@20", base=expand_params(fixed))
        history = getattr(fitted, "history", None)
        rows.append({"config": dict(config), "val_ndcg@20": trials[0].val, "train_s": trials[0].seconds,
                     "best_epoch": getattr(history, "best_epoch", None)})
        print(f"[{protocol} seed {seed}] {model} {dict(config) or 'defaults'}: val ndcg@20 {trials[0].val:.4f} "
              f"(best epoch {rows[-1]['best_epoch']}, {trials[0].seconds:.0f} s)", flush=True)
    command = (f"ctxrec benchmark sweep --data {data} --protocol {protocol} --model {model} --seed {seed} "
               f"--epochs {epochs} --configs '{json.dumps(list(configs))}'")
    setup = {"seed": seed, "epochs_max": epochs, "features": list(features),
             "image_encoder": image_options or SMALL_CLIP}
    name = f"movielens_{protocol}_sweep_{model}"
    rows, commands = _merge_sweep(Path(out_dir) / f"{name}.json", setup, rows, command)
    write_report(name, {"rows": rows, "_setup": setup, "_commands": commands}, out_dir, command=command)
    return rows


def _merge_sweep(path: Path, setup: dict, rows: List[Dict[str, object]], command: str):
    """Rows of an earlier sweep with the same setup stay (a setting run again is replaced), so
    sweeps run one after another build one record; their commands are kept in order."""
    if not path.is_file():
        return rows, [command]
    old = json.loads(path.read_text())
    if old.get("_setup") != setup:
        return rows, [command]
    key = lambda r: json.dumps(r["config"], sort_keys=True)  # noqa: E731
    new = {key(r) for r in rows}
    return [r for r in old["rows"] if key(r) not in new] + rows, [*old.get("_commands", []), command]


def _ab_dict(result) -> Dict[str, float]:
    out = {k: getattr(result, k) for k in ("diff", "ci_low", "ci_high", "n", "p_value")}
    return {"baseline_mean": result.a, "model_mean": result.b, **out}


def _plots(figures, models, protocol: str, out_dir: Path) -> List[str]:
    from ctxrec.viz import plot_group_bars, plot_metric_bars

    bars = out_dir / f"movielens_{protocol}_metrics.png"
    plot_metric_bars({m: {k: (figures[m][k], figures[m][f"{k}_std"]) for k in ("ndcg@20", "recall@20")}
                      for m in models}, f"MovieLens-100K, protocol {protocol} (test, mean ± std over seeds)", bars)
    pop = out_dir / f"movielens_{protocol}_popularity.png"
    plot_group_bars({m: figures[m]["recall@20_by_popularity"] for m in models},
                    f"Recall@20 by item popularity group ({protocol})", pop)
    return [bars.name, pop.name]


def write_markdown(path: Path, protocol: str, figures, models, command: str, plots: List[str]) -> None:
    """Replace (or append) this protocol's section of BENCHMARKS.md."""
    begin, end = f"<!-- movielens:{protocol}:begin -->", f"<!-- movielens:{protocol}:end -->"
    head = "| model | " + " | ".join(COLUMNS) + " | recall@20 gap age / gender | train s |"
    lines = [begin, f"Command: `{command}` ({time.strftime('%Y-%m-%d')}); "
             f"figures in `benchmarks/movielens_{protocol}.json`, plots {', '.join(f'`benchmarks/{p}`' for p in plots)}.",
             "", head, "|" + "---|" * (len(COLUMNS) + 3)]
    for m in models:
        f = figures[m]
        cells = [f"{f['ndcg@20']:.4f} ± {f['ndcg@20_std']:.4f}"] + [f"{f[c]:.4f}" for c in COLUMNS[1:]]
        gaps = f"{f.get('recall@20_gap_age_band', float('nan')):.3f} / {f.get('recall@20_gap_gender', float('nan')):.3f}"
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {gaps} | {f['train_s']:.1f} |")
    for r in figures.get("_ab_replay", []):
        lines.append(f"\nA/B replay, seed {r['seed']}, test NDCG@20 per query: context_gnn − {r['baseline']} = "
                     f"{r['diff']:+.4f}, 95% CI [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}], p = {r['p_value']:.3g}, "
                     f"n = {r['n']}")
    lines.append(end)
    block = "\n".join(lines)
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + f"\n\n## `ctxrec benchmark movielens --protocol {protocol}`\n\n" + block + "\n"
    path.write_text(text)

