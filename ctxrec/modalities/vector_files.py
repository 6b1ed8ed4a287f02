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
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import pandas as pd

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


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
    return json.loads(path.read_text())


def read_vectors(folder: str | Path, name: str, label: str | None = None) -> pd.DataFrame:
    """``label, id, present, vector`` rows of ``<folder>/<name>.parquet`` (one label if given).

    ``vector`` holds float32 arrays; ``np.stack(frame["vector"])`` gives the matrix.
    """
    import pyarrow.parquet as pq

    entry = read_manifest(folder)["vectors"].get(name)
    if entry is None:
        raise KeyError(f"{Path(folder) / MANIFEST} has no vectors named {name!r}; it has "
                       f"{sorted(read_manifest(folder)['vectors'])}")
    table = pq.read_table(Path(folder) / entry["file"],
                          filters=[("label", "=", label)] if label is not None else None)
    dim = entry["dim"]
    flat = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    mat = flat.astype(np.float32, copy=False).reshape(-1, dim)
    frame = table.drop(["vector"]).to_pandas()
    frame["vector"] = list(mat)
    return frame


def load_encoder(folder: str | Path, name: str):
    """Rebuild the encoder that wrote vectors ``name`` (registry name + saved config)."""
    from ctxrec.modalities.registry import get_encoder

    entry = read_manifest(folder)["vectors"].get(name)
    if entry is None:
        raise KeyError(f"{Path(folder) / MANIFEST} has no vectors named {name!r}")
    return get_encoder(entry["encoder"], **entry["config"])
