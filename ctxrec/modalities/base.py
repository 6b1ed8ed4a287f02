"""The encoder contract every modality implements.

An encoder turns one column of the items table (a description, an image path, an
audio path, ...) into one vector per row. Every encoder, built-in or third-party,
declares what it reads and what it writes, so the rest of ctxrec (the feature
cache, fusion, the CLI) can treat them all alike.
"""
from __future__ import annotations

import abc
import contextlib
import json
import math
import numbers
from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch
from torch import Tensor


#: weights-source prefixes shared by every encoder: a local folder, a Hugging Face repo
LOCAL_PREFIX = "local-dir:"
HUB_PREFIX = "hf-hub:"


def split_source(value: str) -> tuple[str, str, bool]:
    """Classify a model or weights source the way every encoder reads one.

    Returns ``(kind, where, explicit)``: ``("hub", REPO, False)`` for ``"hf-hub:REPO"``;
    ``("dir", resolved path, explicit)`` for an existing folder (``explicit`` when written
    ``"local-dir:PATH"``); otherwise ``("other", the text without a prefix, explicit)``,
    left to the caller (a hub name, a tag, a file, or an error). ``looks_like_path`` tells
    which of those texts were meant as paths.
    """
    if value.startswith(HUB_PREFIX):
        return "hub", value[len(HUB_PREFIX):], False
    explicit = value.startswith(LOCAL_PREFIX)
    text = value[len(LOCAL_PREFIX):] if explicit else value
    path = Path(text).expanduser()
    if path.is_dir():
        return "dir", str(path.resolve()), explicit
    return "other", text, explicit


def looks_like_path(text: str) -> bool:
    """Whether a source that is not an existing folder was written as a path."""
    return text.startswith((".", "/", "~", "\\")) or Path(text).expanduser().is_absolute()


