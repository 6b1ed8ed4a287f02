"""Write node embeddings back into a graph store as vector properties.

Through :meth:`GraphStore.write_vectors`, so on Neo4j each (label, name) gets its cosine
vector index ``<Label>_<name>`` (``CREATE VECTOR INDEX ... IF NOT EXISTS``), queried by
``Neo4jStore.knn_native`` or Cypher's ``db.index.vector.queryNodes``; on the embedded
store the vectors serve :meth:`GraphStore.knn`.

Example:
    >>> with open_store("neo4j") as store:                                  # doctest: +SKIP
    ...     write_embeddings(store, graph, node_embeddings(model))
    {'User': 30, 'Item': 40, 'Session': 240, 'Time': 28, 'Place': 3, 'Category': 5}
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Mapping

import numpy as np

if TYPE_CHECKING:
    from ctxrec.data import RecGraph
    from ctxrec.graph.stores.base import GraphStore


def write_embeddings(store: "GraphStore", graph: "RecGraph", embeddings: Mapping[str, np.ndarray],
                     name: str = "emb", replace: bool = False) -> Dict[str, int]:
    """Store ``embeddings[t][i]`` as vector ``name`` of node ``graph.ids[t][i]``, per node type.

    Args:
        store (GraphStore): a writable store holding the graph's nodes.
        graph (RecGraph): the graph the embeddings index (its ``ids``).
        embeddings (Mapping[str, np.ndarray]): node type -> ``[N, d]``, e.g.
            :func:`ctxrec.bundle.node_embeddings` of a model.
        name (str): the vector name; Neo4j's index is ``<Label>_<name>`` (default: ``"emb"``).
        replace (bool): delete earlier ``name`` vectors of each label first, as a new
            dimension requires (default: False: same-dimension vectors are overwritten in place).

    Returns:
        Dict[str, int]: vectors written per database label.
    """
    from ctxrec.graph.schema import label_of

    written = {}
    for t, mat in embeddings.items():
        label = label_of(t)
        ids = [str(i) for i in graph.ids[t]]
        mat = np.asarray(mat, dtype=np.float32)
        if mat.shape[0] != len(ids):
            raise ValueError(f"embeddings[{t!r}] has {mat.shape[0]} rows but the graph has {len(ids)} {t} nodes; "
                             "pass the graph the model was fitted on")
        if replace and name in store.vector_names(label):
            store.delete_vectors(label, name)
        old = store._vector_dim(label, name)
        if old is not None and old != mat.shape[1]:
            raise ValueError(f"{label} vectors {name!r} in the store have dimension {old}, these have {mat.shape[1]}; "
                             "pass replace=True (`ctxrec export --replace-vectors`) to drop the old ones first")
        written[label] = store.write_vectors(label, name, ids, mat)
    return written
