"""Shared helpers for benchmarks: medians, a plain table, the JSON file."""
from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Dict, List, Sequence


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
                 command: str = "") -> Path:
    """Write ``benchmarks/<name>.json`` with the figures, the command and the machine."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    payload = {
        **figures,
        "_meta": {"command": command, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "python": platform.python_version(), "torch": torch.__version__,
                  "machine": f"{platform.machine()}, {_cpus()} CPUs"},
    }
    path = out / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
