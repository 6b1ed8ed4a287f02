"""``ctxrec bench catalogue``: each model fitted in its own process on a generated catalogue."""
from __future__ import annotations

import json

import pytest

from ctxrec.bench.catalogue import run


@pytest.mark.slow
def test_bench_catalogue_fits_each_model_in_its_own_process(tmp_path):
    figures = run(items=120, users=30, models=("mostpop", "ease", "item_graph"), epochs=1, timeout=300,
                  cache_dir=str(tmp_path / "cache"), out_dir=str(tmp_path))
    saved = json.loads((tmp_path / "catalogue.json").read_text())
    world = saved["_setup"]["world"]
    assert world["items"] == 120 and world["users"] == 30 and world["train_events"] > 0
    for name in ("mostpop", "ease", "item_graph"):
        row = saved[name]
        assert row["fit_s"] > 0 and row["peak_rss_gb"] >= row["loaded_rss_gb"] > 0, row
        assert 0 <= row["val_ndcg@20"] <= 1
    assert figures["ease"] == saved["ease"] and saved["_meta"]["data"]["hash"]
    assert saved["_meta"]["command"].startswith("ctxrec bench catalogue --items 120 --users 30")


def test_bench_catalogue_refuses_unknown_models(tmp_path):
    with pytest.raises(ValueError, match="unknown model row"):
        run(models=("nope",), out_dir=str(tmp_path))
