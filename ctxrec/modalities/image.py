"""Image encoder: an open_clip model, with its text tower for text-to-image queries.

The architecture ("which model": an open_clip name such as ``"ViT-B-32"``, one registered
with :func:`open_clip.add_model_config`, or a config dict) and the weights ("which
checkpoint": none, an open_clip pretrained tag, a checkpoint file, ``local-dir:PATH`` or
``hf-hub:ORG/NAME``) are chosen separately. Weights are only ever read from disk: a tag
or hub name must already be in the local cache. ``open_clip`` is imported when the
encoder first needs it, which keeps ``import ctxrec`` light.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ctxrec.modalities.base import HUB_PREFIX, LOCAL_PREFIX, Encoder, _canonical, as_text, is_missing
from ctxrec.optional import require

_CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".npz")
# open_clip's own preference when a folder holds several checkpoints
_PREFERRED_CHECKPOINTS = (
    "open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth", "model.safetensors", "pytorch_model.bin", "pytorch_model.pth", "model.pth",
)
_REPORT_SHOWN = 3  # bad files named in a warning


class ImageEncoderWarning(UserWarning):
    """Some images could not be read; their rows are zero with a ``False`` mask."""


class ImageEncoder(Encoder):
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
        weights (str | PathLike, optional): :obj:`None` for random weights (seeded by
            ``seed``), an open_clip pretrained tag (``"laion2b_s34b_b79k"``; must be in
            the local cache), a checkpoint file, ``"local-dir:PATH"`` (a folder with a
            checkpoint and optionally ``open_clip_config.json``) or ``"hf-hub:ORG/NAME"``
            (from the local Hugging Face cache). Never downloads. (default: :obj:`None`)
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
        cache_dir (str, optional): Where to look for pretrained-tag and hub weights.
            (default: open_clip's and Hugging Face's default caches)

    Example:
        >>> enc = ImageEncoder("ViT-B-32", weights="/models/clip-b32.safetensors")  # doctest: +SKIP
        >>> x, mask = enc.encode(["a.jpg", None, "missing.png"])                   # doctest: +SKIP
        >>> x.shape, mask.tolist(), enc.last_report["missing"]                      # doctest: +SKIP
        (torch.Size([3, 512]), [True, False, False], ['missing.png'])
        >>> q, _ = enc.encode_text(["a red bicycle"])  # same space: scores = x @ q.T  # doctest: +SKIP
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
        if not isinstance(arch, str) or not arch or arch.startswith((LOCAL_PREFIX, HUB_PREFIX)):
            raise ValueError(
                f"`arch` must be an open_clip architecture name such as 'ViT-B-32', got {arch!r}; "
                "pass a folder or hub model as `weights=` ('local-dir:PATH' or 'hf-hub:ORG/NAME')"
            )
        if arch_config is not None and not (
            isinstance(arch_config, dict) and {"embed_dim", "vision_cfg", "text_cfg"} <= set(arch_config)
        ):
            raise ValueError(
                f"`arch_config` must be an open_clip model config with embed_dim, vision_cfg and text_cfg, "
                f"got {arch_config!r}"
            )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
        if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
            raise ValueError(f"`image_size` must be a positive integer or None, got {image_size!r}")
        if not isinstance(seed, int):
            raise TypeError(f"`seed` must be an integer, got {seed!r}")
        self.arch = arch
        self.weights, self._kind, self._location = _resolve_weights(weights)
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
        self.space = f"clip:{arch}:{self.weights or 'random'}"
        self.last_report: dict[str, list[str]] = {"missing": [], "corrupt": []}
        self._spec: dict | None = None
        self._model = None
        self._preprocess = None
        self._tokenizer = None
        self._weights_id: str | None = None
        self._pending: dict[str, list] | None = None

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
            spec = self.spec
            if self._kind == "random":
                arch_hash = hashlib.sha256(_canonical(spec["model_cfg"]).encode()).hexdigest()[:12]
                self._weights_id = f"{self.arch}#{arch_hash}@random:{self.seed}"
            else:
                files = [spec["checkpoint"]] + ([spec["folder_config"]] if spec.get("folder_config") else [])
                label = f"{self.arch}/{self.weights}" if self._kind == "tag" else self.weights
                self._weights_id = f"{label}@sha256:{_fingerprint(files)[:16]}"
        return self._weights_id

    def encode(self, batch: Sequence[Any]) -> tuple[Tensor, Tensor]:
        batch = list(batch)
        out = torch.zeros(len(batch), self.output_dim)
        mask = torch.zeros(len(batch), dtype=torch.bool)
        report: dict[str, list] = {"missing": [], "corrupt": []}
        rows = [i for i, value in enumerate(batch) if not is_missing(value)]
        for start in range(0, len(rows), self.batch_size):
            pixels, kept = [], []
            for i in rows[start:start + self.batch_size]:
                image, problem = self._load(batch[i], i)
                if problem is not None:
                    report[problem[0]].append((_label(batch[i], i), problem[1]))
                else:
                    pixels.append(image)
                    kept.append(i)
            if kept:
                with torch.inference_mode():
                    emb = self.model.encode_image(torch.stack(pixels).to(self.device))
                    if self.normalize:
                        emb = F.normalize(emb, dim=-1)
                    out[kept] = emb.to("cpu", torch.float32)
                mask[kept] = True
        if self._pending is not None:  # inside encode_all: one report for the whole call
            for key in report:
                self._pending[key].extend(report[key])
        else:
            self._finish(report, len(batch))
        return out, mask

    def encode_all(
        self, inputs: Sequence[Any], batch_size: int | None = None, progress: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Like :meth:`Encoder.encode_all`, with one :attr:`last_report` and at most one warning."""
        inputs = list(inputs)
        self._pending = {"missing": [], "corrupt": []}
        try:
            x, mask = super().encode_all(inputs, batch_size=batch_size, progress=progress)
        finally:
            report, self._pending = self._pending, None
        self._finish(report, len(inputs))
        return x, mask

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

    def text_tower(self) -> "TextTowerEncoder":
        """A text :class:`Encoder` sharing this encoder's model and space."""
        return TextTowerEncoder._of(self)

    # -- the model ----------------------------------------------------------------
    @property
    def spec(self) -> dict:
        """The resolved architecture config, checkpoint file and preprocessing (no model load)."""
        if self._spec is None:
            self._spec = _resolve_spec(self)
        return self._spec

    @property
    def model(self):
        """The open_clip model, built on first use (random init on the CPU with ``seed``)."""
        if self._model is None:
            open_clip = require("open_clip", "ImageEncoder")
            spec = self.spec
            pp = spec["preprocess"]
            size = pp["size"]
            size = size if isinstance(size, int) else tuple(size)
            arch_size = spec["model_cfg"]["vision_cfg"].get("image_size")
            arch_size = arch_size if isinstance(arch_size, int) or arch_size is None else tuple(arch_size)
            # Build on the CPU in a forked RNG: random weights then depend on `seed` only,
            # not on the device or on what ran before.
            with _arch_registered(open_clip, self.arch, spec["model_cfg"]), torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                model, _, preprocess = open_clip.create_model_and_transforms(
                    self.arch,
                    pretrained=spec["checkpoint"],
                    device="cpu",
                    force_image_size=None if size in (arch_size, _pair(arch_size)) else size,
                    image_mean=tuple(pp["mean"]),
                    image_std=tuple(pp["std"]),
                    image_interpolation=pp["interpolation"],
                    image_resize_mode=pp["resize_mode"],
                    pretrained_image=False,
                    pretrained_text=False,
                    cache_dir=self.cache_dir,
                )
            self._model = model.to(self.device).eval()
            self._preprocess = preprocess
        return self._model

    @property
    def preprocess(self):
        """open_clip's eval transform: PIL image -> ``[3, H, W]`` tensor."""
        self.model
        return self._preprocess

    @property
    def tokenizer(self):
        """open_clip's tokenizer for this architecture: list of str -> ``[N, context_length]``."""
        if self._tokenizer is None:
            open_clip = require("open_clip", "ImageEncoder")
            with _arch_registered(open_clip, self.arch, self.spec["model_cfg"]):
                self._tokenizer = open_clip.get_tokenizer(self.arch)
        return self._tokenizer

    # -- helpers ------------------------------------------------------------------
    def _load(self, value: Any, index: int) -> tuple[Tensor | None, tuple[str, str] | None]:
        """One input -> (pixels, None) or (None, ("missing" | "corrupt", reason))."""
        from PIL import Image

        if isinstance(value, Image.Image):
            source = value
        elif isinstance(value, bytes):
            source = io.BytesIO(value)
        elif isinstance(value, (str, os.PathLike)):
            path = Path(value).expanduser()
            try:
                if not path.is_file():
                    return None, ("missing", "not a file" if path.exists() else "no such file")
                if path.stat().st_size == 0:
                    return None, ("corrupt", "empty file")
            except (OSError, ValueError) as e:
                return None, ("missing", f"{type(e).__name__}: {e}")
            source = path
        else:
            raise TypeError(
                f"ImageEncoder input {index} is a {type(value).__name__} ({value!r:.80}); "
                "expected a file path, encoded image bytes, a PIL image or None"
            )
        try:
            if isinstance(source, Image.Image):
                image = source.convert("RGB")
            else:
                with Image.open(source) as opened:
                    image = opened.convert("RGB")  # decodes the whole file: truncation shows here
            return self.preprocess(image), None
        except Exception as e:  # PIL raises many types for bad files; any of them masks the row
            return None, ("corrupt", f"{type(e).__name__}: {e}")

    def _finish(self, report: dict[str, list], n: int) -> None:
        self.last_report = {key: [label for label, _ in entries] for key, entries in report.items()}
        bad = report["missing"] + report["corrupt"]
        if not bad:
            return
        shown = "; ".join(f"{label} ({reason})" for label, reason in bad[:_REPORT_SHOWN])
        more = f"; and {len(bad) - _REPORT_SHOWN} more" if len(bad) > _REPORT_SHOWN else ""
        warnings.warn(
            f"ImageEncoder could not read {len(bad)} of {n} images ({len(report['missing'])} missing, "
            f"{len(report['corrupt'])} corrupt); their rows are zero with mask False: {shown}{more}. "
            "See the encoder's .last_report for the full lists",
            ImageEncoderWarning,
            stacklevel=3,  # the caller of encode / encode_all
        )


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

    @property
    def batch_size(self) -> int:
        return self.image_encoder.batch_size

    @property
    def output_dim(self) -> int:
        return self.image_encoder.output_dim

    def config(self) -> dict:
        return self.image_encoder.config()

    def weights_id(self) -> str:
        # Same weights; the suffix keeps text vectors in their own cache folder.
        return f"{self.image_encoder.weights_id()}#text"

    def encode(self, batch: Sequence[Any]) -> tuple[Tensor, Tensor]:
        return self.image_encoder.encode_text(batch)


