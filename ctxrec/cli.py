"""The ``ctxrec`` command: each sub-command is a thin call into the library."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="ctxrec: graph-based, multimodal, context-aware recommendation.")

DEFAULT_DB = Path(".ctxrec/graph.db")
StoreOpt = typer.Option("embedded", "--store", help="Graph store: embedded (LadybugDB folder) or neo4j.")
DbOpt = typer.Option(DEFAULT_DB, "--db", help="Embedded store folder.")
UriOpt = typer.Option(None, "--uri", help="Neo4j URI (default: $NEO4J_URI; user/password from $NEO4J_USER/$NEO4J_PASSWORD).")
KEY_ENV = "CTXREC_PSEUDONYM_KEY"  # ctxrec.privacy.KEY_ENV, kept here so `import ctxrec.cli` stays light
PseudoKeyOpt = typer.Option(None, "--pseudonymize-key-file",
                            help=f"Secret key file (>= 16 bytes; default: ${KEY_ENV} if set): user ids become "
                                 "keyed pseudonyms before anything is written. Keep it away from the data.")


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
    except (ConnectionError, PermissionError, FileNotFoundError, ValueError) as e:
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
           batch_size: int = typer.Option(50_000, help="Rows per upsert batch."),
           pseudonymize_key_file: Optional[Path] = PseudoKeyOpt) -> None:
    """Validate the seed tables, derive context and load the graph into the store."""
    import warnings

    from ctxrec.graph.build import BuildConfig
    from ctxrec.graph.ingest import ingest as run_ingest
    from ctxrec.graph.readers import InputError, InputWarning

    pseudo = _pseudonymizer(pseudonymize_key_file, data_dirs=[db] if store in ("embedded", "ladybug") else [])
    if pseudo is not None:
        typer.echo("user ids are pseudonymised (HMAC-SHA256, 'p_' + 16 hex digits); the key is not stored")
    try:
        with _open(store, db, uri) as st, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InputWarning)
            res = run_ingest(st, interactions, items, context,
                             BuildConfig(session_gap_minutes=session_gap, pseudonymize=pseudo),
                             reject_path=rejects, batch_size=batch_size, progress=True)
            counts = st.counts()
    except (InputError, ValueError, ConnectionError) as e:
        _fail(str(e))
    for w in caught:
        typer.secho(f"warning: {w.message}", fg=typer.colors.YELLOW, err=True)
    s = res.summary
    typer.echo(f"rows read {s['rows_read']}, loaded {s['rows_loaded']}, rejected {s['rows_rejected']}, "
               f"duplicates dropped {s['duplicates']}")
    if res.reject_path:
        typer.echo(f"rejected rows written to {res.reject_path}")
        for r in res.rejects.items[:5]:
            typer.echo(f"  {r}")
    typer.echo("store now holds: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command()
def pseudonym(user: str = typer.Argument(..., help="A raw user id."),
              pseudonymize_key_file: Optional[Path] = PseudoKeyOpt) -> None:
    """Print the pseudonym of a raw user id under the key (to query a pseudonymised store or bundle)."""
    pseudo = _pseudonymizer(pseudonymize_key_file)
    if pseudo is None:
        _fail(f"no key: pass --pseudonymize-key-file PATH or set ${KEY_ENV}")
    typer.echo(pseudo.user(user))


def _pseudonymizer(key_file: Optional[Path], data_dirs=()):
    """The Pseudonymizer of ``--pseudonymize-key-file``, else of ``$CTXREC_PSEUDONYM_KEY``, else None."""
    import os

    from ctxrec.privacy import Pseudonymizer

    try:
        if key_file is not None:
            return Pseudonymizer.from_file(key_file, data_dirs=data_dirs)
        if os.environ.get(KEY_ENV):
            return Pseudonymizer(os.environ[KEY_ENV].encode("utf-8"))
    except ValueError as e:
        _fail(str(e))
    return None


@app.command()
def encode(store: str = StoreOpt, db: Path = DbOpt, uri: Optional[str] = UriOpt,
           encoder: str = typer.Option("text", help="Registered encoder: text, image, imagenet, audio, clap, clip-text, "
                                                     "clap-text, or a plug-in (`ctxrec encoders`). `image` is open_clip "
                                                     "when --options give its weights, else the pretrained, offline "
                                                     "`imagenet` CNN."),
           model: Optional[str] = typer.Option(None, help="Text model name or local path (text encoder; default: "
                                                          "offline all-MiniLM-L6-v2)."),
           options: Optional[str] = typer.Option(None, help="Encoder arguments as JSON, or @FILE of JSON, e.g. "
                                                            "'{\"arch\": \"ViT-B-16\", \"weights\": \"/models/clip.pt\"}' "
                                                            "(weights: a file, local-dir:PATH, an open_clip tag, or "
                                                            "\"random\" for tests)."),
           cache: Path = typer.Option(Path(".ctxrec/cache"), help="Feature cache folder."),
           out: Optional[str] = typer.Option(".ctxrec/features", help="Also write <name>.parquet and "
                                                                      "manifest.json here ('' for none)."),
           device: Optional[str] = typer.Option(None, help="cpu, cuda, cuda:1 ... (default: cuda when available)."),
           batch_size: Optional[int] = typer.Option(None, help="Encoder batch size (default: the encoder's).")) -> None:
    """Encode items (and, for text, context nodes); write the vectors to the store and to Parquet."""
    from ctxrec.modalities.features import encode_store
    from ctxrec.modalities.registry import get_encoder

    out = _path_or_none(out)
    kwargs = _json_option(options, "--options")
    if model:
        kwargs["model"] = model
    if device:
        kwargs["device"] = device
    try:
        if encoder == "image":  # images: open_clip with its weights, else the pretrained ImageNet CNN
            from ctxrec.modalities.image import default_image_encoder

            enc = default_image_encoder(**kwargs)
        else:
            enc = get_encoder(encoder, **kwargs)
    except (ValueError, TypeError, OSError, ImportError) as e:
        _fail(str(e))
    if enc.name != encoder:
        typer.echo(f"no open_clip weights given (--options '{{\"weights\": ...}}'): encoding images with "
                   f"the pretrained `{enc.name}` encoder ({enc.arch})")
    if enc.weights_kind() == "random":
        typer.echo(f"{enc.name}: RANDOM weights (asked for): the vectors mean nothing; for tests only")
    with _open(store, db, uri) as st:
        try:
            done = encode_store(st, enc, cache_dir=cache, batch_size=batch_size, progress=True, out_dir=out)
        except (ValueError, OSError) as e:
            _fail(str(e))
    kind = enc.weights_kind()
    kind = f"{kind} weights " if kind in ("pretrained", "random") else ""
    typer.echo(f"encoded with {enc.name} ({kind}{enc.weights_id()}, dim {enc.output_dim}, device "
               f"{getattr(enc, 'device', 'cpu')}): " + ", ".join(f"{k} {v}" for k, v in done.items()))
    if out is not None:
        typer.echo(f"vectors and manifest written to {out}")


def _json_option(value: Optional[str], flag: str, kind: type = dict):
    """A JSON option's value (text or ``@file``): an object of keyword arguments, or a list."""
    if not value:
        return kind()
    text = value
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            _fail(f"{flag} {value!r}: no file {path}")
        text = path.read_text()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as e:
        _fail(f"{flag} is not valid JSON ({e}): {text[:120]!r}")
    if not isinstance(parsed, kind):
        _fail(f"{flag} must be a JSON {'object of keyword arguments' if kind is dict else 'list'}, "
              f"got {type(parsed).__name__}")
    return parsed


