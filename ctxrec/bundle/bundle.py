"""Export bundles: a trained model with everything it needs to serve, and no database.

``export_bundle(model, graph, out)`` writes::

    manifest.json        model (class, name, config), encoders, dims, created, versions, files
    model/               the model's own ``save()``: manifest.json + weights.safetensors
    graph/               the RecGraph as numpy (ids, edges, features, embeddings ``emb``) + splits.npz;
                         the layout of :mod:`ctxrec.bundle.dgl_loader`, so DGL loads it as is
    embeddings/          ``emb.parquet`` + manifest.json: node embeddings, in the format of
                         :mod:`ctxrec.modalities.vector_files` (``label, id, present, vector``)
    features/            the input features (``<name>.parquet`` + manifest.json), the same format
                         as ``ctxrec encode --out`` writes, so ``ItemSearch.from_features`` reads it
    faiss/               (``faiss=True``) an inner-product index over normalised item embeddings

``load_bundle(out)`` returns ``(model, graph)``, ready for ``recommend`` / ``recommend_ids``.

Example:
    >>> export_bundle(model, graph, "bundle", faiss=True)        # doctest: +SKIP
    >>> model, graph = load_bundle("bundle")                      # in any process, no store
    >>> model.recommend_ids("u0001", k=10, time="sat 20:00")      # doctest: +SKIP
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional, Tuple

import numpy as np

from ctxrec.bundle.graph_bundle import graph_arrays, read_rec_graph, write_dgl_bundle

if TYPE_CHECKING:
    from ctxrec.data import RecGraph
    from ctxrec.training.recommender import Recommender

MANIFEST = "manifest.json"
KIND = "ctxrec-bundle"
FORMAT_VERSION = 1
#: the vector name node embeddings get (in embeddings/, graph/ and a store)
EMB = "emb"


def node_embeddings(model: "Recommender") -> Dict[str, np.ndarray]:
    """Node type -> learned ``[N, d]`` vectors of a fitted model, in eval mode.

    Models with ``encode()`` (ContextGNN: every node type after message passing) give all
    types; others give ``{"item": item_embeddings()}`` when they have item vectors, else ``{}``.
    """
    import torch

    if model.graph is None:
        raise RuntimeError(f"{type(model).__name__} is not fitted; call fit(graph) or Recommender.load first")
    was_training = bool(getattr(model, "training", False))
    if was_training:
        model.eval()  # dropout off: the vectors are what recommend() uses
    try:
        with torch.no_grad():
            if callable(getattr(model, "encode", None)):
                found = model.encode()
            else:
                emb = model.item_embeddings()
                found = {} if emb is None else {"item": emb}
            return {t: v.detach().float().cpu().numpy() for t, v in found.items()}
    finally:
        if was_training:
            model.train()


@dataclass
class _VectorSource:
    """What :func:`ctxrec.modalities.vector_files.write_vectors` records about the maker of
    vectors that no encoder made here: the model's embeddings, or input features copied from
    a store whose encoder is known only by its manifest entry (if at all)."""

    name: str
    modality: str
    output_dim: int
    space: Optional[str] = None
    input_column: Optional[str] = None
    settings: Optional[dict] = None
    weights: str = ""
    preprocessing: Optional[dict] = None

    def config(self) -> dict:
        return dict(self.settings or {})

    def weights_id(self) -> str:
        return self.weights

    def cache_config(self) -> dict:
        return dict(self.preprocessing or {})


def _feature_source(name: str, dim: int, known: Dict[str, dict]) -> _VectorSource:
    entry = known.get(name)
    if entry is None:
        return _VectorSource(name=name, modality=name, output_dim=dim)
    return _VectorSource(name=entry.get("encoder", name), modality=entry.get("modality", name), output_dim=dim,
                         space=entry.get("space"), input_column=entry.get("input_column"),
                         settings=entry.get("config"), weights=entry.get("weights_id", ""),
                         preprocessing=entry.get("preprocessing"))


def export_bundle(model: "Recommender", graph: "RecGraph", out: str | Path, features_dir: str | Path | None = None,
                  faiss: bool = False, dp=None, dp_clip: float = 1.0, dp_seed: Optional[int] = None,
                  dp_mechanism: str = "classic") -> Path:
    """Write a bundle that serves ``model`` on ``graph`` in a fresh process, without the store.

    Args:
        model (Recommender): a fitted (or loaded) model for ``graph``.
        graph (RecGraph): the graph the model was trained on.
        out (str | Path): the bundle folder (created; a bundle there is overwritten).
        features_dir (str | Path, optional): the folder ``ctxrec encode --out`` wrote
            (``.ctxrec/features``); its manifest names the encoders of the input features
            (default: encoders recorded by name and dimension only).
        faiss (bool): also build ``faiss/``, an index over the item embeddings (needs
            faiss-cpu) (default: False).
        dp (tuple | GaussianMechanism, optional): ``(epsilon, delta)``: the user embeddings
            (``embeddings/emb.parquet`` User rows and ``graph/nodes/user/emb.npy``, one noised
            copy) are clipped to L2 norm ``dp_clip`` and get Gaussian noise,
            ``sigma = 2 C sqrt(2 ln(1.25/delta)) / epsilon`` (sensitivity 2C: one user's vector
            replaced by another; the classic calibration is proven for epsilon < 1, see
            :class:`ctxrec.privacy.GaussianMechanism`); the manifest's ``privacy`` records it.
            The guarantee covers those vectors only: ``model/`` (weights) and ``graph/``
            (edges, splits) still hold the users' data un-noised, so release the embeddings
            alone (default: None, no noise).
        dp_clip (float): the clip norm C (default: 1.0).
        dp_seed (int, optional): noise seed (default: fresh randomness).
        dp_mechanism (str): ``"classic"`` or ``"analytic"`` (default: "classic").

    Returns:
        Path: the bundle folder.
    """
    import torch

    import ctxrec
    from ctxrec.modalities.vector_files import read_manifest

    if model.graph is not graph:
        raise ValueError(f"model {type(model).__name__} serves another RecGraph than `graph`; pass the graph it was "
                         "fitted on (model.graph) so ids and indices match")
    emb = node_embeddings(model)
    privacy = None
    if dp is not None:
        emb, privacy = _privatize(emb, dp, dp_clip, dp_seed, dp_mechanism, type(model).__name__)
    dims = {t: int(v.shape[1]) for t, v in emb.items()}
    if len(set(dims.values())) > 1:  # one Parquet per vector name holds one dimension
        raise ValueError(f"node embeddings of {type(model).__name__} have dimensions {dims}; expected one")
    if faiss and "item" not in emb:
        raise ValueError(f"faiss=True needs item embeddings; {type(model).__name__} has none")
    out = _fresh_bundle_dir(Path(out))
    model.save(out / "model")
    write_dgl_bundle(graph, out / "graph", embeddings=emb)
    model_doc = json.loads((out / "model" / "manifest.json").read_text())
    known = {}
    if features_dir is not None and (Path(features_dir) / "manifest.json").exists():
        known = read_manifest(features_dir)["vectors"]
    feature_dims = _write_features(out / "features", graph, known)
    if emb:
        source = _VectorSource(name=model_doc["name"], modality="graph", output_dim=next(iter(dims.values())),
                               space=f"{model_doc['name']}-emb", settings=model_doc["config"],
                               weights=_weights_id(out / "model"))
        _write_parquet(out / "embeddings", EMB, source, [(t, graph.ids[t], v, np.ones(len(v), bool))
                                                         for t, v in emb.items()])
    if faiss:
        from ctxrec.bundle.faiss_index import ItemIndex

        ItemIndex.build(graph.ids["item"], emb["item"]).save(out / "faiss")
    manifest = {
        "kind": KIND, "format": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": {k: model_doc[k] for k in ("class", "name", "config")},
        "encoders": {name: known.get(name, {"encoder": name, "dim": next(iter(d.values()))})
                     for name, d in feature_dims.items()},
        "dims": {"embeddings": dims, "features": feature_dims},
        "nodes": {t: int(graph.data[t].num_nodes) for t in graph.data.node_types},
        "versions": _versions(ctxrec.__version__, torch.__version__),
        "files": {"model": "model", "graph": "graph", "embeddings": "embeddings", "features": "features",
                  **({"faiss": "faiss"} if faiss else {})},
        **({"privacy": privacy} if privacy else {}),
    }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    os.replace(tmp, out / MANIFEST)  # written last: a folder with it is a complete bundle
    return out


def _privatize(emb: Dict[str, np.ndarray], dp, clip: float, seed: Optional[int], mechanism: str,
               model_name: str) -> Tuple[Dict[str, np.ndarray], dict]:
    """``emb`` with the user vectors clipped and noised once, and the manifest's ``privacy`` entry."""
    from ctxrec.privacy import GaussianMechanism

    if isinstance(dp, GaussianMechanism):
        mech = dp
    else:
        try:
            epsilon, delta = dp
        except (TypeError, ValueError):
            raise ValueError(f"dp must be (epsilon, delta) or a GaussianMechanism, got {dp!r}") from None
        mech = GaussianMechanism(epsilon, delta, clip=clip, mechanism=mechanism, seed=seed)
    if "user" not in emb:
        raise ValueError(f"dp noise is for user embeddings, and {model_name} exports none "
                         f"(it has {sorted(emb) or 'no embeddings'}); export a ContextGNN, or drop dp")
    entry = {**mech.describe(), "covers": ["embeddings/emb.parquet (User rows)", "graph/nodes/user/emb.npy"],
             "not_covered": "model/ (weights, incl. user parameters) and graph/ edges and splits hold the users' "
                            "data without noise; release the noised user embeddings alone to keep the guarantee"}
    return {**emb, "user": mech.apply(emb["user"])}, {"user_embeddings": entry}


