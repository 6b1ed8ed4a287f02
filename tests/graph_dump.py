"""Whole-store comparisons for the crash and fault tests: a dump is every node (label, id,
properties) and every edge (type, endpoints, properties), sorted, as the stores read them."""
from __future__ import annotations

import pandas as pd


def dump(store) -> dict:
    """``{label or relationship type: frame}`` of everything in ``store``, sorted by key."""
    tables = store.read_subgraph()
    return {**tables.nodes, **tables.edges}


def rows(dumped: dict) -> int:
    return sum(len(f) for f in dumped.values())


def assert_same(got: dict, want: dict) -> None:
    """Identical node and edge sets with identical properties."""
    assert list(got) == list(want)
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)


def assert_part_of(part: dict, whole: dict) -> None:
    """Every node and edge of ``part`` is in ``whole`` with the same properties: no half-written
    row, no duplicate, nothing that a clean ingestion would not have written."""
    for name, frame in part.items():
        keys = ["id"] if "id" in frame.columns else ["src", "dst"]
        got = frame.set_index(keys)
        assert got.index.is_unique, f"{name}: duplicate keys"
        ref = whole[name].set_index(keys)
        extra = got.index.difference(ref.index)
        assert extra.empty, f"{name}: {len(extra)} rows a clean run does not have, e.g. {list(extra[:3])}"
        pd.testing.assert_frame_equal(got, ref.loc[got.index], check_dtype=False, obj=name)
