"""Shared helpers for benchmarks: medians, a plain table, the JSON file and its provenance
(the command, a hash of the input data, the split)."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, List, Mapping, Optional, Sequence

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["aggregate", "hash_files", "hash_frames", "hash_tables", "hash_world", "median", "split_facts",
           "table", "write_report"]

#: rows per CSV chunk when hashing a frame: bounds memory on ten-million-row tables
_HASH_CHUNK = 100_000


def median(values: Sequence[float]) -> float:
    """Median of the measured values (the noisy machine makes means misleading)."""
    return float(statistics.median(values))


def table(rows: List[Dict[str, object]], columns: Sequence[str]) -> str:
    """Rows of dicts as an aligned plain-text table."""
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(out)


def aggregate(runs: Dict[str, List[Dict[str, object]]]) -> Dict[str, Dict[str, object]]:
    """Per model, the mean and ``<key>_std`` over seeds of every numeric figure, the mean of
    every ``{group: number}`` figure, and the raw ``per_seed`` list."""
    figures: Dict[str, Dict[str, object]] = {}
    for name, per_seed in runs.items():
        entry: Dict[str, object] = {}
        for key, value in per_seed[0].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                vals = [float(r[key]) for r in per_seed]
                entry[key] = statistics.mean(vals)
                entry[f"{key}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
            elif isinstance(value, dict) and value and all(isinstance(v, (int, float)) for v in value.values()):
                entry[key] = {g: statistics.mean(float(r[key][g]) for r in per_seed) for g in value}
        entry["per_seed"] = per_seed
        figures[name] = entry
    return figures


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_report(name: str, figures: Dict[str, object], out_dir: str | Path = "benchmarks",
                 command: str = "", data: Optional[Dict[str, object]] = None,
                 split: Optional[Dict[str, object]] = None) -> Path:
    """Write ``<out_dir>/<name>.json``: the figures and, under ``_meta``, their provenance.

    Args:
        name: file stem, e.g. ``"context_world"``.
        figures: what the benchmark measured (JSON-serialisable).
        out_dir: folder, created if needed (default: ``"benchmarks"``).
        command: the ``ctxrec bench ...`` command that reproduces the file (default: ``""``).
        data: the input data, e.g. ``{"hash": hash_tables(tables), "source": "synthetic world 'small', seed 0"}``;
            a benchmark over several inputs (world seeds, sizes) gives ``"hash"`` as ``{seed: hash}``
            (default: ``None``, written as ``null``).
        split: the split that was evaluated, e.g. :func:`split_facts` of the graph (default: ``None``).

    Returns:
        Path: the file written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    payload = {
        **figures,
        "_meta": {"command": command, "data": _plain(data), "split": _plain(split),
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "python": platform.python_version(), "torch": torch.__version__,
                  "machine": f"{platform.machine()}, {_cpus()} CPUs"},
    }
    path = out / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def hash_frames(frames: Mapping[str, "pd.DataFrame"]) -> str:
    """SHA-256 (hex) of named DataFrames that depends on their content, not on row or column order.

    Frames are taken in name order. Each adds its name, its column names sorted, its row
    count, then its rows, sorted by every column (in column-name order; by their text form
    when values cannot be ordered), written as CSV without index or header, ``\\n`` line
    ends, floats in Python's shortest round-trip form (in chunks, so memory stays bounded).
    The same data gives the same hash in every process and run (and across library versions
    as long as pandas writes the same CSV text); any changed value, column name or row
    changes it. Dtypes are not hashed, only the values' CSV text
    (``1`` and ``1.0`` differ, an ``object`` and a ``string`` column of the same text do not).

    Args:
        frames: name -> DataFrame.

    Returns:
        str: 64 hex digits.

    Example:
        >>> import pandas as pd
        >>> a = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
        >>> hash_frames({"t": a}) == hash_frames({"t": a.iloc[::-1][["y", "x"]]})
        True
    """
    digest = hashlib.sha256()
    for name in sorted(frames):
        frame = frames[name]
        cols = sorted(map(str, frame.columns))
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)[cols]
        digest.update(f"{name}\0{','.join(cols)}\0{len(frame)}\n".encode())
        frame = _sorted_rows(frame)
        for lo in range(0, len(frame), _HASH_CHUNK):
            text = frame.iloc[lo:lo + _HASH_CHUNK].to_csv(index=False, header=False, lineterminator="\n")
            digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def hash_tables(tables) -> str:
    """SHA-256 (hex) of a :class:`~ctxrec.graph.tables.GraphTables`: every node and edge table
    through :func:`hash_frames`, named ``nodes/<label>`` and ``edges/<type>``.

    Args:
        tables (GraphTables): the graph's tables, e.g. ``build_graph(...).tables``.

    Returns:
        str: 64 hex digits, the same for the same tables in any process or row order.
    """
    return hash_frames({**{f"nodes/{k}": v for k, v in tables.nodes.items()},
                        **{f"edges/{k}": v for k, v in tables.edges.items()}})


