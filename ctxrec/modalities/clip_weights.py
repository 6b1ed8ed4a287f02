"""Where an :class:`~ctxrec.modalities.image.ImageEncoder`'s open_clip model comes from.

Resolves the ``weights`` argument (a checkpoint file, ``local-dir:PATH``, an open_clip
pretrained tag, ``hf-hub:ORG/NAME`` or ``"random"``) and the architecture to one checkpoint
file, model config and preprocessing; fingerprints the files for
:meth:`ImageEncoder.weights_id`; builds the model from what it resolved.

Local files and folders never touch the network. A pretrained tag or hub name is looked up
in the local caches first; when it is not there, open_clip downloads it into ``cache_dir``
(its own ``pretrained=`` download), at the first use of the model, unless
``HF_HUB_OFFLINE=1``, in which case the error names the local options. There is no default:
``weights=None`` is an error, so nothing falls back to random weights silently.
``open_clip`` is imported inside the functions that need it.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from ctxrec.modalities.base import HUB_PREFIX, LOCAL_PREFIX, _canonical, looks_like_path, split_source
from ctxrec.optional import require

if TYPE_CHECKING:
    from ctxrec.modalities.image import ImageEncoder

log = logging.getLogger(__name__)

_CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".npz")
# open_clip's own preference when a folder holds several checkpoints
_PREFERRED_CHECKPOINTS = (
    "open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth", "model.safetensors", "pytorch_model.bin", "pytorch_model.pth", "model.pth",
)


def _check_arch(arch: str, arch_config: dict | None) -> None:
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


#: the value of ``weights`` that asks for an untrained model
RANDOM = "random"


def _hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids downloads (read at call time, as huggingface_hub's values)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _local_options() -> str:
    return (
        "use local weights instead: a checkpoint file (weights='/path/to/open_clip_model.safetensors'), a folder "
        "(weights='local-dir:PATH', optionally with open_clip_config.json), or, with no CLIP weights at all, the "
        "offline pretrained ImageNet encoder 'imagenet' (get_encoder('imagenet'); ctxrec encode --encoder image "
        "picks it when no weights are given; text-to-image search then goes through `ctxrec align`)"
    )


def _missing_weights_message(arch: str) -> str:
    return (
        f"ImageEncoder (open_clip {arch!r}) needs `weights`: a checkpoint file, 'local-dir:PATH', an open_clip "
        f"pretrained tag (e.g. 'laion2b_s34b_b79k' for ViT-B-32: open_clip.list_pretrained_tags_by_model('{arch}'); "
        f"downloaded into `cache_dir` when online), 'hf-hub:ORG/NAME', or 'random' (untrained: the vectors mean "
        f"nothing, for tests only). With no CLIP weights, use the pretrained 'imagenet' encoder "
        f"(ImageNetEncoder, offline)"
    )


def _resolve_weights(weights: str | os.PathLike | None, arch: str = "ViT-B-32") -> tuple[str, str, str | None]:
    """``weights`` -> (string kept in the config, kind, where), without importing open_clip."""
    if weights is None:
        raise ValueError(_missing_weights_message(arch))
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            f"`weights` must be a checkpoint path, 'local-dir:PATH', a pretrained tag, 'hf-hub:ORG/NAME' or "
            f"'random', got {weights!r}"
        )
    if weights == RANDOM:
        return RANDOM, "random", None
    text = os.fspath(weights)
    kind, where, explicit_dir = split_source(text)
    if kind == "hub":
        return text, "hub", where
    if kind == "dir":
        return f"{LOCAL_PREFIX}{where}", "dir", where
    path_str, path = where, Path(where).expanduser()
    if path.is_file() and not explicit_dir:
        resolved = str(path.resolve())
        return resolved, "file", resolved
    path_like = (
        explicit_dir or isinstance(weights, os.PathLike) or looks_like_path(path_str)
        or path_str.endswith(_CHECKPOINT_SUFFIXES)
    )
    if path_like:
        kind = "folder" if explicit_dir else "checkpoint file or folder"
        raise FileNotFoundError(
            f"`weights` {text!r} is not an existing {kind} (looked at {path.resolve()}); pass an existing "
            "path, an open_clip pretrained tag, 'hf-hub:ORG/NAME', or 'random' for untrained weights (tests only)"
        )
    return text, "tag", text


def _resolve_spec(enc: ImageEncoder) -> dict:
    """Architecture config, checkpoint file and preprocessing settings; no model is built."""
    open_clip = require("open_clip", "ImageEncoder")
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    builtin_file = Path(open_clip.__file__).parent / "model_configs" / f"{enc.arch}.json"
    builtin_cfg = json.loads(builtin_file.read_text()) if builtin_file.is_file() else None
    known_cfg = open_clip.get_model_config(enc.arch)  # built-in or added with add_model_config
    checkpoint, folder_cfg, folder_config, weights_pp, fetch = None, None, None, {}, None

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
            if _hub_offline():
                raise FileNotFoundError(
                    f"The weights of {enc.arch!r} / {enc.weights!r} are not in the local cache "
                    f"({enc.cache_dir or 'the default caches'}) and HF_HUB_OFFLINE=1 forbids downloading them; "
                    f"{_local_options()}"
                )
            fetch = ("tag", tag_cfg)  # open_clip downloads them when the model is first built
        weights_pp = tag_cfg
    elif enc._kind == "file":
        checkpoint = enc._location
    elif enc._kind in ("dir", "hub"):  # a folder: local, or a hub snapshot in (or fetched into) the cache
        folder = Path(enc._location) if enc._kind == "dir" else _hub_folder(enc._location, enc.cache_dir)
        if enc._kind == "hub" and not _has_checkpoint(folder):
            fetch = ("hub", enc._location)
        else:
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
        "fetch": fetch,  # what to download before the model is built, when the checkpoint is not cached
        "folder_config": folder_config,
        "preprocess": pp,
    }


def _checkpoint(enc: ImageEncoder) -> str | None:
    """The checkpoint file of ``enc.spec``, downloaded first by open_clip when it is not cached (None: random)."""
    spec = enc.spec
    if spec["checkpoint"] is None and spec.get("fetch"):
        if _hub_offline():  # set since the spec was resolved
            raise FileNotFoundError(
                f"The weights {enc.weights!r} of ImageEncoder({enc.arch!r}) are not in the local cache and "
                f"HF_HUB_OFFLINE=1 forbids downloading them; {_local_options()}"
            )
        open_clip = require("open_clip", "ImageEncoder")
        kind, what = spec["fetch"]
        log.info("ImageEncoder %s: downloading weights %r with open_clip into %s", enc.arch, enc.weights,
                 enc.cache_dir or "its default cache")
        try:
            if kind == "tag":
                path = open_clip.download_pretrained(what, cache_dir=enc.cache_dir)
            else:
                path = open_clip.pretrained.download_pretrained_from_hf(what, cache_dir=enc.cache_dir)
        except Exception as e:  # no network, a moved file: say what to do instead
            raise FileNotFoundError(
                f"open_clip could not download the weights {enc.weights!r} of {enc.arch!r} ({e}); "
                f"{_local_options()}"
            ) from e
        if not path or not os.path.isfile(path):
            raise FileNotFoundError(f"open_clip's download of {enc.weights!r} gave no file ({path!r})")
        spec["checkpoint"], spec["fetch"] = str(path), None
    return spec["checkpoint"]


def _build_model(enc: ImageEncoder):
    """``(model on the CPU, eval transform)`` from :func:`_resolve_spec`, random init seeded by ``enc.seed``."""
    open_clip = require("open_clip", "ImageEncoder")
    spec = enc.spec
    checkpoint = _checkpoint(enc)
    if checkpoint is None:
        log.info("ImageEncoder %s: RANDOM weights (weights='random', seed %d): the vectors mean nothing; "
                 "for tests only", enc.arch, enc.seed)
    else:
        log.info("ImageEncoder %s: weights %r from %s", enc.arch, enc.weights, checkpoint)
    pp = spec["preprocess"]
    size = pp["size"]
    size = size if isinstance(size, int) else tuple(size)
    arch_size = spec["model_cfg"]["vision_cfg"].get("image_size")
    arch_size = arch_size if isinstance(arch_size, int) or arch_size is None else tuple(arch_size)
    # Build on the CPU in a forked RNG: random weights then depend on `seed` only,
    # not on the device or on what ran before.
    with _arch_registered(open_clip, enc.arch, spec["model_cfg"]), torch.random.fork_rng(devices=[]):
        torch.manual_seed(enc.seed)
        model, _, preprocess = open_clip.create_model_and_transforms(
            enc.arch,
            pretrained=checkpoint,
            device="cpu",
            force_image_size=None if size in (arch_size, _pair(arch_size)) else size,
            image_mean=tuple(pp["mean"]),
            image_std=tuple(pp["std"]),
            image_interpolation=pp["interpolation"],
            image_resize_mode=pp["resize_mode"],
            pretrained_image=False,
            pretrained_text=False,
            cache_dir=enc.cache_dir,
        )
    return model, preprocess


def _build_preprocess(enc: ImageEncoder):
    """open_clip's eval transform for ``enc.spec``'s preprocessing, as ``create_model_and_transforms`` makes it."""
    require("open_clip", "ImageEncoder")
    from open_clip.transform import PreprocessCfg, image_transform_v2

    pp = dict(enc.spec["preprocess"])
    pp["mean"], pp["std"] = tuple(pp["mean"]), tuple(pp["std"])
    if isinstance(pp["size"], list):
        pp["size"] = tuple(pp["size"])
    return image_transform_v2(PreprocessCfg(**pp), is_train=False)


def _build_tokenizer(enc: ImageEncoder):
    """open_clip's tokenizer for ``enc.arch`` (a custom config is registered for the call only)."""
    open_clip = require("open_clip", "ImageEncoder")
    with _arch_registered(open_clip, enc.arch, enc.spec["model_cfg"]):
        return open_clip.get_tokenizer(enc.arch)


