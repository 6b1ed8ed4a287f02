"""Image encoder: an open_clip model, with its text tower for text-to-image queries.

The architecture ("which model": an open_clip name such as ``"ViT-B-32"``, one registered
with :func:`open_clip.add_model_config`, or a config dict) and the weights ("which
checkpoint": a checkpoint file, ``local-dir:PATH``, an open_clip pretrained tag,
``hf-hub:ORG/NAME`` or ``"random"``) are chosen separately, and the weights must be
chosen: there is no default, so nothing runs on random weights unless asked to. Local
files never touch the network; a tag or hub name not in the local cache is downloaded by
open_clip (into ``cache_dir``) unless ``HF_HUB_OFFLINE=1``. With no CLIP weights at all,
:func:`default_image_encoder` gives the offline, ImageNet-pretrained
:class:`~ctxrec.modalities.imagenet.ImageNetEncoder` instead. ``open_clip`` is imported
when the encoder first needs it, which keeps ``import ctxrec`` light.
"""
from __future__ import annotations

import copy
import os
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ctxrec.modalities.base import Encoder, as_text, is_missing
from ctxrec.modalities.clip_weights import (
    _build_model,
    _build_preprocess,
    _build_tokenizer,
    _check_arch,
    _floats,
    _resolve_spec,
    _resolve_weights,
    _weights_id,
)
from ctxrec.modalities.image_io import ImageEncoderWarning, _ReadsImages  # noqa: F401 (the warning is public here)


