"""Shared fixtures: small generated data with known answers (never the real data set)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# tests/dgl need DGL (torch <= 2.2.1): `make test-dgl` runs them in .venv-dgl, not in this suite
collect_ignore = ["dgl"]


def write_board(folder: Path, context_board: bool, n_users: int = 40, n_items: int = 40, seed: int = 0) -> dict:
    """Seed files with a known answer.

    ``context_board=False`` (checkerboard): even users consume only items of group A,
    odd users only group B. ``context_board=True``: every user consumes group A on
    weekday mornings and group B on Saturday evenings.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    half = n_items // 2
    items = pd.DataFrame({
        "item_id": [f"i{j:03d}" for j in range(n_items)],
        "name": [f"{'Sunny' if j < half else 'Quiet'} thing {j}" for j in range(n_items)],
        "description": ["loud upbeat morning song" if j < half else "calm quiet evening song" for j in range(n_items)],
        "category": ["upbeat" if j < half else "calm" for j in range(n_items)],
        "price": rng.uniform(1, 20, n_items).round(2),
    })
    rows = []
    base = pd.Timestamp("2024-01-01")  # a Monday
    for u in range(n_users):
        for s in range(8):
            if context_board:
                morning = s % 2 == 0
                group = 0 if morning else 1
                day = base + pd.Timedelta(days=7 * (s // 2) + (0 if morning else 5))
                start = day + pd.Timedelta(hours=8 if morning else 20)
            else:
                group = u % 2
                start = base + pd.Timedelta(days=s, hours=10 + (u % 9))
            picks = rng.choice(half, size=4, replace=False) + group * half
            for pos, j in enumerate(picks):
                rows.append({"user_id": f"u{u:03d}", "action": "view", "item_id": f"i{j:03d}",
                             "time": (start + pd.Timedelta(minutes=3 * pos)).isoformat(),
                             "location": "Springfield" if u % 3 else "Shelbyville"})
    inter = pd.DataFrame(rows)
    ctx = pd.DataFrame({"user_id": [f"u{u:03d}" for u in range(n_users)],
                        "location": ["Springfield" if u % 3 else "Shelbyville" for u in range(n_users)],
                        "time_in_site": 10.0, "shopping_cart": ""})
    paths = {"interactions": folder / "interactions.csv", "items": folder / "items.csv", "context": folder / "context.csv"}
    inter.to_csv(paths["interactions"], index=False)
    items.to_csv(paths["items"], index=False)
    ctx.to_csv(paths["context"], index=False)
    return paths


@pytest.fixture(scope="session")
def checkerboard(tmp_path_factory):
    from ctxrec.graph.build import build_graph
    from ctxrec.graph.export import to_rec_graph

    paths = write_board(tmp_path_factory.mktemp("checker"), context_board=False)
    return to_rec_graph(build_graph(paths["interactions"], paths["items"], paths["context"]).tables)


@pytest.fixture(scope="session")
def context_board(tmp_path_factory):
    from ctxrec.graph.build import build_graph
    from ctxrec.graph.export import to_rec_graph

    paths = write_board(tmp_path_factory.mktemp("ctxboard"), context_board=True)
    return to_rec_graph(build_graph(paths["interactions"], paths["items"], paths["context"]).tables)


#: what scripts/neo4j.sh starts, unless the environment says otherwise
SERVER = {"uri": os.environ.get("NEO4J_URI", "bolt://127.0.0.1:7687"),
          "user": os.environ.get("NEO4J_USER", "neo4j"),
          "password": os.environ.get("NEO4J_PASSWORD", "ctxrec-test-password")}


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Neo4j tests cannot run in CI: {reason}")
    pytest.skip(f"{reason} (with CI=true this fails instead)")


@pytest.fixture(scope="session")
def neo4j_server():
    """Connection arguments of a reachable Neo4j, else a skip (locally) or a failure (CI=true).

    Tests that use it clear that database.
    """
    try:
        from ctxrec.graph.stores.neo4j import Neo4jStore, StoreUnavailable

        Neo4jStore(**SERVER, max_retries=1).close()
    except ImportError as e:
        _unavailable(str(e))
    except StoreUnavailable as e:
        _unavailable(f"no Neo4j server: {e}")
    return dict(SERVER)