encoders_app = typer.Typer(help="The registered encoders (built-in and plug-ins).")
app.add_typer(encoders_app, name="encoders")


@encoders_app.callback(invoke_without_command=True)
def encoders(ctx: typer.Context) -> None:
    """List the registered encoders (same as `ctxrec encoders list`)."""
    if ctx.invoked_subcommand is None:
        encoders_list()


@encoders_app.command("list")
def encoders_list() -> None:
    """Name, modality, space family, output dim, weights (pretrained, random or none) and source of every encoder."""
    from ctxrec.modalities.registry import list_encoders

    typer.echo(f"{'name':<12s} {'modality':<8s} {'space':<8s} {'dim':>5s}  {'weights':<10s} {'source':<11s} target")
    for row in list_encoders(describe=True):
        dim = str(row["dim"]) if row["dim"] is not None else "-"
        line = (f"{row['name']:<12s} {str(row['modality']):<8s} {str(row['space']):<8s} {dim:>5s}  "
                f"{str(row.get('weights') or '-'):<10s} {row['source']:<11s} {row['target']}")
        if row["error"]:
            line += f"  (not loadable with defaults: {row['error'][:100]})"
        typer.echo(line)


@app.command()
def align(features: Path = typer.Option(Path(".ctxrec/features"), help="Folder written by `ctxrec encode`."),
          vectors: Optional[str] = typer.Option(None, help="Vector names to align, comma-separated (default: all)."),
          dim: int = typer.Option(64, help="Width of the shared space."),
          epochs: int = typer.Option(200, help="Maximum epochs (early stopping on held-out items)."),
          seed: int = typer.Option(0, help="Seed.")) -> None:
    """Learn heads that put the item vectors of several modalities into one space (for search)."""
    from ctxrec.fusion.align import fit_alignment
    from ctxrec.modalities.vector_files import read_manifest, read_vectors

    try:
        names = [v.strip() for v in vectors.split(",")] if vectors else list(read_manifest(features)["vectors"])
        frames = {n: read_vectors(features, n, label="Item") for n in names}
    except (FileNotFoundError, KeyError, ValueError) as e:
        _fail(str(e).strip('"'))
    if len(frames) < 2:
        _fail(f"{features} has vectors {names}; aligning needs two or more (run `ctxrec encode` per modality)")
    import numpy as np

    align_ = fit_alignment({n: (f["id"].tolist(), np.stack(f["vector"]) * f["present"].to_numpy()[:, None])
                            for n, f in frames.items()}, dim=dim, epochs=epochs, seed=seed)
    path = align_.save(features / "alignment")
    train_loss, held = align_.history[-1]
    typer.echo(f"aligned {', '.join(names)} into {dim} dims in {len(align_.history)} epochs "
               f"(train loss {train_loss:.3f}, held-out {held:.3f}); written to {path.with_suffix('')}.*")


@app.command()
def search(query: str = typer.Argument(..., help="A text, or the path of an image or audio file."),
           features: Path = typer.Option(Path(".ctxrec/features"), help="Folder written by `ctxrec encode`."),
           modality: Optional[str] = typer.Option(None, help="text | image | audio (default: from the query)."),
           target: Optional[str] = typer.Option(None, help="Search only these item vectors, e.g. image."),
           via: str = typer.Option("auto", help="auto | shared | aligned."),
           k: int = typer.Option(10, "-k", help="How many items.")) -> None:
    """Items nearest to a query of any modality (uses <features>/alignment.* when present)."""
    from ctxrec.fusion.align import Alignment
    from ctxrec.serve.search import ItemSearch

    try:
        alignment = Alignment.load(features / "alignment") if (features / "alignment.json").exists() else None
        engine = ItemSearch.from_features(features, alignment=alignment)
        found = engine.search(query, modality=modality, target=target, k=k, via=via)
    except (FileNotFoundError, KeyError, ValueError, OSError) as e:
        _fail(str(e).strip('"'))
    for rank, row in enumerate(found.itertuples(), 1):
        typer.echo(f"{rank:3d}. {row.id}\t{row.score:.4f}\t{row.via}")


