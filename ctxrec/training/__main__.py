"""``python -m ctxrec.training``: train one model, on one process or data-parallel under ``torchrun``.

Examples::

    python -m ctxrec.training --synthetic tiny --model lightgcn --epochs 5 --out runs/lgcn
    torchrun --nproc_per_node=2 -m ctxrec.training --db .ctxrec/graph.db --model context_gnn --out runs/cgnn

Every process builds the same graph (from the store, or the same synthetic world) and the
same model; :class:`~ctxrec.training.trainer.Trainer` splits each global batch between them.
Rank 0 evaluates, saves the model and writes ``metrics.json`` to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import List, Optional

MODELS = ("context_gnn", "lightgcn")


def _parser() -> argparse.ArgumentParser:
    from ctxrec.datasets.synthetic import SIZES

    p = argparse.ArgumentParser(prog="python -m ctxrec.training",
                                description="Train one model, on one process or data-parallel under torchrun.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--db", type=Path, help="embedded store folder made by `ctxrec ingest` (opened read-only)")
    src.add_argument("--synthetic", choices=list(SIZES),
                     help="generate a synthetic world in-process instead (no item features)")
    p.add_argument("--model", choices=MODELS, default="context_gnn", help="(default: context_gnn)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the synthetic world and of training (default: the config's, else 0)")
    # None: keep the value from --config, else TrainConfig's default
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: 100)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="training events per step over all processes (default: 4096)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: 0.005)")
    p.add_argument("--dropout", type=float, default=None, help="context_gnn input dropout (default: 0.1)")
    p.add_argument("--features", default=None,
                   help="comma-separated item vectors for context_gnn (default: every one the graph has)")
    p.add_argument("--config", type=Path, default=None, help="YAML file of TrainConfig fields")
    p.add_argument("--backend", choices=("gloo", "nccl"), default=None,
                   help="process-group backend under torchrun (default: nccl with CUDA, else gloo)")
    p.add_argument("--progress", action="store_true", help="progress bar on rank 0")
    p.add_argument("--out", type=Path, default=None, help="folder for the model and metrics.json (rank 0)")
    return p


def synthetic_graph(size: str, seed: int = 0):
    """The :class:`~ctxrec.data.RecGraph` of a synthetic world, without a store or media.

    The same ``(size, seed)`` gives the same graph in every process.
    """
    from ctxrec.datasets.graphs import synthetic_graph as build

    return build(size, seed=seed)[1]


def store_graph(db: Path):
    """The :class:`~ctxrec.data.RecGraph` of an embedded store, opened read-only."""
    from ctxrec.graph.export import export_pyg
    from ctxrec.graph.stores import open_store

    with open_store("embedded", db, read_only=True) as store:
        return export_pyg(store)


def _train_fields(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    fields: dict = {}
    if args.config is not None:
        import yaml

        try:
            loaded = yaml.safe_load(args.config.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            parser.error(f"--config {args.config}: {e}")
        if not isinstance(loaded, dict):
            parser.error(f"--config {args.config}: expected a mapping of TrainConfig fields, got {type(loaded).__name__}")
        fields.update(loaded)
    for name, value in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr),
                        ("seed", args.seed)):
        if value is not None:
            fields[name] = value
    if args.progress:
        fields["progress"] = True
    return fields


def main(argv: Optional[List[str]] = None) -> int:
    from ctxrec.training.distributed import cleanup, init_distributed
    from ctxrec.training.evaluation import evaluate
    from ctxrec.training.models import make_model
    from ctxrec.training.trainer import TrainConfig

    parser = _parser()
    args = parser.parse_args(argv)
    if args.db is not None and not args.db.exists():
        parser.error(f"--db {args.db}: no such store; make one with `ctxrec ingest --db {args.db} ...`")
    fields = _train_fields(args, parser)
    rank, world, device = init_distributed(args.backend)
    try:
        if world > 1 or not fields.get("device"):  # under torchrun each process trains on its own device
            fields["device"] = str(device)
        try:
            train = TrainConfig(**fields)
        except (TypeError, ValueError) as e:
            parser.error(str(e))
        start = time.perf_counter()
        graph = store_graph(args.db) if args.db is not None else synthetic_graph(args.synthetic, train.seed)
        have = sorted(k[2:] for k in graph.data["item"].keys() if k.startswith("x_"))
        kwargs: dict = {}
        if args.model == "context_gnn":
            feats = [f.strip() for f in args.features.split(",") if f.strip()] if args.features else have
            if set(feats) - set(have):
                hint = " (a synthetic world has none; use --db with a store after `ctxrec encode`)" if args.synthetic else ""
                parser.error(f"--features {sorted(set(feats) - set(have))} not in the graph; it has {have}{hint}")
            kwargs["features"] = tuple(feats)
            if args.dropout is not None:
                kwargs["dropout"] = args.dropout
        elif args.features or args.dropout is not None:
            parser.error(f"--features and --dropout apply to context_gnn, not {args.model}")
        model = make_model(args.model, train=train, **kwargs)
        model.fit(graph.without_test())  # no test pair within the model's reach
        if rank == 0:
            hist = model.history
            metrics = {
                "model": model.name, "world_size": world, "backend": _backend(), "device": str(device),
                "seconds": hist.seconds, "total_seconds": time.perf_counter() - start,
                "epochs_run": len(hist.val), "best_epoch": hist.best_epoch,
                "val": model.evaluate("val"), "test": evaluate(model, graph, "test", protocol="per_context"),
                "test_per_user": evaluate(model, graph, "test", protocol="per_user"),
                "history": {"loss": hist.loss, "val": hist.val},
            }
            line = ", ".join(f"{k} {v:.4f}" for k, v in metrics["val"].items() if k.endswith("@20"))
            print(f"{model.name}: {metrics['epochs_run']} epochs on {world} process(es) in {hist.seconds:.1f}s; "
                  f"validation {line}")
            if args.out is not None:
                model.save(args.out)
                (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
                print(f"saved to {args.out}")
    finally:
        cleanup()
    return 0


def _backend() -> Optional[str]:
    import torch.distributed as dist

    return dist.get_backend() if dist.is_available() and dist.is_initialized() else None


if __name__ == "__main__":
    sys.exit(main())
