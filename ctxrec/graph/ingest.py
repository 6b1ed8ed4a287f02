"""``ingest``: seed files -> :func:`~ctxrec.graph.build.build_graph` -> a graph store."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

from ctxrec.graph.build import BuildConfig, BuildResult, build_graph


def ingest(store, interactions: str | Path, items: str | Path, context: str | Path | None = None,
           config: BuildConfig | None = None, reject_path: str | Path | None = None,
           batch_size: int = 50_000, progress: bool = False) -> BuildResult:
    """Validate the seed files, derive the graph and upsert it into ``store``.

    Idempotent: ingesting the same files again changes no counts. Bad rows go to the
    reject file (``result.reject_path``); ``result.summary`` counts loaded and rejected rows.

    Example:
        >>> with open_store("embedded", "graph.db") as store:            # doctest: +SKIP
        ...     res = ingest(store, "interactions.csv", "items.csv", "context.csv")
        >>> res.summary["rows_rejected"]                                  # doctest: +SKIP
        0
    """
    result = build_graph(interactions, items, context, config=config, reject_path=reject_path)
    written: Dict[str, int] = store.ingest(result.tables, batch_size=batch_size, progress=progress)
    result.summary["written"] = sum(written.values())
    return result
