"""Explanations: the graph paths behind a recommendation, and how much each modality
weighs in an item's fused features."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import pandas as pd
import torch

#: Cypher-shaped display of each kind of explanation path
PATHS = {
    "time": "(:User {{id: {u}}})-[:OPENED]->(:Session)-[:AT_TIME]->(:Time {{id: {n}}})"
            "<-[:AT_TIME]-(:Session)-[:CONTAINS]->(:Item {{id: {i}}})",
    "place": "(:User {{id: {u}}})-[:OPENED]->(:Session)-[:AT_PLACE]->(:Place {{id: {n}}})"
             "<-[:AT_PLACE]-(:Session)-[:CONTAINS]->(:Item {{id: {i}}})",
    "item": "(:User {{id: {u}}})-[:INTERACTED]->(:Item {{id: {n}}})<-[:CONTAINS]-(:Session)"
            "-[:CONTAINS]->(:Item {{id: {i}}})",
}


def _literal(value: str) -> str:
    """A Cypher string literal, for the display paths."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


@torch.no_grad()
def modality_weights(model, item: int) -> Optional[Dict[str, Any]]:
    """How much each modality weighs in an item's fused features, for models that fuse them.

    Gated and attention fusion report their own weights for the item; other strategies
    are measured by leave-one-out: the change of the fused vector when a modality is
    masked, as a share of the changes over all modalities.

    Args:
        model: a recommender; only one with a ``fusion["item"]`` module
            (:class:`~ctxrec.training.models.ContextGNN`) has an answer.
        item (int): the item's index in ``model.graph``.

    Returns:
        ``{"method", "weights": {modality: float}, "present": {modality: bool}}``, or None.
    """
    fusion = getattr(model, "fusion", None)
    if not isinstance(fusion, torch.nn.ModuleDict) or "item" not in fusion:
        return None
    fuse = fusion["item"]
    data = model.graph.data["item"]
    dev = next(fuse.parameters()).device
    feats = {m: data[f"x_{m}"][[item]].to(dev) for m in fuse.modalities}
    masks = {m: data[f"mask_{m}"][[item]].bool().to(dev) for m in fuse.modalities}
    out = fuse(feats, masks)
    present = {m: bool(masks[m][0]) for m in fuse.modalities}
    if "weights" in out:
        weights = out["weights"][0].tolist()
        method = f"{type(fuse).__name__} weights"
    else:
        deltas = []
        for m in fuse.modalities:
            without = {**masks, m: torch.zeros_like(masks[m])}
            deltas.append(float((out["fused"] - fuse(feats, without)["fused"]).norm()) if present[m] else 0.0)
        total = sum(deltas)
        weights = [d / total if total > 0 else 0.0 for d in deltas]
        method = f"{type(fuse).__name__} leave-one-out"
    return {"method": method, "weights": {m: float(w) for m, w in zip(fuse.modalities, weights)}, "present": present}


def explanation_paths(rows: pd.DataFrame, user: str, item: str) -> List[Dict[str, Any]]:
    """The rows of :func:`ctxrec.graph.queries.explain` as JSON-ready dicts, each with its
    ``path`` drawn in Cypher, e.g. ``(:User {id: 'u1'})-[:OPENED]->(:Session)-[:AT_TIME]->...``."""
    out = []
    for r in rows.to_dict("records"):
        path = PATHS[r["kind"]].format(u=_literal(user), n=_literal(r["node"]), i=_literal(item))
        out.append({"kind": r["kind"], "node": str(r["node"]), "description": r["description"],
                    "strength": float(r["strength"]), "detail": r["detail"], "path": path})
    return out