# -- resolution ---------------------------------------------------------------------
def _resolve_weights(weights: str | os.PathLike | None) -> tuple[str | None, str, str | None]:
    """``weights`` -> (string kept in the config, kind, where), without importing open_clip."""
    if weights is None:
        return None, "random", None
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"`weights` must be None, a pretrained tag or a path, got {weights!r}")
    text = os.fspath(weights)
    if text.startswith(HUB_PREFIX):
        return text, "hub", text[len(HUB_PREFIX):]
    explicit_dir = text.startswith(LOCAL_PREFIX)
    path_str = text[len(LOCAL_PREFIX):] if explicit_dir else text
    path = Path(path_str).expanduser()
    if path.is_dir():
        resolved = str(path.resolve())
        return f"{LOCAL_PREFIX}{resolved}", "dir", resolved
    if path.is_file() and not explicit_dir:
        resolved = str(path.resolve())
        return resolved, "file", resolved
    looks_like_path = (
        explicit_dir or isinstance(weights, os.PathLike) or path_str.startswith((".", "/", "~", "\\"))
        or path.is_absolute() or path_str.endswith(_CHECKPOINT_SUFFIXES)
    )
    if looks_like_path:
        kind = "folder" if explicit_dir else "checkpoint file or folder"
        raise FileNotFoundError(
            f"`weights` {text!r} is not an existing {kind} (looked at {path.resolve()}); pass an existing "
            "path, an open_clip pretrained tag in the local cache, or None for random weights"
        )
    return text, "tag", text