def _train_config(epochs: int, lr: float, seed: int, config: Optional[Path]) -> dict:
    fields = {"epochs": epochs, "lr": lr, "seed": seed, "progress": True}
    if config is not None:
        import yaml

        try:
            loaded = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError) as e:
            _fail(f"--config {config}: cannot be read ({e}); pass the path of a YAML file of TrainConfig fields")
        except yaml.YAMLError as e:
            _fail(f"--config {config}: not valid YAML ({' '.join(str(e).split())}); write it like 'epochs: 50'")
        if not isinstance(loaded, dict):
            _fail(f"{config}: expected a mapping of TrainConfig fields, got {type(loaded).__name__}")
        fields.update(loaded)
    return fields


SplitDirOpt = typer.Option(None, "--split-dir", help="Folder of train, val (optional) and test files (CSV or "
                                                       "Parquet, columns user,item[,time]): use exactly that split.")


def _split(split_dir: Optional[Path], refit: bool = False):
    """The SplitConfig the options name: the default temporal split, or the files of --split-dir."""
    from ctxrec.data import SplitConfig

    if split_dir is None:
        return SplitConfig(refit=refit)
    if not split_dir.is_dir():
        _fail(f"--split-dir {split_dir}: no such folder; give a folder holding train.csv, test.csv and "
              "optionally val.csv (or .parquet), columns user,item[,time]")
    return SplitConfig(protocol="files", split_dir=str(split_dir), refit=refit)


def _features(features: Optional[str], have: List[str]) -> List[str]:
    """The item vectors --features names (default: every one the store has), or exit naming the missing."""
    feats = [f.strip() for f in features.split(",") if f.strip()] if features else have
    if set(feats) - set(have):
        _fail(f"--features {sorted(set(feats) - set(have))} not in the store; it has {have} (run ctxrec encode)")
    return feats


def _export(store: str, db: Path, uri: Optional[str], split):
    """Export the store's graph with ``split``; a bad split file exits with its message."""
    from ctxrec.graph.export import export_pyg

    with _open(store, db, uri, read_only=True) as st:
        try:
            return export_pyg(st, split)
        except ValueError as e:
            _fail(str(e))


@app.command()
def train(store: str = StoreOpt, db: Path = DbOpt, uri: Optional[str] = UriOpt,
          model: str = typer.Option("item_graph", help="item_graph (the default graph model) | mostpop | itemknn | "
                                                        "ease | implicit_als | implicit_bpr | mf_bpr | content_knn | "
                                                        "lightgcn | context_gnn"),
          out: Path = typer.Option(Path(".ctxrec/model"), help="Folder for the trained model."),
          epochs: int = typer.Option(100, help="Maximum epochs (early stopping on validation)."),
          lr: float = typer.Option(0.005, help="Learning rate."),
          seed: int = typer.Option(0, help="Seed."),
          features: Optional[str] = typer.Option(None, help="Item vectors for context_gnn, comma-separated "
                                                            "(default: every vector the store has for items)."),
          config: Optional[Path] = typer.Option(None, help="YAML file of TrainConfig fields."),
          split_dir: Optional[Path] = SplitDirOpt,
          tune: bool = typer.Option(True, "--tune/--no-tune", help="Choose the model's settings from its default "
                                                                 "grid on validation (per_user NDCG@20); "
                                                                 "--no-tune fits its defaults."),
          refit: bool = typer.Option(False, "--refit", help="After selection on validation, train again on "
                                                            "train+val for the chosen epochs and save that model.")) -> None:
    """Export the graph, train a model (selection on validation, never on test) and save it."""
    import dataclasses
    import inspect
    import time

    from ctxrec.training.models import MODELS, make_model
    from ctxrec.training.tuning import DEFAULT_GRIDS, refit_params, tune as tune_grid

    split = _split(split_dir)
    graph = _export(store, db, uri, split)
    if len(graph.train) == 0:
        _fail(f"the store has no interactions to train on ({graph.num_users} users, {graph.num_items} items); "
              "run `ctxrec ingest` with an interactions file whose rows reference known items")
    feats = _features(features, sorted(k[2:] for k in graph.data["item"].keys() if k.startswith("x_")))
    kwargs = {"features": tuple(feats)} if model in ("context_gnn", "item_graph") else {}
    if model in MODELS and "train" in inspect.signature(MODELS[model]).parameters:  # the trained ones
        kwargs["train"] = _train_config(epochs, lr, seed, config)
    grid = DEFAULT_GRIDS.get(model, {}) if tune else {}
    if grid and not len(graph.val):
        typer.echo(f"no validation pairs in this split to choose {model}'s settings on: fitting its defaults")
        grid = {}
    params: dict = {}
    start = time.perf_counter()
    try:
        if grid:  # the model never holds a test pair: tune fits on graph.without_test()
            m, params, trials = tune_grid(model, grid, graph, base=kwargs, protocol="per_user")
            typer.echo(f"chose {params} on validation among {len(trials)} settings")
        else:
            m = make_model(model, **kwargs)
            m.fit(graph.without_test())  # the model never holds a test pair
    except (ValueError, TypeError) as e:
        _fail(str(e))
    seconds = time.perf_counter() - start
    val = m.evaluate("val", protocol="per_user")
    line = ", ".join(f"{k} {v:.4f}" for k, v in val.items() if k.endswith("@20"))
    typer.echo(f"{m.name} fitted in {seconds:.1f} s; validation (per_user) {line}")
    if refit:
        if not len(graph.val):
            _fail("--refit needs validation pairs to select the epochs on, and this split has none")
        split = _split(split_dir, refit=True)
        m = make_model(model, **refit_params(m, params, kwargs))
        start = time.perf_counter()
        m.fit(_export(store, db, uri, split).without_test())
        typer.echo(f"{m.name} refit on train+val in {time.perf_counter() - start:.1f} s")
    m.save(out)
    (out / "split.json").write_text(json.dumps(dataclasses.asdict(split), indent=2))
    typer.echo(f"{m.name} saved to {out}")


