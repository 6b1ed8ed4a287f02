"""Recommenders: baselines and GNNs behind one interface."""
from ctxrec.training.models.content_knn import ContentKNN
from ctxrec.training.models.context_gnn import ContextGNN
from ctxrec.training.models.ease import EASE
from ctxrec.training.models.item_graph import ItemGraph
from ctxrec.training.models.itemknn import ItemKNN
from ctxrec.training.models.library_peers import ImplicitALS, ImplicitBPR
from ctxrec.training.models.lightgcn import LightGCN
from ctxrec.training.models.mf import MFBPR
from ctxrec.training.models.mostpop import MostPop

__all__ = ["ContentKNN", "ContextGNN", "EASE", "ImplicitALS", "ImplicitBPR", "ItemGraph", "ItemKNN", "LightGCN", "MFBPR",
           "MostPop"]

#: model name -> class, for the CLI and configs
MODELS = {"mostpop": MostPop, "lightgcn": LightGCN, "context_gnn": ContextGNN, "itemknn": ItemKNN, "ease": EASE,
          "mf_bpr": MFBPR, "content_knn": ContentKNN, "implicit_als": ImplicitALS, "implicit_bpr": ImplicitBPR,
          "item_graph": ItemGraph}


def make_model(name: str, **kwargs):
    """Build a model by name (``mostpop``, ``itemknn``, ``ease``, ``mf_bpr``, ``content_knn``,
    ``implicit_als``, ``implicit_bpr``, ``lightgcn``, ``context_gnn``, ``item_graph``)."""
    try:
        klass = MODELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}") from None
    return klass(**kwargs)


__all__ += ["MODELS", "make_model"]
