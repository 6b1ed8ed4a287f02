"""Encoded vectors on disk: one Parquet file per vector name plus a ``manifest.json``.

``<folder>/<name>.parquet`` has columns ``label`` (node label), ``id``, ``present`` (False
where the input was missing or unreadable; the vector is zeros then) and ``vector``
(fixed-size list of float32). ``<folder>/manifest.json`` says, per vector name, which
encoder made it (registry name, class, config, weights id, dim, space, preprocessing),
so other systems can read the vectors and ctxrec can rebuild the encoder for queries
(:func:`load_encoder`).

Example:
    >>> encode_store(store, "text", out_dir="features")                   # doctest: +SKIP
    >>> frame = read_vectors("features", "text")                          # doctest: +SKIP
    >>> enc = load_encoder("features", "text")  # embeds queries alike   # doctest: +SKIP
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import pandas as pd

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class VectorFileWarning(UserWarning):
    """Some rows of a vector file were unusable (non-finite) and were read as missing."""


def write_vectors(folder: str | Path, name: str, encoder, parts: Sequence[tuple]) -> Path:
    """Write ``<folder>/<name>.parquet`` and record ``name`` in the manifest.

    Args:
        folder: output folder (created).
        name: vector name (``text``, ``image``, ...).
        encoder: the :class:`~ctxrec.modalities.base.Encoder` that made the vectors.
        parts: ``(label, ids, float32 [N, d], bool [N] present)`` per node label.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dim = int(encoder.output_dim)
    labels, ids, mats, present = [], [], [], []
    for label, part_ids, mat, mask in parts:
        mat = np.asarray(mat, dtype=np.float32).reshape(len(part_ids), dim)
        labels += [label] * len(part_ids)
        ids += [str(i) for i in part_ids]
        mats.append(mat)
        present.append(np.asarray(mask, dtype=bool))
    flat = np.concatenate(mats).ravel() if mats else np.zeros(0, np.float32)
    table = pa.table({
        "label": pa.array(labels, pa.string()),
        "id": pa.array(ids, pa.string()),
        "present": pa.array(np.concatenate(present) if present else np.zeros(0, bool)),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim),
    })
    path = folder / f"{name}.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # a reader never sees half a file
    config = encoder.config()
    entry = {
        "file": path.name,
        "encoder": encoder.name,
        "class": f"{type(encoder).__module__}:{type(encoder).__qualname__}",
        "modality": encoder.modality,
        "input_column": encoder.input_column,
        "weights_id": encoder.weights_id(),
        "dim": dim,
        "space": encoder.space,
        "preprocessing": encoder.cache_config(),
        "config": config,
        "rows": {label: int(len(part_ids)) for label, part_ids, _, _ in parts},
        "present": int(sum(int(p.sum()) for p in present)),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    manifest = read_manifest(folder) if (folder / MANIFEST).exists() else {"format": FORMAT_VERSION, "vectors": {}}
    manifest["vectors"][name] = entry
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    os.replace(tmp, folder / MANIFEST)
    return path


def read_manifest(folder: str | Path) -> Dict:
    """The folder's manifest, or a FileNotFoundError that says how to make one."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"No {MANIFEST} in {Path(folder)}; write vectors there with "
                                "`ctxrec encode --out FOLDER` or encode_store(..., out_dir=FOLDER)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e}); delete it and rerun `ctxrec encode --out "
                         f"{Path(folder)}` for each encoder") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("vectors"), dict):
        raise ValueError(f"{path}: not a ctxrec vector manifest (no 'vectors' mapping); delete it and rerun "
                         f"`ctxrec encode --out {Path(folder)}` for each encoder")
    return manifest


def read_vectors(folder: str | Path, name: str, label: str | None = None) -> pd.DataFrame:
    """``label, id, present, vector`` rows of ``<folder>/<name>.parquet`` (one label if given).

    ``vector`` holds float32 arrays; ``np.stack(frame["vector"])`` gives the matrix. A row
    with NaN/inf values is read as missing (zeros, ``present`` False) with a
    :class:`VectorFileWarning` naming it; a file that cannot be read, or whose vectors do
    not have the manifest's dimension, raises ``ValueError`` naming the file and the fix.
    """
    import pyarrow.parquet as pq

    entry = read_manifest(folder)["vectors"].get(name)
    if entry is None:
        raise KeyError(f"{Path(folder) / MANIFEST} has no vectors named {name!r}; it has "
                       f"{sorted(read_manifest(folder)['vectors'])}")
    path = Path(folder) / entry["file"]
    fix = f"rerun `ctxrec encode --encoder {entry.get('encoder', name)} --out {Path(folder)}` to rewrite it"
    try:
        table = pq.read_table(path, filters=[("label", "=", label)] if label is not None else None)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise ValueError(f"{path}: cannot be read as Parquet ({e}); {fix}") from None
    missing = [c for c in ("label", "id", "present", "vector") if c not in table.column_names]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; {fix}")
    dim = int(entry["dim"])
    column = table.column("vector").combine_chunks()
    width = getattr(column.type, "list_size", None)
    if width != dim:
        raise ValueError(f"{path}: column 'vector' holds {width or 'variable-length'} values per row, the manifest "
                         f"says dim {dim}; {fix}")
    mat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)
    frame = table.drop(["vector"]).to_pandas()
    bad = ~np.isfinite(mat).all(axis=1)
    if bad.any():  # one bad row must not cost the good ones: mask it like a missing input
        rows = np.flatnonzero(bad)
        shown = ", ".join(f"row {r + 1} ({frame['label'].iat[r]} {frame['id'].iat[r]!r})" for r in rows[:3])
        warnings.warn(f"{path}: column 'vector' has non-finite values (NaN/inf) in {len(rows)} row(s): {shown}"
                      f"{' ...' if len(rows) > 3 else ''}; read as missing (zeros, present False); {fix}",
                      VectorFileWarning, stacklevel=2)
        mat = mat.copy()
        mat[bad] = 0.0
        frame["present"] = frame["present"].to_numpy() & ~bad
    frame["vector"] = list(mat)
    return frame


def load_encoder(folder: str | Path, name: str):
    """Rebuild the encoder that wrote vectors ``name`` (registry name + saved config)."""
    from ctxrec.modalities.registry import get_encoder

    entry = read_manifest(folder)["vectors"].get(name)
    if entry is None:
        raise KeyError(f"{Path(folder) / MANIFEST} has no vectors named {name!r}")
    return get_encoder(entry["encoder"], **entry["config"])
