"""``ctxrec benchmark movielens``: the quality benchmark (:mod:`ctxrec.bench.quality`) on
MovieLens-100K.

The folder (the layout of ``shared/data/ml100k``) is loaded with
:func:`~ctxrec.datasets.movielens.load_movielens`, built into the graph, and its items get
text vectors (title + genres + plot, all-MiniLM-L6-v2) and poster vectors (an open_clip
image tower; random weights unless ``image_options`` point at real ones). Everything after
that (split, selection on validation, refit on train+val, test under ``per_user`` and
``per_context``) is the generic benchmark that ``ctxrec benchmark store`` runs on any
ingested store; this module adds only the loading and the users' age band and gender for
recall gaps.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ctxrec.bench.quality import MODELS, SELECT_PROTOCOL, SPLITS, rows_for
from ctxrec.bench.report import write_report
#: the poster encoder when no options are given: the pretrained ImageNet CNN (EfficientNet-Lite0,
#: offline); options without ``"encoder"`` are open_clip ``image`` options
POSTERS = {"encoder": "imagenet"}
#: a small open_clip ViT with random weights (the posters' encoder before the pretrained one)
SMALL_CLIP = {
    "weights": "random",
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
            options = dict(image_options or POSTERS)
            enc = get_encoder(options.pop("encoder", "image"), **options)
            vectors.update(encode_tables(tables, enc, cache_dir=cache_dir, labels=["Item"], name="image"))
        else:
            raise ValueError(f"unknown feature {name!r}; MovieLens items have 'text' and 'image'")
        facts[f"encode_{name}_s"] = time.perf_counter() - t1
    users = pd.read_csv(files["users"], dtype=str)
    return tables, vectors, users, facts


def run(data: str | Path, protocol: str = "temporal", seeds: Sequence[int] = (0, 1, 2),
        models: Sequence[str] = MODELS, epochs: int = 60, features: Sequence[str] = ("text", "image"),
        image_options: Optional[dict] = None, out_dir: str | Path = "benchmarks",
        cache_dir: str | Path = ".ctxrec/cache", markdown: Optional[str | Path] = "BENCHMARKS.md",
        grids: Optional[Dict[str, Dict[str, list]]] = None, split_dir: Optional[str | Path] = None,
        command: str = "", write_splits: Optional[str | Path] = None, ablation: bool = False,
        jobs: int = 1) -> Dict[str, object]:
    """Run :func:`ctxrec.bench.quality.run` on the MovieLens folder ``data``.

    ``split_dir`` (with ``protocol="files"``) reads the split from files instead. The figures
    go to ``<out_dir>/movielens_<protocol>.json``; with ``ablation``, the rows of
    :func:`ctxrec.bench.ablation.ablation_rows` (``models`` unused) go to
    ``<out_dir>/movielens_<protocol>_ablation.json``.
    """
    from ctxrec.bench.ablation import ablation_rows
    from ctxrec.bench.quality import run as run_quality
    from ctxrec.data import SplitConfig

    tables, vectors, users, facts = prepare(data, cache_dir=cache_dir, features=features,
                                            image_options=image_options)
    print(f"MovieLens: {facts}", flush=True)
    groups = {g: dict(zip(users["user_id"], users[g].fillna("unknown"))) for g in ("age_band", "gender")}
    split = SplitConfig(protocol=protocol, split_dir=None if split_dir is None else str(split_dir), **SPLITS[protocol])
    command = command or (f"ctxrec benchmark movielens --data {data} --protocol {protocol} "
                          f"--seeds {','.join(map(str, seeds))} --epochs {epochs}")
    facts["image_encoder"] = image_options or POSTERS
    return run_quality(tables, vectors, f"movielens_{protocol}" + ("_ablation" if ablation else ""), split,
                       seeds=seeds, models=models, epochs=epochs, features=features, out_dir=out_dir,
                       markdown=markdown, grids=grids, user_groups=groups, command=command,
                       source=f"MovieLens-100K folder {data}", facts=facts, write_splits=write_splits,
                       rows=ablation_rows(features, protocol, grids) if ablation else None, jobs=jobs)


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
    from ctxrec.bench.report import hash_tables
    from ctxrec.data import SplitConfig
    from ctxrec.graph.export import to_rec_graph
    from ctxrec.training.tuning import expand_params, tune

    tables, vectors, _, _ = prepare(data, cache_dir=cache_dir, features=features, image_options=image_options)
    graph = to_rec_graph(tables, vectors, SplitConfig(protocol=protocol, seed=seed, **SPLITS[protocol]))
    rows: List[Dict[str, object]] = []
    for config in configs:
        row = next(r for r in rows_for([model], features, epochs, protocol) if r.label == model)
        fixed = {**row.fixed, **dict(config)}
        if "train.epochs" in fixed:
            fixed["train.seed"] = seed
        fitted, _, trials = tune(model, {}, graph, metric="ndcg@20", base=expand_params(fixed),
                                 protocol=SELECT_PROTOCOL)
        history = getattr(fitted, "history", None)
        rows.append({"config": dict(config), "val_ndcg@20": trials[0].val, "train_s": trials[0].seconds,
                     "best_epoch": getattr(history, "best_epoch", None)})
        print(f"[{protocol} seed {seed}] {model} {dict(config) or 'defaults'}: val ndcg@20 {trials[0].val:.4f} "
              f"(best epoch {rows[-1]['best_epoch']}, {trials[0].seconds:.0f} s)", flush=True)
    command = (f"ctxrec benchmark sweep --data {data} --protocol {protocol} --model {model} --seed {seed} "
               f"--epochs {epochs} --configs '{json.dumps(list(configs))}'")
    setup = {"seed": seed, "epochs_max": epochs, "features": list(features),
             "image_encoder": image_options or POSTERS, "val_protocol": SELECT_PROTOCOL}
    name = f"movielens_{protocol}_sweep_{model}"
    rows, commands = _merge_sweep(Path(out_dir) / f"{name}.json", setup, rows, command)
    write_report(name, {"rows": rows, "_setup": setup, "_commands": commands}, out_dir, command=command,
                 data={"hash": hash_tables(tables), "source": f"MovieLens-100K folder {data}"},
                 split=graph.split_info.get("config"))
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
