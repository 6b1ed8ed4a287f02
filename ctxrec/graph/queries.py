"""Graph queries users copy: related items, what is consumed in a context, and why an
item would be recommended to a user. Each is one Cypher statement that runs unchanged
on the embedded store and on Neo4j (through ``store.query``); every value is a query
parameter and labels and relationship types come from the schema.

Example:
    >>> with open_store("embedded", "graph.db") as store:                     # doctest: +SKIP
    ...     in_context(store, place="New York", daypart="evening", weekend=False)
"""
from __future__ import annotations

from typing import List, Optional, Tuple

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

EXPLAIN_CONTEXT = """
MATCH (u:User)-[:OPENED]->(us:Session)-[:{rel}]->(x:{label})
WHERE u.id = $user
WITH x, count(us) AS user_sessions
MATCH (x)<-[:{rel}]-(s:Session)-[:`CONTAINS`]->(i:Item)
WHERE i.id = $item
RETURN x.id AS node, x.description AS description, user_sessions, count(s) AS item_sessions
ORDER BY item_sessions * user_sessions DESC, node ASC
LIMIT $k
"""

EXPLAIN_ITEMS = """
MATCH (u:User)-[:INTERACTED]->(j:Item)<-[:`CONTAINS`]-(s:Session)-[:`CONTAINS`]->(i:Item)
WHERE u.id = $user AND i.id = $item AND j.id <> $item
RETURN j.id AS node, j.name AS description, count(s) AS shared_sessions
ORDER BY shared_sessions DESC, node ASC
LIMIT $k
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


def explain(store, user_id: str, item_id: str, k: int = 3) -> pd.DataFrame:
    """Why ``item_id`` suits ``user_id``: graph evidence through context nodes and items.

    Rows (``kind, node, description, strength, detail``), strongest first within a kind:

    - ``time`` / ``place``: a time slot or place where the user has sessions
      (``user_sessions``) and where sessions contained the item (``item_sessions``);
    - ``item``: an item the user interacted with that shares sessions with it.
    """
    rows = []
    for kind, rel, label in (("time", "AT_TIME", "Time"), ("place", "AT_PLACE", "Place")):
        frame = store.query(EXPLAIN_CONTEXT.format(rel=rel, label=label), {"user": user_id, "item": item_id, "k": k})
        for r in frame.itertuples():
            rows.append({"kind": kind, "node": r.node, "description": r.description,
                         "strength": float(r.user_sessions * r.item_sessions),
                         "detail": f"{int(r.user_sessions)} of your sessions, {int(r.item_sessions)} with this item"})
    frame = store.query(EXPLAIN_ITEMS, {"user": user_id, "item": item_id, "k": k})
    for r in frame.itertuples():
        rows.append({"kind": "item", "node": r.node, "description": r.description,
                     "strength": float(r.shared_sessions), "detail": f"in {int(r.shared_sessions)} sessions together"})
    return pd.DataFrame(rows, columns=["kind", "node", "description", "strength", "detail"])
