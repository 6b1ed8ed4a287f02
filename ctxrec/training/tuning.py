"""Grid search for any registered model, chosen on the validation split and never on test.

Every combination of a small grid is built with :func:`~ctxrec.training.models.make_model`,
fitted on ``graph.without_test()`` and scored with ``model.evaluate("val")``; the best fitted model
is returned with every trial, so a benchmark can report what was tried and how long it
took. Test metrics stay untouched until the caller evaluates the returned model once.

Example:
    >>> model, params, trials = tune("ease", {"l2": [100.0, 500.0]}, graph)  # doctest: +SKIP
    >>> params  # doctest: +SKIP
    {'l2': 100.0}
    >>> evaluate(model, graph, "test")["ndcg@20"]  # doctest: +SKIP
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
import time
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from ctxrec.data import RecGraph
from ctxrec.training.recommender import Recommender

#: a small, stated grid per model name (at most 8 combinations; none for models without
#: hyperparameters). Keys with a dot go into a nested dict: ``train.lr`` -> ``train={"lr": ...}``.
DEFAULT_GRIDS: Dict[str, Dict[str, list]] = {
    "mostpop": {},
    "itemknn": {"k": [50, 200], "shrink": [0.0, 10.0]},
    "ease": {"l2": [100.0, 500.0, 2000.0]},
    "mf_bpr": {"embedding_dim": [64], "train.lr": [1e-3, 5e-3]},
    "content_knn": {"center": ["none", "mean", "whiten"]},
    "implicit_als": {"factors": [32, 64], "regularization": [1.0, 10.0], "alpha": [1.0, 5.0]},
    "implicit_bpr": {"factors": [64, 128], "learning_rate": [0.005, 0.01]},
    "lightgcn": {"num_layers": [1, 2, 3]},
    "context_gnn": {},  # one configuration (the defaults); its epoch is chosen on validation
    # the benchmark adds "features" (every item vector, or the first alone)
    # the learned residual (factors > 0) carries the context; the additive prior stays off
    "item_graph": {"l2": [300.0, 1000.0], "recency": [None, 10.0], "factors": [0, 32]},
}


class Trial(NamedTuple):
    """One grid point: its parameters (as in the grid), the validation metric, fit seconds."""

    params: Dict[str, Any]
    val: float
    seconds: float


def expand_params(params: Mapping[str, Any], base: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Constructor arguments from ``base`` updated by ``params``, whose dotted keys nest.

    A dataclass in ``base`` on a dotted key's path (such as a :class:`TrainConfig` under
    ``train``) becomes a dict of its fields first.

    Example:
        >>> expand_params({"train.lr": 0.01, "reg": 0.0}, {"train": {"epochs": 5}})
        {'train': {'epochs': 5, 'lr': 0.01}, 'reg': 0.0}
    """
    out: Dict[str, Any] = copy.deepcopy(dict(base or {}))
    for key, value in params.items():
        *path, leaf = key.split(".")
        node = out
        for i, part in enumerate(path):
            child = node.get(part, {})
            if dataclasses.is_dataclass(child) and not isinstance(child, type):
                child = dataclasses.asdict(child)
            if not isinstance(child, dict):
                where = ".".join(path[: i + 1])
                raise ValueError(f"grid key {key!r}: {where!r} is {child!r} in base, not a dict or dataclass "
                                 f"that {leaf!r} could go into")
            node[part] = child
            node = child
        node[leaf] = value
    return out