def _resolve_spec(enc: ImageEncoder) -> dict:
    """Architecture config, checkpoint file and preprocessing settings; no model is built."""
    open_clip = require("open_clip", "ImageEncoder")
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    builtin_file = Path(open_clip.__file__).parent / "model_configs" / f"{enc.arch}.json"
    builtin_cfg = json.loads(builtin_file.read_text()) if builtin_file.is_file() else None
    known_cfg = open_clip.get_model_config(enc.arch)  # built-in or added with add_model_config
    checkpoint, folder_cfg, folder_config, weights_pp = None, None, None, {}

    if enc._kind == "tag":
        tag_cfg = open_clip.get_pretrained_cfg(enc.arch, enc.weights)
        if not tag_cfg:
            tags = open_clip.list_pretrained_tags_by_model(enc.arch)
            raise ValueError(
                f"`weights` {enc.weights!r} is neither a file nor a pretrained tag of arch {enc.arch!r}; "
                f"its tags: {', '.join(tags) or '(none)'}"
            )
        checkpoint = _cached_tag_file(tag_cfg, enc.cache_dir)
        if checkpoint is None:
            raise FileNotFoundError(
                f"The weights of {enc.arch!r} / {enc.weights!r} are not in the local cache and ImageEncoder never "
                f"downloads. With network access, fetch them once: python -c \"import open_clip; "
                f"open_clip.create_model('{enc.arch}', pretrained='{enc.weights}')\", or pass a checkpoint file"
            )
        weights_pp = tag_cfg
    elif enc._kind == "file":
        checkpoint = enc._location
    elif enc._kind in ("dir", "hub"):  # a folder: local, or a hub snapshot in the local cache
        folder = Path(enc._location) if enc._kind == "dir" else _cached_hub_folder(enc._location, enc.cache_dir)
        checkpoint = _checkpoint_in(folder)
        config_file = folder / "open_clip_config.json"
        if config_file.is_file():
            folder_config = str(config_file)
            saved = json.loads(config_file.read_text())
            folder_cfg = saved.get("model_cfg")
            weights_pp = saved.get("preprocess_cfg", {})

    model_cfg = enc._arch_config or folder_cfg or known_cfg
    if model_cfg is None:
        models = open_clip.list_models()
        raise ValueError(
            f"Unknown `arch` {enc.arch!r}; choose an open_clip model ({', '.join(models[:8])}, ... "
            f"{len(models)} in all: open_clip.list_models()), register one with open_clip.add_model_config, "
            "or pass its config as `arch_config=`"
        )
    others = (
        (builtin_cfg, f"open_clip's built-in {enc.arch!r}"),
        (folder_cfg, f"the config in {enc.weights}"),
        (known_cfg if enc._arch_config is None else None, f"the config registered as {enc.arch!r}"),
    )
    for other, what in others:
        if other is not None and _canonical(other) != _canonical(model_cfg):
            raise ValueError(
                f"The architecture for `arch` {enc.arch!r} differs from {what}; give the custom architecture "
                "a name of its own (arch='my-arch', with arch_config= or in the weights folder)"
            )

    pp = merge_preprocess_dict(PreprocessCfg(), weights_pp)
    pp["size"] = model_cfg["vision_cfg"].get("image_size", pp["size"])
    pp = merge_preprocess_dict(pp, enc._overrides)
    pp["mean"], pp["std"] = list(pp["mean"]), list(pp["std"])
    if isinstance(pp["size"], (list, tuple)):
        pp["size"] = list(pp["size"])
    return {
        "model_cfg": copy.deepcopy(model_cfg),
        "builtin": builtin_cfg is not None,
        "checkpoint": checkpoint,
        "folder_config": folder_config,
        "preprocess": pp,
    }


