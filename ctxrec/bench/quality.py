"""``ctxrec benchmark``: every model on one dataset under one split, the honest way.

For each seed the tables are split (:mod:`ctxrec.data.splits`, or the user's files) and, per
model:

1. **select** — every point of a small stated grid (:data:`ctxrec.training.tuning.DEFAULT_GRIDS`,
   changed per split protocol by :data:`PROTOCOL_GRIDS`) is fitted on the split without its
   test pairs (``RecGraph.without_test()``) and scored on validation NDCG@20 under the
   ``per_user`` protocol; trained models also stop early on it, which fixes their epoch count;
2. **refit** — the chosen setting is fitted again on train+validation
   (``SplitConfig(refit=True)``: the validation pairs join training and message passing), for
   the chosen number of epochs, without early stopping (``refit=False`` keeps the selected
   model; the table's ``refit`` column says which);
3. **test** — the refit model is evaluated once on test under both protocols of
   :mod:`ctxrec.training.evaluation`, ``per_user`` (the standard one) and ``per_context``.

Rows: ``content_knn`` is reported once per item feature and per centring (raw, mean-centred,
whitened: ``content_knn_text``, ``content_knn_text_mean``, ...); every other model once.
Figures (mean and std over seeds) go to ``<out>/<name>.json`` under ``per_user`` and
``per_context``, then per model, with the data's hash and the split in ``_meta``; two plots
beside it (``<name>_metrics.png``, ``<name>_popularity.png``); the table goes into a Markdown
file between markers. Nothing here knows a dataset: the MovieLens
command (:mod:`ctxrec.bench.movielens`) and the store command both call :func:`run`.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ctxrec.bench.report import aggregate, hash_tables, split_facts, table, write_report

#: models of the benchmark, in table order (``content_knn`` expands to one row per feature and centring)
MODELS = ("mostpop", "itemknn", "ease", "implicit_als", "implicit_bpr", "mf_bpr", "lightgcn", "content_knn",
          "context_gnn", "item_graph")
#: the project's graph models: each is compared, query by query, with EASE and with the best
#: other model on validation (paired bootstrap on test, per seed and protocol)
GRAPH_MODELS = ("item_graph", "context_gnn")
#: the protocols every model is tested under
EVAL_PROTOCOLS = ("per_user", "per_context")
#: validation protocol of model selection (and of early stopping)
SELECT_PROTOCOL = "per_user"
#: ContentKNN item-vector transforms reported side by side
CENTERS = ("none", "mean", "whiten")
#: split settings per protocol (the rest are SplitConfig's defaults): random is 80/10/10
SPLITS = {"temporal": {}, "random": {"test": 0.1, "val": 1 / 9}, "cold_items": {}, "context_shift": {}, "files": {}}
#: grid changes per protocol. Cold items: the context GNN may also drop item ID embeddings (a
#: cold item's ID vector never trains), chosen on the cold validation items; the ID-only models
#: cannot score an item without interactions whatever their settings, so they get one each
PROTOCOL_GRIDS = {"cold_items": {"context_gnn": {"item_ids": [True, False]}, "lightgcn": {"num_layers": [2]},
                                 "mf_bpr": {"train.lr": [0.005]}, "itemknn": {"k": [50]}, "ease": {"l2": [500.0]},
                                 "implicit_als": {"factors": [64]}, "implicit_bpr": {"factors": [64]}}}
#: shown in the printed table and the Markdown
COLUMNS = ("ndcg@20", "recall@20", "hit_rate@20", "precision@20", "map@20", "mrr@20", "ndcg@10", "recall@10",
           "coverage@20", "novelty@20", "gini@20")


@dataclasses.dataclass
class Row:
    """One row of the table: a label, the model it builds, fixed arguments and the grid searched."""

    label: str
    model: str
    fixed: Dict[str, object]
    grid: Dict[str, list]


def rows_for(models: Sequence[str], features: Sequence[str], epochs: int, protocol: str,
             grids: Optional[Dict[str, Dict[str, list]]] = None) -> List[Row]:
    """The table's rows for ``models``: grids from the defaults, the protocol and ``grids``.

    Raises:
        ValueError: a model without a grid (the message lists the known ones).
    """
    from ctxrec.training.tuning import DEFAULT_GRIDS

    merged = {**DEFAULT_GRIDS, **PROTOCOL_GRIDS.get(protocol, {}), **(grids or {})}
    unknown = [m for m in models if m not in merged]
    if unknown:
        raise ValueError(f"no tuning grid for {unknown}; known models: {sorted(merged)}")
    out: List[Row] = []
    for name in models:
        if name == "content_knn":
            for feature in features:
                for center in CENTERS:
                    label = f"content_knn_{feature}" + ("" if center == "none" else f"_{center}")
                    out.append(Row(label, name, {"feature": feature, "center": center}, {}))
            continue
        fixed: Dict[str, object] = {}
        if name in ("lightgcn", "mf_bpr", "context_gnn"):
            fixed = {"train.epochs": epochs, "train.patience": 5, "train.val_protocol": SELECT_PROTOCOL}
            if name == "context_gnn":
                fixed["features"] = tuple(features)
        grid = dict(merged[name])
        if name == "item_graph" and "features" not in grid and features:
            # the modality graph over every feature, or over the first alone, chosen on validation
            grid["features"] = [list(features)] + ([[features[0]]] if len(features) > 1 else [])
        out.append(Row(name, name, fixed, grid))
    return out


def evaluate_model(model, graph, protocol: str, user_groups: Optional[Dict[str, np.ndarray]] = None,
                   ks=(10, 20)) -> Dict[str, object]:
    """Test metrics, beyond-accuracy and group measures of a fitted model under ``protocol``."""
    import torch

    from ctxrec.training import beyond
    from ctxrec.training.evaluation import eval_queries, rank_queries
    from ctxrec.training.metrics import per_query_metrics

    queries, relevant = eval_queries(graph, "test", protocol)
    top = rank_queries(model, graph, "test", queries, max(ks))
    values, kept = per_query_metrics(top, relevant, ks)
    out: Dict[str, object] = {m: float(v.mean()) for m, v in values.items()}
    out["queries"] = int(kept.numel())
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
    for key, labels in (user_groups or {}).items():
        report = beyond.group_report({"recall@20": values["recall@20"], "ndcg@20": values["ndcg@20"]},
                                     list(labels[users.numpy()]))
        out[f"groups_{key}"] = {"means": report.means, "gap_recall@20": report.gap["recall@20"]}
        out[f"recall@20_gap_{key}"] = report.gap["recall@20"]
    groups = beyond.popularity_groups(pop)
    out["exposure@20_by_popularity"] = beyond.exposure_by_group(top, groups, 20)
    out["recall@20_by_popularity"] = beyond.recall_by_item_group(top, relevant, groups, 20)
    out["_per_query_ndcg@20"] = values["ndcg@20"]
    return out


def run(tables, vectors, name: str, split, seeds: Sequence[int] = (0, 1, 2), models: Sequence[str] = MODELS,
        epochs: int = 60, features: Optional[Sequence[str]] = None, out_dir: str | Path = "benchmarks",
        markdown: Optional[str | Path] = "BENCHMARKS.md", grids: Optional[Dict[str, Dict[str, list]]] = None,
        user_groups: Optional[Dict[str, Dict[str, str]]] = None, command: str = "", source: str = "",
        facts: Optional[dict] = None,
        refit: bool = True, write_splits: Optional[str | Path] = None,
        rows: Optional[Sequence[Row]] = None, jobs: int = 1) -> Dict[str, object]:
    """Select, refit and test every model; print the tables; write JSON and Markdown.

    Args:
        tables (GraphTables): the dataset's graph tables.
        vectors: node vectors, ``(label, name) -> (ids, [N, d])`` (see :mod:`ctxrec.graph.export`).
        name: the benchmark's name: ``<out_dir>/<name>.json`` and the Markdown section's key.
        split (SplitConfig): the split; its ``seed`` is replaced by each of ``seeds``.
        seeds: split and training seeds (default: ``(0, 1, 2)``).
        models: model names (default: :data:`MODELS`).
        epochs: most epochs of trained models while selecting (default: 60).
        features: item vectors for ``content_knn`` rows and the context GNN (default: every
            item vector in ``vectors``).
        out_dir: folder of the JSON file (default: "benchmarks").
        markdown: file whose section is rewritten; ``None`` or ``""`` for none (default: "BENCHMARKS.md").
        grids: grid changes per model name (default: none).
        user_groups: ``{group name: {user id: label}}`` for recall gaps; users not in it are
            ``"unknown"`` (default: none).
        command: the command line that reproduces the run, recorded in the JSON and Markdown.
        source: a description of the data, recorded beside its hash.
        facts: more facts about the data, recorded in ``_setup`` (default: none).
        refit: refit on train+val after selection (default: True).
        write_splits: also write each seed's split as files to ``<write_splits>/seed<k>``
            (:func:`~ctxrec.data.write_split_dir`), to rerun it with ``split_dir`` or give it
            to another library (default: None).
        rows: the table's rows, instead of those of ``models`` (e.g.
            :func:`ctxrec.bench.ablation.ablation_rows`) (default: None).
        jobs: seeds run at once, each in its own process (default: 1). The figures are the
            same as one after the other; seconds then carry the shared cores.
    """
    if features is None:
        features = sorted({n for (label, n) in vectors if label == "Item"})
    rows = list(rows) if rows is not None else rows_for(models, features, epochs, split.protocol, grids)
    data = {"hash": hash_tables(tables), "source": source}
    runs: Dict[str, Dict[str, List[Dict[str, object]]]] = {p: {r.label: [] for r in rows} for p in EVAL_PROTOCOLS}
    ab: List[Dict[str, object]] = []
    facts_split: Dict[str, object] = {}
    args = [(tables, vectors, name, dataclasses.replace(split, seed=seed), rows, refit, write_splits, user_groups)
            for seed in seeds]
    if jobs > 1 and len(seeds) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: a forked child of a process that ran torch may hang in OpenMP
        with ProcessPoolExecutor(min(jobs, len(seeds)), mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_run_seed, args))
    else:
        results = [_run_seed(a) for a in args]
    for seed_runs, seed_ab, seed_facts in results:  # in seed order, whatever finished first
        for protocol in EVAL_PROTOCOLS:
            for label, res in seed_runs[protocol].items():
                runs[protocol][label].append(res)
        ab += seed_ab
        facts_split = seed_facts
    figures: Dict[str, object] = {p: aggregate(runs[p]) for p in EVAL_PROTOCOLS}
    figures["_ab_replay"] = ab
    figures["_setup"] = {
        "name": name, "protocol": split.protocol, "split": dataclasses.asdict(split), "seeds": list(seeds),
        "epochs_max": epochs, "patience": 5, "features": list(features), "refit": refit,
        "selection": f"grid per model chosen on validation NDCG@20 ({SELECT_PROTOCOL}), then refit on train+val "
                     "with the chosen epochs; test scored once per protocol",
        "grids": {r.label: r.grid for r in rows}, "data": facts or {}}
    for protocol in EVAL_PROTOCOLS:
        print(f"\n{name}, test under {protocol}:")
        print(table([_table_row(r.label, figures[protocol][r.label]) for r in rows],
                    ["model", "ndcg@20", "±ndcg@20", *COLUMNS[1:8], "train_s"]))
    path = write_report(name, figures, out_dir, command=command, data=data, split=facts_split)
    _plots(figures, [r.label for r in rows], name, Path(out_dir))
    if markdown:
        write_markdown(Path(markdown), name, figures, [r.label for r in rows], command, data["hash"])
    print(f"\nwritten to {path}")
    return figures


def _run_seed(args) -> tuple:
    """One seed of :func:`run`: split, then select, refit and test every row. Returns
    ``(runs, ab, split facts)``, ``runs[protocol][label]`` this seed's figures."""
    from ctxrec.data import write_split_dir
    from ctxrec.graph.export import to_rec_graph
    from ctxrec.training.models import make_model
    from ctxrec.training.replay import replay_ab
    from ctxrec.training.tuning import expand_params, refit_params, tune

    tables, vectors, name, chosen, rows, refit, write_splits, user_groups = args
    seed = chosen.seed
    graph = to_rec_graph(tables, vectors, chosen)
    if not len(graph.val):
        raise ValueError(f"the split ({chosen.protocol}) has no validation pairs to choose settings on: give a "
                         "non-empty val file, leave the val file out (10% of the train pairs then validate), "
                         "or use a protocol with val > 0")
    if write_splits:
        write_split_dir(graph, Path(write_splits) / f"seed{seed}")
    test_graph = to_rec_graph(tables, vectors, dataclasses.replace(chosen, refit=True)) if refit else graph
    users = graph.ids["user"]
    groups = {g: np.array([labels.get(str(u), "unknown") for u in users], dtype=object)
              for g, labels in (user_groups or {}).items()} or None
    runs: Dict[str, Dict[str, Dict[str, object]]] = {p: {} for p in EVAL_PROTOCOLS}
    per_query: Dict[str, Dict[str, object]] = {p: {} for p in EVAL_PROTOCOLS}
    for row in rows:
        fixed = dict(row.fixed)
        if "train.epochs" in fixed:
            fixed["train.seed"] = seed
        base = expand_params(fixed)
        t0 = time.perf_counter()
        model, params, trials = tune(row.model, row.grid, graph, metric="ndcg@20", base=base,
                                     protocol=SELECT_PROTOCOL)
        tune_s = time.perf_counter() - t0
        best = max(trials, key=lambda t: t.val)
        fit_s = best.seconds
        if refit:
            model = make_model(row.model, **refit_params(model, params, base))
            t1 = time.perf_counter()
            model.fit(test_graph.without_test())
            fit_s = time.perf_counter() - t1
        history = getattr(model, "history", None)
        for protocol in EVAL_PROTOCOLS:
            res = evaluate_model(model, test_graph, protocol, groups)
            per_query[protocol][row.label] = res.pop("_per_query_ndcg@20")
            res.update({"train_s": fit_s, "tune_s": tune_s, "val_ndcg@20": best.val, "params": params,
                        "grid_size": len(trials), "refit": refit,
                        "epochs": None if history is None else len(history.loss)})
            runs[protocol][row.label] = res
        print(f"[{name} seed {seed}] {row.label}: test ndcg@20 per_user {runs['per_user'][row.label]['ndcg@20']:.4f}"
              f" per_context {runs['per_context'][row.label]['ndcg@20']:.4f}; val {best.val:.4f} "
              f"params {params}{' refit' if refit else ''} ({tune_s + (fit_s if refit else 0):.0f} s)",
              flush=True)
        del model
    ab = _replay(rows, runs, per_query, seed, replay_ab)
    return runs, ab, split_facts(test_graph)