def _write_features(folder: Path, graph: "RecGraph", known: Dict[str, dict]) -> Dict[str, Dict[str, int]]:
    """Write every input feature ``x_<name>`` of the graph as ``<folder>/<name>.parquet``;
    returns feature name -> node type -> dimension."""
    arrays = graph_arrays(graph)
    parts: Dict[str, list] = {}
    dims: Dict[str, Dict[str, int]] = {}
    for t, named in arrays.vectors.items():
        for key, mat in named.items():
            parts.setdefault(key[2:], []).append((t, graph.ids[t], mat, arrays.masks[t][key]))
            dims.setdefault(key[2:], {})[t] = int(mat.shape[1])
    for name, rows in parts.items():
        found = set(dims[name].values())
        if len(found) > 1:
            raise ValueError(f"input feature {name!r} has dimensions {dims[name]} per node type; "
                             "a vector name must have one dimension")
        _write_parquet(folder, name, _feature_source(name, found.pop(), known), rows)
    return dims


def _write_parquet(folder: Path, name: str, source: _VectorSource, parts: list) -> None:
    """:func:`~ctxrec.modalities.vector_files.write_vectors` with node types turned into labels."""
    from ctxrec.graph.schema import label_of
    from ctxrec.modalities.vector_files import write_vectors

    write_vectors(folder, name, source, [(label_of(t), ids, mat, mask) for t, ids, mat, mask in parts])


