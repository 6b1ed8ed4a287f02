"""``append_events``: new interaction events into a graph store that already holds a graph.

The events take the same road as a seed file: :func:`~ctxrec.graph.build.build_graph`
validates them (unknown items, unreadable or future times, empty ids ...) and derives
their sessions, time slots, places and per-pair aggregates. What is new here is only the
merge with what the store already holds, which a full :func:`~ctxrec.graph.ingest.ingest`
never needs because it rewrites whole tables:

- ``INTERACTED`` of a pair already stored: counts and weights add up, ``first_ts`` is the
  earlier and ``ts`` the later time, the action the stronger one;
- ``CONTAINS`` of a session already stored: its items keep their positions, new items go
  after the last one;
- a stored ``Session`` keeps its time slot and place (a store has no edge deletion) and
  widens ``start_ts`` / ``end_ts``.

Events with a ``session_id`` continue that session (stored as ``"<user>#<session_id>"``,
as in :func:`~ctxrec.graph.context.sessionize`); events without one form sessions among
themselves by the inactivity gap. Appending is not idempotent: posting the same events
twice counts them twice.

Example:
    >>> events = pd.DataFrame({"user_id": ["u0001"], "action": ["view"], "item_id": ["i0003"],
    ...                        "time": ["2024-03-02T20:13:05"], "session_id": ["web-1"]})
    >>> res = append_events(store, events)          # doctest: +SKIP
    >>> res.sessions, len(res.rejects)              # doctest: +SKIP
    (['u0001#web-1'], 0)
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import pandas as pd

from ctxrec.graph import schema
from ctxrec.graph.build import (INTERACTION_COLUMNS, INTERACTION_OPTIONAL, ITEM_COLUMNS, BuildConfig,
                                build_graph)
from ctxrec.graph.readers import Reject
from ctxrec.graph.schema import ACTION_WEIGHTS

#: columns an event may have (the interactions seed format)
EVENT_COLUMNS = INTERACTION_COLUMNS + INTERACTION_OPTIONAL

_SESSIONS = ("MATCH (s:Session) WHERE s.id IN $ids "
             "RETURN s.id AS id, s.start_ts AS start_ts, s.end_ts AS end_ts, s.time_slot AS time_slot, s.place AS place")
_CONTAINS = ("MATCH (s:Session)-[c:`CONTAINS`]->(i:Item) WHERE s.id IN $ids "
             "RETURN s.id AS src, i.id AS dst, c.pos AS pos, c.action AS action, c.ts AS ts")
_INTERACTED = ("MATCH (u:User)-[r:INTERACTED]->(i:Item) WHERE u.id IN $users AND i.id IN $items "
               "RETURN u.id AS src, i.id AS dst, r.action AS action, r.first_ts AS first_ts, r.ts AS ts, "
               "r.weight AS weight, r.count AS count")
_ITEMS = "MATCH (i:Item) WHERE i.id IN $ids RETURN i.id AS id"


@dataclass
class AppendResult:
    """What :func:`append_events` did.

    Attributes:
        events: events read.
        rejects: rejected events (``row`` is the 1-based position in the input); when there
            are any, nothing was written.
        sessions: ids of the sessions the events landed in.
        new_users: user ids the store did not have before.
        written: rows upserted per label and relationship type.
    """

    events: int
    rejects: List[Reject] = field(default_factory=list)
    sessions: List[str] = field(default_factory=list)
    new_users: List[str] = field(default_factory=list)
    written: Dict[str, int] = field(default_factory=dict)


def append_events(store, events: pd.DataFrame, config: Optional[BuildConfig] = None) -> AppendResult:
    """Validate ``events`` like a seed file and merge them into ``store``.

    All or nothing for validation: if any event is rejected, nothing is written and
    :attr:`AppendResult.rejects` says which and why.

    Args:
        store: a writable :class:`~ctxrec.graph.stores.GraphStore` holding the items.
        events: one row per event with the interactions seed columns ``user_id, action,
            item_id, time`` and optionally ``value, location, session_id``.
        config: the :class:`~ctxrec.graph.build.BuildConfig` (default: ``BuildConfig()``).

    Returns:
        An :class:`AppendResult`.
    """
    if not isinstance(events, pd.DataFrame):
        raise TypeError(f"events must be a pandas DataFrame, got {type(events).__name__}")
    unknown = [c for c in events.columns if c not in EVENT_COLUMNS]
    missing = [c for c in INTERACTION_COLUMNS if c not in events.columns]
    if unknown or missing:
        raise ValueError(f"events: column(s) {unknown or missing} are {'not event columns' if unknown else 'missing'}; "
                         f"required: {list(INTERACTION_COLUMNS)}, optional: {list(INTERACTION_OPTIONAL)}")
    tables, rejects = _build(store, events, config)
    if rejects:
        return AppendResult(len(events), rejects=rejects)
    new_sessions = tables.nodes["Session"]
    old_sessions = query_frame(store, _SESSIONS, {"ids": new_sessions["id"].tolist()},
                               ["id", "start_ts", "end_ts", "time_slot", "place"])
    sessions = _merge_sessions(new_sessions, old_sessions)
    fresh = ~new_sessions["id"].isin(old_sessions["id"])
    placeless = set(old_sessions.loc[old_sessions["place"].fillna("") == "", "id"])
    contains = _merge_contains(tables.edges["CONTAINS"], query_frame(
        store, _CONTAINS, {"ids": old_sessions["id"].tolist()}, ["src", "dst", "pos", "action", "ts"]))
    pairs = tables.edges["INTERACTED"]
    interacted = _merge_pairs(pairs, query_frame(
        store, _INTERACTED, {"users": sorted(set(pairs["src"])), "items": sorted(set(pairs["dst"]))},
        ["src", "dst", "action", "first_ts", "ts", "weight", "count"]))
    users = tables.nodes["User"][["id"]]
    known_users = set(query_frame(store, "MATCH (u:User) WHERE u.id IN $ids RETURN u.id AS id",
                                  {"ids": users["id"].tolist()}, ["id"])["id"])
    at_time = tables.edges["AT_TIME"]
    at_place = tables.edges["AT_PLACE"]
    steps = [
        ("User", users),  # id only: a stored user keeps its properties
        ("Session", sessions),
        ("Time", tables.nodes["Time"][tables.nodes["Time"]["id"].isin(at_time["dst"])]),
        ("Place", tables.nodes["Place"]),
        ("OPENED", tables.edges["OPENED"]),
        ("AT_TIME", at_time[at_time["src"].isin(new_sessions.loc[fresh, "id"])]),
        ("AT_PLACE", at_place[at_place["src"].isin(set(new_sessions.loc[fresh, "id"]) | placeless)]),
        ("CONTAINS", contains),
        ("INTERACTED", interacted),
    ]
    written = {}
    for name, frame in steps:
        upsert = store.upsert_nodes if name in schema.NODES else store.upsert_edges
        written[name] = upsert(name, frame)
    return AppendResult(len(events), sessions=sorted(new_sessions["id"]),
                        new_users=sorted(set(users["id"]) - known_users), written=written)


def _build(store, events: pd.DataFrame, config: Optional[BuildConfig]):
    """Run the events through :func:`build_graph` with the store's referenced items as the
    items table; rejects come back with ``file="events"`` and the event's position."""
    cols = [c for c in EVENT_COLUMNS if c in events.columns]
    ids = sorted({str(i) for i in events["item_id"].dropna()})
    known = query_frame(store, _ITEMS, {"ids": ids}, ["id"])["id"].tolist() if ids else []
    with tempfile.TemporaryDirectory(prefix="ctxrec-events-") as tmp:
        inter, items = Path(tmp) / "events.csv", Path(tmp) / "items.csv"
        events[cols].to_csv(inter, index=False)
        pd.DataFrame({c: known if c == "item_id" else [None] * len(known) for c in ITEM_COLUMNS}).to_csv(items,
                                                                                                      index=False)
        result = build_graph(inter, items, None, config=config, reject_path=Path(tmp) / "rejects.csv")
    rejects = [Reject("events", r.row, r.column, r.value, r.reason) for r in result.rejects.items]
    return result.tables, sorted(rejects, key=lambda r: (r.row, r.column))


