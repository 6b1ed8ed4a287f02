"""A heterogeneous context GNN over User, Item, Session, Time, Place and Category.

Message passing (``HeteroConv`` of ``SAGEConv`` per edge type, both directions)
over the training graph lets time-slot and place nodes learn what is consumed in
them through their sessions. A request ``(user, time slot, place)`` becomes a query

.. math::
    q = h_u + \\mathrm{MLP}([h_u \\,\\|\\, h_t \\,\\|\\, h_p])

and items are scored by :math:`q^\\top h_i + b_i` (``b_i`` a learned item bias). With
``session_len > 0`` the query also reads the items opened earlier in the session through a
small Transformer (:class:`~ctxrec.training.models.session.SessionEncoder`):
:math:`q = h_u + \\mathrm{MLP}([h_u \\| h_t \\| h_p \\| s])`. Item
inputs are their modality features fused to ``hidden`` (by the strategy named in
``fusion``, see :func:`~ctxrec.fusion.get_fusion`) plus an ID embedding; context nodes
start from the text encoding of their description plus an ID embedding; sessions start
from one shared learned vector, so they are defined by their neighbours.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Dict, Optional, Sequence

import torch
from torch import nn

from ctxrec.fusion import get_fusion
from ctxrec.data import RecGraph
from ctxrec.training.losses import BatchEmbeddings
from ctxrec.training.models.session import SessionEncoder
from ctxrec.training.recommender import Context, Recommender
from ctxrec.training.trainer import Trainer, TrainConfig


class ContextGNN(nn.Module, Recommender):
    """Context-aware heterogeneous GNN recommender.

    Args:
        hidden: node representation size (default: 64).
        num_layers: message-passing layers (default: 2).
        features: vector names to use as item/context inputs, e.g. ``("text",)``; each
            node type uses those it has (default: ``("text",)``).
        dropout: dropout on node inputs (default: 0.1).
        reg: L2 weight on the batch's ID embeddings (default: 1e-4).
        train: a :class:`TrainConfig` or its fields (default: ``TrainConfig()``).
        fusion: how node modality features are fused: ``"mean"``, ``"concat"``, ``"gated"``
            or ``"attention"`` (default: ``"mean"``).
        item_ids: give items a learned ID embedding besides their features; without it
            items are only what their features say, which generalises to items with few
            interactions (ignored when items have no features) (default: True).
        session_len: read up to this many earlier items of the request's session
            (``Context.session_items``) with a session Transformer; 0 turns it off (default: 0).
        context: read the time slot and place: their nodes in message passing and their
            vectors in the query; False is the ablation that ignores both (default: True).

    Example:
        >>> model = ContextGNN(hidden=32).fit(graph)  # doctest: +SKIP
        >>> items, scores = model.recommend(torch.tensor([0]), k=10, context=Context(t, p))  # doctest: +SKIP
    """

    name = "ContextGNN"
    ID_TYPES = ("user", "item", "time", "place", "category")

    def __init__(self, hidden: int = 64, num_layers: int = 2, features: Sequence[str] = ("text",),
                 dropout: float = 0.1, reg: float = 1e-4, train: TrainConfig | dict | None = None,
                 fusion: str = "mean", item_ids: bool = True, session_len: int = 0, context: bool = True) -> None:
        nn.Module.__init__(self)
        if session_len < 0:
            raise ValueError(f"session_len must be >= 0 (0: no session encoder), got {session_len}")
        self.item_ids, self.session_len, self.context = item_ids, session_len, bool(context)
        self.hidden, self.num_layers, self.features = hidden, num_layers, tuple(features)
        self.dropout, self.reg = dropout, reg
        self.fusion_name = fusion  # `self.fusion` is the ModuleDict built in prepare()
        self.train_config = TrainConfig(**train) if isinstance(train, dict) else (train or TrainConfig())
        self.history = None
        self._cache: Optional[Dict[str, torch.Tensor]] = None
        self._scored: Optional[tuple] = None  # (the cache it belongs to, scored item matrix)
        self._adj: Optional[tuple] = None  # (device, edge type -> sparse CSR adjacency), see _adjacency

    def config(self) -> dict:
        return {"hidden": self.hidden, "num_layers": self.num_layers, "features": list(self.features),
                "dropout": self.dropout, "reg": self.reg, "fusion": self.fusion_name, "item_ids": self.item_ids,
                "session_len": self.session_len, "context": self.context, "train": asdict(self.train_config)}

    def prepare(self, graph: RecGraph) -> None:
        from torch_geometric.nn import HeteroConv, SAGEConv

        self.graph = graph
        torch.manual_seed(self.train_config.seed)
        data = graph.data
        h = self.hidden
        has_features = any(f"x_{m}" in data["item"] for m in self.features)
        id_types = [t for t in self.ID_TYPES if t != "item" or self.item_ids or not has_features]
        self.ids = nn.ModuleDict({t: nn.Embedding(data[t].num_nodes, h) for t in id_types})
        for emb in self.ids.values():
            nn.init.normal_(emb.weight, std=0.1)
        self.session_init = nn.Parameter(torch.zeros(h))
        # an item's context-free appeal (quality, popularity): scores are q . h_i + b_i
        self.item_bias = nn.Embedding(data["item"].num_nodes, 1)
        nn.init.zeros_(self.item_bias.weight)
        self.fusion = nn.ModuleDict()
        for t in data.node_types:
            dims = {m: data[t][f"x_{m}"].size(1) for m in self.features if f"x_{m}" in data[t]}
            if dims:
                self.fusion[t] = get_fusion(self.fusion_name, dims, h).fit_scale(
                    {m: data[t][f"x_{m}"] for m in dims}, {m: data[t][f"mask_{m}"] for m in dims})
        ignored = set() if self.context else {"time", "place"}
        self.edge_types = [et for et in data.edge_types
                           if data[et].edge_index.numel() > 0 and not ignored & {et[0], et[2]}]
        self.convs = nn.ModuleList(
            HeteroConv({et: SAGEConv(h, h) for et in self.edge_types}, aggr="sum") for _ in range(self.num_layers)
        )
        self.norms = nn.ModuleList(nn.ModuleDict({t: nn.LayerNorm(h) for t in data.node_types})
                                   for _ in range(self.num_layers))
        self.session_encoder = SessionEncoder(h, self.session_len) if self.session_len else None
        parts = 4 if self.session_len else 3
        self.query_mlp = nn.Sequential(nn.Linear(parts * h, h), nn.ReLU(), nn.Linear(h, h))
        self.drop = nn.Dropout(self.dropout)
        self.sampler = None
        self._adj = None
        fanout = self.train_config.num_neighbors
        if fanout is not None:
            from ctxrec.training.neighbor_sampler import make_neighbor_sampler

            if len(fanout) != self.num_layers:
                raise ValueError(f"TrainConfig.num_neighbors has {len(fanout)} hops ({fanout}) but ContextGNN has "
                                 f"num_layers={self.num_layers}; give one fanout per layer, e.g. {[10] * self.num_layers}")
            self.sampler = make_neighbor_sampler(data.edge_type_subgraph(self.edge_types), list(fanout),
                                                 seed=self.train_config.seed)

    def fit(self, graph: RecGraph) -> "ContextGNN":
        self.history = Trainer(self.train_config).fit(self, graph)
        return self

    def train(self, mode: bool = True):
        self._cache = None
        return super().train(mode)

    def _inputs(self, nodes: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        """Input vectors of every node, or of the global ids in ``nodes`` per type."""
        data = self.graph.data
        dev = self.session_init.device
        x = {}
        for t in data.node_types:
            idx = None if nodes is None else nodes.get(t, torch.zeros(0, dtype=torch.long))
            n = data[t].num_nodes if idx is None else len(idx)
            if t in self.ids:
                v = self.ids[t].weight if idx is None else self.ids[t](idx.to(dev))
            else:
                v = self.session_init.expand(n, -1)
            if t in self.fusion:
                mods = self.fusion[t].modalities
                rows = slice(None) if idx is None else idx
                feats = {m: data[t][f"x_{m}"][rows].to(dev) for m in mods}
                masks = {m: data[t][f"mask_{m}"][rows].to(dev) for m in mods}
                v = v + self.fusion[t](feats, masks)["fused"]
            x[t] = self.drop(v)
        return x

    def _propagate(self, x: Dict[str, torch.Tensor], ei: Dict[tuple, torch.Tensor]) -> Dict[str, torch.Tensor]:
        for conv, norms in zip(self.convs, self.norms):
            out = conv(x, ei)
            x = {t: norms[t](x[t] + torch.relu(out[t])) if t in out else x[t] for t in x}
        return x

    def _adjacency(self, dev: torch.device) -> Dict[tuple, torch.Tensor]:
        """Each edge type's ``[dst, src]`` adjacency as a sparse CSR matrix, built once per device:
        SAGEConv's mean over in-neighbours becomes one sparse product (the same sums as scattering
        the edges; on the 20k-item catalogue a propagation, forward and backward, took 0.43 s
        instead of 0.51 s)."""
        if self._adj is None or self._adj[0] != dev:
            from torch_geometric.utils import to_torch_csr_tensor

            from ctxrec.training.models.interactions import quiet_sparse

            data = self.graph.data
            with quiet_sparse():  # not interactions.sparse_csr: it sums duplicate edges, the mean must count them
                self._adj = (dev, {et: to_torch_csr_tensor(data[et].edge_index.flip(0), size=(
                    data[et[2]].num_nodes, data[et[0]].num_nodes)).to(dev) for et in self.edge_types})
        return self._adj[1]

    def encode(self) -> Dict[str, torch.Tensor]:
        """Node representations for every node type after message passing over the full graph."""
        if not self.training and self._cache is not None:
            return self._cache
        data = self.graph.data
        dev = self.session_init.device
        x = self._propagate(self._inputs(), self._adjacency(dev))
        if not self.training:
            self._cache = {t: v.detach() for t, v in x.items()}
        return x

    def _sampled_batch(self, users, items, negatives, context: Context, catalogue: bool) -> BatchEmbeddings:
        """One batch over a sampled subgraph around its users, items and context nodes."""
        dev = self.session_init.device
        t, p = context.time.cpu(), context.place.cpu()
        if not self.context:
            t, p = torch.full_like(t, -1), torch.full_like(p, -1)
        prefix = self._prefix(context, len(users))
        item_seeds = torch.cat([items.cpu(), negatives.cpu().reshape(-1), prefix.cpu().clamp(min=0).reshape(-1)])
        if catalogue:  # every item's vector: seed them all (ids first, in order)
            item_seeds = torch.cat([torch.arange(self.graph.num_items), item_seeds])
        groups = {"user": users.cpu(), "item": item_seeds,
                  "time": t[t >= 0], "place": p[p >= 0]}
        seeds, inverse = {}, {}
        for key, ids in groups.items():
            seeds[key], inverse[key] = torch.unique(ids, return_inverse=True)
        out = self.sampler.sample({k: v for k, v in seeds.items() if v.numel()})
        ei = {et: torch.stack([out.row[et], out.col[et]]).to(dev) for et in self.edge_types if et in out.row}
        h = self._propagate(self._inputs(out.node), ei)  # seeds are the first nodes of their type
        hu = h["user"][inverse["user"].to(dev)]
        zeros = torch.zeros_like(hu)
        ht, hp = zeros.clone(), zeros.clone()
        if (t >= 0).any():
            ht[(t >= 0).to(dev)] = h["time"][inverse["time"].to(dev)]
        if (p >= 0).any():
            hp[(p >= 0).to(dev)] = h["place"][inverse["place"].to(dev)]
        item_h = h["item"][inverse["item"].to(dev)]
        item_rows = self._items(item_h, seeds["item"].to(dev)[inverse["item"].to(dev)])
        skip = self.graph.num_items if catalogue else 0
        pos = item_rows[skip:skip + len(items)]
        n_neg = negatives.numel()
        neg = item_rows[skip + len(items):skip + len(items) + n_neg].reshape(*negatives.shape, -1)
        hs = None
        if self.session_encoder is not None:
            hs = self._session(item_h[skip + len(items) + n_neg:].reshape(*prefix.shape, -1), prefix.to(dev))
        out = BatchEmbeddings(self._query(hu, ht, hp, hs), pos, neg, self._reg(users, items))
        if catalogue:
            out.catalogue, out.targets = item_rows[:skip], items
        return out

    def query(self, h: Dict[str, torch.Tensor], users: torch.Tensor, context: Optional[Context]) -> torch.Tensor:
        hu = h["user"][users]
        zeros = torch.zeros_like(hu)
        if context is None or not self.context:
            ht, hp = zeros, zeros
        else:
            t, p = context.time.to(hu.device), context.place.to(hu.device)
            ht, hp = _rows(h["time"], t, zeros), _rows(h["place"], p, zeros)
        prefix = self._prefix(context, len(users)).to(hu.device)
        return self._query(hu, ht, hp, self._session(h["item"][prefix.clamp(min=0)], prefix))

    def _prefix(self, context: Optional[Context], n: int) -> torch.Tensor:
        """The request's earlier session items ``[n, session_len]`` (``[n, 0]`` without an encoder)."""
        if not self.session_len:
            return torch.zeros(n, 0, dtype=torch.long)
        items = None if context is None else context.session_items
        if items is None:
            return torch.full((n, self.session_len), -1, dtype=torch.long)
        items = items.long()[:, -self.session_len:]
        pad = self.session_len - items.size(1)
        return torch.nn.functional.pad(items, (pad, 0), value=-1) if pad else items

    def _session(self, vectors: torch.Tensor, prefix: torch.Tensor) -> Optional[torch.Tensor]:
        return self.session_encoder(vectors, prefix) if self.session_encoder is not None else None

    def _reg(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """L2 of the batch's ID embeddings, weighted by ``reg``."""
        total = self.ids["user"].weight[users].pow(2).sum()
        if "item" in self.ids:
            total = total + self.ids["item"].weight[items].pow(2).sum()
        return self.reg * total / len(users)

    def _query(self, hu: torch.Tensor, ht: torch.Tensor, hp: torch.Tensor,
               hs: Optional[torch.Tensor] = None) -> torch.Tensor:
        parts = [hu, ht, hp] if hs is None else [hu, ht, hp, hs]
        q = hu + self.query_mlp(torch.cat(parts, 1))
        return torch.cat([q, torch.ones_like(q[:, :1])], 1)  # the 1 meets the item bias

    def _items(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Item vectors with the bias appended, so a dot product with a query adds it."""
        return torch.cat([h, self.item_bias(items)], -1)

    def batch(self, users, items, negatives, context: Context, catalogue: bool = False) -> BatchEmbeddings:
        if self.sampler is not None and self.training:
            return self._sampled_batch(users, items, negatives, context, catalogue)
        h = self.encode()
        reg = self._reg(users, items)
        out = BatchEmbeddings(self.query(h, users, context), self._items(h["item"][items], items),
                              self._items(h["item"][negatives], negatives), reg)
        if catalogue:
            out.catalogue = self._items(h["item"], torch.arange(h["item"].size(0), device=h["item"].device))
            out.targets = items
        return out

    @torch.no_grad()
    def score(self, users: torch.Tensor, context: Optional[Context] = None) -> torch.Tensor:
        h = self.encode()
        items = self._scored[1] if self._scored is not None and self._scored[0] is h else None
        if items is None:  # item vectors with the bias column, kept as long as the eval-mode cache
            items = self._items(h["item"], torch.arange(h["item"].size(0), device=h["item"].device)).contiguous()
            self._scored = (h, items) if not self.training else None
        return catalogue_scores(self.query(h, users.to(self.session_init.device), context), items)

    def item_embeddings(self) -> torch.Tensor:
        return self.encode()["item"].detach()

    def state(self) -> Dict[str, torch.Tensor]:
        return dict(self.state_dict())

    def load_state(self, state: Dict[str, torch.Tensor]) -> None:
        self.load_state_dict(state)
        self.eval()


def _rows(table: torch.Tensor, index: torch.Tensor, zeros: torch.Tensor) -> torch.Tensor:
    """``table[index]`` where ``index >= 0``, zeros where it is ``-1`` (unknown), and zeros
    throughout when no request knows it (the table may then be empty: a graph without places)."""
    known = index >= 0
    if not bool(known.any()):
        return zeros
    return torch.where(known.unsqueeze(1), table[index.clamp(min=0)], zeros)


def catalogue_scores(queries: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """``queries @ items.T``: scores ``[B, N]`` of every item (rows of ``items``) per query.

    On the CPU it multiplies through numpy: torch's MKL runs its generic (non-AVX-512)
    kernels on AMD processors, while numpy's OpenBLAS picks AVX-512 ones; for 100k items
    and a batch of 8-16 queries that halves the time (``ctxrec bench serve``). The same
    float32 products, summed in another order. The result is a transposed view.
    """
    if queries.device.type != "cpu" or queries.dtype != torch.float32 or items.dtype != torch.float32:
        return queries @ items.T
    return torch.from_numpy(items.numpy() @ queries.numpy().T).T