def _replay(rows: List[Row], runs, per_query, seed: int, replay_ab) -> List[Dict[str, object]]:
    """Paired bootstrap of each graph model against EASE and against the best other model
    chosen on validation, per protocol."""
    labels = [r.label for r in rows]
    out = []
    others = [r.label for r in rows if r.model not in GRAPH_MODELS]
    if not others:
        return out
    best = max(others, key=lambda m: runs["per_user"][m]["val_ndcg@20"])  # chosen on validation
    for model in (m for m in GRAPH_MODELS if m in labels):
        for baseline in dict.fromkeys(b for b in ("ease", best) if b in labels):
            for protocol in EVAL_PROTOCOLS:
                result = replay_ab(per_query[protocol][baseline], per_query[protocol][model], metric="ndcg@20",
                                   seed=seed)
                out.append({"seed": seed, "protocol": protocol, "baseline": baseline, "model": model,
                            "baseline_mean": result.a, "model_mean": result.b,
                            **{k: getattr(result, k) for k in ("diff", "ci_low", "ci_high", "n", "p_value")}})
                print(f"A/B replay ({protocol}), {baseline} -> {model}: {result}", flush=True)
    return out


def _plots(figures, labels: Sequence[str], name: str, out_dir: Path) -> None:
    """``<name>_metrics.png`` (NDCG@20 and Recall@20 per protocol, mean ± std over seeds) and
    ``<name>_popularity.png`` (per_user Recall@20 by item popularity group)."""
    from ctxrec.viz import plot_group_bars, plot_metric_bars

    bars = {m: {f"{k} {p}": (figures[p][m][k], figures[p][m][f"{k}_std"]) for p in EVAL_PROTOCOLS
                for k in ("ndcg@20", "recall@20")} for m in labels}
    plot_metric_bars(bars, f"{name} (test, mean ± std over seeds)", out_dir / f"{name}_metrics.png")
    plot_group_bars({m: figures["per_user"][m]["recall@20_by_popularity"] for m in labels},
                    f"Recall@20 by item popularity group, per_user ({name})", out_dir / f"{name}_popularity.png")


