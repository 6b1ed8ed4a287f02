"""Weight-free audio embeddings: log-mel statistics, the offline default audio encoder.

Files are read by :mod:`ctxrec.modalities.audio_io` (``soundfile``); ``torchaudio``
computes the spectrograms. Both are imported on first use, so ``import ctxrec`` stays
light. For semantic audio (and text-to-audio search) see :mod:`ctxrec.modalities.clap`.
"""
from __future__ import annotations

import hashlib
import json
import warnings
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
from ctxrec.optional import require


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
    contour), not for semantics -- use :class:`~ctxrec.modalities.clap.ClapEncoder` for that.

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

    def weights_kind(self) -> str:
        return "none"

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
