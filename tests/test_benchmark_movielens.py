"""``ctxrec benchmark movielens`` end to end on a generated folder in the ml-100k layout."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ctxrec.cli import app
from tests.ml100k_fixture import write_ml100k
from tests.test_image_encoder import TINY_CFG

runner = CliRunner()


@pytest.mark.slow
def test_benchmark_movielens_writes_table_json_plots_and_markdown(tmp_path):
    data = write_ml100k(tmp_path / "ml-100k")
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\nkept text\n")
    image = json.dumps({"arch": "ctxrec-tiny-clip", "arch_config": TINY_CFG, "device": "cpu"})
    args = ["benchmark", "movielens", "--data", str(data), "--protocol", "temporal,cold_items", "--seeds", "0,1",
            "--models", "mostpop,itemknn,content_knn,context_gnn", "--epochs", "2", "--image-options", image,
            "--out", str(tmp_path / "out"), "--markdown", str(md), "--cache", str(tmp_path / "cache")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    for protocol in ("temporal", "cold_items"):
        figures = json.loads((tmp_path / "out" / f"movielens_{protocol}.json").read_text())
        for model in ("mostpop", "itemknn", "content_knn", "context_gnn"):
            entry = figures[model]
            for key in ("ndcg@20", "recall@10", "map@20", "f1@20", "coverage@20", "novelty@20", "gini@20", "train_s"):
                assert key in entry and entry[key] >= 0, (protocol, model, key)
            assert len(entry["per_seed"]) == 2
            assert set(entry["recall@20_by_popularity"]) == {"head", "mid", "tail"}
        assert figures["_setup"]["protocol"] == protocol
        assert figures["_meta"]["command"].startswith("ctxrec benchmark movielens")
        assert len(figures["_ab_replay"]) == 2
        assert (tmp_path / "out" / f"movielens_{protocol}_metrics.png").stat().st_size > 0
        assert (tmp_path / "out" / f"movielens_{protocol}_popularity.png").stat().st_size > 0
    cold = json.loads((tmp_path / "out" / "movielens_cold_items.json").read_text())
    assert cold["_setup"]["split"]["test"] > 0 and cold["_setup"]["split"]["test_items"]
    text = md.read_text()
    assert "kept text" in text and text.count("<!-- movielens:temporal:begin -->") == 1
    assert "| context_gnn |" in text
    # a rerun replaces its section instead of adding another
    again = runner.invoke(app, [*args[:5], "temporal", *args[6:]])
    assert again.exit_code == 0, again.output
    assert md.read_text().count("<!-- movielens:temporal:begin -->") == 1


def test_benchmark_sweep_scores_validation_only(tmp_path):
    data = write_ml100k(tmp_path / "ml-100k")
    image = json.dumps({"arch": "ctxrec-tiny-clip", "arch_config": TINY_CFG, "device": "cpu"})
    result = runner.invoke(app, ["benchmark", "sweep", "--data", str(data), "--configs", '[{}, {"reg": 0.01}]',
                                 "--epochs", "2", "--image-options", image, "--out", str(tmp_path / "out"),
                                 "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    figures = json.loads((tmp_path / "out" / "movielens_temporal_sweep_context_gnn.json").read_text())
    assert [r["config"] for r in figures["rows"]] == [{}, {"reg": 0.01}]
    assert all(0 <= r["val_ndcg@20"] <= 1 and r["best_epoch"] in (0, 1) for r in figures["rows"])
    assert all(set(r) == {"config", "val_ndcg@20", "train_s", "best_epoch"} for r in figures["rows"])  # no test figure
    # a second sweep adds its rows (a setting run again replaces its row) and its command
    again = runner.invoke(app, ["benchmark", "sweep", "--data", str(data), "--configs", '[{"context": false}, {}]',
                                "--epochs", "2", "--image-options", image, "--out", str(tmp_path / "out"),
                                "--cache", str(tmp_path / "cache")])
    assert again.exit_code == 0, again.output + repr(again.exception)
    figures = json.loads((tmp_path / "out" / "movielens_temporal_sweep_context_gnn.json").read_text())
    assert [r["config"] for r in figures["rows"]] == [{"reg": 0.01}, {"context": False}, {}]
    assert len(figures["_commands"]) == 2
    bad = runner.invoke(app, ["benchmark", "sweep", "--data", str(data), "--configs", '{"reg": 0.01}'])
    assert bad.exit_code != 0 and "JSON list" in bad.output


def test_benchmark_movielens_bad_arguments(tmp_path):
    result = runner.invoke(app, ["benchmark", "movielens", "--data", str(tmp_path)])
    assert result.exit_code != 0 and "no u.data" in result.output
    data = write_ml100k(tmp_path / "ml")
    result = runner.invoke(app, ["benchmark", "movielens", "--data", str(data), "--protocol", "leave-one-out"])
    assert result.exit_code != 0 and "choose from temporal" in result.output