class ImageEncoder(_ReadsImages):
    r"""Image embeddings from an `open_clip <https://github.com/mlfoundations/open_clip>`_ model.

    Each image is read with PIL, preprocessed with open_clip's eval transform (resize the
    shortest side, centre-crop, normalise with ``image_mean`` / ``image_std``) and run
    through the vision tower; with ``normalize`` the output is
    :math:`\mathbf{x} = f(I) / \lVert f(I) \rVert_2`, so dot products are cosine
    similarities, also against :meth:`encode_text` (`CLIP <https://arxiv.org/abs/2103.00020>`_).

    A missing input, a missing file, an empty or an unreadable file gives a zero row and
    ``False``; the batch goes on. After each call :attr:`last_report` lists the bad
    files and one :class:`ImageEncoderWarning` names them.

    Args:
        arch (str, optional): The architecture: an open_clip model name (see
            ``open_clip.list_models()``), including ones added with
            ``open_clip.add_model_config``. (default: ``"ViT-B-32"``)
        weights (str | PathLike): Required. A checkpoint file, ``"local-dir:PATH"`` (a
            folder with a checkpoint and optionally ``open_clip_config.json``), an open_clip
            pretrained tag of ``arch`` (``"laion2b_s34b_b79k"``) or ``"hf-hub:ORG/NAME"``
            (both taken from the local cache, else downloaded by open_clip into
            ``cache_dir`` on first use; with ``HF_HUB_OFFLINE=1`` an error names the local
            options), or ``"random"``: an untrained model seeded by ``seed``, for tests
            only, named as random in :meth:`weights_kind`, :attr:`space`,
            :meth:`weights_id` and the log. :obj:`None` is an error that lists these
            choices and the offline ``imagenet`` encoder. (default: :obj:`None`)
        device (str, optional): Where to run. (default: ``"cuda"`` if available, else ``"cpu"``)
        batch_size (int, optional): Images per forward pass. (default: ``32``)
        normalize (bool, optional): L2-normalise the embeddings. (default: :obj:`True`)
        image_size (int, optional): Input size; changes the model's input resolution.
            (default: the architecture's)
        image_mean (Sequence[float], optional): Per-channel mean. (default: the weights',
            else OpenAI CLIP's)
        image_std (Sequence[float], optional): Per-channel std. (default: as ``image_mean``)
        image_interpolation (str, optional): ``"bicubic"``, ``"bilinear"``, ...
            (default: the weights', else ``"bicubic"``)
        image_resize_mode (str, optional): ``"shortest"``, ``"longest"`` or ``"squash"``.
            (default: the weights', else ``"shortest"``)
        arch_config (dict, optional): An open_clip model config (``embed_dim``,
            ``vision_cfg``, ``text_cfg``) to build ``arch`` from, without registering it
            globally; :meth:`config` embeds it whenever ``arch`` is not shipped with
            open_clip, so a saved encoder rebuilds anywhere. (default: :obj:`None`)
        seed (int, optional): Seed of the random initialisation. (default: ``0``)
        cache_dir (str, optional): Where pretrained-tag and hub weights are looked up and
            downloaded to. (default: open_clip's and Hugging Face's default caches)

    Example:
        >>> enc = ImageEncoder("ViT-B-32", weights="/models/clip-b32.safetensors")  # doctest: +SKIP
        >>> x, mask = enc.encode(["a.jpg", None, "missing.png"])                   # doctest: +SKIP
        >>> x.shape, mask.tolist(), enc.last_report["missing"]                      # doctest: +SKIP
        (torch.Size([3, 512]), [True, False, False], ['missing.png'])
        >>> q, _ = enc.encode_text(["a red bicycle"])  # same space: scores = x @ q.T  # doctest: +SKIP
        >>> ImageEncoder("ViT-B-32", weights="laion2b_s34b_b79k")  # open_clip downloads it   # doctest: +SKIP
        >>> ImageEncoder("ViT-B-32", weights="random").weights_kind()  # tests only           # doctest: +SKIP
        'random'
    """

    name = "image"
    modality = "image"
    input_column = "image_path"
    runtime_keys = ("device", "batch_size", "cache_dir")

    def __init__(
        self,
        arch: str = "ViT-B-32",
        weights: str | os.PathLike | None = None,
        device: str | None = None,
        batch_size: int = 32,
        normalize: bool = True,
        image_size: int | None = None,
        image_mean: Sequence[float] | None = None,
        image_std: Sequence[float] | None = None,
        image_interpolation: str | None = None,
        image_resize_mode: str | None = None,
        arch_config: dict | None = None,
        seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        _check_arch(arch, arch_config)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
        if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
            raise ValueError(f"`image_size` must be a positive integer or None, got {image_size!r}")
        if not isinstance(seed, int):
            raise TypeError(f"`seed` must be an integer, got {seed!r}")
        self.arch = arch
        self.weights, self._kind, self._location = _resolve_weights(weights, arch)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.normalize = bool(normalize)
        self.seed = seed
        self.cache_dir = cache_dir
        self._overrides = {
            "size": image_size,
            "mean": _floats(image_mean, "image_mean"),
            "std": _floats(image_std, "image_std"),
            "interpolation": image_interpolation,
            "resize_mode": image_resize_mode,
        }
        self._arch_config = copy.deepcopy(arch_config)
        self.space = f"clip:{arch}:{self.weights}"
        self.last_report: dict[str, list[str]] = {"missing": [], "corrupt": []}
        self._spec: dict | None = None
        self._model = None
        self._preprocess = None
        self._tokenizer = None
        self._weights_id: str | None = None
        self._pending: dict[str, list] | None = None
        self._text_tower: TextTowerEncoder | None = None

    # -- contract -----------------------------------------------------------------
    @property
    def output_dim(self) -> int:
        return int(self.spec["model_cfg"]["embed_dim"])

    def config(self) -> dict:
        spec = self.spec
        pp = spec["preprocess"]
        size = pp["size"]
        return {
            "arch": self.arch,
            "arch_config": None if spec["builtin"] else copy.deepcopy(spec["model_cfg"]),
            "weights": self.weights,
            "seed": self.seed,
            "normalize": self.normalize,
            "image_size": size[0] if isinstance(size, (list, tuple)) and len(set(size)) == 1 else size,
            "image_mean": list(pp["mean"]),
            "image_std": list(pp["std"]),
            "image_interpolation": pp["interpolation"],
            "image_resize_mode": pp["resize_mode"],
            "batch_size": self.batch_size,
            "cache_dir": self.cache_dir,
        }

    def weights_id(self) -> str:
        if self._weights_id is None:
            self._weights_id = _weights_id(self)
        return self._weights_id

    def weights_kind(self) -> str:
        return "random" if self._kind == "random" else "pretrained"

    def _pixels(self, image) -> Tensor:
        return self.preprocess(image)

    def _embed(self, pixels: Tensor) -> Tensor:
        emb = self.model.encode_image(pixels)
        return F.normalize(emb, dim=-1) if self.normalize else emb

    # -- the text tower -----------------------------------------------------------
    def encode_text(self, texts: Sequence[Any]) -> tuple[Tensor, Tensor]:
        """Embed texts with the model's text tower, in the same space as the images.

        Args:
            texts (Sequence[Any]): Strings; missing ones (see :func:`is_missing`) give a
                zero row and ``False``. Longer texts are truncated to the context length.

        Returns:
            tuple[Tensor, Tensor]: ``([N, output_dim] float32, [N] bool presence mask)``.
        """
        texts = list(texts)
        out = torch.zeros(len(texts), self.output_dim)
        mask = torch.zeros(len(texts), dtype=torch.bool)
        rows = [i for i, value in enumerate(texts) if not is_missing(value)]
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start:start + self.batch_size]
            tokens = self.tokenizer([as_text(texts[i], i, "encode_text") for i in chunk])
            with torch.inference_mode():
                emb = self.model.encode_text(tokens.to(self.device))
                if self.normalize:
                    emb = F.normalize(emb, dim=-1)
                out[chunk] = emb.to("cpu", torch.float32)
            mask[chunk] = True
        return out, mask

    def text_tower(self) -> TextTowerEncoder:
        """A text :class:`Encoder` sharing this encoder's model and space (made once)."""
        if self._text_tower is None:
            self._text_tower = TextTowerEncoder._of(self)
        return self._text_tower

    def towers(self) -> dict[str, Encoder]:
        return {"image": self, "text": self.text_tower()}

    # -- the model ----------------------------------------------------------------
    @property
    def spec(self) -> dict:
        """The resolved architecture config, checkpoint file and preprocessing (no model load)."""
        if self._spec is None:
            self._spec = _resolve_spec(self)
        return self._spec

    @property
    def model(self):
        """The open_clip model, built on first use (on the CPU, seeded by ``seed``; the weights downloaded
        first when a tag or hub name is not cached)."""
        if self._model is None:
            model, _ = _build_model(self)
            self._model = model.to(self.device).eval()
        return self._model

    @property
    def preprocess(self):
        """open_clip's eval transform: PIL image -> ``[3, H, W]`` tensor.

        Made from the resolved preprocessing alone, without the model, so reading images
        loads no weights: the model is built (and downloaded) in the forward pass, where an
        error is an error rather than one more unreadable image.
        """
        if self._preprocess is None:
            self._preprocess = _build_preprocess(self)
        return self._preprocess

    @property
    def tokenizer(self):
        """open_clip's tokenizer for this architecture: list of str -> ``[N, context_length]``."""
        if self._tokenizer is None:
            self._tokenizer = _build_tokenizer(self)
        return self._tokenizer


