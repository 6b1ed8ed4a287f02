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


def test_bench_features_needs_a_movielens_folder(tmp_path):
    res = CliRunner().invoke(app, ["bench", "features", "--data", str(tmp_path)])
    assert res.exit_code == 2 and "no u.item there" in res.output