def _weights_id(enc: ImageEncoder) -> str:
    """The architecture hash and seed for random weights, else the weights' files' sha256."""
    spec = enc.spec
    if enc._kind == "random":
        arch_hash = hashlib.sha256(_canonical(spec["model_cfg"]).encode()).hexdigest()[:12]
        return f"{enc.arch}#{arch_hash}@random:{enc.seed}"
    files = [_checkpoint(enc)] + ([spec["folder_config"]] if spec.get("folder_config") else [])
    label = f"{enc.arch}/{enc.weights}" if enc._kind == "tag" else enc.weights
    return f"{label}@sha256:{_fingerprint(files)[:16]}"


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


def _hub_folder(repo: str, cache_dir: str | None) -> Path:
    """The cache folder of a hub model's ``open_clip_config.json``; fetched (a few kB) when online."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, "open_clip_config.json", cache_dir=cache_dir)
    if isinstance(found, str):
        return Path(found).parent
    if _hub_offline():
        raise FileNotFoundError(
            f"`weights` 'hf-hub:{repo}' is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids "
            f"downloading it; {_local_options()}"
        )
    open_clip = require("open_clip", "ImageEncoder")
    try:
        found = open_clip.pretrained.download_pretrained_from_hf(repo, filename="open_clip_config.json",
                                                                 cache_dir=cache_dir)
    except Exception as e:
        raise FileNotFoundError(
            f"`weights` 'hf-hub:{repo}': could not download its open_clip_config.json ({e}); {_local_options()}"
        ) from e
    return Path(found).parent


def _has_checkpoint(folder: Path) -> bool:
    return any(p.is_file() and p.name.endswith(_CHECKPOINT_SUFFIXES) for p in folder.iterdir())


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


