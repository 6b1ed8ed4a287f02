"""``ctxrec benchmark movielens`` end to end on a generated folder in the ml-100k layout."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ctxrec.bench.ablation import ABLATIONS
from ctxrec.cli import app
from tests.ml100k_fixture import write_ml100k
from tests.test_image_encoder import TINY_CFG

runner = CliRunner()


MODELS = ("mostpop", "itemknn", "content_knn", "context_gnn", "item_graph")


@pytest.mark.slow
def test_benchmark_movielens_writes_both_protocols_json_and_markdown(tmp_path):
    data = write_ml100k(tmp_path / "ml-100k")
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\nkept text\n")
    image = json.dumps({"arch": "ctxrec-tiny-clip", "arch_config": TINY_CFG, "device": "cpu", "weights": "random"})
    args = ["benchmark", "movielens", "--data", str(data), "--protocol", "temporal,cold_items", "--seeds", "0,1",
            "--models", ",".join(MODELS), "--epochs", "2", "--image-options", image,
            "--out", str(tmp_path / "out"), "--markdown", str(md), "--cache", str(tmp_path / "cache")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    rows = ["mostpop", "itemknn", *(f"content_knn_{f}{c}" for f in ("text", "image") for c in ("", "_mean", "_whiten")),
            "context_gnn", "item_graph"]
    for protocol in ("temporal", "cold_items"):
        figures = json.loads((tmp_path / "out" / f"movielens_{protocol}.json").read_text())
        for eval_protocol in ("per_user", "per_context"):
            assert list(figures[eval_protocol]) == rows
            for model in rows:
                entry = figures[eval_protocol][model]
                assert len(entry["per_seed"]) == 2 and all(r["refit"] for r in entry["per_seed"])
                assert set(entry["recall@20_by_popularity"]) == {"head", "mid", "tail"}
        # one query per user with held-out items under per_user, at least as many under per_context
        users = figures["per_user"]["mostpop"]["per_seed"][0]["queries"]
        assert 0 < users <= figures["per_context"]["mostpop"]["per_seed"][0]["queries"]
        assert figures["_setup"]["protocol"] == protocol and figures["_setup"]["refit"] is True
        assert figures["_meta"]["command"].startswith("ctxrec benchmark movielens")
        assert len(figures["_meta"]["data"]["hash"]) == 64
        # item_graph and context_gnn against the best other model on validation (no EASE row here):
        # 2 graph models x 2 seeds x 2 protocols
        assert len(figures["_ab_replay"]) == 2 * 2 * 2
        assert {r["model"] for r in figures["_ab_replay"]} == {"item_graph", "context_gnn"}
        assert figures["per_user"]["item_graph"]["per_seed"][0]["params"]["features"] in (["text", "image"], ["text"])
        for plot in ("metrics", "popularity"):
            assert (tmp_path / "out" / f"movielens_{protocol}_{plot}.png").stat().st_size > 0
    text = md.read_text()
    assert "kept text" in text and text.count("<!-- movielens_temporal:begin -->") == 1
    assert "| context_gnn |" in text and "Test, protocol `per_user`" in text and "Test, protocol `per_context`" in text
    # a rerun replaces its section instead of adding another
    again = runner.invoke(app, [*args[:5], "temporal", *args[6:]])
    assert again.exit_code == 0, again.output
    assert md.read_text().count("<!-- movielens_temporal:begin -->") == 1


def _quick(data, tmp_path, *extra):
    """EASE and MostPop, one seed: a fast, deterministic benchmark run."""
    image = json.dumps({"arch": "ctxrec-tiny-clip", "arch_config": TINY_CFG, "device": "cpu", "weights": "random"})
    out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
    result = runner.invoke(app, ["benchmark", "movielens", "--data", str(data), "--seeds", "0", "--models",
                                 "mostpop,ease", "--features", "text", "--image-options", image, "--out", str(out),
                                 "--cache", str(tmp_path / "cache"), *extra])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return json.loads(next(out.glob("movielens_*.json")).read_text()), out


def test_benchmark_figures_equal_a_direct_evaluation_and_split_files_round_trip(tmp_path):
    from ctxrec.bench.movielens import prepare
    from ctxrec.data import SplitConfig, write_split_dir
    from ctxrec.graph.export import to_rec_graph
    from ctxrec.training.evaluation import evaluate
    from ctxrec.training.models import EASE

    data = write_ml100k(tmp_path / "ml-100k")
    md = tmp_path / "B.md"
    figures, out = _quick(data, tmp_path, "--markdown", "", "--write-splits", str(tmp_path / "written"))
    # '' means no Markdown (it used to crash after the whole run)
    assert not md.exists() and not (tmp_path / "BENCHMARKS.md").exists()
    # the benchmark's test figure is the chosen EASE refit on train+val, evaluated once: redo it by hand
    tables, vectors, _, _ = prepare(data, work_dir=tmp_path / "work", cache_dir=tmp_path / "cache", features=("text",))
    l2 = figures["per_user"]["ease"]["per_seed"][0]["params"]["l2"]
    refit = to_rec_graph(tables, vectors, SplitConfig(refit=True))
    model = EASE(l2=l2).fit(refit.without_test())
    for protocol in ("per_user", "per_context"):
        direct = evaluate(model, refit, "test", protocol=protocol)
        for metric in ("ndcg@20", "recall@20", "map@20"):
            assert figures[protocol]["ease"][metric] == pytest.approx(direct[metric], abs=1e-9), (protocol, metric)
    # the same split written to files and read back with --split-dir gives identical figures
    split_dir = tmp_path / "split"
    write_split_dir(to_rec_graph(tables, vectors, SplitConfig()), split_dir)
    written = tmp_path / "written" / "temporal" / "seed0"  # what --write-splits wrote: the same bytes
    assert sorted(p.name for p in written.iterdir()) == sorted(p.name for p in split_dir.iterdir())
    assert all((written / p.name).read_bytes() == p.read_bytes() for p in split_dir.iterdir())
    again, _ = _quick(data, tmp_path, "--markdown", "", "--split-dir", str(written))
    assert again["_setup"]["protocol"] == "files"
    for protocol in ("per_user", "per_context"):
        for model in ("mostpop", "ease"):
            for metric in ("ndcg@20", "recall@20", "precision@20", "mrr@20"):
                assert again[protocol][model][metric] == figures[protocol][model][metric], (protocol, model, metric)
    assert again["_meta"]["data"]["hash"] == figures["_meta"]["data"]["hash"]


def test_benchmark_store_runs_on_any_ingested_store(tmp_path):
    world = tmp_path / "world"
    assert runner.invoke(app, ["synth", str(world), "--size", "tiny", "--seed", "1"]).exit_code == 0
    db = tmp_path / "g.db"
    res = runner.invoke(app, ["ingest", "--interactions", str(world / "interactions.csv"), "--items",
                              str(world / "items.csv"), "--context", str(world / "context.csv"), "--db", str(db)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["benchmark", "store", "--db", str(db), "--name", "tiny", "--seeds", "0",
                              "--models", "mostpop,ease", "--out", str(tmp_path / "out"), "--markdown", ""])
    assert res.exit_code == 0, res.output + repr(res.exception)
    figures = json.loads((tmp_path / "out" / "tiny_temporal.json").read_text())
    assert set(figures["per_user"]) == {"mostpop", "ease"} and set(figures["per_context"]) == {"mostpop", "ease"}
    assert figures["_meta"]["command"].startswith("ctxrec benchmark store")
    res = runner.invoke(app, ["benchmark", "store", "--db", str(db), "--name", "tiny", "--seeds", "0", "--ablation",
                              "--out", str(tmp_path / "out"), "--markdown", ""])
    assert res.exit_code == 0, res.output + repr(res.exception)
    ablation = json.loads((tmp_path / "out" / "tiny_temporal_ablation.json").read_text())
    assert ablation["_meta"]["command"].endswith("--seeds 0 --ablation --out " + str(tmp_path / "out") + " --markdown ''")
    assert list(ablation["per_user"]) == ["ease", *ABLATIONS]
    no_recency = ablation["per_user"]["item_graph_no_recency"]["per_seed"][0]["params"]
    assert "recency" not in no_recency and "l2" in no_recency  # fixed off, the rest chosen on validation
    # the full model against EASE (also the best non-graph row here), both protocols
    assert {(r["baseline"], r["model"]) for r in ablation["_ab_replay"]} == {("ease", "item_graph")}
    bad = runner.invoke(app, ["benchmark", "store", "--db", str(db), "--split-dir", str(tmp_path / "nope"),
                              "--markdown", ""])
    assert bad.exit_code == 2 and "no such folder" in bad.output


def test_benchmark_sweep_scores_validation_only(tmp_path):
    data = write_ml100k(tmp_path / "ml-100k")
    image = json.dumps({"arch": "ctxrec-tiny-clip", "arch_config": TINY_CFG, "device": "cpu", "weights": "random"})
    result = runner.invoke(app, ["benchmark", "sweep", "--data", str(data), "--configs", '[{}, {"reg": 0.01}]',
                                 "--epochs", "2", "--image-options", image, "--out", str(tmp_path / "out"),
                                 "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    figures = json.loads((tmp_path / "out" / "movielens_temporal_sweep_context_gnn.json").read_text())
    assert [r["config"] for r in figures["rows"]] == [{}, {"reg": 0.01}]
    assert all(0 <= r["val_ndcg@20"] <= 1 and r["best_epoch"] in (0, 1) for r in figures["rows"])
    assert all(set(r) == {"config", "val_ndcg@20", "train_s", "best_epoch"} for r in figures["rows"])  # no test figure
    assert figures["_setup"]["val_protocol"] == "per_user" and len(figures["_meta"]["data"]["hash"]) == 64
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


@pytest.mark.slow
def test_benchmark_jobs_run_seeds_in_processes_with_the_same_figures(tmp_path):
    data = write_ml100k(tmp_path / "ml-100k")
    one, _ = _quick(data, tmp_path, "--markdown", "", "--protocol", "cold_items", "--seeds", "0,1")
    two, _ = _quick(data, tmp_path, "--markdown", "", "--protocol", "cold_items", "--seeds", "0,1", "--jobs", "2")
    assert "--seeds 0,1 " in two["_meta"]["command"] and "--jobs 2 " in two["_meta"]["command"]
    timing = {"train_s", "tune_s"}
    for protocol in ("per_user", "per_context"):
        for model in ("mostpop", "ease"):
            a, b = one[protocol][model]["per_seed"], two[protocol][model]["per_seed"]
            assert [{k: v for k, v in r.items() if k not in timing} for r in a] == \
                   [{k: v for k, v in r.items() if k not in timing} for r in b]
