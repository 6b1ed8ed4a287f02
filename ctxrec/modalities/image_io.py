"""Reading images for :class:`~ctxrec.modalities.image.ImageEncoder`, and naming the bad ones.

An input that cannot be read (no such file, an empty or undecodable file) is reported,
never raised, so one bad file masks one row and the batch goes on. PIL is imported when
the first image is read.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable

from torch import Tensor

_REPORT_SHOWN = 3  # bad files named in a warning


def _read_image(value: Any, index: int, preprocess: Callable) -> tuple[Tensor | None, tuple[str, str] | None]:
    """One input -> ``(pixels, None)`` or ``(None, ("missing" | "corrupt", reason))``.

    Args:
        value (Any): A file path, encoded image bytes or a PIL image.
        index (int): Its position in the batch, for the error of a wrong type.
        preprocess (Callable): PIL image -> ``[3, H, W]`` tensor.
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
            f"ImageEncoder input {index} is a {type(value).__name__} ({value!r:.80}); "
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


def _problem_message(report: dict[str, list], n: int) -> str | None:
    """The warning for ``{"missing": [(label, reason), ...], "corrupt": [...]}``; None when all were read."""
    bad = report["missing"] + report["corrupt"]
    if not bad:
        return None
    shown = "; ".join(f"{label} ({reason})" for label, reason in bad[:_REPORT_SHOWN])
    more = f"; and {len(bad) - _REPORT_SHOWN} more" if len(bad) > _REPORT_SHOWN else ""
    return (
        f"ImageEncoder could not read {len(bad)} of {n} images ({len(report['missing'])} missing, "
        f"{len(report['corrupt'])} corrupt); their rows are zero with mask False: {shown}{more}. "
        "See the encoder's .last_report for the full lists"
    )


def _label(value: Any, index: int) -> str:
    return os.fspath(value) if isinstance(value, (str, os.PathLike)) else f"<input {index}>"
