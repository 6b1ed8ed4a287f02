"""Audio encoders: weight-free log-mel statistics (the offline default) and CLAP.

Files are read with ``soundfile`` (WAV, FLAC, OGG, MP3 through libsndfile) rather than
``torchaudio.load``, which needs FFmpeg; ``torchaudio`` only resamples and computes
spectrograms. Both libraries are imported on first use, so ``import ctxrec`` stays light.

A missing, unreadable, empty or silent file gives a masked zero row; the encoder
records which in :attr:`last_report` and emits one :class:`AudioEncoderWarning` per
call, and the batch goes on.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from ctxrec.modalities.base import HUB_PREFIX, LOCAL_PREFIX, Encoder, is_missing
from ctxrec.modalities.text import _fingerprint_dir
from ctxrec.optional import require

#: The Hugging Face name of the default CLAP checkpoint (not bundled: put it on disk first).
DEFAULT_CLAP_MODEL = "laion/clap-htsat-unfused"
_PROBLEMS = ("missing", "corrupt", "silent")
_CROPS = ("start", "center")


class AudioEncoderWarning(UserWarning):
    """Some audio files were missing, unreadable, empty or silent and got masked rows."""


class _AudioReader:
    """Reads a file as a mono float32 waveform at one sample rate, cropped; caches resamplers."""

    def __init__(self, sample_rate: int, max_seconds: float | None, crop: str, silence_threshold: float) -> None:
        self.sample_rate = sample_rate
        self.max_seconds = max_seconds
        self.crop = crop
        self.silence_threshold = silence_threshold
        self._resamplers: dict[int, Any] = {}

    def read(self, path: Path) -> tuple[Tensor | None, str]:
        """``(waveform [T] float32, "ok")`` or ``(None, "missing" | "corrupt" | "silent")``."""
        sf = require("soundfile", "reading audio files")
        if not path.is_file():
            return None, "missing"
        try:
            with sf.SoundFile(str(path)) as f:
                sr, total = int(f.samplerate), int(f.frames)
                n = total
                if self.max_seconds is not None:
                    n = min(total, int(math.ceil(self.max_seconds * sr)))
                if self.crop == "center" and total > n and f.seekable():
                    f.seek((total - n) // 2)
                data = f.read(n, dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError):
            return None, "corrupt"  # includes zero-byte files: libsndfile cannot read a header
        if data.shape[0] == 0 or not sr > 0:
            return None, "corrupt"
        wave = torch.from_numpy(data).mean(dim=1)  # mix down to mono
        if not bool(torch.isfinite(wave).all()):
            return None, "corrupt"
        if float(wave.abs().max()) <= self.silence_threshold:
            return None, "silent"
        if sr != self.sample_rate:
            wave = self._resampler(sr)(wave)
            if self.max_seconds is not None:  # the resampled length is rounded up
                wave = wave[: int(math.ceil(self.max_seconds * self.sample_rate))]
        return wave.contiguous(), "ok"

    def _resampler(self, orig: int):
        # transforms.Resample is torchaudio.functional.resample with its sinc kernel cached
        if orig not in self._resamplers:
            ta = require("torchaudio", "resampling audio")
            self._resamplers[orig] = ta.transforms.Resample(orig, self.sample_rate)
        return self._resamplers[orig]


class _ReportsProblems(Encoder):
    """Shared masking/report/warning logic of the audio encoders.

    :meth:`encode` warns once per call; :meth:`encode_all` (and so a
    :class:`~ctxrec.modalities.FeatureCache`) warns once for all its batches.
    """

    last_report: dict[str, list[str]]

    def _read_batch(self, batch: Sequence[Any], reader: _AudioReader) -> tuple[list[int], list[Tensor], dict]:
        present, waves = [], []
        report: dict[str, list[str]] = {k: [] for k in _PROBLEMS}
        for i, value in enumerate(batch):
            if is_missing(value):
                continue  # a missing value is an expected hole in the table, not a problem file
            if not isinstance(value, (str, os.PathLike)):
                raise TypeError(
                    f"{type(self).__name__} input {i} is a {type(value).__name__} ({value!r:.80}); "
                    "expected a path to an audio file (str or os.PathLike) or None"
                )
            path = Path(value).expanduser()
            wave, status = reader.read(path)
            if wave is None:
                report[status].append(os.fspath(value))
            else:
                present.append(i)
                waves.append(wave)
        return present, waves, report

    def _finish(self, report: dict) -> str | None:
        """Store the report; the warning text when there is something to say."""
        if getattr(self, "_collecting", None) is not None:
            for k in _PROBLEMS:
                self._collecting[k].extend(report[k])
            return None
        self.last_report = report
        return _problem_message(type(self).__name__, report)

    def encode_all(self, inputs: Sequence[Any], batch_size: int | None = None, progress: bool = False):
        self._collecting = {k: [] for k in _PROBLEMS}
        try:
            out = super().encode_all(inputs, batch_size=batch_size, progress=progress)
            report = self._collecting
        finally:
            self._collecting = None
        self.last_report = report
        message = _problem_message(type(self).__name__, report)
        if message:
            warnings.warn(message, AudioEncoderWarning, stacklevel=2)
        return out


class AudioEncoder(_ReportsProblems):
    r"""Weight-free audio embeddings: statistics of a log-mel spectrogram over time.

    Each file is read with ``soundfile``, mixed down to mono, resampled to
    ``sample_rate``, cropped to ``max_seconds``, turned into a log-mel spectrogram
    :math:`S \in \mathbb{R}^{M \times T}` (dB, floored ``top_db`` below its peak) and
    pooled over time (statistics pooling, as in `x-vectors
    <https://www.danielpovey.com/files/2018_icassp_xvectors.pdf>`_):

    .. math::
        \mathbf{x} = [\mu(S), \sigma(S), \mu(\Delta S), \sigma(\Delta S)] / \lVert\cdot\rVert_2

    with mean and standard deviation per mel band over the :math:`T` frames, the delta
    terms only with ``deltas`` and the division only with ``normalize``. Shorter clips
    are not padded with silence, which would swamp the statistics: they are pooled over
    their own frames (what padding with a frame mask gives). No weights, so vectors
    are reproducible anywhere; good for "sounds alike" (timbre, pitch range, loudness
    contour), not for semantics -- use :class:`ClapEncoder` for that.

    Args:
        sample_rate (int, optional): Rate every file is resampled to. (default: ``16000``)
        max_seconds (float, optional): Crop clips to this length; :obj:`None` reads
            whole files. (default: ``10.0``)
        crop (str, optional): Which part of a longer clip to keep, ``"start"`` or
            ``"center"``. (default: ``"start"``)
        n_mels (int, optional): Mel bands. (default: ``64``)
        n_fft (int, optional): FFT size in samples. (default: ``1024``)
        hop_length (int, optional): Frame hop in samples (20 ms at 16 kHz). (default: ``320``)
        f_min (float, optional): Lowest mel frequency in Hz. (default: ``0.0``)
        f_max (float, optional): Highest mel frequency in Hz. (default: ``sample_rate / 2``)
        top_db (float, optional): Floor of the dB spectrogram below its peak; makes
            near-silent bands comparable across sources. (default: ``80.0``)
        deltas (bool, optional): Add mean and std of the frame-to-frame deltas, which
            doubles the width. (default: :obj:`False`)
        normalize (bool, optional): L2-normalise the vectors. (default: :obj:`True`)
        silence_threshold (float, optional): A clip whose peak absolute amplitude is at
            most this is silent and masked. (default: ``1e-4``, about -80 dBFS)
        batch_size (int, optional): Files per :meth:`encode` call in :meth:`encode_all`.
            (default: ``32``)

    Attributes:
        last_report (dict[str, list[str]]): Problem files of the last :meth:`encode` or
            :meth:`encode_all` call: ``{"missing": [...], "corrupt": [...], "silent": [...]}``
            (``corrupt`` includes zero-length and unreadable files).

    Example:
        >>> enc = AudioEncoder()
        >>> x, mask = enc.encode(["a.wav", None, "no-such.flac"])  # doctest: +SKIP
        >>> x.shape, mask.tolist()                                 # doctest: +SKIP
        (torch.Size([3, 128]), [True, False, False])
    """

    name = "audio"
    modality = "audio"
    input_column = "audio_path"
    space = "logmel"
    runtime_keys = ("batch_size",)

    def __init__(
        self,
        sample_rate: int = 16000,
        max_seconds: float | None = 10.0,
        crop: str = "start",
        n_mels: int = 64,
        n_fft: int = 1024,
        hop_length: int = 320,
        f_min: float = 0.0,
        f_max: float | None = None,
        top_db: float | None = 80.0,
        deltas: bool = False,
        normalize: bool = True,
        silence_threshold: float = 1e-4,
        batch_size: int = 32,
    ) -> None:
        for arg, value in (("sample_rate", sample_rate), ("n_mels", n_mels), ("n_fft", n_fft),
                           ("hop_length", hop_length), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{arg}` must be a positive integer, got {value!r}")
        if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float))
                                        or not max_seconds > 0):
            raise ValueError(f"`max_seconds` must be a positive number of seconds or None, got {max_seconds!r}")
        _check_crop(crop)
        nyquist = sample_rate / 2
        if f_max is not None and not (f_min < f_max <= nyquist):
            raise ValueError(
                f"`f_max` must be in ({f_min}, {nyquist}] (above `f_min`, at most half of "
                f"`sample_rate`={sample_rate}), got {f_max!r}; or pass None for {nyquist}"
            )
        if not 0 <= f_min < nyquist:
            raise ValueError(f"`f_min` must be in [0, {nyquist}), got {f_min!r}")
        if top_db is not None and not top_db > 0:
            raise ValueError(f"`top_db` must be a positive number of dB or None, got {top_db!r}")
        if not silence_threshold >= 0:
            raise ValueError(f"`silence_threshold` must be >= 0, got {silence_threshold!r}")
        self.sample_rate = sample_rate
        self.max_seconds = None if max_seconds is None else float(max_seconds)
        self.crop = crop
        self.n_mels = n_mels
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.f_min = float(f_min)
        self.f_max = None if f_max is None else float(f_max)
        self.top_db = None if top_db is None else float(top_db)
        self.deltas = bool(deltas)
        self.normalize = bool(normalize)
        self.silence_threshold = float(silence_threshold)
        self.batch_size = batch_size
        self.last_report = {k: [] for k in _PROBLEMS}
        self._reader = _AudioReader(sample_rate, self.max_seconds, crop, self.silence_threshold)
        self._transforms = None

    # -- contract -----------------------------------------------------------------
    @property
    def output_dim(self) -> int:
        return (4 if self.deltas else 2) * self.n_mels

    def config(self) -> dict:
        return {
            "sample_rate": self.sample_rate,
            "max_seconds": self.max_seconds,
            "crop": self.crop,
            "n_mels": self.n_mels,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "f_min": self.f_min,
            "f_max": self.f_max,
            "top_db": self.top_db,
            "deltas": self.deltas,
            "normalize": self.normalize,
            "silence_threshold": self.silence_threshold,
            "batch_size": self.batch_size,
        }

    def weights_id(self) -> str:
        spec = json.dumps(self.cache_config(), sort_keys=True)
        return "logmel:" + hashlib.sha256(spec.encode("utf-8")).hexdigest()[:16]

    def encode(self, batch: Sequence[Any]) -> tuple[Tensor, Tensor]:
        batch = list(batch)
        present, waves, report = self._read_batch(batch, self._reader)
        out = torch.zeros(len(batch), self.output_dim)
        mask = torch.zeros(len(batch), dtype=torch.bool)
        for i, wave in zip(present, waves):
            out[i] = self.embed_waveform(wave)
            mask[i] = True
        message = self._finish(report)
        if message:
            warnings.warn(message, AudioEncoderWarning, stacklevel=2)
        return out, mask

    # -- features -----------------------------------------------------------------
    @torch.inference_mode()
    def embed_waveform(self, wave: Tensor) -> Tensor:
        """The vector of one mono waveform ``[T]`` already at :attr:`sample_rate`.

        Example:
            >>> enc = AudioEncoder(n_mels=32)
            >>> enc.embed_waveform(torch.randn(16000)).shape
            torch.Size([64])
        """
        mel, to_db, compute_deltas = self._get_transforms()
        wave = wave.to(torch.float32).reshape(-1)
        if wave.numel() < self.n_fft:  # the centred STFT's reflect padding needs this much
            wave = torch.nn.functional.pad(wave, (0, self.n_fft - wave.numel()))
        spec = to_db(mel(wave))  # [n_mels, frames]
        parts = [spec.mean(dim=1), spec.std(dim=1, unbiased=False)]
        if self.deltas:
            delta = compute_deltas(spec.unsqueeze(0)).squeeze(0)
            parts += [delta.mean(dim=1), delta.std(dim=1, unbiased=False)]
        x = torch.cat(parts)
        if self.normalize:
            x = torch.nn.functional.normalize(x, dim=0)
        return x

    def _get_transforms(self):
        if self._transforms is None:
            ta = require("torchaudio", "AudioEncoder")
            mel = ta.transforms.MelSpectrogram(
                sample_rate=self.sample_rate,
                n_fft=self.n_fft,
                hop_length=self.hop_length,
                f_min=self.f_min,
                f_max=self.f_max,
                n_mels=self.n_mels,
                power=2.0,
            )
            to_db = ta.transforms.AmplitudeToDB(stype="power", top_db=self.top_db)
            self._transforms = (mel, to_db, ta.functional.compute_deltas)
        return self._transforms


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

    def weights_id(self) -> str:
        if self._weights_id is None:
            if self._source == "local":
                digest = _fingerprint_dir(Path(self._location))[:16]
                self._weights_id = f"clap:{self.model_name}@sha256:{digest}"
            else:
                self._weights_id = f"clap:{HUB_PREFIX}{self._location}@{self._hub_commit()}"
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


def _resolve_clap(model: str) -> tuple[str, str, str]:
    """``model`` -> (name kept in the config, "local"|"hub", where to load from)."""
    if not isinstance(model, (str, os.PathLike)) or not os.fspath(model):
        raise TypeError(f"`model` must be a CLAP folder or a Hugging Face name, got {model!r}")
    model = os.fspath(model)
    if model.startswith(HUB_PREFIX):
        return model, "hub", model[len(HUB_PREFIX):]
    explicit_local = model.startswith(LOCAL_PREFIX)
    path_str = model[len(LOCAL_PREFIX):] if explicit_local else model
    path = Path(path_str).expanduser()
    if path.is_dir():
        resolved = str(path.resolve())
        return resolved, "local", resolved
    if explicit_local or path_str.startswith((".", "/", "~", "\\")) or path.is_absolute():
        raise FileNotFoundError(
            f"`model` {model!r} is not a folder (looked at {path.resolve()}); pass a folder with a "
            f"saved ClapModel or a Hugging Face name such as {DEFAULT_CLAP_MODEL!r} that is in the local cache"
        )
    return model, "hub", model


def _check_crop(crop: str) -> None:
    if crop not in _CROPS:
        raise ValueError(f"`crop` must be one of {', '.join(map(repr, _CROPS))}, got {crop!r}")


def _pooled(output: Any) -> Tensor:
    # transformers 5 returns a model output whose pooler_output is the projected embedding;
    # older versions return the tensor itself.
    return output if isinstance(output, Tensor) else output.pooler_output


def _problem_message(cls: str, report: dict, show: int = 3) -> str | None:
    total = sum(len(report[k]) for k in _PROBLEMS)
    if not total:
        return None
    parts = []
    for kind in _PROBLEMS:
        paths = report[kind]
        if paths:
            more = f", ... ({len(paths) - show} more)" if len(paths) > show else ""
            parts.append(f"{len(paths)} {kind} ({', '.join(map(repr, paths[:show]))}{more})")
    return (
        f"{cls}: {total} audio file(s) gave masked zero rows: {'; '.join(parts)}. "
        "See the encoder's .last_report for the full lists"
    )
