"""Reading images for the image encoders, and naming the bad ones.

An input that cannot be read (no such file, an empty or undecodable file) is reported,
never raised, so one bad file masks one row and the batch goes on. PIL is imported when
the first image is read. :class:`_ReadsImages` is the batching and reporting that
:class:`~ctxrec.modalities.image.ImageEncoder` and
:class:`~ctxrec.modalities.imagenet.ImageNetEncoder` share.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ctxrec.modalities.base import Encoder, is_missing

_REPORT_SHOWN = 3  # bad files named in a warning


class ImageEncoderWarning(UserWarning):
    """Some images could not be read; their rows are zero with a ``False`` mask."""


class _ReadsImages(Encoder):
    """:meth:`encode` over image inputs: read, preprocess, embed in batches, report bad files.

    A subclass sets ``batch_size`` and ``device`` and implements :meth:`_pixels` (PIL image
    -> ``[3, H, W]``; images of different shapes go through the network in separate groups)
    and :meth:`_embed` (``[n, 3, H, W]`` on ``device`` -> ``[n, output_dim]``).
    After each call :attr:`last_report` lists the bad files and one
    :class:`ImageEncoderWarning` names them.
    """

    batch_size: int
    device: str
    last_report: dict[str, list[str]]
    _pending: dict[str, list] | None = None

    def _pixels(self, image) -> Tensor:
        raise NotImplementedError

    def _embed(self, pixels: Tensor) -> Tensor:
        raise NotImplementedError

    def encode(self, batch: Sequence[Any]) -> tuple[Tensor, Tensor]:
        batch = list(batch)
        out = torch.zeros(len(batch), self.output_dim)
        mask = torch.zeros(len(batch), dtype=torch.bool)
        report: dict[str, list] = {"missing": [], "corrupt": []}
        rows = [i for i, value in enumerate(batch) if not is_missing(value)]
        for start in range(0, len(rows), self.batch_size):
            pixels, kept = [], []
            for i in rows[start:start + self.batch_size]:
                image, problem = _read_image(batch[i], i, self._pixels, type(self).__name__)  # a model loads only once an image decodes
                if problem is not None:
                    report[problem[0]].append((_label(batch[i], i), problem[1]))
                else:
                    pixels.append(image)
                    kept.append(i)
            shapes: dict[tuple, list[int]] = {}  # images of one shape share a forward pass
            for j, p in enumerate(pixels):
                shapes.setdefault(tuple(p.shape), []).append(j)
            for group in shapes.values():
                with torch.inference_mode():
                    x = torch.stack([pixels[j] for j in group]).to(self.device)
                    out[[kept[j] for j in group]] = self._embed(x).to("cpu", torch.float32)
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

    def _finish(self, report: dict[str, list], n: int) -> None:
        self.last_report = {key: [label for label, _ in entries] for key, entries in report.items()}
        message = _problem_message(report, n, type(self).__name__)
        if message:
            warnings.warn(message, ImageEncoderWarning, stacklevel=3)  # the caller of encode / encode_all


def _read_image(
    value: Any, index: int, preprocess: Callable, who: str = "ImageEncoder"
) -> tuple[Tensor | None, tuple[str, str] | None]:
    """One input -> ``(pixels, None)`` or ``(None, ("missing" | "corrupt", reason))``.

    Args:
        value (Any): A file path, encoded image bytes or a PIL image.
        index (int): Its position in the batch, for the error of a wrong type.
        preprocess (Callable): PIL image -> ``[3, H, W]`` tensor.
        who (str, optional): The encoder, for the error of a wrong type. (default: ``"ImageEncoder"``)
    """
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
            f"{who} input {index} is a {type(value).__name__} ({value!r:.80}); "
            "expected a file path, encoded image bytes, a PIL image or None"
        )
    try:
        if isinstance(source, Image.Image):
            image = source.convert("RGB")
        else:
            with Image.open(source) as opened:
                image = opened.convert("RGB")  # decodes the whole file: truncation shows here
        return preprocess(image), None
    except Exception as e:  # PIL raises many types for bad files; any of them masks the row
        return None, ("corrupt", f"{type(e).__name__}: {e}")


def _problem_message(report: dict[str, list], n: int, who: str = "ImageEncoder") -> str | None:
    """The warning for ``{"missing": [(label, reason), ...], "corrupt": [...]}``; None when all were read."""
    bad = report["missing"] + report["corrupt"]
    if not bad:
        return None
    shown = "; ".join(f"{label} ({reason})" for label, reason in bad[:_REPORT_SHOWN])
    more = f"; and {len(bad) - _REPORT_SHOWN} more" if len(bad) > _REPORT_SHOWN else ""
    return (
        f"{who} could not read {len(bad)} of {n} images ({len(report['missing'])} missing, "
        f"{len(report['corrupt'])} corrupt); their rows are zero with mask False: {shown}{more}. "
        "See the encoder's .last_report for the full lists"
    )


def _label(value: Any, index: int) -> str:
    return os.fspath(value) if isinstance(value, (str, os.PathLike)) else f"<input {index}>"