def _load(store: str, db: Path, uri: Optional[str], model_dir: Path, split_dir: Optional[Path] = None):
    """A saved model on a fresh export (``model.graph``, test pairs included) of the split it was
    trained with (its ``split.json``), or of the files of ``split_dir``."""
    from ctxrec.data import SplitConfig
    from ctxrec.training.recommender import Recommender

    if not (model_dir / "manifest.json").is_file():
        _fail(f"{model_dir}: no saved model here; run `ctxrec train --out {model_dir}` first")
    saved = model_dir / "split.json"
    if split_dir is not None:
        split = _split(split_dir)
    elif saved.is_file():
        split = SplitConfig(**json.loads(saved.read_text()))
    else:
        split = SplitConfig()
    return Recommender.load(model_dir, _export(store, db, uri, split))


@app.command()
def evaluate(store: str = StoreOpt, db: Path = DbOpt, uri: Optional[str] = UriOpt,
             model_dir: Path = typer.Option(Path(".ctxrec/model"), "--model-dir"),
             split: str = typer.Option("test", help="val | test"),
             ks: List[int] = typer.Option([10, 20], "--k", help="Cut-offs."),
             protocol: str = typer.Option("per_user", help="per_user (one query per user, the standard one) | "
                                                           "per_context (one per user, time slot and place) | session"),
             split_dir: Optional[Path] = SplitDirOpt) -> None:
    """Full-ranking metrics of a saved model (the user's train, and for test val, items masked)."""
    from ctxrec.training.evaluation import eval_queries
    from ctxrec.training.evaluation import evaluate as evaluate_model

    model = _load(store, db, uri, model_dir, split_dir)
    try:
        res = evaluate_model(model, model.graph, split, ks=tuple(ks), protocol=protocol)
        queries, _ = eval_queries(model.graph, split, protocol)
    except ValueError as e:
        _fail(str(e))
    # how many queries of how many users were scored, in the same JSON object
    res.update({"queries": len(queries.user), "users": len(set(queries.user.tolist()))})
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


@app.command("export")
def export_(out: Path = typer.Option(..., help="Bundle folder (model, graph, embeddings, features, manifest); "
                                                "an earlier bundle there is replaced."),
            store: str = StoreOpt, db: Path = DbOpt, uri: Optional[str] = UriOpt,
            model_dir: Path = typer.Option(Path(".ctxrec/model"), "--model",
                                           help="Saved model (`ctxrec train --out`)."),
            features: Path = typer.Option(Path(".ctxrec/features"), help="`ctxrec encode --out` folder; its manifest "
                                                                         "names the feature encoders."),
            faiss: bool = typer.Option(False, "--faiss", help="Also build a FAISS index over item embeddings."),
            to_neo4j: bool = typer.Option(False, "--to-neo4j", help="Write node embeddings to Neo4j (--uri or "
                                                                    "$NEO4J_URI) as vector 'emb' with vector indexes."),
            replace_vectors: bool = typer.Option(False, "--replace-vectors",
                                                 help="With --to-neo4j: drop earlier 'emb' vectors first (needed for "
                                                      "a new dimension)."),
            networkx: Optional[Path] = typer.Option(None, "--networkx",
                                                    help="Write the stored graph as .graphml or .json."),
            dgl: Optional[Path] = typer.Option(None, "--dgl", help="Write DGL-ready numpy arrays here (load them with "
                                                                   "ctxrec.bundle.dgl_loader in .venv-dgl)."),
            dp_epsilon: Optional[float] = typer.Option(None, "--dp-epsilon",
                                                       help="Gaussian-mechanism noise on the user embeddings with "
                                                            "this epsilon (needs --dp-delta)."),
            dp_delta: Optional[float] = typer.Option(None, "--dp-delta", help="The delta, e.g. 1e-5."),
            dp_clip: float = typer.Option(1.0, "--dp-clip", help="L2 norm each user embedding is clipped to."),
            dp_seed: Optional[int] = typer.Option(None, "--dp-seed", help="Noise seed (default: fresh)."),
            dp_mechanism: str = typer.Option("classic", "--dp-mechanism",
                                             help="classic (proven for epsilon < 1) or analytic (any epsilon).")
            ) -> None:
    """Export a trained model: a bundle that serves without the store, plus FAISS, Neo4j, networkx, DGL."""
    from ctxrec import bundle as bx
    from ctxrec.bundle.networkx_graph import FORMATS

    if networkx is not None and networkx.suffix not in FORMATS:  # before any work is done
        _fail(f"--networkx {networkx}: unknown suffix {networkx.suffix!r}; use one of {list(FORMATS)}")
    if (dp_epsilon is None) != (dp_delta is None):
        _fail("--dp-epsilon and --dp-delta go together; give both (e.g. --dp-epsilon 0.5 --dp-delta 1e-5) or neither")
    dp = None if dp_epsilon is None else (dp_epsilon, dp_delta)
    model = _load(store, db, uri, model_dir)
    try:
        path = bx.export_bundle(model, model.graph, out, features_dir=features, faiss=faiss, dp=dp, dp_clip=dp_clip,
                                dp_seed=dp_seed, dp_mechanism=dp_mechanism)
        doc = bx.read_bundle_manifest(path)
        emb = bx.node_embeddings(model)
        if dp is not None:  # the one noised copy, also for --dgl and --to-neo4j
            noised = bx.read_graph_arrays(path / "graph").vectors["user"]["emb"]
            emb = {**emb, "user": noised}
            typer.echo("user embeddings noised: " + ", ".join(
                f"{k} {doc['privacy']['user_embeddings'][k]:.4g}" for k in ("epsilon", "delta", "clip_norm", "sigma")))
        typer.echo(f"bundle written to {path}: {doc['model']['name']}, embeddings "
                   f"{doc['dims']['embeddings'] or 'none'}, features {sorted(doc['dims']['features']) or 'none'}"
                   + (", faiss index" if faiss else ""))
        if dgl is not None:
            typer.echo(f"DGL arrays written to {bx.write_dgl_bundle(model.graph, dgl, emb)}")
        if networkx is not None:
            with _open(store, db, uri, read_only=True) as st:
                g = bx.to_networkx(st.read_subgraph())
            bx.write_networkx(g, networkx)
            typer.echo(f"networkx graph ({g.number_of_nodes()} nodes, {g.number_of_edges()} edges) "
                       f"written to {networkx}")
    except (ValueError, FileExistsError, ImportError) as e:
        _fail(str(e))
    if to_neo4j:
        with _open("neo4j", db, uri) as st:
            try:
                done = bx.write_embeddings(st, model.graph, emb, replace=replace_vectors)
            except ValueError as e:
                _fail(str(e))
        typer.echo("vectors 'emb' written to Neo4j: " + ", ".join(f"{k} {v}" for k, v in done.items()))


