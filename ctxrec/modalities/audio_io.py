"""Reading audio files and reporting bad ones: what :class:`~ctxrec.modalities.audio.AudioEncoder`
and :class:`~ctxrec.modalities.clap.ClapEncoder` share.

Files are read with ``soundfile`` (WAV, FLAC, OGG, MP3 through libsndfile) rather than
``torchaudio.load``, which needs FFmpeg; ``torchaudio`` only resamples. Both are imported
on first use, so ``import ctxrec`` stays light.

A missing, unreadable, empty or silent file gives a masked zero row; the encoder
records which in :attr:`last_report` and emits one :class:`AudioEncoderWarning` per
call, and the batch goes on.
"""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from ctxrec.modalities.base import Encoder, is_missing
from ctxrec.optional import require

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


def _check_crop(crop: str) -> None:
    if crop not in _CROPS:
        raise ValueError(f"`crop` must be one of {', '.join(map(repr, _CROPS))}, got {crop!r}")


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
