"""``build_graph``: seed tables -> validated, de-duplicated :class:`GraphTables`.

Reads the three seed formats (CSV or Parquet):

- interactions ``user_id,action,item_id,time`` + optional ``value,location,session_id``
- items ``item_id,name,description,category,price`` + optional ``image_path,audio_path``
- context ``user_id,location,time_in_site,shopping_cart``

and derives context nodes: time slots (weekday x daypart), places (normalised text)
and sessions (an inactivity gap; an explicit ``session_id`` wins). Bad rows go to a
reject log with file, row, column, value and reason; good rows still load.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional

import numpy as np
import pandas as pd

from ctxrec.graph import context as ctx
from ctxrec.graph.readers import InputError, RejectLog, map_unique, parse_times, read_table, reject_rows
from ctxrec.graph.schema import ACTION_WEIGHTS
from ctxrec.graph.tables import GraphTables

if TYPE_CHECKING:
    from ctxrec.privacy import Pseudonymizer

INTERACTION_COLUMNS = ("user_id", "action", "item_id", "time")
INTERACTION_OPTIONAL = ("value", "location", "session_id")
ITEM_COLUMNS = ("item_id", "name", "description", "category", "price")
ITEM_OPTIONAL = ("image_path", "audio_path")
CONTEXT_COLUMNS = ("user_id", "location", "time_in_site", "shopping_cart")


@dataclass
class BuildConfig:
    """How seed tables become a graph.

    Args:
        session_gap_minutes: inactivity gap that starts a new session (default: 30).
        max_future_days: times later than now + this many days are rejected (default: 1).
        max_text_chars: longer text fields are rejected (default: 100_000).
        max_id_bytes: longer ids (user, item, session; UTF-8 bytes) are rejected; a session
            node's id joins user and session id, and the stores hold ids of up to 4096 bytes
            (default: 1024).
        pseudonymize: a :class:`~ctxrec.privacy.Pseudonymizer`: user ids (and copies of them
            in session_id, location, shopping_cart) become keyed pseudonyms after validation,
            and reject-file entries show no raw id (default: None, ids kept as read).
    """

    session_gap_minutes: float = 30.0
    max_future_days: float = 1.0
    max_text_chars: int = 100_000
    max_id_bytes: int = 1024
    pseudonymize: Optional["Pseudonymizer"] = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # (field, lowest allowed, lowest included, a good value)
        for name, low, inclusive, example in (("session_gap_minutes", 0, False, 30), ("max_future_days", 0, True, 1),
                                              ("max_text_chars", 1, True, 100_000), ("max_id_bytes", 1, True, 1024)):
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and np.isfinite(value) and (value >= low if inclusive else value > low)):
                raise ValueError(f"BuildConfig.{name} must be a finite number {'>=' if inclusive else '>'} {low}, "
                                 f"got {value!r}; use e.g. {example}")


@dataclass
class BuildResult:
    """What :func:`build_graph` made: the tables, the rejects and a summary of counts."""

    tables: GraphTables
    rejects: RejectLog
    summary: Dict[str, int] = field(default_factory=dict)
    reject_path: Optional[Path] = None


def build_graph(
    interactions: str | Path,
    items: str | Path,
    context: str | Path | None = None,
    config: BuildConfig | None = None,
    reject_path: str | Path | None = None,
) -> BuildResult:
    """Validate and clean the seed tables and derive the heterogeneous graph.

    Args:
        interactions: path of the interactions table.
        items: path of the items table; relative media paths resolve against its folder.
        context: optional path of the per-user context table.
        config: a :class:`BuildConfig` (default: ``BuildConfig()``).
        reject_path: where to write rejected rows as CSV when there are any
            (default: ``rejects.csv`` beside the interactions file).

    Returns:
        A :class:`BuildResult`; ``summary`` has ``rows_read``, ``rows_loaded``,
        ``rows_rejected``, ``duplicates`` and the node/edge counts.

    Example:
        >>> res = build_graph("world/interactions.csv", "world/items.csv")  # doctest: +SKIP
        >>> res.tables.nodes["Item"].shape  # doctest: +SKIP
    """
    config = config or BuildConfig()
    pseudo = config.pseudonymize
    log = RejectLog(redact=pseudo.reject_value if pseudo is not None else None)
    item_frame, items_read = _items(Path(items), log, config)
    inter, inter_read, dups = _interactions(Path(interactions), set(item_frame["id"]), log, config)
    ctx_frame, ctx_read = (_context(Path(context), log, pseudo, config) if context is not None else (None, 0))

    sessions = ctx.sessionize(inter["user_id"], inter["time"], config.session_gap_minutes,
                              inter["session_id"] if "session_id" in inter else None)
    inter = inter.assign(session=sessions.to_numpy(), place=map_unique(inter["location"], ctx.normalize_place)
                         if "location" in inter else "")
    inter = inter.sort_values(["session", "time", "_row"], kind="stable")
    inter["weight"] = map_unique(inter["action"], lambda a: ACTION_WEIGHTS.get(a, 1.0)).astype(float)
    inter["ts"] = ctx.unix_seconds(inter["time"])

    nodes: Dict[str, pd.DataFrame] = {}
    edges: Dict[str, pd.DataFrame] = {}
    nodes["Item"] = item_frame
    categories = item_frame["category"].dropna().map(str)
    cat_ids = categories.map(ctx.normalize_place)
    cats = pd.DataFrame({"id": cat_ids, "name": categories}).drop_duplicates("id")
    cats = cats[cats["id"] != ""]
    nodes["Category"] = cats.assign(description=cats["name"])
    edges["IN_CATEGORY"] = pd.DataFrame({"src": item_frame["id"], "dst": item_frame["category"].map(
        lambda c: ctx.normalize_place(c) if pd.notna(c) else "")}).query("dst != ''")

    # Sessions: one time slot (of the first event) and one place (the most frequent one).
    g = inter.groupby("session", sort=True)
    sess = pd.DataFrame({"id": g.size().index})
    sess["user_id"] = g["user_id"].first().to_numpy()
    sess["start_ts"] = g["ts"].min().to_numpy()
    sess["end_ts"] = g["ts"].max().to_numpy()
    sess["time_slot"] = ctx.time_slots(g["time"].min()).to_numpy()
    sess["place"] = _mode_per_group(inter["session"], inter["place"]).reindex(sess["id"]).fillna("").to_numpy()
    nodes["Session"] = sess
    edges["OPENED"] = pd.DataFrame({"src": sess["user_id"], "dst": sess["id"]})
    edges["AT_TIME"] = pd.DataFrame({"src": sess["id"], "dst": sess["time_slot"]})
    edges["AT_PLACE"] = sess.loc[sess["place"] != "", ["id", "place"]].set_axis(["src", "dst"], axis=1)

    inter["pos"] = inter.groupby("session").cumcount()
    # the strongest action of a group, as the max of a rank (vectorised; no Python per group)
    ranked = sorted(set(inter["action"]), key=lambda a: (ACTION_WEIGHTS.get(a, 1.0), a))
    inter["action_rank"] = inter["action"].map({a: k for k, a in enumerate(ranked)}).astype("int64")
    contains = inter.groupby(["session", "item_id"], sort=True).agg(
        pos=("pos", "min"), ts=("ts", "min"), action_rank=("action_rank", "max"))
    contains["action"] = np.asarray(ranked, dtype=object)[contains.pop("action_rank").to_numpy()]
    edges["CONTAINS"] = contains.reset_index().rename(columns={"session": "src", "item_id": "dst"})

    pairs = inter.groupby(["user_id", "item_id"], sort=True).agg(
        action_rank=("action_rank", "max"), first_ts=("ts", "min"), ts=("ts", "max"),
        weight=("weight", "sum"), count=("ts", "size"))
    pairs.insert(0, "action", np.asarray(ranked, dtype=object)[pairs.pop("action_rank").to_numpy()])
    edges["INTERACTED"] = pairs.reset_index().rename(columns={"user_id": "src", "item_id": "dst"})

    times = pd.DataFrame({"id": list(ctx.TIME_SLOTS)})
    times["weekday"] = times["id"].str.split("-").str[0]
    times["daypart"] = times["id"].str.split("-").str[1]
    times["description"] = times["id"].map(ctx.describe_time_slot)
    nodes["Time"] = times

    place_ids = list(sess["place"][sess["place"] != ""])
    users = list(inter["user_id"])
    if ctx_frame is not None:
        place_ids += list(ctx_frame["place"][ctx_frame["place"] != ""])
        users += list(ctx_frame["user_id"])
        lives = ctx_frame.loc[ctx_frame["place"] != "", ["user_id", "place"]]
        edges["LIVES_IN"] = lives.set_axis(["src", "dst"], axis=1)
    place_ids = sorted(set(place_ids))
    names = [ctx.display_place(p) for p in place_ids]
    nodes["Place"] = pd.DataFrame({"id": place_ids, "name": names, "description": names})

    user_nodes = pd.DataFrame({"id": sorted(set(users))})
    if ctx_frame is not None:
        user_nodes = user_nodes.merge(
            ctx_frame[["user_id", "time_in_site", "shopping_cart"]].rename(columns={"user_id": "id"}),
            on="id", how="left")
    nodes["User"] = user_nodes

    tables = GraphTables(nodes=nodes, edges=edges)
    rows_read = items_read + inter_read + ctx_read
    summary = {
        "rows_read": rows_read,
        "rows_rejected": len(log),
        "rows_loaded": rows_read - len(log) - dups,
        "duplicates": dups,
        **tables.counts(),
    }
    written = None
    if len(log):
        written = log.write(reject_path or Path(interactions).with_name("rejects.csv"))
    return BuildResult(tables, log, summary, written)


def _mode_per_group(groups: pd.Series, values: pd.Series) -> pd.Series:
    """The most frequent non-empty value per group; ties go to the value seen first."""
    frame = pd.DataFrame({"g": groups.to_numpy(), "v": values.to_numpy(), "order": np.arange(len(values))})
    frame = frame[frame["v"].fillna("") != ""]
    stats = frame.groupby(["g", "v"], sort=False).agg(n=("order", "size"), first=("order", "min")).reset_index()
    stats = stats.sort_values(["g", "n", "first"], ascending=[True, False, True], kind="stable")
    best = stats.drop_duplicates("g")
    return pd.Series(best["v"].to_numpy(), index=best["g"].to_numpy())


def _check_text(frame, log, file, columns, limit):
    for c in columns:
        if c in frame:
            s = frame[c].fillna("")
            frame = reject_rows(frame, s.str.len() > limit, log, file, c,
                                f"text longer than {limit} characters; shorten it or raise BuildConfig.max_text_chars")
            frame = reject_rows(frame, frame[c].fillna("").str.contains("\ufffd", regex=False), log, file, c,
                                "not valid UTF-8; re-save the file as UTF-8")
    return frame


def _check_ids(frame, log, file, columns, limit):
    for c in columns:
        if c in frame:
            size = map_unique(frame[c], lambda v: len(v.encode("utf-8", "surrogatepass")) if isinstance(v, str) else 0)
            frame = reject_rows(frame, size.astype(int) > limit, log, file, c,
                                f"id longer than {limit} bytes (UTF-8); use a shorter id or a hash of it, "
                                "or raise BuildConfig.max_id_bytes")
            nul = map_unique(frame[c], lambda v: isinstance(v, str) and v.endswith("\x00")).astype(bool)
            frame = reject_rows(frame, nul, log, file, c, "id ends with a NUL character (U+0000), which the stores "
                                "refuse (numpy strings drop it); remove it from the source")
    return frame


def _required(frame, log, file, columns):
    for c in columns:
        frame = reject_rows(frame, frame[c].isna(), log, file, c, f"{c} is empty; fill it in or drop the row")
    return frame


def _items(path: Path, log: RejectLog, config: BuildConfig):
    before = len(log)
    frame = read_table(path, ITEM_COLUMNS, ITEM_OPTIONAL, log)
    n = len(frame) + len(log) - before  # rows with a wrong field count were rejected while reading
    f = str(path)
    frame = _check_text(frame, log, f, ["item_id", "name", "description", "category"], config.max_text_chars)
    frame = _check_ids(frame, log, f, ["item_id"], config.max_id_bytes)
    frame = _required(frame, log, f, ["item_id"])
    price = pd.to_numeric(frame["price"], errors="coerce")
    bad = frame["price"].notna() & (price.isna() | ~np.isfinite(price.fillna(0.0)))
    frame = reject_rows(frame, bad, log, f, "price", "price is not a finite number; write it like 12.5")
    dup = frame["item_id"].duplicated(keep="first")
    frame = reject_rows(frame, dup, log, f, "item_id", "duplicate item_id; an earlier row has this id, keep one")
    out = pd.DataFrame({
        "id": frame["item_id"], "name": frame["name"], "description": frame["description"],
        "category": frame["category"], "price": pd.to_numeric(frame["price"], errors="coerce").astype(float),
    })
    for col in ITEM_OPTIONAL:
        if col in frame:
            out[col] = frame[col].map(lambda p: str((path.parent / p).resolve()) if pd.notna(p) else None)
    return out.reset_index(drop=True), n


def _interactions(path: Path, known_items: set, log: RejectLog, config: BuildConfig):
    before = len(log)
    frame = read_table(path, INTERACTION_COLUMNS, INTERACTION_OPTIONAL, log)
    n = len(frame) + len(log) - before  # rows with a wrong field count were rejected while reading
    if n == 0:
        raise InputError(f"{path}: the file has a header but no data rows; add one row per event "
                         f"({','.join(INTERACTION_COLUMNS)}) below the header")
    f = str(path)
    frame = _check_text(frame, log, f, ["user_id", "item_id", "action", "location", "session_id"], config.max_text_chars)
    frame = _check_ids(frame, log, f, ["user_id", "item_id", "session_id"], config.max_id_bytes)
    frame = _required(frame, log, f, list(INTERACTION_COLUMNS))
    times = parse_times(frame["time"])
    frame = reject_rows(frame, times.isna(), log, f, "time",
                        "unparseable time; use ISO-8601 like 2024-03-02T20:13:05 or unix seconds")
    times = times.loc[frame.index]
    future = times > pd.Timestamp.now(tz="UTC").tz_localize(None) + pd.Timedelta(days=config.max_future_days)
    frame = reject_rows(frame, future, log, f, "time", "time is in the future; check the clock or the time zone")
    frame = frame.assign(time=parse_times(frame["time"]), action=frame["action"].str.lower())
    if "value" in frame:
        val = pd.to_numeric(frame["value"], errors="coerce")
        bad = frame["value"].notna() & (val.isna() | ~np.isfinite(val.fillna(0.0)))
        frame = reject_rows(frame, bad, log, f, "value", "value is not a finite number; write it like 4 or 3.5")
    frame = reject_rows(frame, ~frame["item_id"].isin(known_items), log, f, "item_id",
                        "unknown item: not in the items table (or its row there was rejected); add the item first")
    key = ["user_id", "item_id", "action", "time"]
    dup = frame.duplicated(subset=key, keep="first")
    frame = frame.loc[~dup]
    if config.pseudonymize is not None:  # after validation: every reject above saw (and redacted) raw values
        frame = config.pseudonymize.frame(frame)
    return frame.reset_index(drop=True), n, int(dup.sum())


def _context(path: Path, log: RejectLog, pseudo: Optional["Pseudonymizer"] = None,
             config: Optional[BuildConfig] = None):
    config = config or BuildConfig()
    before = len(log)
    frame = read_table(path, CONTEXT_COLUMNS, log=log)
    n = len(frame) + len(log) - before  # rows with a wrong field count were rejected while reading
    f = str(path)
    frame = _check_text(frame, log, f, list(CONTEXT_COLUMNS), config.max_text_chars)
    frame = _check_ids(frame, log, f, ["user_id"], config.max_id_bytes)
    frame = _required(frame, log, f, ["user_id"])
    tis = pd.to_numeric(frame["time_in_site"], errors="coerce")
    bad = frame["time_in_site"].notna() & (tis.isna() | ~np.isfinite(tis.fillna(0.0)) | (tis < 0))
    frame = reject_rows(frame, bad, log, f, "time_in_site", "time_in_site is not a non-negative number (minutes)")
    dup = frame["user_id"].duplicated(keep="first")
    frame = reject_rows(frame, dup, log, f, "user_id", "duplicate user_id; keep one context row per user")
    if pseudo is not None:  # before the place is normalised, so a copied id is still found there
        frame = pseudo.frame(frame)
    out = pd.DataFrame({
        "user_id": frame["user_id"],
        "place": map_unique(frame["location"], ctx.normalize_place),
        "time_in_site": pd.to_numeric(frame["time_in_site"], errors="coerce").astype(float),
        "shopping_cart": frame["shopping_cart"],
    })
    return out.reset_index(drop=True), n
