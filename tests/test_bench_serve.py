"""``ctxrec bench serve`` on a small world: the server runs, every endpoint answers, the figures land."""
from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_bench_serve_small(tmp_path):
    from ctxrec.bench.serve import run

    figures = run(items=300, users=30, requests=40, concurrency=4, out_dir=str(tmp_path), repeats=2)
    saved = json.loads((tmp_path / "serve.json").read_text())
    for endpoint in ("/recommend", "/recommend (with reasons)", "/items/{id}/related"):
        entry = saved[endpoint]
        assert entry["errors"] == 0
        assert entry["requests"] == (50 if endpoint.endswith("(with reasons)") else 40)
        assert 0 < entry["p50_ms"] <= entry["p99_ms"]
        assert len(entry["rounds"]) == (1 if endpoint.endswith("(with reasons)") else 2)
    assert saved["_batching"]["requests"] >= 2 * 40 and saved["_batching"]["batches"] >= 1
    assert figures["_setup"]["items"] == 300
    # the world of 30 users and 300 items (seed 0) through the embedded store and its temporal split;
    # counts from this run, fixed by the generator and the split
    assert saved["_setup"]["train_events"] == 1084
    assert saved["_meta"]["split"]["events"] == {"train": 1084, "val": 86, "test": 233}
    assert len(saved["_meta"]["data"]["hash"]) == 64 and "30 users, 300 items" in saved["_meta"]["data"]["source"]
    assert saved["_meta"]["command"] == ("ctxrec bench serve --items 300 --users 30 --requests 40 --concurrency 4 "
                                         "--repeats 2")
