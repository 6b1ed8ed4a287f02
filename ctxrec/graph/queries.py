"""Graph queries users copy: related items, what is consumed in a context, and why an
item would be recommended to a user. Each is one Cypher statement that runs unchanged
on the embedded store and on Neo4j (through ``store.query``); every value is a query
parameter and labels and relationship types come from the schema.

Example:
    >>> with open_store("embedded", "graph.db") as store:                     # doctest: +SKIP
    ...     in_context(store, place="New York", daypart="evening", weekend=False)
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import pandas as pd

from ctxrec.graph import context as ctx

# The Cypher below is kept as plain text so that users can copy it into Neo4j Browser.
IN_CONTEXT = """
MATCH (s:Session)-[:AT_PLACE]->(p:Place)
WHERE p.id = $place
MATCH (s)-[:AT_TIME]->(t:Time)
WHERE t.daypart IN $dayparts AND t.weekday IN $weekdays
MATCH (s)-[c:`CONTAINS`]->(i:Item)
RETURN i.id AS item, i.name AS name, count(c) AS sessions
ORDER BY sessions DESC, item ASC
LIMIT $k
"""

# The evidence for several items of one user at once (one statement per kind, not per item);
# the strongest ``k`` rows per item are picked in :func:`explain_many`
EXPLAIN_CONTEXT = """
MATCH (u:User)-[:OPENED]->(us:Session)-[:{rel}]->(x:{label})
WHERE u.id = $user
WITH x, count(us) AS user_sessions
MATCH (x)<-[:{rel}]-(s:Session)-[:`CONTAINS`]->(i:Item)
WHERE i.id IN $items
RETURN i.id AS item, x.id AS node, x.description AS description, user_sessions, count(s) AS item_sessions
"""

EXPLAIN_ITEMS = """
MATCH (u:User)-[:INTERACTED]->(j:Item)<-[:`CONTAINS`]-(s:Session)-[:`CONTAINS`]->(i:Item)
WHERE u.id = $user AND i.id IN $items AND j.id <> i.id
RETURN i.id AS item, j.id AS node, j.name AS description, count(s) AS shared_sessions
"""

WEEKDAYS = list(ctx.WEEKDAYS[:5])
WEEKEND = list(ctx.WEEKDAYS[5:])


def related_items(store, item_id: str, k: int = 10, via: str = "co_interaction") -> List[Tuple[str, float]]:
    """Items related to ``item_id`` (``via``: co_interaction, session or embedding)."""
    return store.related(item_id, k=k, via=via)


def in_context(store, place: str, daypart: Optional[str] = None, weekend: Optional[bool] = None,
               k: int = 10) -> pd.DataFrame:
    """What is consumed at a place, optionally in a daypart, on weekdays or weekends.

    Args:
        store: a graph store.
        place: free text, normalised like the ingested places (``"New York"``).
        daypart: ``morning``, ``afternoon``, ``evening`` or ``night`` (default: any).
        weekend: True for Sat/Sun, False for Mon-Fri (default: any day).
        k: rows (default: 10).

    Returns:
        Columns ``item, name, sessions`` (sessions in that context containing the item).
    """
    if daypart is not None and daypart not in ctx.DAYPARTS:
        raise ValueError(f"daypart {daypart!r} is not one of {tuple(ctx.DAYPARTS)}")
    days = WEEKDAYS + WEEKEND if weekend is None else (WEEKEND if weekend else WEEKDAYS)
    # lists rather than NULL-able parameters: LadybugDB re-types a cached statement's
    # parameter from its first value, so a later NULL fails
    dayparts = list(ctx.DAYPARTS) if daypart is None else [daypart]
    params = {"place": ctx.normalize_place(place), "dayparts": dayparts, "weekdays": days, "k": int(k)}
    return store.query(IN_CONTEXT, params)


EVIDENCE_COLUMNS = ["kind", "node", "description", "strength", "detail"]


def explain(store, user_id: str, item_id: str, k: int = 3) -> pd.DataFrame:
    """Why ``item_id`` suits ``user_id``: graph evidence through context nodes and items.

    Rows (``kind, node, description, strength, detail``), strongest first within a kind
    (ties by node id), at most ``k`` per kind:

    - ``time`` / ``place``: a time slot or place where the user has sessions
      (``user_sessions``) and where sessions contained the item (``item_sessions``);
      strength is their product;
    - ``item``: an item the user interacted with that shares sessions with it.
    """
    return explain_many(store, user_id, [item_id], k)[item_id]


def explain_many(store, user_id: str, item_ids: List[str], k: int = 3) -> Dict[str, pd.DataFrame]:
    """:func:`explain` for several items of one user, in three statements whatever their number.

    Returns:
        dict: item id -> its evidence rows (an empty frame for an item without any).
    """
    items = list(dict.fromkeys(str(i) for i in item_ids))
    parts = []
    for kind, rel, label in (("time", "AT_TIME", "Time"), ("place", "AT_PLACE", "Place")):
        f = store.query(EXPLAIN_CONTEXT.format(rel=rel, label=label), {"user": user_id, "items": items})
        if len(f):
            users, hits = f["user_sessions"].astype(int), f["item_sessions"].astype(int)
            parts.append(pd.DataFrame({"item": f["item"], "kind": kind, "node": f["node"],
                                       "description": f["description"], "strength": (users * hits).astype(float),
                                       "detail": [f"{a} of your sessions, {b} with this item"
                                                  for a, b in zip(users, hits)]}))
    f = store.query(EXPLAIN_ITEMS, {"user": user_id, "items": items})
    if len(f):
        shared = f["shared_sessions"].astype(int)
        parts.append(pd.DataFrame({"item": f["item"], "kind": "item", "node": f["node"],
                                   "description": f["description"], "strength": shared.astype(float),
                                   "detail": [f"in {n} sessions together" for n in shared]}))
    empty = pd.DataFrame(columns=EVIDENCE_COLUMNS)
    if not parts:
        return {i: empty.copy() for i in items}
    rows = pd.concat(parts, ignore_index=True)
    rows["_kind"] = rows["kind"].map({"time": 0, "place": 1, "item": 2})
    rows = rows.sort_values(["item", "_kind", "strength", "node"], ascending=[True, True, False, True], kind="stable")
    rows = rows.groupby(["item", "_kind"], sort=False).head(k)
    by_item = {item: frame[EVIDENCE_COLUMNS].reset_index(drop=True) for item, frame in rows.groupby("item", sort=False)}
    return {i: by_item.get(i, empty.copy()) for i in items}
