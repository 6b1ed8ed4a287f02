"""Tests of ctxrec.modalities.image: ImageEncoder (open_clip) and its text tower.

Offline and fast: a tiny CLIP (embed 64, 2-layer towers, 64-px images) with random
weights (asked for with ``weights="random"``: there is no default), real PNG/JPEG files
written with PIL, and checkpoints saved to a temp folder.
"""
from __future__ import annotations

import json
import os
import warnings

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("open_clip", reason="ImageEncoder needs open_clip: pip install 'ctxrec[image]'")
from PIL import Image, ImageDraw  # noqa: E402  (open_clip brings pillow)

from ctxrec.modalities import FeatureCache  # noqa: E402
from ctxrec.modalities.image import ImageEncoder, ImageEncoderWarning, TextTowerEncoder  # noqa: E402

TINY = "ctxrec-tiny-clip"
TINY_CFG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """The tiny config registered the open_clip way (a JSON file + add_model_config)."""
    import open_clip

    path = tmp_path_factory.mktemp("configs") / f"{TINY}.json"
    path.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(path)
    return TINY


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Coloured shapes as PNG and JPEG files of different sizes and modes."""
    folder = tmp_path_factory.mktemp("images")
    specs = [("red_circle.png", "RGB", (80, 60), "red"), ("blue_box.jpg", "RGB", (64, 64), "blue"),
             ("green_tri.png", "RGBA", (50, 90), "green"), ("grey_box.png", "L", (70, 70), 200),
             ("yellow_circle.jpeg", "RGB", (120, 100), "yellow")]
    paths = []
    for name, mode, size, colour in specs:
        image = Image.new(mode, size, "white" if mode != "L" else 0)
        draw = ImageDraw.Draw(image)
        w, h = size
        if "circle" in name:
            draw.ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=colour)
        elif "tri" in name:
            draw.polygon([(w // 2, 5), (5, h - 5), (w - 5, h - 5)], fill=colour)
        else:
            draw.rectangle((10, 10, w - 10, h - 10), fill=colour)
        image.save(folder / name)
        paths.append(str(folder / name))
    return paths


@pytest.fixture(scope="module")
def encoder():
    return ImageEncoder(TINY, arch_config=TINY_CFG, weights="random", device="cpu", batch_size=2)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    corrupt = folder / "corrupt.png"
    noise = torch.randint(0, 256, (500,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    corrupt.write_bytes(noise.numpy().tobytes())  # random bytes with a .png suffix
    return {"missing": str(folder / "nope.png"), "empty": str(empty), "corrupt": str(corrupt)}


def test_encode_shape_dtype_norm(encoder, images):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageEncoderWarning)
        x, mask = encoder.encode(images)
    assert x.shape == (len(images), 64) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert mask.dtype == torch.bool and mask.all()
    torch.testing.assert_close(x.norm(dim=1), torch.ones(len(images)))
    assert encoder.last_report == {"missing": [], "corrupt": []}
    assert encoder.output_dim == 64 and encoder.modality == "image" and encoder.input_column == "image_path"
    assert encoder.reads_files and encoder.space == f"clip:{TINY}:random"
    # different pictures, different vectors
    assert (x @ x.T).fill_diagonal_(0).max() < 0.9999


def test_batch_equals_one_by_one(encoder, images):
    x, _ = encoder.encode(images)  # batch_size=2: three forward passes
    single = torch.cat([encoder.encode([p])[0] for p in images])
    torch.testing.assert_close(x, single, atol=1e-5, rtol=1e-5)
    y, mask = encoder.encode_all(images, batch_size=3)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=1e-5)
    assert mask.all()


def test_bad_files_masked_with_report_and_one_warning(encoder, images, bad_files):
    batch = [images[0], bad_files["missing"], bad_files["empty"], None, bad_files["corrupt"], images[1]]
    with pytest.warns(ImageEncoderWarning) as record:
        x, mask = encoder.encode(batch)
    assert len(record) == 1
    message = str(record[0].message)
    assert "3 of 6" in message and "nope.png" in message and "empty.png" in message and "corrupt.png" in message
    assert record[0].filename == __file__  # stacklevel points at the caller
    assert mask.tolist() == [True, False, False, False, False, True]
    assert x[~mask].abs().sum() == 0
    assert encoder.last_report == {
        "missing": [bad_files["missing"]], "corrupt": [bad_files["empty"], bad_files["corrupt"]]}
    good, _ = encoder.encode([images[0], images[1]])
    torch.testing.assert_close(x[mask], good, atol=1e-5, rtol=1e-5)

    # encode_all: one report and one warning for the whole call, not one per batch
    with pytest.warns(ImageEncoderWarning) as record:
        _, mask = encoder.encode_all(batch * 2, batch_size=2)
    assert len(record) == 1 and "6 of 12" in str(record[0].message)
    assert len(encoder.last_report["missing"]) == 2 and len(encoder.last_report["corrupt"]) == 4
    assert mask.sum() == 4

    # a clean call clears the report
    encoder.encode(images[:1])
    assert encoder.last_report == {"missing": [], "corrupt": []}


def test_other_inputs_and_type_error(encoder, images):
    with open(images[0], "rb") as f:
        raw = f.read()
    ref, _ = encoder.encode([images[0]])
    x, mask = encoder.encode([raw, Image.open(images[0])])
    assert mask.all()
    torch.testing.assert_close(x, ref.expand(2, -1), atol=1e-5, rtol=1e-5)
    with pytest.raises(TypeError, match="input 0 is a int"):
        encoder.encode([3])


def test_config_round_trip(encoder, images):
    config = json.loads(json.dumps(encoder.config()))  # JSON-able
    assert config["arch_config"] == TINY_CFG and config["weights"] == "random"
    assert config["image_size"] == 64
    pp = encoder.model.visual.preprocess_cfg  # what open_clip applies is what the config says
    assert config["image_mean"] == list(pp["mean"]) and config["image_std"] == list(pp["std"])
    assert config["image_interpolation"] == pp["interpolation"] and config["image_resize_mode"] == pp["resize_mode"]
    # the transform made without the model is the one open_clip returns with it
    from ctxrec.modalities.clip_weights import _build_model

    _, theirs = _build_model(encoder)
    for path in images:
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
        assert torch.equal(encoder.preprocess(picture), theirs(picture))
    rebuilt = ImageEncoder.from_config(config)
    assert rebuilt == encoder and rebuilt.weights_id() == encoder.weights_id()
    assert torch.equal(rebuilt.encode(images)[0], encoder.encode(images)[0])
    assert "device" in ImageEncoder.runtime_keys and "batch_size" not in encoder.cache_config()


def test_registered_arch_and_seed(registered, encoder, images):
    by_name = ImageEncoder(registered, weights="random", device="cpu")
    # a registered (not built-in) arch is embedded in the config, so it rebuilds anywhere
    assert by_name.config()["arch_config"] == TINY_CFG
    before = torch.random.get_rng_state()
    x = by_name.encode(images)[0]
    assert torch.equal(torch.random.get_rng_state(), before)  # building the model left the global RNG alone
    torch.testing.assert_close(x, encoder.encode(images)[0], atol=1e-5, rtol=1e-5)
    other = ImageEncoder(registered, weights="random", seed=1, device="cpu")
    assert "random:0" in by_name.weights_id() and "random:1" in other.weights_id()
    assert not torch.allclose(other.encode(images)[0], x)


def test_weights_from_checkpoint_file_and_folder(registered, images, tmp_path):
    source = ImageEncoder(registered, weights="random", seed=7, device="cpu")
    expected = source.encode(images)[0]
    path = tmp_path / "tiny.pt"
    torch.save(source.model.state_dict(), path)

    loaded = ImageEncoder(registered, weights=path, device="cpu")
    assert loaded.weights == str(path.resolve()) and loaded.space == f"clip:{registered}:{path.resolve()}"
    assert loaded.weights_id() != source.weights_id() and "sha256:" in loaded.weights_id()
    assert torch.equal(loaded.encode(images)[0], expected)
    assert torch.equal(ImageEncoder.from_config(loaded.config()).encode(images)[0], expected)

    # an open_clip-style folder: config + safetensors checkpoint
    from safetensors.torch import save_file

    folder = tmp_path / "export"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in source.model.state_dict().items()}, folder / "open_clip_model.safetensors")
    saved = {"model_cfg": TINY_CFG, "preprocess_cfg": {"interpolation": "bilinear"}}
    (folder / "open_clip_config.json").write_text(json.dumps(saved))
    from_dir = ImageEncoder("my-tiny", weights=f"local-dir:{folder}", device="cpu")
    assert from_dir.config()["image_interpolation"] == "bilinear"  # the folder's preprocessing
    assert from_dir.config()["arch_config"] == TINY_CFG
    same_pp = ImageEncoder("my-tiny", weights=f"local-dir:{folder}", device="cpu", image_interpolation="bicubic")
    assert torch.equal(same_pp.encode(images)[0], expected)

    # editing the checkpoint changes the weights id
    torch.save({k: v + 1 for k, v in source.model.state_dict().items()}, path)
    assert ImageEncoder(registered, weights=path).weights_id() != loaded.weights_id()


def test_text_tower_shares_the_space(encoder):
    texts = ["a red circle", None, "a blue box on white", ""]
    t, mask = encoder.encode_text(texts)
    assert t.shape == (4, 64) and t.dtype == torch.float32
    assert mask.tolist() == [True, False, True, False] and t[~mask].abs().sum() == 0
    torch.testing.assert_close(t[mask].norm(dim=1), torch.ones(2))
    tower = encoder.text_tower()
    assert tower.image_encoder is encoder  # shares the loaded model
    assert tower.space == encoder.space and tower.modality == "text" and tower.input_column == "description"
    assert tower.output_dim == encoder.output_dim and not tower.reads_files
    standalone = TextTowerEncoder(**encoder.config())
    assert standalone.space == encoder.space
    torch.testing.assert_close(standalone.encode(texts)[0], t)
    x, _ = tower.encode_all(texts, batch_size=1)
    torch.testing.assert_close(x, t, atol=1e-5, rtol=1e-5)


def test_towers_share_one_model(encoder):
    tower = encoder.text_tower()
    assert encoder.text_tower() is tower  # made once
    assert encoder.towers() == {"image": encoder, "text": tower}
    assert encoder.towers()["text"] is tower and tower.towers()["image"] is encoder
    assert tower.towers()["text"] is tower
    assert {m: t.space for m, t in encoder.towers().items()} == {"image": encoder.space, "text": encoder.space}
    assert {m: t.modality for m, t in tower.towers().items()} == {"image": "image", "text": "text"}
    standalone = TextTowerEncoder(**encoder.config())  # its own image encoder, bound back to it
    assert standalone.towers()["image"].towers()["text"] is standalone
    assert standalone.towers()["image"] == encoder and standalone.towers()["image"] is not encoder


def test_feature_cache(encoder, images, bad_files, tmp_path):
    cache = FeatureCache(tmp_path / "features")
    inputs = images + [bad_files["missing"], bad_files["corrupt"], None]
    with pytest.warns(ImageEncoderWarning):
        x1, m1 = cache.encode(encoder, inputs)
    misses = cache.misses
    assert misses == len(images) + 1  # the missing file and None never reach the encoder
    x2, m2 = cache.encode(encoder, inputs)
    assert cache.misses == misses and torch.equal(x1, x2) and torch.equal(m1, m2)
    assert m1.tolist() == [True] * len(images) + [False, False, False]
    direct, _ = encoder.encode(images)
    torch.testing.assert_close(x1[: len(images)], direct, atol=1e-5, rtol=1e-5)
    # text vectors go to their own folder
    assert cache.folder(encoder.text_tower()) != cache.folder(encoder)


def test_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="Unknown `arch` 'no-such-arch'.*list_models"):
        ImageEncoder("no-such-arch", weights="random").output_dim
    with pytest.raises(ValueError, match="tags: .*openai"):
        ImageEncoder("ViT-B-32", weights="not-a-tag").config()
    with pytest.raises(FileNotFoundError, match="not in the local cache.*HF_HUB_OFFLINE=1.*local-dir:PATH"):
        ImageEncoder("ViT-B-32", weights="openai", cache_dir=str(tmp_path)).weights_id()
    with pytest.raises(FileNotFoundError, match="not an existing"):
        ImageEncoder(weights=str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="differs from open_clip's built-in"):
        ImageEncoder("ViT-B-32", arch_config=TINY_CFG, weights="random").config()
    with pytest.raises(ValueError, match="`batch_size`"):
        ImageEncoder(batch_size=0)
    with pytest.raises(ValueError, match="local-dir"):
        ImageEncoder(f"local-dir:{tmp_path}")
    # ViT-B-32 resolves without building the model
    assert ImageEncoder("ViT-B-32", weights="random").output_dim == 512


def test_no_weights_is_an_error_that_names_the_choices():
    """No default weights: None never falls back to random weights silently."""
    from ctxrec.modalities import get_encoder

    for build in (ImageEncoder, lambda: ImageEncoder(TINY, arch_config=TINY_CFG), lambda: get_encoder("image"),
                  lambda: get_encoder("clip-text")):
        with pytest.raises(ValueError, match=r"needs `weights`.*local-dir:PATH.*laion2b_s34b_b79k.*'random'.*imagenet"):
            build()


def test_a_tag_offline_names_the_local_options(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = ImageEncoder("ViT-B-32", weights="laion2b_s34b_b79k", cache_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        enc.output_dim
    message = str(err.value)
    assert "'laion2b_s34b_b79k'" in message and "HF_HUB_OFFLINE=1" in message
    assert "checkpoint file" in message and "local-dir:PATH" in message and "'imagenet'" in message
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE=1.*local-dir:PATH.*imagenet"):
        ImageEncoder("ViT-B-32", weights="hf-hub:no-org/no-such-clip", cache_dir=str(tmp_path)).output_dim


def test_random_weights_when_asked_are_named_random(registered, caplog, monkeypatch):
    import logging

    from ctxrec.modalities import list_encoders, register_encoder, registry

    enc = ImageEncoder(registered, weights="random", seed=3, device="cpu")
    assert enc.weights_kind() == "random" and enc.space == f"clip:{registered}:random"
    assert enc.config()["weights"] == "random" and enc.weights_id().endswith("@random:3")
    assert enc.text_tower().weights_kind() == "random"
    with caplog.at_level(logging.INFO, logger="ctxrec.modalities.clip_weights"):
        enc.model
    assert any("RANDOM weights" in r.getMessage() and "weights='random'" in r.getMessage() for r in caplog.records)

    # an encoder built with weights="random" is listed as random
    class RandomTinyClip(ImageEncoder):
        def __init__(self, **kwargs):
            super().__init__(registered, **{"weights": "random", "device": "cpu", **kwargs})

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_encoder("tiny-random-clip", RandomTinyClip, modality="image", space="clip")
    rows = {row["name"]: row for row in list_encoders(describe=True) if row["name"] == "tiny-random-clip"}
    assert rows["tiny-random-clip"]["weights"] == "random" and rows["tiny-random-clip"]["dim"] == 64


def test_a_tag_is_downloaded_by_open_clip_when_online(registered, images, monkeypatch, tmp_path):
    """Online, a pretrained tag not in the cache is fetched by open_clip's own download (over HTTP
    from a server on 127.0.0.1 here), into `cache_dir`, when the model is first needed (resolving
    the config downloads nothing); a failed download names the local options."""
    import functools
    import http.server
    import threading

    import open_clip

    source = ImageEncoder(registered, weights="random", seed=5, device="cpu")
    expected = source.encode(images)[0]
    served = tmp_path / "served"
    served.mkdir()
    torch.save(source.model.state_dict(), served / "tiny-clip.pt")
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/tiny-clip.pt"
        # a tag registered for the test arch as open_clip's own table holds them (keys cleaned: '-' -> '_'; a URL)
        monkeypatch.setitem(open_clip.pretrained._PRETRAINED, registered,
                            {"tiny_tag": {"url": url, "interpolation": "bilinear"},
                             "gone_tag": {"url": url.replace("tiny-clip", "gone")}})
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        cache = tmp_path / "cache"
        enc = ImageEncoder(registered, weights="tiny-tag", device="cpu", cache_dir=str(cache))
        assert enc.output_dim == 64 and enc.config()["image_interpolation"] == "bilinear" and requests == []
        assert enc.weights_kind() == "pretrained" and "random" not in enc.space
        x = enc.encode(images)[0]
        assert len(requests) == 1 and (cache / "tiny-clip.pt").is_file()
        assert enc.weights_id().startswith(f"{registered}/tiny-tag@sha256:")
        # bilinear instead of bicubic resizing: the same weights, nearly the same vectors
        torch.testing.assert_close(x, expected, atol=0.1, rtol=0.1)
        # now cached: a second encoder reads the file and downloads nothing
        ImageEncoder(registered, weights="tiny-tag", device="cpu", cache_dir=str(cache)).encode(images)
        assert len(requests) == 1
        # the download failing (404 here) is an error that names the local options
        with pytest.raises(FileNotFoundError, match="local-dir:PATH.*imagenet"):
            ImageEncoder(registered, weights="gone-tag", device="cpu", cache_dir=str(cache)).encode(images)
    finally:
        server.shutdown()
