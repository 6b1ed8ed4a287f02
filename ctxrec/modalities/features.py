"""Encode what the store holds and write the vectors back: item text, and the text
descriptions of context nodes (time slots, places, categories), all through one
text encoder so items and context share a space."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import pandas as pd

#: node label -> how its text is built from its properties
TEXT_OF = {
    "Item": lambda f: (f["name"].fillna("") + " (" + f["category"].fillna("") + "): " + f["description"].fillna(""))
    .str.strip(" ():"),
    "Time": lambda f: f["description"],
    "Place": lambda f: f["description"],
    "Category": lambda f: f["description"],
}


def encode_store_text(store, encoder=None, cache_dir: str | Path | None = None,
                      labels: Sequence[str] = ("Item", "Time", "Place", "Category"),
                      batch_size: int = 64, progress: bool = False, name: str = "text") -> Dict[str, int]:
    """Encode the text of ``labels`` nodes in ``store`` and write them as vectors ``name``.

    Args:
        store: a :class:`~ctxrec.graph.stores.GraphStore`.
        encoder: a text :class:`~ctxrec.modalities.base.Encoder` (default: ``get_encoder("text")``,
            the offline all-MiniLM-L6-v2).
        cache_dir: content-hash feature cache folder; a rerun encodes nothing (default: no cache).
        labels: node labels to encode (default: items and context nodes).
        batch_size: encoder batch size (default: 64).
        progress: show progress bars (default: False).
        name: vector name to write (default: ``"text"``).

    Returns:
        Rows written per label, and ``encoded`` / ``cached`` counts when a cache is used.
    """
    from ctxrec.modalities.cache import FeatureCache
    from ctxrec.modalities.registry import get_encoder

    encoder = encoder or get_encoder("text")
    cache: Optional[FeatureCache] = FeatureCache(cache_dir) if cache_dir is not None else None
    written: Dict[str, int] = {}
    for label in labels:
        nodes = store.read_nodes(label)
        if nodes.empty:
            written[label] = 0
            continue
        texts: pd.Series = TEXT_OF[label](nodes)
        inputs = [t if isinstance(t, str) and t.strip() else None for t in texts]
        if cache is not None:
            vecs, _mask = cache.encode(encoder, inputs, batch_size=batch_size, progress=progress)
        else:
            vecs, _mask = encoder.encode_all(inputs, batch_size=batch_size, progress=progress)
        written[label] = store.write_vectors(label, name, nodes["id"].tolist(), vecs.numpy())
    if cache is not None:
        written["encoded"], written["cached"] = cache.encoded, cache.hits
    return written
