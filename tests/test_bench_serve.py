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
