"""A small served model for the fuzz suites (``test_injection.py``, ``test_schemathesis.py``):
the tiny synthetic world in an embedded store, text + audio item vectors, a ContextGNN
(gated fusion, session encoder) trained for one epoch, the real FastAPI app over it.

Built once per test session (both suites share it) and closed at the end. Also holds the
store snapshot both suites compare before and after each example.
"""
from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pandas as pd

from ctxrec.graph import schema

API_KEY = "fuzz-key-123"
_BUILT: dict = {}


def served_app(tmp_path_factory) -> SimpleNamespace:
    """``SimpleNamespace(store, service, app, graph, files, users, items)``, built on first use."""
    if "app" in _BUILT:
        return _BUILT["app"]
    from ctxrec.datasets.synthetic import generate_world
    from ctxrec.data import SplitConfig
    from ctxrec.graph.export import export_pyg
    from ctxrec.graph.ingest import ingest
    from ctxrec.graph.stores import open_store
    from ctxrec.modalities.features import encode_store
    from ctxrec.serve.app import create_app
    from ctxrec.serve.service import RecService
    from ctxrec.training.models import ContextGNN

    root = tmp_path_factory.mktemp("fuzz-served")
    files = generate_world("tiny").write(root / "world")
    store = open_store("embedded", root / "graph.db")
    ingest(store, files["interactions"], files["items"], files["context"])
    for encoder in ("text", "audio"):
        encode_store(store, encoder, cache_dir=root / "cache", out_dir=root / "features")
    graph = export_pyg(store, SplitConfig(session_len=4))
    model = ContextGNN(hidden=8, features=("text", "audio"), fusion="gated", session_len=4,
                       train={"epochs": 1, "seed": 0}).fit(graph)
    service = RecService(store, model, features=root / "features")
    _BUILT["app"] = SimpleNamespace(store=store, service=service, app=create_app(service, api_key=API_KEY),
                                    graph=graph, files=files, users=[str(u) for u in graph.ids["user"]],
                                    items=[str(i) for i in graph.ids["item"]])
    return _BUILT["app"]


def close_served() -> None:
    built = _BUILT.pop("app", None)
    if built is not None:
        built.store.close()


# ------------------------------------------------------------------ snapshots
def _frame_rows(frame: pd.DataFrame) -> dict:
    """Rows keyed by their id (nodes) or (src, dst) (edges), values with every null as None."""
    keys = ["id"] if "id" in frame.columns else ["src", "dst"]
    out = {}
    for row in frame.itertuples(index=False):
        rec = row._asdict()
        key = tuple(rec[k] for k in keys)
        out[key if len(key) > 1 else key[0]] = tuple(
            None if v is None or (not isinstance(v, str) and pd.isna(v)) else v for v in rec.values())
    return out


def snapshot(store, prefix: str = "") -> dict:
    """Everything in ``store`` whose id (nodes) or either end (edges) starts with ``prefix``:
    ``{label or type: {key: row}}``, plus ``("vec", label, name): {id: sha256 of the vector}``.

    ``prefix=""`` is the whole store. A non-empty prefix confines the snapshot to one test's
    nodes on a server that others use too.
    """
    snap = {}
    for label in schema.NODES:
        rows = _frame_rows(store.read_nodes(label))
        snap[label] = {k: v for k, v in rows.items() if k.startswith(prefix)}
        for name in store.vector_names(label):
            ids, mat = store.read_vectors(label, name)
            snap[("vec", label, name)] = {i: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()
                                          for i, v in zip(ids, mat) if i.startswith(prefix)}
    for rel in schema.RELS:
        rows = _frame_rows(store.read_edges(rel))
        snap[rel] = {k: v for k, v in rows.items() if k[0].startswith(prefix) or k[1].startswith(prefix)}
    return snap


def checksum(snap: dict) -> str:
    """One sha256 over a :func:`snapshot` (order-independent)."""
    h = hashlib.sha256()
    for part in sorted(snap, key=repr):
        h.update(repr(part).encode())
        for key in sorted(snap[part], key=repr):
            h.update(repr((key, snap[part][key])).encode("utf-8", "backslashreplace"))
    return h.hexdigest()


def changes(before: dict, after: dict) -> dict:
    """``{part: {"added": keys, "removed": keys, "changed": keys}}`` for the parts that differ."""
    out = {}
    for part in set(before) | set(after):
        b, a = before.get(part, {}), after.get(part, {})
        diff = {"added": sorted(set(a) - set(b), key=repr), "removed": sorted(set(b) - set(a), key=repr),
                "changed": sorted((k for k in set(a) & set(b) if a[k] != b[k]), key=repr)}
        if any(diff.values()):
            out[part] = diff
    return out


def report_counts(request, tool: str, counts: dict, extra: str = "") -> None:
    """Print how many examples each test or operation ran (the figures RELIABILITY.md quotes),
    past pytest's output capture."""
    tw = request.config.pluginmanager.get_plugin("terminalreporter")
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        tw.write_line("")
        for name, n in sorted(counts.items()):
            tw.write_line(f"{tool} examples: {name}: {n}")
        tw.write_line(f"{tool} examples: total: {sum(counts.values())}{extra}")
