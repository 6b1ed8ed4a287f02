"""ctxrec: graph-based, multimodal, context-aware recommendation.

``import ctxrec`` is light: it loads no torch_geometric, neo4j, open_clip,
torchaudio, transformers or faiss. Import the parts you use::

    from ctxrec.graph import build_graph, GraphTables
    from ctxrec.graph.stores import open_store
    from ctxrec.graph.export import export_pyg
    from ctxrec.training.models import ContextGNN
"""
__version__ = "0.1.0"

__all__ = ["__version__"]
