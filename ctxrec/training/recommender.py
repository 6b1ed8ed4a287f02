"""The Recommender interface every model implements, GNN or baseline.

A model scores all items for a batch of users in an optional context; the base
class turns scores into top-K lists with seen items masked, and evaluates.
"""
from __future__ import annotations

import abc
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ctxrec.graph import context as ctx
from ctxrec.data import Interactions, RecGraph, SeenItems


@dataclass
class Context:
    """The context of a request, as node indices of the exported graph.

    Args:
        time (LongTensor [B]): ``time`` node index per request (``-1``: unknown).
        place (LongTensor [B]): ``place`` node index per request (``-1``: unknown).
        session_items (LongTensor [B, L], optional): items opened earlier in the session,
            oldest first, ``-1``-padded on the left; models without a session encoder
            ignore them.
    """

    time: torch.Tensor
    place: torch.Tensor
    session_items: Optional[torch.Tensor] = None

    @classmethod
    def of(cls, events: Interactions) -> "Context":
        return cls(events.time, events.place, events.prefix)

    def to(self, device) -> "Context":
        items = None if self.session_items is None else self.session_items.to(device)
        return Context(self.time.to(device), self.place.to(device), items)

    def __getitem__(self, rows) -> "Context":
        items = None if self.session_items is None else self.session_items[rows]
        return Context(self.time[rows], self.place[rows], items)