def hash_world(world) -> str:
    """SHA-256 (hex) of a synthetic world's generated inputs: its ``interactions``, ``items`` and
    ``users`` frames through :func:`hash_frames` (what its seed files are written from).

    Args:
        world (ctxrec.datasets.synthetic.World): e.g. the first value of ``synthetic_graph(...)``.

    Returns:
        str: 64 hex digits, the same for the same ``WorldConfig`` in any process.
    """
    return hash_frames({"interactions": world.interactions, "items": world.items, "users": world.users})


def hash_files(paths: Iterable[str | Path], root: str | Path | None = None) -> str:
    """SHA-256 (hex) of files: for each, sorted by name, its name, its size and its bytes.

    Args:
        paths: files, or folders (every file under them counts).
        root: names are paths relative to it, so the hash does not depend on where the files
            lie (default: the common folder of the files).

    Returns:
        str: 64 hex digits.

    Raises:
        FileNotFoundError: when a path does not exist.
        ValueError: when a file is not under ``root``.
    """
    files: List[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += [f for f in p.rglob("*") if f.is_file()]
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"hash_files: {str(p)!r} is neither a file nor a folder; pass existing paths")
    if root is None:
        root = os.path.commonpath([str(f.parent.resolve()) for f in files]) if files else "."
    base = Path(root).resolve()
    outside = [str(f) for f in files if not f.resolve().is_relative_to(base)]
    if outside:
        raise ValueError(f"hash_files: {outside[:3]} are not under root={str(root)!r}; pass a root above every file "
                         "or leave it out (default: their common folder)")
    named = sorted((f.resolve().relative_to(base).as_posix(), f) for f in files)
    digest = hashlib.sha256()
    for name, f in named:
        digest.update(f"{name}\0{f.stat().st_size}\0".encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def split_facts(graph) -> Dict[str, object]:
    """What a benchmark needs to say about a :class:`~ctxrec.data.RecGraph`'s split, small enough
    for a report: event counts per part, and ``graph.split_info`` (protocol, SplitConfig as a
    dict, pair and session counts) with every list longer than 20 replaced by ``{"count": n}``.

    Args:
        graph (RecGraph): the graph that was evaluated.
    """
    return {"events": {"train": len(graph.train), "val": len(graph.val), "test": len(graph.test)},
            **_plain(getattr(graph, "split_info", {}) or {})}


def _plain(value: object, max_list: int = 20) -> object:
    """``value`` as JSON types: paths and other objects as text, long sequences as their count."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v, max_list) for k, v in value.items()}
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):  # numpy / torch
        value = value.tolist()
        if not isinstance(value, list):
            return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v, max_list) for v in value] if len(value) <= max_list else {"count": len(value)}
    return str(value)


def _sorted_rows(frame: "pd.DataFrame") -> "pd.DataFrame":
    """Rows in an order fixed by their values alone (stable sort over all columns)."""
    frame = frame.reset_index(drop=True)  # positions as labels: a repeated label must not repeat rows
    if frame.empty or not len(frame.columns):
        return frame
    try:
        order = frame.sort_values(list(frame.columns), kind="mergesort", na_position="last").index
    except TypeError:  # values that cannot be ordered (mixed types, lists): order their text
        order = frame.astype(str).sort_values(list(frame.columns), kind="mergesort").index
    return frame.loc[order]


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
