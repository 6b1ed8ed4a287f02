"""Export: bundles that serve without retraining or a database, FAISS indexes, vectors
written back to a store (Neo4j vector indexes), networkx graphs and DGL-ready arrays.

Every module here imports only the standard library and numpy at import time (torch,
PyG, faiss, networkx inside the functions), so the DGL venv, which has neither PyG nor
the core's torch, can import :mod:`ctxrec.bundle.dgl_loader`.
"""
from ctxrec.bundle.bundle import export_bundle, load_bundle, node_embeddings, read_bundle_manifest
from ctxrec.bundle.dgl_loader import GraphArrays, load_dgl_heterograph, read_graph_arrays, write_graph_arrays
from ctxrec.bundle.faiss_index import ItemIndex
from ctxrec.bundle.graph_bundle import graph_arrays, read_rec_graph, write_dgl_bundle
from ctxrec.bundle.networkx_graph import to_networkx, write_networkx
from ctxrec.bundle.store_vectors import write_embeddings

__all__ = ["export_bundle", "load_bundle", "node_embeddings", "read_bundle_manifest",
           "GraphArrays", "load_dgl_heterograph", "read_graph_arrays", "write_graph_arrays",
           "ItemIndex", "graph_arrays", "read_rec_graph", "write_dgl_bundle",
           "to_networkx", "write_networkx", "write_embeddings"]