@app.command()
def serve(store: str = StoreOpt, db: Path = DbOpt, uri: Optional[str] = UriOpt,
          model_dir: Path = typer.Option(Path(".ctxrec/model"), "--model-dir", "--model",
                                         help="Saved model folder (`ctxrec train --out`)."),
          features: Path = typer.Option(Path(".ctxrec/features"), help="Folder `ctxrec encode --out` wrote; /search "
                                                                       "uses its encoders (search is off without it)."),
          lm: Optional[Path] = typer.Option(None, "--lm", help="Folder of a local causal LM (transformers) that "
                                                               "rewrites the reason sentences."),
          api_key: Optional[str] = typer.Option(None, "--api-key", envvar="CTXREC_API_KEY",
                                                help="Key that write endpoints require in X-API-Key "
                                                     "(default: $CTXREC_API_KEY); without one writes are refused."),
          host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
          port: int = typer.Option(8000, help="Port."),
          session_gap: float = typer.Option(30.0, help="Minutes of inactivity that end a session (new events)."),
          torch_threads: int = typer.Option(1, help="Threads per torch op; requests already run in parallel "
                                                    "threads, so more mostly adds contention."),
          access_log: bool = typer.Option(True, "--access-log/--no-access-log",
                                          help="Log a line per request (uvicorn's access log)."),
          pseudonymize_key_file: Optional[Path] = PseudoKeyOpt,
          gil_switch_ms: float = typer.Option(0.2, min=0.01, help="Python's thread switch interval in ms (its "
                                                                  "default is 5)."),
          scoring_process: bool = typer.Option(True, "--scoring-process/--no-scoring-process",
                                               help="Rank /recommend batches in a process of their own (CPU "
                                                    "models), so they do not wait for the GIL.")) -> None:
    """Serve recommendations, related items, search, explanations and new events over HTTP (docs at /docs)."""
    import torch

    torch.set_num_threads(max(1, torch_threads))
    # a batch thread that ranks in this process (--no-scoring-process) hands the GIL to the event
    # loop at every torch call; a short switch interval gets it back sooner (BENCHMARKS.md: bench serve)
    sys.setswitchinterval(gil_switch_ms / 1000)
    from threadpoolctl import threadpool_limits

    threadpool_limits(max(1, torch_threads), user_api="blas")  # numpy's BLAS scores the catalogue on the CPU
    from ctxrec.optional import require

    try:
        require("fastapi", "ctxrec serve")
        uvicorn = require("uvicorn", "ctxrec serve")
    except ImportError as e:
        _fail(str(e))
    from ctxrec.graph.build import BuildConfig
    from ctxrec.serve.app import create_app
    from ctxrec.serve.service import RecService

    if store not in ("embedded", "ladybug", "neo4j"):
        _fail(f"--store {store!r} is not one of: embedded, neo4j")
    where = {"uri": uri} if store == "neo4j" else {"db": db}
    try:
        pseudo = _pseudonymizer(pseudonymize_key_file, data_dirs=[db] if store != "neo4j" else [])
        service = RecService.open(model_dir, kind=store, features=features if features.is_dir() else None, lm=lm,
                                  build=BuildConfig(session_gap_minutes=session_gap, pseudonymize=pseudo), **where)
    except (FileNotFoundError, ValueError, ConnectionError, PermissionError, ImportError) as e:
        _fail(str(e))
    if scoring_process:
        from ctxrec.serve.scoring import ScoringError

        try:
            service.rank_in_process(max(1, torch_threads))
        except (ValueError, ScoringError) as e:  # a GPU model, or a child that could not start
            typer.echo(f"ranking in the serving process: {e}")
    typer.echo(f"serving {service.model.name} on http://{host}:{port} (docs at /docs); search "
               f"{'from ' + str(features) if service.features else f'off (no {features})'}; writes "
               f"{'need X-API-Key' if api_key else 'off (no --api-key / CTXREC_API_KEY)'}"
               f"{'; raw user ids are mapped to their pseudonyms' if pseudo is not None else ''}")
    try:
        uvicorn.run(create_app(service, api_key=api_key), host=host, port=port, access_log=access_log)
    finally:
        service.close()


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


