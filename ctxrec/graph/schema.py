"""The graph schema: node and relationship types, and the one mapping between
database names (labels ``Item``, types ``INTERACTED``) and PyG names (node type
``"item"``, edge type ``("user", "interacted", "item")``).

Nothing else in ctxrec knows both names. Stores build their DDL from this
module; :mod:`ctxrec.graph.export` asks it for PyG names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

#: Property types understood by every store.
PROPERTY_TYPES = ("STRING", "INT64", "DOUBLE", "BOOLEAN")

EdgeType = Tuple[str, str, str]


@dataclass(frozen=True)
class NodeSpec:
    """A node type: its database label, its PyG name and its properties.

    Every node type has a string primary key ``id``.
    """

    label: str
    pyg: str
    properties: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RelSpec:
    """A relationship type between two node labels, with its properties."""

    type: str
    src: str
    dst: str
    properties: Dict[str, str] = field(default_factory=dict)

    @property
    def pyg(self) -> EdgeType:
        """The PyG edge type, e.g. ``("user", "interacted", "item")``."""
        return (NODES[self.src].pyg, self.type.lower(), NODES[self.dst].pyg)


NODES: Dict[str, NodeSpec] = {
    spec.label: spec
    for spec in [
        NodeSpec("User", "user", {"time_in_site": "DOUBLE", "shopping_cart": "STRING"}),
        NodeSpec(
            "Item",
            "item",
            {
                "name": "STRING",
                "description": "STRING",
                "category": "STRING",
                "price": "DOUBLE",
                "image_path": "STRING",
                "audio_path": "STRING",
            },
        ),
        NodeSpec(
            "Session",
            "session",
            {"user_id": "STRING", "start_ts": "INT64", "end_ts": "INT64",
             "time_slot": "STRING", "place": "STRING"},
        ),
        NodeSpec("Time", "time", {"weekday": "STRING", "daypart": "STRING", "description": "STRING"}),
        NodeSpec("Place", "place", {"name": "STRING", "description": "STRING"}),
        NodeSpec("Category", "category", {"name": "STRING", "description": "STRING"}),
    ]
}

RELS: Dict[str, RelSpec] = {
    spec.type: spec
    for spec in [
        # The behaviour log aggregated per (user, item) pair.
        RelSpec(
            "INTERACTED",
            "User",
            "Item",
            {"action": "STRING", "first_ts": "INT64", "ts": "INT64", "weight": "DOUBLE", "count": "INT64"},
        ),
        RelSpec("OPENED", "User", "Session"),
        RelSpec("CONTAINS", "Session", "Item", {"pos": "INT64", "action": "STRING", "ts": "INT64"}),
        RelSpec("AT_TIME", "Session", "Time"),
        RelSpec("AT_PLACE", "Session", "Place"),
        RelSpec("LIVES_IN", "User", "Place"),
        RelSpec("IN_CATEGORY", "Item", "Category"),
    ]
}

_PYG_TO_LABEL = {spec.pyg: label for label, spec in NODES.items()}
_PYG_TO_REL = {spec.pyg: rel for rel, spec in RELS.items()}


def node_spec(label: str) -> NodeSpec:
    """The :class:`NodeSpec` for a database label, or a clear error."""
    try:
        return NODES[label]
    except (KeyError, TypeError):  # TypeError: an unhashable value such as a list
        raise ValueError(f"unknown node label {label!r}; expected one of {sorted(NODES)}") from None


def rel_spec(rel_type: str) -> RelSpec:
    """The :class:`RelSpec` for a relationship type, or a clear error."""
    try:
        return RELS[rel_type]
    except (KeyError, TypeError):  # TypeError: an unhashable value such as a list
        raise ValueError(f"unknown relationship type {rel_type!r}; expected one of {sorted(RELS)}") from None


def label_of(pyg_node_type: str) -> str:
    """Database label for a PyG node type (``"item"`` -> ``"Item"``)."""
    try:
        return _PYG_TO_LABEL[pyg_node_type]
    except KeyError:
        raise ValueError(f"unknown PyG node type {pyg_node_type!r}; expected one of {sorted(_PYG_TO_LABEL)}") from None


def rel_of(edge_type: EdgeType) -> str:
    """Database relationship type for a PyG edge type."""
    try:
        return _PYG_TO_REL[tuple(edge_type)]
    except KeyError:
        raise ValueError(f"unknown PyG edge type {edge_type!r}; expected one of {sorted(_PYG_TO_REL)}") from None


def pyg_node_types() -> List[str]:
    """PyG node types in schema order."""
    return [spec.pyg for spec in NODES.values()]


def pyg_edge_types() -> List[EdgeType]:
    """PyG edge types in schema order (forward direction only)."""
    return [spec.pyg for spec in RELS.values()]


#: Weight of each action when aggregating the behaviour log; unknown actions weigh 1.
ACTION_WEIGHTS: Dict[str, float] = {
    "view": 1.0,
    "click": 1.0,
    "rating": 2.0,
    "like": 2.0,
    "cart": 3.0,
    "purchase": 5.0,
}