def _fresh_bundle_dir(out: Path) -> Path:
    """``out``, created; an earlier bundle there is removed, other non-empty folders refused."""
    import shutil

    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST).is_file() and not (out / "model").is_dir():
            raise FileExistsError(f"{out} is not empty and holds no ctxrec bundle; export into a new or empty "
                                  "folder (an earlier bundle there is replaced)")
        (out / MANIFEST).unlink(missing_ok=True)  # first, so a half-replaced bundle never looks complete
        for part in ("model", "graph", "embeddings", "features", "faiss"):
            shutil.rmtree(out / part, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def read_bundle_manifest(path: str | Path) -> dict:
    """The bundle's manifest, or a clear error when ``path`` is not a bundle."""
    path = Path(path)
    doc_path = path / MANIFEST
    if not doc_path.is_file():
        raise FileNotFoundError(f"{path} is not a ctxrec bundle (no {MANIFEST}); write one with `ctxrec export "
                                f"--model DIR --out {path}` or export_bundle(model, graph, {str(path)!r})")
    doc = json.loads(doc_path.read_text())
    if doc.get("kind") != KIND:
        raise ValueError(f"{doc_path} is a {doc.get('kind', 'different')!r} manifest, not a {KIND!r} one; "
                         "pass the bundle folder (the one with model/ and graph/)")
    if int(doc.get("format", -1)) > FORMAT_VERSION:
        raise ValueError(f"{doc_path} has format {doc['format']}, newer than this ctxrec reads "
                         f"({FORMAT_VERSION}); upgrade ctxrec")
    return doc


def load_bundle(path: str | Path) -> Tuple["Recommender", "RecGraph"]:
    """Load a bundle written by :func:`export_bundle`: ``(model, graph)``, no store, no training.

    Args:
        path (str | Path): the bundle folder.

    Returns:
        ``(model, graph)``: the model in eval mode, attached to the rebuilt graph.
    """
    from ctxrec.training.recommender import Recommender

    path = Path(path)
    doc = read_bundle_manifest(path)
    graph = read_rec_graph(path / doc["files"]["graph"])
    model = Recommender.load(path / doc["files"]["model"], graph)
    if callable(getattr(model, "eval", None)):
        model.eval()
    return model, graph


def _weights_id(model_dir: Path) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256((model_dir / "weights.safetensors").read_bytes()).hexdigest()[:16]


def _versions(ctxrec_version: str, torch_version: str) -> Dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"ctxrec": ctxrec_version, "torch": torch_version, "numpy": np.__version__}
    for dist in ("torch-geometric", "faiss-cpu"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return found