@bench_app.command("features")
def bench_features(ctx: typer.Context,
                   data: Path = typer.Option(..., help="MovieLens-100K folder with posters/ (e.g. ../shared/data/ml100k)."),
                   k: int = typer.Option(10, help="Nearest neighbours per item."),
                   cache: Path = typer.Option(Path(".ctxrec/cache"), help="Feature cache folder."),
                   out: Path = typer.Option(Path("benchmarks"), help="Folder for features_ml100k.json.")) -> None:
    """Poster genre purity (pretrained vs random weights vs the base rate), text -> poster retrieval through a
    learned space, cold-item content k-NN by modality, and Chinese / English twin queries."""
    from ctxrec.bench.features import run as run_bench

    if not (data / "u.item").is_file():
        _fail(f"--data {data}: no u.item there; give the MovieLens-100K folder (e.g. ../shared/data/ml100k)")
    run_bench(data, k=k, cache_dir=cache, out_dir=out, command=_command_line(ctx))


@bench_app.command("context")
def bench_context(seeds: str = typer.Option("0,1,2", help="World seeds, comma-separated (mean and std over them)."),
                  world: str = typer.Option("context", help="Synthetic world size."),
                  epochs: int = typer.Option(100, help="Maximum epochs per model (early stopping on validation)."),
                  cache: Path = typer.Option(Path(".ctxrec/cache"), help="Feature cache folder."),
                  out: Path = typer.Option(Path("benchmarks"), help="Folder for context_world.json.")) -> None:
    """Context GNN vs LightGCN vs the ground-truth oracle on the context world (NDCG@20, Recall@20)."""
    from ctxrec.bench.context import run as run_bench

    run_bench(_ints(seeds, "--seeds"), world=world, epochs=epochs, cache_dir=str(cache), out_dir=str(out))


@bench_app.command("session")
def bench_session(seeds: str = typer.Option("0,1,2", help="World seeds, comma-separated (mean and std over them)."),
                  epochs: int = typer.Option(150, help="Maximum epochs per model (early stopping on validation)."),
                  out: Path = typer.Option(Path("benchmarks"), help="Folder for session_world.json.")) -> None:
    """Context GNN with and without the session Transformer on the session-intent world."""
    from ctxrec.bench.session import run as run_bench

    run_bench(_ints(seeds, "--seeds"), epochs=epochs, out_dir=str(out))


@bench_app.command("serve")
def bench_serve(items: int = typer.Option(100_000, help="Items of the synthetic world."),
                users: int = typer.Option(1000, help="Users of the synthetic world."),
                requests: int = typer.Option(2000, help="Requests per endpoint and round."),
                concurrency: int = typer.Option(16, help="Requests in flight at once."),
                repeats: int = typer.Option(3, min=1, help="Rounds per endpoint; the median-p99 round is reported."),
                out: Path = typer.Option(Path("benchmarks"), help="Folder for serve.json.")) -> None:
    """p50/p99 latency and errors of /recommend and /items/{id}/related under a loopback load."""
    from ctxrec.bench.serve import run as run_bench

    run_bench(items=items, users=users, requests=requests, concurrency=concurrency, out_dir=str(out),
              repeats=repeats)


@bench_app.command("privacy")
def bench_privacy(epsilons: str = typer.Option("8,4,1,0.5", help="Epsilons, comma-separated."),
                  delta: float = typer.Option(1e-5, help="Delta of every row."),
                  clip: Optional[float] = typer.Option(None, help="Clip norm C (default: sqrt(hidden))."),
                  noise_seeds: str = typer.Option("0,1,2", help="Noise seeds per epsilon (mean over them)."),
                  world: str = typer.Option("small", help="Synthetic world size."),
                  epochs: int = typer.Option(40, help="Maximum training epochs (early stopping on validation)."),
                  out: Path = typer.Option(Path("benchmarks"), help="Folder for privacy.json.")) -> None:
    """NDCG@20 of the test split scored from DP-noised exported user embeddings, per epsilon."""
    from ctxrec.bench.privacy import run as run_bench

    eps = _ints(epsilons, "--epsilons", float)
    try:
        run_bench(eps, delta=delta, clip=clip, noise_seeds=_ints(noise_seeds, "--noise-seeds"), world=world,
                  epochs=epochs, out_dir=str(out))
    except ValueError as e:
        _fail(str(e))


@bench_app.command("scale")
def bench_scale(factors: str = typer.Option("1,4,16", help="World sizes as multiples of the base user count."),
                base_users: int = typer.Option(6300, help="Users at 1x (x 20 sessions x 5 events)."),
                batch_size: int = typer.Option(8192, help="Training events per step."),
                batches: int = typer.Option(60, help="Timed batches per size (median x batches per epoch); "
                                                     "0 times a whole epoch."),
                out: Path = typer.Option(Path("benchmarks"), help="Folder for scale.json.")) -> None:
    """Seconds per epoch and peak RSS of mini-batch training at growing world sizes."""
    from ctxrec.bench.scale import run as run_bench

    run_bench(_ints(factors, "--factors"), base_users=base_users, batch_size=batch_size, batches=batches,
              out_dir=str(out))