class Recommender(abc.ABC):
    """Base class: ``fit``, ``score``, ``recommend``, ``evaluate``, ``save`` / ``load``.

    Subclasses implement :meth:`fit` and :meth:`score`; context-free models ignore ``context``.
    """

    #: short name used in tables and files
    name: str = "recommender"
    graph: Optional[RecGraph] = None

    @abc.abstractmethod
    def fit(self, graph: RecGraph) -> "Recommender":
        """Train on ``graph.train`` (model selection on ``graph.val`` only)."""

    @abc.abstractmethod
    def score(self, users: torch.Tensor, context: Optional[Context] = None) -> torch.Tensor:
        """Scores [len(users), num_items] for user indices in a context (higher is better)."""

    @torch.no_grad()
    def recommend(self, users: torch.Tensor | Sequence[int], k: int = 10, context: Optional[Context] = None,
                  filter_seen: bool = True, seen: Optional[SeenItems] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Top-``k`` item indices and scores per user.

        Args:
            users: user indices [B].
            k: list length (default: 10).
            context: the request context (default: none).
            filter_seen: mask items the user interacted with in training (default: True).
            seen: pairs to mask instead of the train pairs (see ``RecGraph.seen``).

        Returns:
            ``(items [B, k], scores [B, k])``.
        """
        if self.graph is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(graph) first")
        users = torch.as_tensor(users, dtype=torch.long)
        if k <= 0:
            raise ValueError(f"k must be > 0, got {k}")
        scores = self.score(users, context).float().cpu().clone()
        if filter_seen:
            seen = self.graph.seen() if seen is None else seen
            scores[seen.mask_index(users)] = float("-inf")
        k = min(k, scores.size(1))
        top = scores.topk(k, dim=1)
        return top.indices, top.values

    def recommend_ids(self, user: str, k: int = 10, time: Optional[str] = None, place: Optional[str] = None,
                      filter_seen: bool = True) -> List[Tuple[str, float]]:
        """Top-``k`` ``(item id, score)`` for a user id in a context given as text.

        Args:
            user: a user id of the graph.
            k: list length (default: 10).
            time: when, e.g. ``"sat 20:00"``, ``"sat-evening"`` or an ISO time (default: unknown).
            place: where, free text such as ``"New York"`` (default: unknown).
            filter_seen: mask the user's training items (default: True).
        """
        graph = self.graph
        if graph is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        u = torch.tensor([graph.lookup("user", user)])
        items, scores = self.recommend(u, k, context=request_context(graph, time, place), filter_seen=filter_seen)
        return [(str(graph.ids["item"][i]), float(s)) for i, s in zip(items[0].tolist(), scores[0].tolist())]

    def evaluate(self, split: str = "val", ks: Sequence[int] = (10, 20), batch_size: int = 1024,
                 protocol: str = "per_context") -> Dict[str, float]:
        """Full-ranking metrics on the model's own graph: :func:`ctxrec.training.evaluation.evaluate`
        ``(self, self.graph, split, ...)``.

        A model fitted on :meth:`RecGraph.without_test` holds no test pairs; evaluate it on
        the full export with ``evaluate(model, graph, "test")``.

        Args:
            split: ``"val"`` or ``"test"`` (default: "val").
            ks: cut-offs (default: ``(10, 20)``).
            batch_size: queries scored at once (default: 1024).
            protocol: ``"per_context"``, ``"per_user"`` or ``"session"``, see
                :mod:`ctxrec.training.evaluation` (default: "per_context", the one early
                stopping has always used).
        """
        from ctxrec.training.evaluation import evaluate

        return evaluate(self, self.graph, split, ks=ks, protocol=protocol, batch_size=batch_size)

    def similar_items(self, items: torch.Tensor, k: int = 10) -> Tuple[torch.Tensor, torch.Tensor]:
        """Items most similar to ``items`` by the model's item vectors (cosine)."""
        emb = self.item_embeddings()
        if emb is None:
            raise NotImplementedError(f"{type(self).__name__} has no item embeddings")
        emb = torch.nn.functional.normalize(emb, dim=1)
        sims = emb[torch.as_tensor(items)] @ emb.T
        sims[torch.arange(sims.size(0)), torch.as_tensor(items)] = float("-inf")
        top = sims.topk(min(k, sims.size(1) - 1), dim=1)
        return top.indices, top.values

    def item_embeddings(self) -> Optional[torch.Tensor]:
        """Learned item vectors [num_items, d], when the model has them."""
        return None

    # persistence: a JSON manifest + safetensors weights, never pickle
    def config(self) -> dict:
        """Constructor arguments; saved with the model."""
        return {}

    def state(self) -> Dict[str, torch.Tensor]:
        """Tensors to save (default: none)."""
        return {}

    def load_state(self, state: Dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state` returned."""

    def save(self, directory: str | Path) -> Path:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        manifest = {"class": f"{type(self).__module__}:{type(self).__qualname__}", "name": self.name,
                    "config": self.config(), "torch": torch.__version__}
        (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
        state = {k: v.detach().contiguous().cpu() for k, v in self.state().items()}
        save_file(state, str(directory / "weights.safetensors"))
        return directory

    @classmethod
    def load(cls, directory: str | Path, graph: RecGraph) -> "Recommender":
        """Rebuild a saved model for ``graph`` (the same export it was trained on)."""
        import importlib

        from safetensors.torch import load_file

        directory = Path(directory)
        manifest = json.loads((directory / "manifest.json").read_text())
        mod, qual = manifest["class"].split(":")
        klass = getattr(importlib.import_module(mod), qual)
        if not (isinstance(klass, type) and issubclass(klass, Recommender)):
            raise ValueError(f"{directory}: {manifest['class']} is not a Recommender")
        model = klass(**manifest["config"])
        model.prepare(graph)
        model.load_state(load_file(str(directory / "weights.safetensors")))
        return model

    def prepare(self, graph: RecGraph) -> None:
        """Attach the graph and build graph-sized parameters, without training."""
        self.graph = graph


def request_context(graph: RecGraph, time: Optional[str] = None, place: Optional[str] = None) -> Context:
    """A one-request :class:`Context` from text: a time (``"sat 20:00"``) and a place (``"New York"``).

    Raises:
        ValueError: the time cannot be read, or the place is not in the graph (the
            message lists the known places).
    """
    t = graph.lookup("time", ctx.parse_when(time)) if time else -1
    p = -1
    if place:
        key = ctx.normalize_place(place)
        if key not in graph.index["place"]:
            known = ", ".join(ctx.display_place(k) for k in list(graph.ids["place"])[:20])
            raise ValueError(f"unknown place {place!r} (normalised {key!r}); known places: {known}")
        p = graph.index["place"][key]
    return Context(torch.tensor([t]), torch.tensor([p]))
