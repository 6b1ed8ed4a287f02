"""Reading the seed tables (CSV or Parquet) with row-level validation.

Every problem with a row becomes a :class:`Reject` that names the file, the row
(1-based, counting data rows; a CSV's line number is ``row + 1``), the column, the
value and the reason with its fix. Problems with a whole file (it does not exist,
a required column is missing) raise :class:`InputError` with the same details.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence

import numpy as np
import pandas as pd


class InputError(ValueError):
    """A seed file cannot be read at all: the message names the file and the fix."""


class InputWarning(UserWarning):
    """A seed file has something that is probably a mistake but loses no row (e.g. a misspelt column)."""


@dataclass(frozen=True)
class Reject:
    """One rejected row: where it is, what is wrong, and how to fix it."""

    file: str
    row: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}, row {self.row}, column {self.column!r}, value {self.value!r}: {self.reason}"


class RejectLog:
    """Collects rejects across files; written as CSV (file,row,column,value,reason).

    Args:
        redact (callable, optional): ``(column, raw value) -> shown value``, e.g.
            :meth:`ctxrec.privacy.Pseudonymizer.reject_value` so that no raw user id reaches
            the reject file (default: values shown as read).
    """

    def __init__(self, redact: Optional[Callable[[str, object], object]] = None) -> None:
        self.items: List[Reject] = []
        self.redact = redact

    def add(self, file: str, rows: Iterable[int], column: str, values: Iterable[object], reason: str) -> None:
        for r, v in zip(rows, values):
            shown = self.redact(column, v) if self.redact is not None else v
            self.items.append(Reject(str(file), int(r), column, _show(shown), reason))

    def __len__(self) -> int:
        return len(self.items)

    def frame(self) -> pd.DataFrame:
        cols = ["file", "row", "column", "value", "reason"]
        frame = pd.DataFrame([asdict(r) for r in self.items], columns=cols)
        return frame.sort_values(["file", "row", "column"], kind="stable").reset_index(drop=True)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.frame().to_csv(path, index=False)
        return path


def _show(value: object, limit: int = 200) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    s = str(value)
    return s if len(s) <= limit else s[:limit] + f"...(+{len(s) - limit} chars)"


def _clean(value: object) -> object:
    """Strip text; empty text and NaN become None."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


def _read_csv_rowwise(path: Path, log: "RejectLog | None") -> pd.DataFrame:
    """Slow path for CSVs whose rows have the wrong number of fields: such rows are
    rejected one by one instead of failing the whole file."""
    import csv

    limit = csv.field_size_limit(2**31 - 1)  # pandas has no field limit; over-long text is rejected later
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise pd.errors.EmptyDataError("no header")
            rows, numbers = [], []
            for i, rec in enumerate(reader, start=1):
                if not rec:
                    continue
                if len(rec) != len(header):
                    if log is not None:
                        log.add(str(path), [i], "*", [",".join(rec)],
                                f"expected {len(header)} fields ({','.join(header)}), found {len(rec)}; "
                                "quote values that contain commas")
                    continue
                rows.append(rec)
                numbers.append(i)
    except csv.Error as e:
        raise InputError(f"{path}: cannot be read as CSV near data row {reader.line_num - 1} ({e}); "
                         "check the quoting there") from None
    finally:
        csv.field_size_limit(limit)
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame["_line_row"] = numbers
    return frame


def _has_short_rows(path: Path, n_fields: int) -> bool:
    """Whether a data line of the CSV has fewer than ``n_fields`` fields (comma counts per
    line; stops at the first). A line with a quote answers True: the exact csv-module
    path then decides."""
    with open(path, "rb") as fh:
        next(fh, None)  # the header
        for line in fh:
            if b'"' in line:
                return True
            if line.count(b",") < n_fields - 1 and line.strip():
                return True
    return False