@bench_app.command("catalogue")
def bench_catalogue(items: int = typer.Option(20000, help="Items in the generated catalogue."),
                    users: int = typer.Option(1400, help="Users (10 sessions of 5 events each)."),
                    models: str = typer.Option(",".join(["mostpop", "itemknn", "ease", "implicit_als", "mf_bpr",
                                                         "lightgcn", "context_gnn", "item_graph",
                                                         "item_graph_residual"]), help="Model rows, comma-separated."),
                    epochs: int = typer.Option(20, help="Epochs of the trained models."),
                    timeout: float = typer.Option(600.0, help="Seconds before a model's fit is stopped."),
                    out: Path = typer.Option(Path("benchmarks"), help="Folder for catalogue.json.")) -> None:
    """Fit seconds and peak memory of every model on a large catalogue, each in its own process."""
    from ctxrec.bench.catalogue import run as run_bench

    try:
        run_bench(items=items, users=users, models=[m.strip() for m in models.split(",") if m.strip()],
                  epochs=epochs, timeout=timeout, out_dir=str(out))
    except ValueError as e:
        _fail(str(e))


benchmark_app = typer.Typer(help="Benchmarks on real data: every model, honest protocols, one table.",
                            no_args_is_help=True)
app.add_typer(benchmark_app, name="benchmark")


MarkdownOpt = typer.Option("BENCHMARKS.md", help="Markdown file whose section is rewritten ('' for none).")
BenchModelsOpt = typer.Option("mostpop,itemknn,ease,implicit_als,implicit_bpr,mf_bpr,lightgcn,content_knn,context_gnn,"
                                 "item_graph",
                              help="Models, comma-separated (content_knn: one row per feature, raw, centred and "
                                   "whitened).")
WriteSplitsOpt = typer.Option(None, "--write-splits", help="Also write each seed's split as train/val/test files "
                                                          "to DIR/seed<k> (rerun one with --split-dir).")
AblationOpt = typer.Option(False, "--ablation", help="Instead of --models: EASE and the default graph model "
                                                        "(item_graph) with each component switched off in turn, "
                                                        "written as <name>_ablation.")
JobsOpt = typer.Option(1, "--jobs", help="Seeds run at once, each in its own process (same figures; the fit "
                                         "seconds then carry the shared cores).")
GridsOpt = typer.Option(None, "--grids", help="Grid changes per model as JSON or @file, e.g. "
                                              "'{\"ease\": {\"l2\": [50, 200, 800]}}' (chosen on validation).")


@benchmark_app.command("movielens")
def benchmark_movielens(
        ctx: typer.Context,
        data: Path = typer.Option(..., help="MovieLens-100K folder (u.data, u.item, u.user; optional "
                                            "items_details.csv and posters/)."),
        protocol: str = typer.Option("temporal", help="temporal | random | cold_items | context_shift; "
                                                      "comma-separated for several (ignored with --split-dir)."),
        seeds: str = typer.Option("0,1,2", help="Seeds, comma-separated (mean and std over them)."),
        models: str = BenchModelsOpt,
        epochs: int = typer.Option(60, help="Maximum epochs of trained models (early stopping on validation)."),
        features: str = typer.Option("text,image", help="Item features of the context GNN: text, image."),
        image_options: Optional[str] = typer.Option(None, "--image-options",
                                                    help="Poster encoder as JSON or @file: default "
                                                         "'{\"encoder\": \"imagenet\"}' (pretrained, offline); "
                                                         "without \"encoder\" the options are open_clip's, e.g. "
                                                         "'{\"arch\": \"ViT-B-32\", \"weights\": \"/path\"}'."),
        split_dir: Optional[Path] = SplitDirOpt,
        write_splits: Optional[Path] = WriteSplitsOpt,
        grids: Optional[str] = GridsOpt,
        ablation: bool = AblationOpt,
        jobs: int = JobsOpt,
        out: Path = typer.Option(Path("benchmarks"), help="Folder for movielens_<protocol>.json."),
        markdown: str = MarkdownOpt,
        cache: Path = typer.Option(Path(".ctxrec/cache"), help="Feature cache folder.")) -> None:
    """Every model on MovieLens-100K: select on validation, refit on train+val, test under per_user and per_context."""
    from ctxrec.bench.movielens import run as run_bench

    if not (data / "u.data").is_file():
        _fail(f"--data {data}: no u.data there; give the MovieLens-100K folder (e.g. ../shared/data/ml100k)")
    protocols = ["files"] if split_dir is not None else _protocols(protocol)
    names = [m.strip() for m in models.split(",") if m.strip()]
    feats = tuple(f.strip() for f in features.split(",") if f.strip())
    options = _json_option(image_options, "--image-options") if image_options else None
    for p in protocols:
        try:
            run_bench(data, protocol=p, seeds=_ints(seeds, "--seeds"), models=names, epochs=epochs, features=feats,
                      image_options=options, out_dir=out, cache_dir=cache, markdown=_path_or_none(markdown),
                      grids=_json_option(grids, "--grids") if grids else None, split_dir=split_dir,
                      command=_command_line(ctx), write_splits=write_splits and write_splits / p, ablation=ablation,
                      jobs=jobs)
        except ValueError as e:
            _fail(str(e))