#: arguments both image encoders take; any other one is open_clip's and asks for it
_SHARED_ARGS = frozenset({"device", "batch_size", "normalize"})


def default_image_encoder(**kwargs: Any) -> Encoder:
    """The image encoder a user gets when asking for images: open_clip when weights are given,
    else the ImageNet-pretrained CNN, which works offline.

    No CLIP weights ship in any package, so without them the built-in
    :class:`~ctxrec.modalities.imagenet.ImageNetEncoder` (registry name ``imagenet``,
    EfficientNet-Lite0) gives the image vectors; text-to-image search then goes through a
    learned alignment (``ctxrec align``) instead of CLIP's shared space. ``ctxrec encode
    --encoder image`` and the demo use this.

    Args:
        **kwargs: With ``weights`` (anything but None), or any open_clip argument such as
            ``arch``: :class:`ImageEncoder`'s arguments (open_clip; a missing ``weights`` is
            then an error that lists the choices). Otherwise only ``device``, ``batch_size``
            and ``normalize``, passed to the ``imagenet`` encoder.

    Example:
        >>> default_image_encoder().name                                   # doctest: +SKIP
        'imagenet'
        >>> default_image_encoder(weights="/models/clip-b32.safetensors").name  # doctest: +SKIP
        'image'
    """
    from ctxrec.modalities.registry import get_encoder

    if kwargs.get("weights") is not None or set(kwargs) - _SHARED_ARGS:
        return get_encoder("image", **kwargs)
    kwargs.pop("weights", None)
    return get_encoder("imagenet", **kwargs)


class TextTowerEncoder(Encoder):
    """The text tower of an :class:`ImageEncoder`, as a text :class:`Encoder` in the same space.

    Takes :class:`ImageEncoder`'s arguments. Registering it beside the image encoder
    records that CLIP image and CLIP text vectors share a space (text-to-image search).

    Example:
        >>> img = ImageEncoder("ViT-B-32", weights="/models/clip-b32.safetensors")  # doctest: +SKIP
        >>> txt = img.text_tower()                       # shares the loaded model  # doctest: +SKIP
        >>> txt.space == img.space                                                  # doctest: +SKIP
        True
    """

    name = "clip-text"
    modality = "text"
    input_column = "description"
    runtime_keys = ImageEncoder.runtime_keys

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._bind(ImageEncoder(*args, **kwargs))

    @classmethod
    def _of(cls, image_encoder: ImageEncoder) -> "TextTowerEncoder":
        tower = cls.__new__(cls)
        tower._bind(image_encoder)
        return tower

    def _bind(self, image_encoder: ImageEncoder) -> None:
        self.image_encoder = image_encoder
        self.space = image_encoder.space
        if image_encoder._text_tower is None:  # so towers() is the same pair from either side
            image_encoder._text_tower = self

    @property
    def batch_size(self) -> int:
        return self.image_encoder.batch_size

    @property
    def output_dim(self) -> int:
        return self.image_encoder.output_dim

    def config(self) -> dict:
        return self.image_encoder.config()

    def weights_kind(self) -> str:
        return self.image_encoder.weights_kind()

    def weights_id(self) -> str:
        # Same weights; the suffix keeps text vectors in their own cache folder.
        return f"{self.image_encoder.weights_id()}#text"

    def encode(self, batch: Sequence[Any]) -> tuple[Tensor, Tensor]:
        return self.image_encoder.encode_text(batch)

    def towers(self) -> dict[str, Encoder]:
        return {"image": self.image_encoder, "text": self}
