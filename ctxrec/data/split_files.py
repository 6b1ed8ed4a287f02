"""Bring your own split: ``train``, ``val`` (optional) and ``test`` files, read and written.

A split folder holds one file per role, ``train``, ``val`` and ``test``, each ``.csv`` or
``.parquet`` (``train.csv``, ``test.parquet``, ...), with the columns ``user`` and ``item`` (ids
as in the store) and optionally ``time``. Roles are given per ``(user, item)`` pair, as in
every protocol of :mod:`ctxrec.data.splits`; a pair's context (time slot, place, session) comes
from the store. ``time``, when present, must be readable as a number or a date-time; it is
checked, not used (the store's event times order the events).

Rules, applied by :func:`files_roles`:

- every id must be in the store and every pair must be one of its interactions; otherwise a
  ``ValueError`` gives the counts per file and the first few offenders;
- a pair listed twice in one file counts once; a pair listed in two files keeps the earlier
  role (train, then val, then test), since a ranking masks a user's train items anyway; the
  number of such pairs is reported in ``info["files"]["conflicts"]``;
- interactions of the store in no file are left out of everything (message passing, training
  and evaluation): the files say exactly what the model sees;
- without a val file, model selection takes each user's latest ``SplitConfig.val`` share of
  the train pairs as validation, and the refit (``SplitConfig(refit=True)``) trains on the whole
  train file again (:func:`ctxrec.data.splits.files_split`);
- an optional ``split.json`` (written by :func:`write_split_dir`) names the ``protocol`` that
  made the roles, so export applies its rules (``temporal``: no event after the user's cut in
  message passing), and for ``cold_items`` the ``val_items`` / ``test_items`` that are ranked
  (``RecGraph.candidates``); a hand-made folder may hold one too.

Example:
    >>> write_split_dir(graph, "splits/seed0")  # doctest: +SKIP
    >>> graph2 = to_rec_graph(tables, vectors, SplitConfig(protocol="files", split_dir="splits/seed0"))  # doctest: +SKIP
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import pandas as pd

#: roles in the order that wins a conflict
ROLES = ("train", "val", "test")
SUFFIXES = (".csv", ".parquet")
#: facts about the split that per-pair roles cannot hold
MANIFEST = "split.json"


def split_file(directory: str | Path, role: str) -> Optional[Path]:
    """The file of ``role`` in ``directory`` (``<role>.csv`` or ``<role>.parquet``), or None."""
    found = [Path(directory) / f"{role}{s}" for s in SUFFIXES if (Path(directory) / f"{role}{s}").is_file()]
    if len(found) > 1:
        raise ValueError(f"{directory}: both {found[0].name} and {found[1].name} hold the {role} pairs; keep one")
    return found[0] if found else None


def read_split_dir(directory: str | Path) -> Dict[str, pd.DataFrame]:
    """The pairs of each role of a split folder: ``{"train": df, "val": df, "test": df}``.

    Each frame has the string columns ``user`` and ``item`` (duplicates dropped, file order
    kept). ``val`` is empty when the folder has no val file.

    Raises:
        ValueError: the folder or its train/test file is missing, a file cannot be read, a
            column is missing or empty, or ``time`` holds values that are neither numbers
            nor date-times. The message names the file, the row and the fix.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"split folder {str(directory)!r} does not exist or is not a folder; give a folder "
                         "holding train.csv, test.csv and optionally val.csv (or .parquet)")
    out: Dict[str, pd.DataFrame] = {}
    for role in ROLES:
        path = split_file(directory, role)
        if path is None:
            if role == "val":
                out[role] = pd.DataFrame({"user": pd.Series([], dtype=str), "item": pd.Series([], dtype=str)})
                continue
            raise ValueError(f"split folder {str(directory)!r} has no {role}.csv or {role}.parquet; every split "
                             f"needs train and test files (val is optional), columns user,item[,time]")
        out[role] = _read_one(path)
    return out


def _read_one(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str,
                                                                                      keep_default_na=False)
    except Exception as e:  # pandas/pyarrow raise many kinds for unreadable files
        raise ValueError(f"{path}: cannot be read as {path.suffix[1:].upper()} ({e}); write columns user,item[,time]") from e
    missing = [c for c in ("user", "item") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: no column {missing[0]!r} (found {list(frame.columns)}); split files need the "
                         "columns user,item and optionally time")
    for column in ("user", "item"):
        values = frame[column]
        blank = values.isna() | (values.astype(str).str.strip() == "")
        if blank.any():
            row = int(np.flatnonzero(blank.to_numpy())[0])
            raise ValueError(f"{path}: row {row + 2 if path.suffix == '.csv' else row}, column {column!r} is empty; "
                             f"every row needs a {column} id ({int(blank.sum())} such rows)")
    if "time" in frame.columns:
        _check_time(path, frame["time"])
    pairs = pd.DataFrame({"user": frame["user"].astype(str), "item": frame["item"].astype(str)})
    return pairs.drop_duplicates().reset_index(drop=True)


def _check_time(path: Path, values: pd.Series) -> None:
    numeric = pd.to_numeric(values, errors="coerce")
    dates = pd.to_datetime(values.where(numeric.isna()), errors="coerce", utc=True, format="mixed")
    bad = numeric.isna() & dates.isna() & values.notna() & (values.astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}: row {row + 2 if path.suffix == '.csv' else row}, column 'time', value "
                         f"{values.iloc[row]!r} is neither a number nor a date-time; write epoch seconds or ISO "
                         "8601, or drop the column")


