"""Encode what the store holds and write the vectors back.

A text encoder encodes items and the text descriptions of context nodes (time slots,
places, categories) so they share one space; an image or audio encoder encodes the
items' ``image_path`` / ``audio_path``. Vectors are written under the encoder's
modality name (``text``, ``image``, ``audio``), which is what the PyG export and the
models' ``features=`` refer to.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import pandas as pd

#: node label -> how its text is built from its properties
TEXT_OF = {
    "Item": lambda f: (f["name"].fillna("") + " (" + f["category"].fillna("") + "): " + f["description"].fillna(""))
    .str.strip(" ():"),
    "Time": lambda f: f["description"],
    "Place": lambda f: f["description"],
    "Category": lambda f: f["description"],
}


def encode_store(store, encoder=None, cache_dir: str | Path | None = None,
                 labels: Optional[Sequence[str]] = None, batch_size: Optional[int] = None,
                 progress: bool = False, name: Optional[str] = None,
                 out_dir: str | Path | None = None) -> Dict[str, int]:
    """Encode nodes of ``store`` with ``encoder`` and write the vectors as ``name``.

    Args:
        store: a :class:`~ctxrec.graph.stores.GraphStore`.
        encoder: an :class:`~ctxrec.modalities.base.Encoder` or a registered name
            (default: ``"text"``, the offline all-MiniLM-L6-v2).
        cache_dir: content-hash feature cache folder; a rerun encodes nothing (default: no cache).
        labels: node labels to encode (default: items and context nodes for text, items otherwise).
        batch_size: encoder batch size (default: the encoder's).
        progress: show progress bars (default: False).
        name: vector name to write (default: the encoder's modality).
        out_dir: also write ``<out_dir>/<name>.parquet`` and a ``manifest.json`` (encoder,
            weights id, dim, preprocessing); see :mod:`ctxrec.modalities.vector_files`.

    Returns:
        Rows written per label, ``masked`` (rows without a usable input), and ``encoded`` /
        ``cached`` counts when a cache is used.
    """
    encoder, labels, name, cache = _setup(encoder, labels, name, cache_dir)
    written: Dict[str, int] = {"masked": 0}
    parts = []
    for label in labels:
        nodes = store.read_nodes(label)
        if nodes.empty:
            written[label] = 0
            continue
        vecs, mask = encode_nodes(label, nodes, encoder, cache, batch_size, progress)
        written[label] = store.write_vectors(label, name, nodes["id"].tolist(), vecs.numpy())
        written["masked"] += int((~mask).sum())
        parts.append((label, nodes["id"].tolist(), vecs.numpy(), mask.numpy()))
    if out_dir is not None:
        from ctxrec.modalities.vector_files import write_vectors

        write_vectors(out_dir, name, encoder, parts)
    if cache is not None:
        written["encoded"], written["cached"] = cache.encoded, cache.hits
    return written


def encode_tables(tables, encoder=None, cache_dir: str | Path | None = None,
                  labels: Optional[Sequence[str]] = None, batch_size: Optional[int] = None,
                  progress: bool = False, name: Optional[str] = None) -> Dict[Tuple[str, str], tuple]:
    """Like :func:`encode_store`, for :class:`~ctxrec.graph.tables.GraphTables` held in memory.

    Returns:
        ``{(label, name): (ids, float32 [N, d])}``, the ``vectors`` argument of
        :func:`~ctxrec.graph.export.to_rec_graph`.
    """
    encoder, labels, name, cache = _setup(encoder, labels, name, cache_dir)
    out = {}
    for label in labels:
        nodes = tables.nodes.get(label)
        if nodes is None or nodes.empty:
            continue
        vecs, _ = encode_nodes(label, nodes, encoder, cache, batch_size, progress)
        out[(label, name)] = (nodes["id"].astype(str).to_numpy(), vecs.numpy())
    return out


def encode_nodes(label: str, nodes: pd.DataFrame, encoder, cache=None, batch_size: Optional[int] = None,
                 progress: bool = False):
    """Encode one label's node frame: ``([N, d] float32, [N] bool present)``.

    A text encoder reads the text :data:`TEXT_OF` builds; others read their input column.
    """
    from ctxrec.modalities.base import is_missing

    if encoder.modality == "text":
        column: pd.Series = TEXT_OF[label](nodes)
    elif encoder.input_column in nodes:
        column = nodes[encoder.input_column]
    else:
        raise ValueError(f"{label} nodes have no column {encoder.input_column!r} for encoder {encoder.name!r}")
    inputs = [None if is_missing(v) else v for v in column]
    if cache is not None:
        return cache.encode(encoder, inputs, batch_size=batch_size, progress=progress)
    return encoder.encode_all(inputs, batch_size=batch_size, progress=progress)


def _setup(encoder, labels, name, cache_dir):
    from ctxrec.modalities.cache import FeatureCache
    from ctxrec.modalities.registry import get_encoder

    if encoder is None or isinstance(encoder, str):
        encoder = get_encoder(encoder or "text")
    text = encoder.modality == "text"
    labels = tuple(labels or (("Item", "Time", "Place", "Category") if text else ("Item",)))
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    return encoder, labels, name or encoder.modality, cache
