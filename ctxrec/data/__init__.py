"""The data model shared by export, training and evaluation: interactions, the exported
graph, and how pairs are split into train, validation and test.

:mod:`ctxrec.graph.export` turns stored tables into a :class:`RecGraph`; models and
:mod:`ctxrec.training.evaluation` read it. Nothing here imports a store or a model.
"""
from ctxrec.data.interactions import Interactions, SeenItems
from ctxrec.data.rec_graph import RecGraph
from ctxrec.data.sessions import session_prefixes
from ctxrec.data.split_config import CONTEXT_KEYS, FOLD_PROTOCOLS, PROTOCOLS, SplitConfig
from ctxrec.data.split_files import read_split_dir, write_split_dir
from ctxrec.data.splits import SplitResult, split_roles

__all__ = ["Interactions", "SeenItems", "RecGraph", "session_prefixes", "CONTEXT_KEYS", "FOLD_PROTOCOLS",
           "PROTOCOLS", "SplitConfig", "read_split_dir", "write_split_dir", "SplitResult", "split_roles"]