def tune(name: str, grid: Optional[Mapping[str, Sequence]], graph: RecGraph, metric: str = "ndcg@20",
         base: Optional[Mapping[str, Any]] = None,
         protocol: str = "per_context") -> Tuple[Recommender, Dict[str, Any], List[Trial]]:
    """Fit ``name`` for every combination of ``grid``; keep the best on validation.

    Each model is fitted on ``graph.without_test()``, so no test pair is within its reach.

    Args:
        name: a model name of :data:`~ctxrec.training.models.MODELS`.
        grid: argument name -> values to try (their product is searched); dotted names go
            into nested dicts (``"train.lr"``); ``{}`` fits once with ``base``; ``None`` uses
            :data:`DEFAULT_GRIDS` ``[name]``.
        graph: the exported graph; models fit on ``graph.train`` and are compared on ``graph.val``.
        metric: validation metric to maximise, ``<name>@<k>`` as ``Recommender.evaluate``
            names them (default: "ndcg@20").
        base: arguments shared by every grid point, e.g. ``{"train": {"epochs": 20}}`` (default: none).
        protocol: validation protocol of :func:`ctxrec.training.evaluation.evaluate` that the
            grid is compared on; trained models also stop early on it unless ``base`` sets
            ``train.val_protocol`` (default: "per_context").

    Returns:
        ``(best model, fitted; its grid parameters; every trial)``: trials are
        :class:`Trial` ``(params, val metric, fit seconds)`` in grid order. Ties go to the
        earlier grid point. ``make_model(name, **expand_params(params, base))`` rebuilds the best.

    Raises:
        ValueError: an unknown model or metric, a grid value that is not a non-empty list, or
            a graph without validation pairs.
    """
    from ctxrec.training.models import make_model

    if grid is None:
        if name.lower() not in DEFAULT_GRIDS:
            raise ValueError(f"no default grid for model {name!r}; pass grid= (default grids: {sorted(DEFAULT_GRIDS)})")
        grid = DEFAULT_GRIDS[name.lower()]
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"grid[{key!r}] must be a non-empty list of values, got {values!r}")
    from ctxrec.training.evaluation import check_protocol

    protocol = check_protocol(protocol)
    k = _metric_k(metric)
    keys = list(grid)
    view = graph.without_test()
    best: Optional[Recommender] = None
    best_params: Dict[str, Any] = {}
    best_val = float("-inf")
    trials: List[Trial] = []
    for values in itertools.product(*(list(grid[key]) for key in keys)):
        params = dict(zip(keys, values))
        model = make_model(name, **expand_params(params, base))
        if hasattr(model, "train_config") and "val_protocol" not in dict(base or {}).get("train", {}):
            model.train_config.val_protocol = protocol
        start = time.perf_counter()
        model.fit(view)
        seconds = time.perf_counter() - start
        result = model.evaluate("val", ks=(k,), protocol=protocol)
        if metric not in result:
            if not result:
                raise ValueError("tune needs validation pairs, but graph.val is empty; export with SplitConfig(val>0)")
            raise ValueError(f"metric {metric!r} is not one evaluate() reports; choose from {sorted(result)}")
        val = float(result[metric])
        trials.append(Trial(params, val, seconds))
        if best is None or val > best_val:
            best, best_params, best_val = model, params, val
        del model  # only the best fitted model is kept in memory
    return best, best_params, trials


def refit_params(model: Recommender, params: Mapping[str, Any],
                 base: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Constructor arguments to refit a tuned model on train+val: its grid ``params`` over
    ``base`` and, for a model trained by epochs, ``train.epochs`` fixed to the epoch count
    chosen on validation (``history.best_epoch + 1``), which the trainer then runs in full
    (a refit graph has no validation pairs, so nothing stops it early).

    Example:
        >>> model, params, _ = tune("lightgcn", {"num_layers": [1, 2]}, graph)  # doctest: +SKIP
        >>> refit = make_model("lightgcn", **refit_params(model, params))  # doctest: +SKIP
    """
    out = expand_params(params, base)
    history = getattr(model, "history", None)
    if history is not None and getattr(history, "best_epoch", -1) >= 0:
        out = expand_params({"train.epochs": int(history.best_epoch) + 1}, out)
    return out


def _metric_k(metric: str) -> int:
    head, at, k = metric.rpartition("@")
    if not at or not head or not k.isdigit() or int(k) < 1:
        raise ValueError(f"metric must look like 'ndcg@20' (a name, '@', a list length), got {metric!r}")
    return int(k)
