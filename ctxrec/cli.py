"""The ``ctxrec`` command: each sub-command is a thin call into the library."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="ctxrec: graph-based, multimodal, context-aware recommendation.")

DEFAULT_DB = Path(".ctxrec/graph.db")
StoreOpt = typer.Option("embedded", "--store", help="Graph store: embedded (LadybugDB folder) or neo4j.")
DbOpt = typer.Option(DEFAULT_DB, "--db", help="Embedded store folder.")
UriOpt = typer.Option(None, "--uri", help="Neo4j URI (default: $NEO4J_URI; user/password from $NEO4J_USER/$NEO4J_PASSWORD).")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _open(kind: str, db: Path, uri: Optional[str], read_only: bool = False):
    """Open the store the options name, or exit with a clear message."""
    from ctxrec.graph.stores import open_store

    try:
        if kind in ("embedded", "ladybug"):
            return open_store(kind, db, read_only=read_only)
        if kind == "neo4j":
            return open_store("neo4j", uri=uri, read_only=read_only)
    except (ConnectionError, PermissionError, ValueError) as e:
        _fail(str(e))
    _fail(f"--store {kind!r} is not one of: embedded, neo4j")


@app.command()
def synth(out: Path = typer.Argument(..., help="Folder to write the world into."),
          size: str = typer.Option("small", help="tiny | small | medium | large"),
          seed: int = typer.Option(0, help="Random seed.")) -> None:
    """Generate a synthetic multimodal world in the seed formats."""
    from dataclasses import replace

    from ctxrec.datasets.synthetic import SIZES, generate_world

    if size not in SIZES:
        _fail(f"--size {size!r} is not one of {sorted(SIZES)}")
    world = generate_world(replace(SIZES[size], seed=seed))
    files = world.write(out)
    typer.echo(f"{len(world.interactions)} interactions, {len(world.items)} items, {len(world.users)} users")
    for kind, path in files.items():
        typer.echo(f"  {kind}: {path}")


@app.command()
def ingest(interactions: Path = typer.Option(..., help="Interactions table (.csv or .parquet)."),
           items: Path = typer.Option(..., help="Items table."),
           context: Optional[Path] = typer.Option(None, help="Per-user context table."),
           store: str = StoreOpt, db: Path = DbOpt, uri: Optional[str] = UriOpt,
           session_gap: float = typer.Option(30.0, help="Minutes of inactivity that end a session."),
           rejects: Optional[Path] = typer.Option(None, help="Reject file (default: beside the interactions)."),
           batch_size: int = typer.Option(50_000, help="Rows per upsert batch.")) -> None:
    """Validate the seed tables, derive context and load the graph into the store."""
    from ctxrec.graph.build import BuildConfig
    from ctxrec.graph.ingest import ingest as run_ingest
    from ctxrec.graph.readers import InputError

    try:
        with _open(store, db, uri) as st:
            res = run_ingest(st, interactions, items, context, BuildConfig(session_gap_minutes=session_gap),
                             reject_path=rejects, batch_size=batch_size, progress=True)
            counts = st.counts()
    except (InputError, ValueError) as e:
        _fail(str(e))
    s = res.summary
    typer.echo(f"rows read {s['rows_read']}, loaded {s['rows_loaded']}, rejected {s['rows_rejected']}, "
               f"duplicates dropped {s['duplicates']}")
    if res.reject_path:
        typer.echo(f"rejected rows written to {res.reject_path}")
        for r in res.rejects.items[:5]:
            typer.echo(f"  {r}")
    typer.echo("store now holds: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command()
def encode(store: str = StoreOpt, db: Path = DbOpt, uri: Optional[str] = UriOpt,
           encoder: str = typer.Option("text", help="Registered encoder: text, image, audio, clap, clip-text, "
                                                     "or a plug-in (`ctxrec encoders`)."),
           model: Optional[str] = typer.Option(None, help="Text model name or local path (text encoder; default: "
                                                          "offline all-MiniLM-L6-v2)."),
           cache: Path = typer.Option(Path(".ctxrec/cache"), help="Feature cache folder."),
           batch_size: Optional[int] = typer.Option(None, help="Encoder batch size (default: the encoder's).")) -> None:
    """Encode items (and, for text, context nodes) and write the vectors to the store."""
    from ctxrec.modalities.features import encode_store
    from ctxrec.modalities.registry import get_encoder

    try:
        enc = get_encoder(encoder, model=model) if model else get_encoder(encoder)
    except (ValueError, TypeError, OSError) as e:
        _fail(str(e))
    with _open(store, db, uri) as st:
        done = encode_store(st, enc, cache_dir=cache, batch_size=batch_size, progress=True)
    typer.echo(f"encoded with {encoder}: " + ", ".join(f"{k} {v}" for k, v in done.items()))


@app.command()
def encoders() -> None:
    """List the registered encoders (built-in and plug-ins)."""
    from ctxrec.modalities.registry import list_encoders

    for row in list_encoders():
        typer.echo(f"{row['name']:<10s} {str(row.get('modality')):<6s} {row['source']:<11s} {row['target']}")


def _train_config(epochs: int, lr: float, seed: int, config: Optional[Path]) -> dict:
    fields = {"epochs": epochs, "lr": lr, "seed": seed, "progress": True}
    if config is not None:
        import yaml

        loaded = yaml.safe_load(config.read_text()) or {}
        if not isinstance(loaded, dict):
            _fail(f"{config}: expected a mapping of TrainConfig fields, got {type(loaded).__name__}")
        fields.update(loaded)
    return fields


@app.command()
def train(store: str = StoreOpt, db: Path = DbOpt, uri: Optional[str] = UriOpt,
          model: str = typer.Option("context_gnn", help="mostpop | lightgcn | context_gnn"),
          out: Path = typer.Option(Path(".ctxrec/model"), help="Folder for the trained model."),
          epochs: int = typer.Option(100, help="Maximum epochs (early stopping on validation)."),
          lr: float = typer.Option(0.005, help="Learning rate."),
          seed: int = typer.Option(0, help="Seed."),
          features: Optional[str] = typer.Option(None, help="Item vectors for context_gnn, comma-separated "
                                                            "(default: every vector the store has for items)."),
          config: Optional[Path] = typer.Option(None, help="YAML file of TrainConfig fields.")) -> None:
    """Export the graph, train a model (selection on validation) and save it."""
    from ctxrec.graph.export import export_pyg
    from ctxrec.training.models import make_model

    with _open(store, db, uri, read_only=True) as st:
        graph = export_pyg(st)
    have = sorted(k[2:] for k in graph.data["item"].keys() if k.startswith("x_"))
    feats = [f.strip() for f in features.split(",") if f.strip()] if features else have
    if set(feats) - set(have):
        _fail(f"--features {sorted(set(feats) - set(have))} not in the store; it has {have} (run ctxrec encode)")
    kwargs = {"features": tuple(feats)} if model == "context_gnn" else {}
    try:
        m = make_model(model) if model == "mostpop" else make_model(
            model, train=_train_config(epochs, lr, seed, config), **kwargs)
    except (ValueError, TypeError) as e:
        _fail(str(e))
    m.fit(graph)
    m.save(out)
    val = m.evaluate("val")
    typer.echo(f"{m.name} saved to {out}; validation " + ", ".join(f"{k} {v:.4f}" for k, v in val.items()
                                                                  if k.endswith("@20")))


def _load(store: str, db: Path, uri: Optional[str], model_dir: Path):
    from ctxrec.graph.export import export_pyg
    from ctxrec.training.recommender import Recommender

    if not (model_dir / "manifest.json").is_file():
        _fail(f"{model_dir}: no saved model here; run `ctxrec train --out {model_dir}` first")
    with _open(store, db, uri, read_only=True) as st:
        graph = export_pyg(st)
    return Recommender.load(model_dir, graph)


@app.command()
def evaluate(store: str = StoreOpt, db: Path = DbOpt, uri: Optional[str] = UriOpt,
             model_dir: Path = typer.Option(Path(".ctxrec/model"), "--model-dir"),
             split: str = typer.Option("test", help="val | test"),
             ks: List[int] = typer.Option([10, 20], "--k", help="Cut-offs.")) -> None:
    """Full-ranking metrics of a saved model (train items masked)."""
    model = _load(store, db, uri, model_dir)
    try:
        res = model.evaluate(split, ks=tuple(ks))
    except ValueError as e:
        _fail(str(e))
    typer.echo(json.dumps(res, indent=2))


@app.command()
def recommend(user: str = typer.Option(..., help="User id."),
              time: Optional[str] = typer.Option(None, help="When: 'sat 20:00', 'sat-evening' or ISO time."),
              place: Optional[str] = typer.Option(None, help="Where, e.g. 'New York'."),
              k: int = typer.Option(10, "-k", help="How many items."),
              store: str = StoreOpt, db: Path = DbOpt, uri: Optional[str] = UriOpt,
              model_dir: Path = typer.Option(Path(".ctxrec/model"), "--model-dir")) -> None:
    """Top-k items for a user in a context."""
    model = _load(store, db, uri, model_dir)
    try:
        ranked = model.recommend_ids(user, k, time=time, place=place)
    except ValueError as e:
        _fail(str(e))
    for rank, (item, score) in enumerate(ranked, 1):
        typer.echo(f"{rank:3d}. {item}\t{score:.4f}")


@app.command()
def demo(out: Path = typer.Option(Path("runs/demo"), help="Output folder."),
         size: str = typer.Option("small", help="Synthetic world size."),
         seed: int = typer.Option(0, help="Seed."),
         epochs: int = typer.Option(100, help="Maximum epochs per model.")) -> None:
    """Synthetic world -> embedded store -> text features -> GNN -> metrics and recommendations."""
    from ctxrec.demo import DemoConfig, run_demo

    run_demo(DemoConfig(out=out, size=size, seed=seed, epochs=epochs), echo=typer.echo)


bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: print a table, write benchmarks/<name>.json.")
app.add_typer(bench_app, name="bench")


@bench_app.command("train")
def bench_train(size: str = typer.Option("small", help="Synthetic world size."),
                epochs: int = typer.Option(5, help="Epochs per measured run."),
                repeats: int = typer.Option(3, help="Runs per condition (the median is reported)."),
                out: Path = typer.Option(Path("benchmarks"), help="Folder for train.json.")) -> None:
    """Seconds per epoch with OpenMP threads spinning or sleeping, idle or busy machine."""
    from ctxrec.bench.train import run as run_bench

    run_bench(size=size, epochs=epochs, repeats=repeats, out_dir=str(out))


@bench_app.command("ingest")
def bench_ingest(stores: str = typer.Option("embedded,neo4j", help="Comma-separated: embedded, neo4j."),
                 users: int = typer.Option(1000, help="Synthetic users (~100 interactions each)."),
                 per_row: int = typer.Option(2000, "--per-row", help="Relationships written one MERGE per row."),
                 knn_items: int = typer.Option(100_000, "--knn-items", help="Items with vectors for knn latency."),
                 dim: int = typer.Option(384, help="Vector width."),
                 queries: int = typer.Option(200, help="Timed queries per latency figure."),
                 uri: Optional[str] = UriOpt,
                 out: Path = typer.Option(Path("benchmarks"), help="Folder for ingest.json.")) -> None:
    """Ingest rate (batched vs per-row MERGE), related-items and knn latency, per store."""
    from ctxrec.bench.ingest import IngestBenchConfig, run as run_bench

    kinds = [k.strip() for k in stores.split(",") if k.strip()]
    bad = [k for k in kinds if k not in ("embedded", "neo4j")]
    if bad:
        _fail(f"--stores {bad} not understood; use embedded and/or neo4j")
    cfg = IngestBenchConfig(users=users, per_row=per_row, knn_items=knn_items, dim=dim, queries=queries)
    try:
        run_bench(kinds, cfg, uri=uri, out_dir=str(out))
    except ConnectionError as e:
        _fail(str(e))


@bench_app.command("encode")
def bench_encode(size: str = typer.Option("small", help="Synthetic world size (its items are the inputs)."),
                 repeats: int = typer.Option(3, help="Timed runs per side (the median is reported)."),
                 images: int = typer.Option(64, help="Images for the (slow on CPU) ViT-B-32 encoder."),
                 out: Path = typer.Option(Path("benchmarks"), help="Folder for encode.json.")) -> None:
    """Items/s of each encoder against the raw library call on the same inputs."""
    from ctxrec.bench.encode import run as run_bench

    run_bench(size=size, repeats=repeats, images=images, out_dir=str(out))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
