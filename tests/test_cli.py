"""The CLI, in-process: each command's exit code and output, the demo end to end."""
from __future__ import annotations

import ast
import json

import pytest
from typer.testing import CliRunner

from ctxrec.cli import app

runner = CliRunner()


def run(*args):
    res = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return res


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    res = run("synth", root / "world", "--size", "tiny", "--seed", "1")
    assert res.exit_code == 0, res.output
    return root


def test_pipeline_commands(workspace, tmp_path):
    w, store, model = workspace / "world", tmp_path / "g.db", tmp_path / "model"
    res = run("ingest", "--interactions", w / "interactions.csv", "--items", w / "items.csv",
              "--context", w / "context.csv", "--db", store)
    assert res.exit_code == 0, res.output
    assert "rejected 0" in res.output and "Item 40" in res.output
    again = run("ingest", "--interactions", w / "interactions.csv", "--items", w / "items.csv",
                "--context", w / "context.csv", "--db", store)
    assert again.output.split("store now holds:")[1] == res.output.split("store now holds:")[1]
    res = run("encode", "--db", store, "--cache", tmp_path / "cache", "--out", tmp_path / "features")
    assert res.exit_code == 0, res.output
    assert "Item 40" in res.output
    res = run("encode", "--db", store, "--encoder", "audio", "--cache", tmp_path / "cache",
              "--out", tmp_path / "features")
    assert res.exit_code == 0 and "Item 40" in res.output and "masked 0" in res.output, res.output
    assert run("encode", "--db", store, "--encoder", "nope").exit_code == 2
    res = run("train", "--db", store, "--model", "context_gnn", "--out", model, "--epochs", "3")
    assert res.exit_code == 0, res.output
    assert "ContextGNN saved" in res.output and "ndcg@20" in res.output
    res = run("evaluate", "--db", store, "--model-dir", model, "--split", "test")
    assert res.exit_code == 0, res.output
    assert 0.0 <= json.loads(res.output)["ndcg@20"] <= 1.0
    res = run("recommend", "--db", store, "--model-dir", model, "--user", "u0001", "--time", "sat 20:00", "-k", "5")
    assert res.exit_code == 0, res.output
    assert len(res.output.strip().splitlines()) == 5
    # a model with a default grid: its settings are chosen on validation, and the saved model has them
    tuned = tmp_path / "tuned"
    res = run("train", "--db", store, "--model", "item_graph", "--out", tuned)
    assert res.exit_code == 0, res.output
    chosen = res.output.split("chose ")[1].split(" on validation")[0]
    assert "among 8 settings" in res.output
    saved = json.loads((tuned / "manifest.json").read_text())["config"]
    assert {k: saved[k] for k in ("l2", "recency", "factors")} == ast.literal_eval(chosen)
    res = run("train", "--db", store, "--model", "item_graph", "--out", tuned, "--no-tune")
    assert res.exit_code == 0 and "chose" not in res.output, res.output


def test_errors_are_messages_not_tracebacks(workspace, tmp_path):
    w = workspace / "world"
    res = runner.invoke(app, ["ingest", "--interactions", str(tmp_path / "missing.csv"), "--items",
                              str(w / "items.csv"), "--db", str(tmp_path / "g.db")])
    assert res.exit_code == 2 and "file not found" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["recommend", "--user", "u0001", "--model-dir", str(tmp_path / "none"),
                              "--db", str(tmp_path / "g.db")])
    assert res.exit_code == 2 and "no saved model here" in res.output


def test_ingest_reports_rejects(workspace, tmp_path):
    w = workspace / "world"
    bad = tmp_path / "inter.csv"
    lines = (w / "interactions.csv").read_text().splitlines()
    lines.insert(3, "u0001,view,i9999,2024-01-05T10:00:00,London")
    bad.write_text("\n".join(lines) + "\n")
    res = run("ingest", "--interactions", bad, "--items", w / "items.csv", "--db", tmp_path / "g.db",
              "--rejects", tmp_path / "rej.csv")
    assert res.exit_code == 0 and "rejected 1" in res.output
    assert "row 3, column 'item_id', value 'i9999'" in res.output
    assert (tmp_path / "rej.csv").read_text().count("\n") == 2