def as_text(value: Any, index: int, who: str = "encoder") -> str:
    """A text input as ``str`` (bytes are decoded as UTF-8), or a TypeError naming it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{who} input {index} is a {type(value).__name__} ({value!r:.80}); expected a string or None")


@contextlib.contextmanager
def quiet_loading():
    """Hide transformers' per-tensor "Loading weights" bar while a model loads.

    It writes to stderr in the middle of command output; the encoders' own progress
    bars (``progress=True``) are unaffected. The previous setting is restored.
    """
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # no transformers: nothing to hide
        yield
        return
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def encode_texts(batch: Sequence[Any], dim: int, who: str, embed) -> tuple[Tensor, Tensor]:
    """``([len(batch), dim], mask)``: the rows of ``batch`` that are not missing, as text (named
    ``who`` in errors), through ``embed`` (a list of texts -> a ``[n, dim]`` tensor or array);
    missing rows stay zero with a ``False`` mask."""
    batch = list(batch)
    out = torch.zeros(len(batch), dim)
    mask = torch.zeros(len(batch), dtype=torch.bool)
    present = [i for i, value in enumerate(batch) if not is_missing(value)]
    if present:
        emb = torch.as_tensor(embed([as_text(batch[i], i, who) for i in present]))
        index = torch.tensor(present)
        out[index] = emb.detach().to("cpu", torch.float32)
        mask[index] = True
    return out, mask


def is_missing(value: Any) -> bool:
    """Whether ``value`` is a missing input: ``None``, NaN, ``pd.NA`` or an empty string.

    Encoders give such inputs a zero row with a ``False`` presence mask instead of
    raising, because real item tables have holes (no poster, no description).

    Example:
        >>> [is_missing(v) for v in (None, float("nan"), "", "  ", "text")]
        [True, True, True, True, False]
    """
    if value is None:
        return True
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, int)):
        return math.isnan(value)  # float NaN, numpy NaN
    if isinstance(value, (str, bytes)):
        return not value.strip()
    # pandas.NA / NaT without importing pandas
    return type(value).__name__ in ("NAType", "NaTType")


class Encoder(abc.ABC):
    """Base class of all modality encoders.

    A subclass declares four class (or instance) attributes and implements four
    members; :meth:`encode_all` then comes for free.

    Attributes:
        name (str): The name the encoder is registered under (e.g. ``"text"``).
        modality (str): ``"text"``, ``"image"``, ``"audio"``, ...
        input_column (str): The items-table column it reads (``"description"``,
            ``"image_path"``, ``"audio_path"``).
        space (str): Id of the embedding space it writes into (e.g. ``"minilm"``,
            ``"clip:ViT-B-32"``). Vectors of encoders that share a space are comparable,
            which is what makes cross-modal search possible.
        runtime_keys (tuple[str, ...]): Keys of :meth:`config` that change where or how
            fast an encoder runs but not what it outputs (``device``, ``batch_size``);
            they are left out of cache keys.

    Contract of :meth:`encode`: given ``N`` inputs it returns a ``float32`` tensor
    ``[N, output_dim]`` on the CPU and a ``bool`` presence mask ``[N]``. A missing
    input (see :func:`is_missing`) gives a zero row and ``False``, never an exception.

    Example:
        >>> enc = get_encoder("text")                     # doctest: +SKIP
        >>> x, mask = enc.encode(["a calm piece", None])  # doctest: +SKIP
        >>> x.shape, mask.tolist()                         # doctest: +SKIP
        (torch.Size([2, 384]), [True, False])
    """

    name: str = ""
    modality: str = ""
    input_column: str = ""
    space: str = ""
    runtime_keys: ClassVar[tuple[str, ...]] = ("device", "batch_size")

    @property
    @abc.abstractmethod
    def output_dim(self) -> int:
        """The width of the vectors :meth:`encode` returns."""

    @abc.abstractmethod
    def config(self) -> dict:
        """The constructor arguments that rebuild this encoder (JSON-able).

        ``type(enc)(**enc.config())`` must give an encoder with equal output; the
        preprocessing settings are part of it.
        """

    @abc.abstractmethod
    def weights_id(self) -> str:
        """Which weights the encoder uses: a model name or path plus a fingerprint.

        Part of the feature-cache key, so it must change whenever the weights do, and
        should be computable without loading the model.
        """

    @abc.abstractmethod
    def encode(self, batch: Sequence[Any]) -> tuple[Tensor, Tensor]:
        """Encode one batch of inputs.

        Args:
            batch (Sequence[Any]): Values of :attr:`input_column`, possibly missing.

        Returns:
            tuple[Tensor, Tensor]: ``([N, output_dim] float32, [N] bool presence mask)``.
        """

    def weights_kind(self) -> str | None:
        """What the output rests on: ``"pretrained"`` (trained weights), ``"random"`` (an
        untrained initialisation: tests and smoke runs only), ``"none"`` (a weight-free
        transform) or :obj:`None` (not declared). Shown by ``ctxrec encoders list``."""
        return None

    @property
    def reads_files(self) -> bool:
        """Whether string inputs are file paths (so a cache hashes the file's bytes).

        Default: the input column's name ends with ``_path`` or ``_file``.
        """
        return self.input_column.endswith(("_path", "_file"))

    def towers(self) -> dict[str, "Encoder"]:
        """Encoders, one per input modality, that write into this encoder's :attr:`space`.

        The default is ``{self.modality: self}``. A model with several towers returns them
        all, sharing its loaded weights: an open_clip :class:`ImageEncoder` gives
        ``{"image": self, "text": <its text tower>}``, CLAP ``{"audio": ..., "text": ...}``.
        Search uses this to embed a query of one modality next to items of another.
        """
        return {self.modality: self}

    def cache_config(self) -> dict:
        """:meth:`config` without :attr:`runtime_keys`: what, besides the weights,
        determines the output. Used in feature-cache keys."""
        return {k: v for k, v in self.config().items() if k not in self.runtime_keys}

    @classmethod
    def from_config(cls, config: dict) -> "Encoder":
        """Rebuild an encoder from :meth:`config`'s output."""
        return cls(**config)

    def encode_all(
        self,
        inputs: Sequence[Any],
        batch_size: int | None = None,
        progress: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """Encode any number of inputs in batches.

        Args:
            inputs (Sequence[Any]): Values of :attr:`input_column`.
            batch_size (int, optional): Inputs per :meth:`encode` call.
                (default: the encoder's ``batch_size`` attribute if it has one, else 64)
            progress (bool, optional): Show a tqdm progress bar. (default: :obj:`False`)

        Returns:
            tuple[Tensor, Tensor]: ``([N, output_dim] float32, [N] bool)``.
        """
        inputs = list(inputs)
        if batch_size is None:
            batch_size = int(getattr(self, "batch_size", 64) or 64)
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
        if not inputs:
            return torch.zeros(0, self.output_dim), torch.zeros(0, dtype=torch.bool)
        starts = range(0, len(inputs), batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"encode {self.name or type(self).__name__}", unit="batch")
        xs, masks = [], []
        for start in starts:
            chunk = inputs[start:start + batch_size]
            x, mask = self.encode(chunk)
            self._check_output(x, mask, len(chunk))
            xs.append(x)
            masks.append(mask)
        return torch.cat(xs), torch.cat(masks)

    def _check_output(self, x: Tensor, mask: Tensor, n: int) -> None:
        """Fail early and clearly when an encoder breaks the contract."""
        cls = type(self).__name__
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[0] != n or x.dtype != torch.float32:
            found = f"{type(x).__name__} {getattr(x, 'dtype', '')} {tuple(getattr(x, 'shape', ()))}"
            raise TypeError(
                f"{cls}.encode returned {found} for {n} inputs; expected a float32 tensor of "
                f"shape ({n}, {self.output_dim})"
            )
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (n,):
            found = f"{type(mask).__name__} {getattr(mask, 'dtype', '')} {tuple(getattr(mask, 'shape', ()))}"
            raise TypeError(f"{cls}.encode returned mask {found}; expected a bool tensor of shape ({n},)")

    def __eq__(self, other: object) -> bool:
        # Equal means "rebuilds to the same thing": same class and same config.
        if not isinstance(other, Encoder):
            return NotImplemented
        return type(self) is type(other) and _canonical(self.config()) == _canonical(other.config())

    def __hash__(self) -> int:
        return hash((type(self), _canonical(self.config())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
