"""Graph stores: one protocol (:class:`GraphStore`), the embedded LadybugDB backend
(the default) and, later, Neo4j. Backends import their database driver only when a
store is opened, so importing this package loads neither ladybug nor neo4j."""
from __future__ import annotations

from pathlib import Path

from ctxrec.graph.stores.base import RELATED_VIA, GraphStore, StoreUnavailable
from ctxrec.graph.stores.ladybug import LadybugStore

__all__ = ["GraphStore", "LadybugStore", "RELATED_VIA", "STORE_KINDS", "StoreUnavailable", "open_store"]

#: ``kind`` choices of :func:`open_store`
STORE_KINDS = ("embedded", "ladybug", "neo4j")


def open_store(kind: str = "embedded", path: str | Path | None = None, **kw) -> GraphStore:
    """Open a graph store.

    Args:
        kind (str): ``"embedded"`` (alias ``"ladybug"``) or ``"neo4j"`` (default: ``"embedded"``).
        path (str | Path, optional): the embedded store's folder; ``None`` keeps it in
            memory (default: None).
        **kw: passed to the store, e.g. ``read_only=True``.

    Example:
        >>> with open_store("embedded", "graph.db") as store:  # doctest: +SKIP
        ...     store.counts()["Item"]
        1682
    """
    if kind in ("embedded", "ladybug"):
        return LadybugStore(path, **kw)
    if kind == "neo4j":
        from ctxrec.graph.stores.neo4j import Neo4jStore

        if path is not None:
            raise ValueError(f"kind='neo4j' takes no path (got {str(path)!r}); pass uri=... or set NEO4J_URI")
        return Neo4jStore(**kw)
    raise ValueError(f"kind={kind!r} is not one of {list(STORE_KINDS)}")