def query_frame(store, cypher: str, params: dict, columns: List[str]) -> pd.DataFrame:
    """``store.query`` rows with exactly ``columns``, also when there are no rows."""
    if any(isinstance(v, list) and not v for v in params.values()):  # `IN []` matches nothing; skip the round trip
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    frame = store.query(cypher, params)
    return frame.reindex(columns=columns) if frame.empty else frame[columns].reset_index(drop=True)


def _action_key(action) -> tuple:
    """The order of action strength that :func:`build_graph` uses (weight, then name)."""
    return ACTION_WEIGHTS.get(action, 1.0), str(action)


def _stronger(a: pd.Series, b: pd.Series) -> pd.Series:
    return pd.Series([y if pd.notna(y) and (pd.isna(x) or _action_key(y) > _action_key(x)) else x
                      for x, y in zip(a, b)], index=a.index, dtype=object)


def _numbers(frame: pd.DataFrame, columns: List[str]) -> pd.DataFrame:
    """``columns`` as float64 (NaN where missing): stored rows come back as int, float or object."""
    return frame.assign(**{c: pd.to_numeric(frame[c], errors="coerce").astype("float64") for c in columns})


def _merge_sessions(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    out = new.merge(_numbers(old, ["start_ts", "end_ts"]), on="id", how="left", suffixes=("", "_old"))
    had = out["start_ts_old"].notna()
    out["start_ts"] = out[["start_ts", "start_ts_old"]].min(axis=1)
    out["end_ts"] = out[["end_ts", "end_ts_old"]].max(axis=1)
    out["time_slot"] = out["time_slot_old"].where(had, out["time_slot"])
    kept = had & (out["place_old"].fillna("") != "")
    out["place"] = out["place_old"].where(kept, out["place"])
    return out[list(new.columns)].astype({"start_ts": "int64", "end_ts": "int64"})


def _merge_contains(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """Stored items keep their position (earlier time, stronger action); new ones follow the
    session's last stored position in their own order."""
    old = _numbers(old, ["pos", "ts"])
    out = new.merge(old, on=["src", "dst"], how="left", suffixes=("", "_old"))
    had = out["pos_old"].notna()
    out["ts"] = out[["ts", "ts_old"]].min(axis=1)
    out["action"] = _stronger(out["action"], out["action_old"])
    last = out["src"].map(old.groupby("src")["pos"].max()) if len(old) else pd.Series(float("nan"), index=out.index)
    fresh = ~had & last.notna()
    after = last + out["pos"].where(fresh).groupby(out["src"]).rank(method="first")
    out["pos"] = out["pos_old"].where(had, after.where(fresh, out["pos"]))
    return out[list(new.columns)].astype({"pos": "int64", "ts": "int64"})


def _merge_pairs(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    old = _numbers(old, ["first_ts", "ts", "weight", "count"])
    out = new.merge(old, on=["src", "dst"], how="left", suffixes=("", "_old"))
    out["count"] = out["count"] + out["count_old"].fillna(0.0)
    out["weight"] = out["weight"] + out["weight_old"].fillna(0.0)
    out["first_ts"] = out[["first_ts", "first_ts_old"]].min(axis=1)
    out["ts"] = out[["ts", "ts_old"]].max(axis=1)
    out["action"] = _stronger(out["action"], out["action_old"])
    return out[list(new.columns)].astype({"count": "int64", "first_ts": "int64", "ts": "int64"})
