"""CLAP: audio and text embeddings in one space, for text-to-audio search.

:class:`ClapEncoder` embeds audio files with ``transformers``' ``ClapModel``;
:class:`ClapTextEncoder` is its text tower as a text encoder in the same space. Files
are read by :mod:`ctxrec.modalities.audio_io`. ``transformers`` is imported on first
use and weights are only ever read from disk.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from ctxrec.modalities.audio_io import (
    _PROBLEMS,
    AudioEncoderWarning,
    _AudioReader,
    _check_crop,
    _ReportsProblems,
)
from ctxrec.modalities.base import Encoder, is_missing
from ctxrec.modalities.text import folder_or_hub_id, folder_or_hub_source
from ctxrec.optional import require

#: The Hugging Face name of the default CLAP checkpoint (not bundled: put it on disk first).
DEFAULT_CLAP_MODEL = "laion/clap-htsat-unfused"


class ClapEncoder(_ReportsProblems):
    r"""Audio (and text) embeddings in a `CLAP <https://arxiv.org/abs/2211.06687>`_ space.

    Audio files go through ``ClapModel.get_audio_features``, texts through
    :meth:`encode_text` (``get_text_features``); both land in the same space, so a text
    query can search audio items. Files are read with ``soundfile``, mixed to mono,
    cropped to the feature extractor's ``max_length_s`` (10 s for LAION CLAP) and
    resampled to its sampling rate (48 kHz). The crop is deterministic (unlike the
    feature extractor's random crops for long clips), so a file always gets the same
    vector and caching is sound.

    Weights are never downloaded here: the model loads with ``local_files_only=True``
    from a folder or from the Hugging Face cache.

    Args:
        model (str, optional): A local folder (``"/path"`` or ``"local-dir:/path"``)
            holding ``config.json``, weights and ``preprocessor_config.json`` (and a
            tokenizer for :meth:`encode_text`), or a Hugging Face name
            (``"org/name"`` or ``"hf-hub:org/name"``) already in the local cache.
            (default: ``"laion/clap-htsat-unfused"``)
        device (str, optional): Where to run. (default: ``"cuda"`` if available, else ``"cpu"``)
        batch_size (int, optional): Clips or texts per forward pass. (default: ``16``)
        crop (str, optional): Which part of a longer clip to keep, ``"start"`` or
            ``"center"``. (default: ``"start"``)
        silence_threshold (float, optional): Clips whose peak absolute amplitude is at
            most this are masked as silent. (default: ``1e-4``)

    Example:
        >>> enc = ClapEncoder("/models/clap-htsat-unfused")            # doctest: +SKIP
        >>> x, mask = enc.encode(["rain.wav", "dog.flac"])             # doctest: +SKIP
        >>> q, _ = enc.encode_text(["a dog barking"])                  # doctest: +SKIP
        >>> (x @ q.T).squeeze(1)  # cosine similarities                # doctest: +SKIP
    """

    name = "clap"
    modality = "audio"
    input_column = "audio_path"

    def __init__(
        self,
        model: str = DEFAULT_CLAP_MODEL,
        device: str | None = None,
        batch_size: int = 16,
        crop: str = "start",
        silence_threshold: float = 1e-4,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
        _check_crop(crop)
        if not silence_threshold >= 0:
            raise ValueError(f"`silence_threshold` must be >= 0, got {silence_threshold!r}")
        self.model_name, self._source, self._location = _resolve_clap(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.crop = crop
        self.silence_threshold = float(silence_threshold)
        self.space = f"clap:{self.model_name}"
        self.last_report = {k: [] for k in _PROBLEMS}
        self._model = None
        self._feature_extractor = None
        self._tokenizer = None
        self._reader: _AudioReader | None = None
        self._weights_id: str | None = None
        self._text_tower: ClapTextEncoder | None = None

    # -- contract -----------------------------------------------------------------
    @property
    def output_dim(self) -> int:
        if self._model is not None:
            return int(self._model.config.projection_dim)
        transformers = require("transformers", "ClapEncoder")
        config = self._load(transformers.ClapConfig, "its config")
        return int(config.projection_dim)

    def config(self) -> dict:
        return {
            "model": self.model_name,
            "device": self.device,
            "batch_size": self.batch_size,
            "crop": self.crop,
            "silence_threshold": self.silence_threshold,
        }

    def weights_kind(self) -> str:
        return "pretrained"

    def weights_id(self) -> str:
        if self._weights_id is None:
            local_or_hub = folder_or_hub_id(self.model_name, self._source, self._location, self._hub_commit)
            self._weights_id = f"clap:{local_or_hub}"
        return self._weights_id

    @torch.inference_mode()
    def encode(self, batch: Sequence[Any]) -> tuple[Tensor, Tensor]:
        batch = list(batch)
        fe = self.feature_extractor
        present, waves, report = self._read_batch(batch, self.reader)
        out = torch.zeros(len(batch), self.output_dim)
        mask = torch.zeros(len(batch), dtype=torch.bool)
        for start in range(0, len(waves), self.batch_size):
            chunk = [w.numpy() for w in waves[start:start + self.batch_size]]
            inputs = fe(chunk, sampling_rate=fe.sampling_rate, return_tensors="pt")
            features = inputs["input_features"].to(self.device, self.model.dtype)
            # Every clip is cropped to max_length_s, so none is "longer"; this also undoes the
            # extractor's random pick of one "longer" clip per batch in fusion mode.
            is_longer = torch.zeros(len(chunk), 1, dtype=torch.bool, device=self.device)
            emb = _pooled(self.model.get_audio_features(input_features=features, is_longer=is_longer))
            rows = torch.tensor(present[start:start + len(chunk)])
            out[rows] = torch.nn.functional.normalize(emb.float(), dim=-1).cpu()
            mask[rows] = True
        message = self._finish(report)
        if message:
            warnings.warn(message, AudioEncoderWarning, stacklevel=2)
        return out, mask

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[Any]) -> tuple[Tensor, Tensor]:
        """Text queries in the same space as :meth:`encode` (L2-normalised).

        Args:
            texts (Sequence[str | None]): Texts; missing ones give masked zero rows.

        Returns:
            tuple[Tensor, Tensor]: ``([N, output_dim] float32, [N] bool presence mask)``.
        """
        texts = list(texts)
        present = [i for i, t in enumerate(texts) if not is_missing(t)]
        for i in present:
            if not isinstance(texts[i], str):
                raise TypeError(f"ClapEncoder.encode_text input {i} is a {type(texts[i]).__name__}; expected a string")
        out = torch.zeros(len(texts), self.output_dim)
        mask = torch.zeros(len(texts), dtype=torch.bool)
        tok = self.tokenizer
        limit = self.model.config.text_config.max_position_embeddings - 2  # RoBERTa positions start at 2
        max_length = min(int(tok.model_max_length), limit)
        for start in range(0, len(present), self.batch_size):
            rows = present[start:start + self.batch_size]
            enc = tok([texts[i] for i in rows], padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")
            enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            emb = _pooled(self.model.get_text_features(**enc))
            out[torch.tensor(rows)] = torch.nn.functional.normalize(emb.float(), dim=-1).cpu()
            mask[torch.tensor(rows)] = True
        return out, mask

    def text_tower(self) -> ClapTextEncoder:
        """A text :class:`Encoder` sharing this encoder's model and space (made once)."""
        if self._text_tower is None:
            self._text_tower = ClapTextEncoder._of(self)
        return self._text_tower

    def towers(self) -> dict[str, Encoder]:
        return {"audio": self, "text": self.text_tower()}

    # -- the model ----------------------------------------------------------------
    @property
    def model(self):
        """The ``transformers.ClapModel``, loaded on first use."""
        if self._model is None:
            transformers = require("transformers", "ClapEncoder")
            model = self._load(transformers.ClapModel, "its weights")
            self._model = model.to(self.device).eval()
        return self._model

    @property
    def feature_extractor(self):
        """The ``ClapFeatureExtractor`` (sampling rate, mel settings), loaded on first use."""
        if self._feature_extractor is None:
            transformers = require("transformers", "ClapEncoder")
            self._feature_extractor = self._load(transformers.ClapFeatureExtractor, "its feature extractor")
        return self._feature_extractor

    @property
    def tokenizer(self):
        """The text tokenizer (RoBERTa BPE for LAION CLAP), loaded on first use."""
        if self._tokenizer is None:
            transformers = require("transformers", "ClapEncoder.encode_text")
            self._tokenizer = self._load(transformers.AutoTokenizer, "its tokenizer (needed by encode_text)")
        return self._tokenizer

    @property
    def reader(self) -> _AudioReader:
        if self._reader is None:
            fe = self.feature_extractor
            self._reader = _AudioReader(int(fe.sampling_rate), float(fe.max_length_s), self.crop,
                                        self.silence_threshold)
        return self._reader

    def _load(self, cls, what: str):
        try:
            return cls.from_pretrained(self._location, local_files_only=True)
        except (OSError, ValueError) as e:
            if self._source == "local":
                where = f"the folder {self._location!r} lacks {what} or they are unreadable"
                fix = "Save them there with save_pretrained, or pass another folder as `model=`"
            else:
                hub = require("huggingface_hub", "ClapEncoder")
                cache = hub.constants.HF_HUB_CACHE
                where = f"no files for {what} of {self._location!r} in the local Hugging Face cache ({cache})"
                fix = (
                    "ClapEncoder never downloads. On a machine with network run "
                    f"`hf download {self._location} --local-dir DIR`, copy DIR here and pass "
                    "model='DIR' (or fill the cache there and copy it to HF_HUB_CACHE)"
                )
            raise OSError(f"ClapEncoder could not load {what}: {where}. {fix}. Cause: {e}") from e

    def _hub_commit(self) -> str:
        hub = require("huggingface_hub", "ClapEncoder")
        found = hub.try_to_load_from_cache(self._location, "config.json")
        if isinstance(found, str):
            return Path(found).parent.name
        self._load(require("transformers", "ClapEncoder").ClapConfig, "its config")  # raises the clear error
        return "unpinned"


class ClapTextEncoder(Encoder):
    """The text tower of a :class:`ClapEncoder`, as a text :class:`Encoder` in the same space.

    Takes :class:`ClapEncoder`'s arguments. Registering it beside the audio encoder
    records that CLAP audio and CLAP text vectors share a space (text-to-audio search).

    Example:
        >>> clap = ClapEncoder("/models/clap-htsat-unfused")  # doctest: +SKIP
        >>> txt = clap.text_tower()        # shares the loaded model  # doctest: +SKIP
        >>> txt.space == clap.space                                    # doctest: +SKIP
        True
    """

    name = "clap-text"
    modality = "text"
    input_column = "description"
    runtime_keys = ClapEncoder.runtime_keys

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._bind(ClapEncoder(*args, **kwargs))

    @classmethod
    def _of(cls, clap_encoder: ClapEncoder) -> ClapTextEncoder:
        tower = cls.__new__(cls)
        tower._bind(clap_encoder)
        return tower

    def _bind(self, clap_encoder: ClapEncoder) -> None:
        self.clap_encoder = clap_encoder
        self.space = clap_encoder.space
        if clap_encoder._text_tower is None:  # so towers() is the same pair from either side
            clap_encoder._text_tower = self

    @property
    def batch_size(self) -> int:
        return self.clap_encoder.batch_size

    @property
    def output_dim(self) -> int:
        return self.clap_encoder.output_dim

    def config(self) -> dict:
        return self.clap_encoder.config()

    def weights_kind(self) -> str:
        return "pretrained"

    def weights_id(self) -> str:
        # Same weights; the suffix keeps text vectors in their own cache folder.
        return f"{self.clap_encoder.weights_id()}#text"

    def encode(self, batch: Sequence[Any]) -> tuple[Tensor, Tensor]:
        return self.clap_encoder.encode_text(batch)

    def towers(self) -> dict[str, Encoder]:
        return {"audio": self.clap_encoder, "text": self}


def _resolve_clap(model: str) -> tuple[str, str, str]:
    """``model`` -> (name kept in the config, "local"|"hub", where to load from)."""
    if not isinstance(model, (str, os.PathLike)) or not os.fspath(model):
        raise TypeError(f"`model` must be a CLAP folder or a Hugging Face name, got {model!r}")
    return folder_or_hub_source(os.fspath(model), f"a folder with a saved ClapModel or a Hugging Face name such as "
                                                  f"{DEFAULT_CLAP_MODEL!r} that is in the local cache")


def _pooled(output: Any) -> Tensor:
    # transformers 5 returns a model output whose pooler_output is the projected embedding;
    # older versions return the tensor itself.
    return output if isinstance(output, Tensor) else output.pooler_output