def read_table(path: str | Path, required: Sequence[str], optional: Sequence[str] = (),
               log: "RejectLog | None" = None) -> pd.DataFrame:
    """Read a CSV or Parquet seed table as strings, with a ``_row`` column.

    Every column is read as text (``None`` where empty) so that validation, not the
    reader, decides what a bad value is.

    Args:
        path: a ``.csv`` (UTF-8; other bytes are replaced and then rejected by the
            validators that see them) or ``.parquet`` file.
        required: columns that must be present.
        optional: columns kept when present; any other column is ignored.

    Raises:
        InputError: the file is missing, unreadable, empty or lacks a required column.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; pass the path of an existing .csv or .parquet file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            frame = frame.astype(object).where(frame.notna(), None)
            frame = frame.apply(lambda c: c.map(lambda v: None if v is None else str(v)))
        else:
            try:
                frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                                    encoding="utf-8", encoding_errors="replace")
            except pd.errors.ParserError:
                frame = _read_csv_rowwise(path, log)
            else:  # pandas pads a row with too few fields with NaN: only the slow path can tell it
                width = len(frame.columns)
                if width > 1 and frame.iloc[:, -1].isna().any() and _has_short_rows(path, width):
                    frame = _read_csv_rowwise(path, log)
            frame = frame.astype(object).where(frame.notna(), None)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty; it needs a header row with columns {list(required)}") from None
    except (ValueError, OSError) as e:
        raise InputError(f"{path}: cannot be read as {path.suffix or 'csv'} ({e}); check the file format") from e
    frame.columns = [str(c).strip() for c in frame.columns]
    known = list(required) + list(optional)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing required column(s) {missing}; found {_show(list(frame.columns))}"
            f"{_did_you_mean(missing, frame.columns)}. "
            f"Add the column(s) to the header row (required: {list(required)}, optional: {list(optional)})"
        )
    typos = _did_you_mean([c for c in optional if c not in frame.columns],
                          [c for c in frame.columns if c not in known and c != "_line_row"])
    if typos:
        warnings.warn(f"{path}: an unused column looks like a misspelt optional one{typos}; "
                      "rename it in the header row or its values are ignored", InputWarning, stacklevel=2)
    keep = [c for c in known if c in frame.columns]
    frame = frame[keep + [c for c in ["_line_row"] if c in frame.columns]].copy()
    for c in keep:
        frame[c] = map_unique(frame[c], _clean).astype(object)
    frame["_row"] = np.arange(1, len(frame) + 1)
    if "_line_row" in frame.columns:
        frame["_row"] = frame.pop("_line_row").astype(int)
    return frame.reset_index(drop=True)


def _did_you_mean(wanted: Sequence[str], found: Iterable[str]) -> str:
    """`` (did you mean 'user_id' for 'User ID'?)`` for near misses (case, spaces, typos), else ``""``."""
    import difflib

    norm = {str(f).lower().replace(" ", "_").replace("-", "_"): str(f) for f in found}
    pairs = []
    for w in wanted:
        close = difflib.get_close_matches(w, list(norm), n=1, cutoff=0.75)
        if close:
            pairs.append(f"{w!r} for {norm[close[0]]!r}")
    return f" (did you mean {', '.join(pairs)}?)" if pairs else ""


def reject_rows(frame: pd.DataFrame, bad: pd.Series, log: RejectLog, file: str, column: str, reason: str) -> pd.DataFrame:
    """Move the rows where ``bad`` is true into ``log``; return the good rows."""
    bad = bad.fillna(False).astype(bool)
    if bad.any():
        sub = frame.loc[bad]
        log.add(file, sub["_row"], column, sub[column] if column in sub else [""] * len(sub), reason)
    return frame.loc[~bad]


def parse_times(values: pd.Series) -> pd.Series:
    """Parse ISO-8601 strings or unix seconds into naive UTC datetimes at second
    resolution (years 1..9999); NaT where unparseable."""
    as_num = pd.to_numeric(values, errors="coerce")
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[s]")
    num = as_num.notna() & np.isfinite(as_num.astype(float)) & (as_num.abs() < 2.5e11)
    if num.any():
        out[num] = pd.to_datetime(as_num[num].astype("int64"), unit="s", errors="coerce").astype("datetime64[s]")
    text = ~num & as_num.isna() & values.notna()
    if text.any():
        parsed = pd.to_datetime(values[text], errors="coerce", format="ISO8601", utc=True)
        out[text] = parsed.dt.tz_localize(None).astype("datetime64[s]")
    return out


def map_unique(values: pd.Series, fn) -> pd.Series:
    """``values.map(fn)`` calling ``fn`` once per distinct value (ids, places and actions
    repeat millions of times in a large log). ``None`` stays ``None`` unless ``fn`` maps it."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.asarray([fn(v) for v in uniques] + [fn(None)], dtype=object)
    return pd.Series(mapped[codes], index=values.index)  # code -1 (missing) picks fn(None)