def files_roles(pairs: pd.DataFrame, directory: str | Path):
    """Roles of the store's ``pairs`` (columns ``src``, ``dst``) from a split folder.

    Returns:
        ``(role, info)``: an int array aligned with ``pairs`` (0 train, 1 val, 2 test, -1 in
        no file) and facts for ``RecGraph.split_info``.
    """
    files = read_split_dir(directory)
    store = pd.MultiIndex.from_arrays([pairs["src"].astype(str), pairs["dst"].astype(str)])
    if not store.is_unique:
        raise ValueError("files_roles: the store's pairs must be distinct (one row per INTERACTED edge)")
    users, items = set(pairs["src"].astype(str)), set(pairs["dst"].astype(str))
    role = np.full(len(pairs), -1, dtype=int)
    conflicts = 0
    for code, name in enumerate(ROLES):
        frame = files[name]
        path = split_file(directory, name)
        unknown_u = ~frame["user"].isin(users)
        unknown_i = ~frame["item"].isin(items)
        where = store.get_indexer(pd.MultiIndex.from_arrays([frame["user"], frame["item"]]))
        absent = (where < 0) & ~unknown_u & ~unknown_i
        if unknown_u.any() or unknown_i.any() or absent.any():
            parts = []
            if unknown_u.any():
                parts.append(f"{int(unknown_u.sum())} name a user not in the store (e.g. "
                             f"{frame['user'][unknown_u].head(3).tolist()})")
            if unknown_i.any():
                parts.append(f"{int(unknown_i.sum())} name an item not in the store (e.g. "
                             f"{frame['item'][unknown_i].head(3).tolist()})")
            if absent.any():
                eg = list(zip(frame["user"][absent].head(3), frame["item"][absent].head(3)))
                parts.append(f"{int(absent.sum())} are user-item pairs the store has no interaction for (e.g. {eg})")
            raise ValueError(f"{path}: of its {len(frame)} pairs, " + "; ".join(parts) +
                             f" (the store has {len(users)} users, {len(items)} items, {len(pairs)} interactions). "
                             "Ingest the same interactions the split was made from, or fix the ids in the file")
        taken = role[where] >= 0
        conflicts += int(taken.sum())
        role[where[~taken]] = code
    counts = {name: int((role == code).sum()) for code, name in enumerate(ROLES)}
    manifest = _read_manifest(Path(directory), items)
    info = {"files": {"dir": str(directory), "pairs": counts, "conflicts": conflicts,
                      "unused": int((role < 0).sum()), "protocol": manifest.get("protocol")},
            **{k: manifest[k] for k in ("val_items", "test_items") if k in manifest}}
    if not counts["train"]:
        raise ValueError(f"{directory}: the train file holds no pair of the store; nothing to train on")
    return role, info


def _read_manifest(directory: Path, items: set) -> Dict[str, object]:
    """The folder's ``split.json`` (``{}`` when absent), checked against the store's items."""
    path = directory / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: not JSON ({e}); write e.g. {{\"protocol\": \"temporal\"}} or delete it") from e
    from ctxrec.data.split_config import PROTOCOLS

    protocol = manifest.get("protocol")
    made_by = [p for p in PROTOCOLS if p != "files"]
    if protocol is not None and protocol not in made_by:
        raise ValueError(f"{path}: protocol must be one of {made_by} or absent, got {protocol!r}")
    for key in ("val_items", "test_items"):
        unknown = [i for i in manifest.get(key, []) if str(i) not in items]
        if unknown:
            raise ValueError(f"{path}: {len(unknown)} of the {key} are not items of the store (e.g. {unknown[:3]})")
    return manifest


def write_split_dir(graph, directory: str | Path, fmt: str = "csv") -> Dict[str, Path]:
    """Write the split of ``graph`` (a :class:`~ctxrec.data.RecGraph`) as a split folder.

    One row per distinct ``(user, item)`` pair of each role, sorted by ``(user, item)``, so the
    same split always gives the same bytes; reading it back with
    ``SplitConfig(protocol="files", split_dir=directory)`` gives the same roles.

    Args:
        graph: the exported graph whose ``train``, ``val`` and ``test`` are written.
        directory: the folder (created when missing).
        fmt: ``"csv"`` or ``"parquet"`` (default: "csv").
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: Dict[str, Path] = {}
    for role in ROLES:
        events = getattr(graph, role)
        frame = pd.DataFrame({"user": graph.ids["user"][events.user.numpy()].astype(str),
                              "item": graph.ids["item"][events.item.numpy()].astype(str)})
        frame = frame.drop_duplicates().sort_values(["user", "item"], kind="stable").reset_index(drop=True)
        path = directory / f"{role}.{fmt}"
        for other in SUFFIXES:  # one file per role
            (directory / f"{role}{other}").unlink(missing_ok=True)
        if fmt == "csv":
            frame.to_csv(path, index=False, lineterminator="\n")
        else:
            frame.to_parquet(path, index=False)
        written[role] = path
    info = graph.split_info
    manifest: Dict[str, object] = {"protocol": info.get("files", {}).get("protocol") or info.get("protocol")}
    for name, items in graph.candidates.items():
        manifest[f"{name}_items"] = sorted(graph.ids["item"][items.numpy()].astype(str).tolist())
    written["manifest"] = directory / MANIFEST
    written["manifest"].write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return written