def _table_row(label: str, f: Dict[str, object]) -> Dict[str, object]:
    return {"model": label, **{c: f[c] for c in COLUMNS}, "±ndcg@20": f["ndcg@20_std"], "train_s": f["train_s"]}


def write_markdown(path: Path, name: str, figures, labels: Sequence[str], command: str, data_hash: str = "") -> None:
    """Replace (or append) this benchmark's section of a Markdown file: one table per protocol."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    head = "| model | " + " | ".join(COLUMNS) + " | val ndcg@20 | refit | train s |"
    lines = [begin, f"Command: `{command}` ({time.strftime('%Y-%m-%d')}); figures in `benchmarks/{name}.json` "
                    f"(data sha256 `{data_hash[:16]}`), plots `benchmarks/{name}_metrics.png`, "
                    f"`benchmarks/{name}_popularity.png`."]
    for protocol in EVAL_PROTOCOLS:
        lines += ["", f"Test, protocol `{protocol}` (mean ± std over seeds):", "", head,
                  "|" + "---|" * (len(COLUMNS) + 4)]
        for m in labels:
            f = figures[protocol][m]
            cells = [f"{f['ndcg@20']:.4f} ± {f['ndcg@20_std']:.4f}"] + [f"{f[c]:.4f}" for c in COLUMNS[1:]]
            refit = "yes" if all(r["refit"] for r in f["per_seed"]) else "no"
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {f['val_ndcg@20']:.4f} | {refit} | {f['train_s']:.1f} |")
    for r in figures.get("_ab_replay", []):
        lines.append(f"\nA/B replay, seed {r['seed']}, {r['protocol']}, test NDCG@20 per query: {r['model']} − "
                     f"{r['baseline']} = {r['diff']:+.4f}, 95% CI [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}], "
                     f"p = {r['p_value']:.3g}, n = {r['n']}")
    lines.append(end)
    block = "\n".join(lines)
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + f"\n\n## `{name}`\n\n" + block + "\n"
    path.write_text(text)
