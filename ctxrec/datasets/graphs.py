"""Ready-made :class:`~ctxrec.data.RecGraph` objects, built in memory (no store).

Benchmarks, ``python -m ctxrec.training`` and notebooks use these so that every process
builds the identical graph from a ``(config, seed)`` without a database.
"""
from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

from ctxrec.datasets.synthetic import SIZES, World, WorldConfig, generate_world


def synthetic_graph(config: Union[WorldConfig, str] = "small", seed: Optional[int] = None,
                    features: Sequence[str] = (), cache_dir: Union[str, Path, None] = None,
                    split=None) -> Tuple[World, object]:
    """A synthetic world and its RecGraph, optionally with text features.

    Args:
        config: a :class:`WorldConfig` or a name in :data:`SIZES`.
        seed: overrides the config's seed.
        features: encoders whose vectors to attach; only ``"text"`` (items and context
            descriptions) is available without media files (default: none).
        cache_dir: feature cache folder (default: none).
        split: a :class:`~ctxrec.data.SplitConfig` (default: the temporal split).

    Returns:
        ``(world, graph)``; ``world.preference`` is the ground truth for an Oracle.
    """
    from ctxrec.graph.build import build_graph
    from ctxrec.graph.export import to_rec_graph
    from ctxrec.modalities.features import encode_tables

    cfg = SIZES[config] if isinstance(config, str) else config
    cfg = replace(cfg, images=False, audio=False, **({"seed": seed} if seed is not None else {}))
    unknown = sorted(set(features) - {"text"})
    if unknown:
        raise ValueError(f"synthetic_graph renders no media, so features {unknown} are unavailable; use ('text',)")
    world = generate_world(cfg)
    with tempfile.TemporaryDirectory(prefix="ctxrec-world-") as tmp:
        files = world.write(tmp)  # build_graph reads files; no images or audio are rendered
        tables = build_graph(files["interactions"], files["items"], files["context"]).tables
    vectors = {}
    for name in features:
        vectors.update(encode_tables(tables, name, cache_dir=cache_dir))
    return world, to_rec_graph(tables, vectors, split)