@benchmark_app.command("store")
def benchmark_store(
        ctx: typer.Context,
        store: str = StoreOpt, db: Path = DbOpt, uri: Optional[str] = UriOpt,
        name: str = typer.Option("store", help="Benchmark name: <out>/<name>_<protocol>.json and the Markdown "
                                               "section."),
        protocol: str = typer.Option("temporal", help="temporal | random | cold_items | context_shift; "
                                                      "comma-separated for several (ignored with --split-dir)."),
        split_dir: Optional[Path] = SplitDirOpt,
        write_splits: Optional[Path] = WriteSplitsOpt,
        seeds: str = typer.Option("0,1,2", help="Seeds, comma-separated (a --split-dir split is the same for "
                                                "every seed; the seed then varies initialisation only)."),
        models: str = BenchModelsOpt,
        epochs: int = typer.Option(60, help="Maximum epochs of trained models (early stopping on validation)."),
        features: Optional[str] = typer.Option(None, help="Item vectors for content k-NN rows and the context GNN, "
                                                          "comma-separated (default: every item vector stored)."),
        grids: Optional[str] = GridsOpt,
        ablation: bool = AblationOpt,
        jobs: int = JobsOpt,
        out: Path = typer.Option(Path("benchmarks"), help="Folder for the JSON file."),
        markdown: str = MarkdownOpt) -> None:
    """Every model on any ingested store: select on validation, refit on train+val, test under per_user and
    per_context."""
    from ctxrec.bench.ablation import ablation_rows
    from ctxrec.bench.quality import SPLITS
    from ctxrec.bench.quality import run as run_quality
    from ctxrec.data import SplitConfig
    from ctxrec.graph.export import read_store

    protocols = ["files"] if split_dir is not None else _protocols(protocol)
    if split_dir is not None:
        _split(split_dir)  # a missing folder exits here, before the store is read
    with _open(store, db, uri, read_only=True) as st:
        tables, vectors = read_store(st)
    feats = _features(features, sorted({n for (label, n) in vectors if label == "Item"}))
    names = [m.strip() for m in models.split(",") if m.strip()]
    source = f"{store} store {uri or db}" + (f", split files {split_dir}" if split_dir is not None else "")
    for p in protocols:
        split = SplitConfig(protocol=p, split_dir=None if split_dir is None else str(split_dir), **SPLITS[p])
        try:
            changes = _json_option(grids, "--grids") if grids else None
            run_quality(tables, vectors, f"{name}_{p}" + ("_ablation" if ablation else ""), split,
                        seeds=_ints(seeds, "--seeds"), models=names, epochs=epochs, features=feats, out_dir=out,
                        markdown=_path_or_none(markdown), grids=changes, command=_command_line(ctx), source=source,
                        write_splits=write_splits and write_splits / p,
                        rows=ablation_rows(feats, p, changes) if ablation else None, jobs=jobs)
        except ValueError as e:
            _fail(str(e))


def _protocols(text: str) -> List[str]:
    from ctxrec.data import PROTOCOLS

    protocols = [p.strip() for p in text.split(",") if p.strip()]
    allowed = [p for p in PROTOCOLS if p != "files"]
    if not protocols or any(p not in allowed for p in protocols):
        _fail(f"--protocol {text!r}: choose from {', '.join(allowed)} (or give --split-dir)")
    return protocols


def _command_line(ctx: typer.Context) -> str:
    """The running command with every option that differs from its default (``ctxrec benchmark
    store --db ...``), for the benchmark's record: it reruns the same benchmark."""
    import shlex

    words = ctx.command_path.split()
    words[0] = "ctxrec"
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or value == param.default or not param.opts:
            continue
        if getattr(param, "is_flag", False):  # a flag is its name alone (--ablation), or its off name
            words.append(param.opts[0] if value else (param.secondary_opts or param.opts)[0])
            continue
        value = value if isinstance(value, (list, tuple)) else [value]
        for v in value:
            words += [param.opts[0], str(v)]
    return " ".join(shlex.quote(w) for w in words)


def _path_or_none(text: Optional[str]) -> Optional[Path]:
    """A path option where '' means none (a Path option would read '' as the current folder)."""
    return Path(text) if text else None


@benchmark_app.command("sweep")
def benchmark_sweep(
        data: Path = typer.Option(..., help="MovieLens-100K folder."),
        configs: str = typer.Option(..., help="JSON list of setting changes, e.g. '[{}, {\"reg\": 0.001}]' "
                                              "({} is the defaults), or @file."),
        protocol: str = typer.Option("temporal", help="Split protocol."),
        model: str = typer.Option("context_gnn", help="Model name."),
        seed: int = typer.Option(0, help="Split and initialisation seed."),
        epochs: int = typer.Option(60, help="Maximum epochs (early stopping on validation)."),
        image_options: Optional[str] = typer.Option(None, "--image-options",
                                                    help="Image encoder options as JSON or @file (as `movielens`)."),
        out: Path = typer.Option(Path("benchmarks"), help="Folder for movielens_<protocol>_sweep_<model>.json."),
        cache: Path = typer.Option(Path(".ctxrec/cache"), help="Feature cache folder.")) -> None:
    """Validation NDCG@20 of one model under several settings (test is never scored)."""
    from ctxrec.bench.movielens import sweep

    if not (data / "u.data").is_file():
        _fail(f"--data {data}: no u.data there; give the MovieLens-100K folder (e.g. ../shared/data/ml100k)")
    changes = _json_option(configs, "--configs", list)
    if not all(isinstance(c, dict) for c in changes):
        _fail(f"--configs must be a JSON list of objects, got {configs!r}")
    try:
        sweep(data, changes, protocol=protocol, model=model, seed=seed, epochs=epochs,
              image_options=_json_option(image_options, "--image-options") or None, out_dir=out, cache_dir=cache)
    except ValueError as e:
        _fail(str(e))


def _ints(text: str, flag: str, cast: type = int) -> list:
    """Comma-separated integers (or, with ``cast=float``, numbers) of an option."""
    try:
        values = [cast(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        _fail(f"{flag} {text!r} must be {'integers' if cast is int else 'numbers'} separated by commas")
    return values


def main() -> None:
    try:
        app()
    except ConnectionError as e:  # a store lost mid-command (StoreUnavailable): its message says what to do
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