def _cached_tag_file(tag_cfg: dict, cache_dir: str | None) -> str | None:
    """The local file of a pretrained tag, looked up in the caches only (no network)."""
    if tag_cfg.get("file"):
        return tag_cfg["file"] if os.path.isfile(tag_cfg["file"]) else None
    hub = tag_cfg.get("hf_hub")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(hub)
        filename = filename or "open_clip_pytorch_model.bin"
        names = [filename[:-4] + ".safetensors"] if filename.endswith((".bin", ".pth")) else []
        if filename == "open_clip_pytorch_model.bin":
            names = ["open_clip_model.safetensors"]
        for name in names + [filename]:
            found = try_to_load_from_cache(repo, name, cache_dir=cache_dir)
            if isinstance(found, str):
                return found
    url = tag_cfg.get("url")
    if url:
        target = Path(cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if target.is_file():
            return str(target)
    return None


def _cached_hub_folder(repo: str, cache_dir: str | None) -> Path:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, "open_clip_config.json", cache_dir=cache_dir)
    if not isinstance(found, str):
        raise FileNotFoundError(
            f"`weights` 'hf-hub:{repo}' is not in the local Hugging Face cache and ImageEncoder never downloads. "
            f"With network access: huggingface-cli download {repo}; or pass 'local-dir:PATH'"
        )
    return Path(found).parent


