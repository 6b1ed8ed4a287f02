"""The ablation of the default graph model: each component of
:class:`~ctxrec.training.models.ItemGraph` switched off in turn, beside EASE.

Every variant is a row of :func:`ctxrec.bench.quality.run`, so it is selected, refit and
tested like any model: its remaining settings are chosen on validation from the same grid
(the switched-off setting is fixed), then it is refit on train+val and tested once under
both protocols. ``<name>_ablation.json`` and its Markdown section say what each component
adds, on validation and on test.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from ctxrec.bench.quality import Row, rows_for

#: variant label -> the ItemGraph settings it fixes (the rest of the grid is searched)
ABLATIONS: Dict[str, Dict[str, object]] = {
    "item_graph": {},
    "item_graph_no_recency": {"recency": None},
    "item_graph_no_modality": {"features": [], "content": 0.0},
    "item_graph_no_content": {"content": 0.0},
    "item_graph_no_mapping": {"mapping": 0.0},
    "item_graph_no_residual": {"factors": 0},
    "item_graph_collaborative_only": {"recency": None, "features": [], "content": 0.0, "mapping": 0.0,
                                      "factors": 0},
}


def ablation_rows(features: Sequence[str], protocol: str, grids: Optional[Dict[str, Dict[str, list]]] = None) -> List[Row]:
    """EASE's row, then one ItemGraph row per :data:`ABLATIONS` entry."""
    out = rows_for(["ease"], features, 1, protocol, grids)
    full = rows_for(["item_graph"], features, 1, protocol, grids)[0]
    for label, fixed in ABLATIONS.items():
        grid = {k: v for k, v in full.grid.items() if k not in fixed}
        out.append(Row(label, "item_graph", dict(fixed), grid))
    return out