def test_demo_end_to_end(tmp_path):
    res = run("demo", "--out", tmp_path / "demo", "--size", "tiny", "--epochs", "4")
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "demo/metrics.json").read_text())
    assert {"MostPop", "LightGCN", "ContextGNN", "ItemGraph"} <= set(metrics)
    assert "ItemGraph top-10 for" in res.output  # the default graph model gives the recommendations
    recs = json.loads((tmp_path / "demo/recommendations.json").read_text())
    assert len(recs) == 2 and all(len(v) == 10 for v in recs.values())
    assert "output folder:" in res.output and "ndcg@20" in res.output


@pytest.mark.slow
def test_bench_train_writes_its_figures(tmp_path):
    from ctxrec.bench.report import hash_world
    from ctxrec.datasets.synthetic import SIZES, generate_world

    res = run("bench", "train", "--size", "tiny", "--epochs", "1", "--repeats", "1", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    figures = json.loads((tmp_path / "train.json").read_text())
    ref = figures["idle/ACTIVE"]
    for cond in ("idle/ACTIVE", "idle/PASSIVE", "busy/ACTIVE", "busy/PASSIVE"):
        for model in ("lightgcn", "context_gnn"):
            entry = figures[cond][model]
            assert entry["s_per_epoch"] > 0  # a time: no fixed value, but never zero when measured
            assert entry["vs_idle_active"] == pytest.approx(entry["s_per_epoch"] / ref[model]["s_per_epoch"])
    meta = figures["_meta"]
    assert meta["command"] == "ctxrec bench train --size tiny --epochs 1 --repeats 1"
    # every condition's process trained on the tiny world (seed 0) and its temporal split
    assert meta["data"]["hash"] == hash_world(generate_world(SIZES["tiny"]))
    assert meta["split"]["events"] == {"train": 606, "val": 26, "test": 81}


@pytest.mark.neo4j
def test_pipeline_on_neo4j(workspace, tmp_path, neo4j_server, monkeypatch):
    from ctxrec.graph.stores import open_store

    with open_store("neo4j", **neo4j_server) as st:
        st.clear()
    monkeypatch.setenv("NEO4J_USER", neo4j_server["user"])
    monkeypatch.setenv("NEO4J_PASSWORD", neo4j_server["password"])
    w, model = workspace / "world", tmp_path / "model"
    neo = ["--store", "neo4j", "--uri", neo4j_server["uri"]]
    res = run("ingest", "--interactions", w / "interactions.csv", "--items", w / "items.csv",
              "--context", w / "context.csv", *neo)
    assert res.exit_code == 0, res.output
    assert "rejected 0" in res.output and "Item 40" in res.output
    assert run("encode", *neo, "--cache", tmp_path / "cache", "--out", tmp_path / "features").exit_code == 0
    res = run("train", *neo, "--model", "context_gnn", "--out", model, "--epochs", "2")
    assert res.exit_code == 0, res.output
    res = run("recommend", *neo, "--model-dir", model, "--user", "u0001", "--time", "sat 20:00", "-k", "3")
    assert res.exit_code == 0 and len(res.output.strip().splitlines()) == 3, res.output


def test_unreachable_neo4j_is_one_clear_line(tmp_path):
    pytest.importorskip("neo4j")
    res = runner.invoke(app, ["train", "--store", "neo4j", "--uri", "bolt://127.0.0.1:1"])
    assert res.exit_code == 2
    assert "bolt://127.0.0.1:1" in res.output and "Traceback" not in res.output


@pytest.mark.slow
def test_bench_ingest_and_encode_write_their_figures(tmp_path):
    from dataclasses import replace

    import pandas as pd

    from ctxrec.bench.ingest import world_tables
    from ctxrec.bench.report import hash_files, hash_tables
    from ctxrec.datasets.synthetic import SIZES, generate_world

    res = run("bench", "ingest", "--stores", "embedded", "--users", "20", "--per-row", "20", "--knn-items", "500",
              "--dim", "16", "--queries", "5", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "ingest.json").read_text())
    fig = saved["embedded"]
    # 20 users' world (seed 0): 652 nodes and 4487 relationships, as world_tables(20, 0).counts() sums them
    assert (fig["nodes"], fig["rels"]) == (652, 4487) and saved["_setup"]["interactions"] == 1982
    assert fig["idempotent"] == 1.0 and fig["batched_rels_per_s"] > 0 and fig["knn_p99_ms"] > 0
    assert saved["_meta"]["data"]["hash"] == hash_tables(world_tables(20, 0))
    assert saved["_meta"]["command"] == ("ctxrec bench ingest --stores embedded --users 20 --per-row 20 "
                                         "--knn-items 500 --dim 16 --queries 5")
    res = run("bench", "encode", "--size", "tiny", "--repeats", "1", "--images", "2", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    enc = json.loads((tmp_path / "encode.json").read_text())
    kinds = ("text", "image", "imagenet", "audio")
    assert set(kinds) <= set(enc) and all(enc[k]["overhead"] > 0 for k in kinds)
    # the tiny world has 40 items: 40 texts, 40 audio files, and --images 2 of its images (both image encoders)
    assert [enc[k]["items"] for k in kinds] == [40, 2, 2, 40]
    # its inputs are the same world's files, written again here (same world, same bytes)
    files = generate_world(replace(SIZES["tiny"], image_size=224)).write(tmp_path / "world")
    first_two = pd.read_csv(files["items"])["image_path"].head(2)
    inputs = [files["items"], *(tmp_path / "world" / p for p in first_two), files["audio_dir"]]
    assert enc["_meta"]["data"]["hash"] == hash_files(inputs, root=tmp_path / "world")


def test_encode_writes_parquet_then_align_and_search(workspace, tmp_path):
    """encode -> <name>.parquet + manifest; align two modalities; search text -> image."""
    from ctxrec.modalities.vector_files import load_encoder, read_manifest, read_vectors

    pytest.importorskip("open_clip")
    w, store, feats = workspace / "world", tmp_path / "g.db", tmp_path / "features"
    assert run("ingest", "--interactions", w / "interactions.csv", "--items", w / "items.csv",
               "--db", store).exit_code == 0
    res = run("encode", "--db", store, "--cache", tmp_path / "cache", "--out", feats)
    assert res.exit_code == 0 and "dim 384" in res.output, res.output
    tiny = {"arch": "ctxrec-cli-clip", "arch_config": {
        "embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}},
        "weights": "random"}  # asked for: open_clip has no default weights
    res = run("encode", "--db", store, "--encoder", "image", "--options", json.dumps(tiny), "--device", "cpu",
              "--cache", tmp_path / "cache", "--out", feats)
    assert res.exit_code == 0 and "Item 40" in res.output, res.output
    assert "RANDOM weights (asked for)" in res.output and "encoded with image (random weights " in res.output
    manifest = read_manifest(feats)["vectors"]
    assert set(manifest) == {"text", "image"}
    assert manifest["image"]["dim"] == 32 and manifest["image"]["encoder"] == "image"
    assert manifest["image"]["preprocessing"]["image_size"] == 32 and manifest["text"]["rows"]["Item"] == 40
    text = read_vectors(feats, "text")
    assert set(text["label"]) == {"Item", "Time", "Place", "Category"} and text["present"].all()
    items = read_vectors(feats, "image", label="Item")
    assert len(items) == 40 and items["vector"].iloc[0].shape == (32,)
    assert load_encoder(feats, "image").weights_id() == manifest["image"]["weights_id"]
    # the store holds the same vectors: searching it gives what searching the files gives
    from ctxrec.graph.stores import open_store
    from ctxrec.serve.search import ItemSearch

    from_files = ItemSearch.from_features(feats, names=["text"]).search("a calm jazz tune", k=5)
    with open_store("embedded", store, read_only=True) as st:
        from_store = ItemSearch.from_store(st, {"text": load_encoder(feats, "text")}).search("a calm jazz tune", k=5)
    assert from_files["id"].tolist() == from_store["id"].tolist()
    res = run("align", "--features", feats, "--dim", "16", "--epochs", "20")
    assert res.exit_code == 0 and "aligned text, image" in res.output, res.output
    res = run("search", "a red cover", "--features", feats, "--target", "image", "-k", "4")
    assert res.exit_code == 0, res.output
    lines = [line for line in res.output.splitlines() if line[:4].strip().rstrip(".").isdigit()]
    assert len(lines) == 4 and all("text~image (aligned)" in line for line in lines), res.output
    res = runner.invoke(app, ["search", "x", "--features", str(tmp_path / "none")])
    assert res.exit_code == 2 and "ctxrec encode --out" in res.output
    res = runner.invoke(app, ["encode", "--db", str(store), "--options", "{not json"])
    assert res.exit_code == 2 and "--options is not valid JSON" in res.output


def test_encoders_list_shows_dims_and_spaces():
    res = run("encoders", "list")
    assert res.exit_code == 0, res.output
    rows = {line.split()[0]: line.split() for line in res.output.splitlines()[1:]}
    assert rows["text"][1:4] == ["text", "text", "384"]
    assert rows["image"][2] == "clip" and rows["clip-text"][2] == "clip"
    assert rows["clap"][2] == "clap" and "not loadable with defaults" in res.output
    # which weights each encoder runs: open_clip has none by default (never silently random), the ImageNet CNN
    # and MiniLM are pretrained
    assert rows["image"][4] == "-" and "needs `weights`" in next(line for line in res.output.splitlines()
                                                                if line.startswith("image "))
    assert rows["imagenet"][4] == "pretrained" and rows["text"][4] == "pretrained"
    assert run("encoders").output == res.output


def test_encode_images_without_clip_weights_uses_the_pretrained_imagenet_encoder(workspace, tmp_path):
    """`--encoder image` with no open_clip weights: EfficientNet-Lite0's ImageNet features, said so."""
    from ctxrec.modalities.vector_files import load_encoder, read_manifest

    pytest.importorskip("efficientnet_lite_pytorch", reason="the imagenet encoder needs pip install 'ctxrec[imagenet]'")
    w, store, feats = workspace / "world", tmp_path / "g.db", tmp_path / "features"
    assert run("ingest", "--interactions", w / "interactions.csv", "--items", w / "items.csv",
               "--db", store).exit_code == 0
    res = run("encode", "--db", store, "--encoder", "image", "--options", '{"batch_size": 8}', "--device", "cpu",
              "--out", feats, "--cache", tmp_path / "cache")
    assert res.exit_code == 0 and "Item 40" in res.output, res.output
    assert "encoding images with the pretrained `imagenet` encoder (efficientnet-lite0)" in res.output
    assert "encoded with imagenet (pretrained weights efficientnet-lite0/imagenet@sha256:" in res.output
    assert "RANDOM" not in res.output
    entry = read_manifest(feats)["vectors"]["image"]  # written as the image modality's vectors
    assert entry["encoder"] == "imagenet" and entry["dim"] == 1280
    assert load_encoder(feats, "image").weights_kind() == "pretrained"
    # open_clip options without weights: the error lists the choices instead of random weights
    res = run("encode", "--db", store, "--encoder", "image", "--options", '{"arch": "ViT-B-16"}', "--out", "")
    assert res.exit_code == 2 and "needs `weights`" in res.output and "'random'" in res.output, res.output