def _checkpoint_in(folder: Path) -> str:
    for name in _PREFERRED_CHECKPOINTS:
        if (folder / name).is_file():
            return str(folder / name)
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_CHECKPOINT_SUFFIXES))
    if len(found) == 1:
        return str(found[0])
    raise FileNotFoundError(
        f"Weights folder {folder} holds {len(found)} checkpoint files ({', '.join(p.name for p in found) or 'none'}); "
        f"expected one, ideally named {_PREFERRED_CHECKPOINTS[0]!r}, or pass the file itself as `weights=`"
    )


@contextlib.contextmanager
def _arch_registered(open_clip, arch: str, model_cfg: dict):
    """Make ``arch`` name ``model_cfg`` in open_clip's config table for one call, then restore it.

    open_clip builds models and tokenizers by name only; this lets a config dict be used
    without registering it for the whole process.
    """
    table = open_clip.factory._MODEL_CONFIGS
    had, old = arch in table, table.get(arch)
    table[arch] = copy.deepcopy(model_cfg)
    try:
        yield
    finally:
        if had:
            table[arch] = old
        else:
            table.pop(arch, None)


def _fingerprint(files: list[str]) -> str:
    """sha256 over the name, size and content of each file."""
    h = hashlib.sha256()
    for name in files:
        path = Path(name)
        h.update(path.name.encode("utf-8") + b"\0" + str(path.stat().st_size).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _floats(values: Sequence[float] | None, arg: str) -> list[float] | None:
    if values is None:
        return None
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError) as e:
        raise ValueError(f"`{arg}` must be a sequence of 3 numbers (one per channel), got {values!r}") from e
    if len(out) != 3:
        raise ValueError(f"`{arg}` must have 3 numbers (one per RGB channel), got {values!r}")
    return out


def _pair(size):
    return (size, size) if isinstance(size, int) else size


def _label(value: Any, index: int) -> str:
    return os.fspath(value) if isinstance(value, (str, os.PathLike)) else f"<input {index}>"
