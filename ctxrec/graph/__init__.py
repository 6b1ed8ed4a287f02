"""The heterogeneous graph: schema, building from tables, stores, export."""
from ctxrec.graph.build import BuildConfig, BuildResult, build_graph
from ctxrec.graph.readers import InputError, Reject, RejectLog
from ctxrec.graph.schema import NODES, RELS
from ctxrec.graph.tables import GraphTables

__all__ = ["BuildConfig", "BuildResult", "build_graph", "InputError", "Reject", "RejectLog",
           "NODES", "RELS", "GraphTables"]
