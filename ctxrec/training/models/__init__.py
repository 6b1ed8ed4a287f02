"""Recommenders: baselines and GNNs behind one interface."""
from ctxrec.training.models.context_gnn import ContextGNN
from ctxrec.training.models.lightgcn import LightGCN
from ctxrec.training.models.mostpop import MostPop

__all__ = ["ContextGNN", "LightGCN", "MostPop"]

#: model name -> class, for the CLI and configs
MODELS = {"mostpop": MostPop, "lightgcn": LightGCN, "context_gnn": ContextGNN}


def make_model(name: str, **kwargs):
    """Build a model by name (``mostpop``, ``lightgcn``, ``context_gnn``)."""
    try:
        return MODELS[name.lower()](**kwargs)
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}") from None


__all__ += ["MODELS", "make_model"]
