"""Heterogeneous neighbour sampling in plain torch, for PyG's ``NodeLoader`` / ``LinkLoader``.

PyG's own :class:`~torch_geometric.sampler.NeighborSampler` needs ``pyg-lib`` or
``torch-sparse``, neither of which installs from PyPI wheels here. This sampler implements
the same :class:`~torch_geometric.sampler.BaseSampler` contract with vectorised torch ops;
:func:`make_neighbor_sampler` picks PyG's when one of those packages is present.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.sampler import (
    BaseSampler,
    EdgeSamplerInput,
    HeteroSamplerOutput,
    NegativeSampling,
    NodeSamplerInput,
)
from torch_geometric.sampler.base import NumNeighbors
from torch_geometric.sampler.neighbor_sampler import edge_sample, node_sample
from torch_geometric.typing import EdgeType, NodeType

NumNeighborsType = Union[NumNeighbors, List[int], Dict[EdgeType, List[int]]]

# Segments with more than this many candidates per requested neighbour are sampled by
# rejection instead of sorting random keys over all their edges, so hubs (a time slot, a
# popular category) cost O(k), not O(degree).
_REJECTION_RATIO = 4


class HeteroNeighborSampler(BaseSampler):
    r"""Uniform heterogeneous neighbour sampler without replacement, in plain torch.

    Follows the semantics of PyG's :class:`~torch_geometric.sampler.NeighborSampler`
    (``subgraph_type='directional'``, non-disjoint): messages flow ``src -> dst``, so in
    hop :math:`h`, for every edge type ``(src, rel, dst)`` and every ``dst`` node first
    reached in hop :math:`h-1` (the seeds for :math:`h=1`), up to
    ``num_neighbors[edge_type][h-1]`` incoming ``src`` neighbours are drawn uniformly
    without replacement (``-1``: all of them). New nodes are appended per type in
    first-seen order, so the seeds are the first nodes of ``node[type]``, in their order.

    The output's ``row`` / ``col`` are local indices into ``node[src]`` / ``node[dst]``
    (``edge_index = [row, col]``, as :func:`torch_geometric.loader.utils.filter_hetero_data`
    builds it) and ``edge`` holds the original edge ids, so :attr:`edge_permutation` is
    :obj:`None`.

    Args:
        data (HeteroData): The graph; every edge type needs ``edge_index`` and every node
            type a known ``num_nodes``.
        num_neighbors (List[int] or Dict[Tuple[str, str, str], List[int]]): Neighbours per
            hop, the same for every edge type, or per edge type (all lists equally long).
        generator (torch.Generator, optional): Source of randomness. (default: :obj:`None`)
        seed (int, optional): Seed for a private generator; give this or ``generator``.
            With neither, a seed is drawn from torch's global RNG, so
            :func:`torch.manual_seed` makes runs reproducible. (default: :obj:`None`)
        replace (bool, optional): Only :obj:`False` is supported. (default: :obj:`False`)
        disjoint (bool, optional): Only :obj:`False` is supported. (default: :obj:`False`)
        subgraph_type (str, optional): Only ``'directional'`` is supported.
            (default: ``'directional'``)
        time_attr (str, optional): Temporal sampling is not supported. (default: :obj:`None`)
        weight_attr (str, optional): Weighted sampling is not supported.
            (default: :obj:`None`)

    Inside a ``DataLoader`` worker the generator is re-seeded from ``seed`` and the
    worker's seed, so workers draw different neighbourhoods (and new ones every epoch).

    Example:
        >>> sampler = HeteroNeighborSampler(data, num_neighbors=[10, 5], seed=0)
        >>> out = sampler.sample({'user': torch.tensor([3, 7]), 'time': torch.tensor([0])})
        >>> out.node['user'][:2]
        tensor([3, 7])
        >>> loader = NodeLoader(data, node_sampler=sampler, input_nodes=('user', None),
        ...                     batch_size=128)
    """

    def __init__(
        self,
        data: HeteroData,
        num_neighbors: NumNeighborsType,
        *,
        generator: Optional[torch.Generator] = None,
        seed: Optional[int] = None,
        replace: bool = False,
        disjoint: bool = False,
        subgraph_type: str = "directional",
        time_attr: Optional[str] = None,
        weight_attr: Optional[str] = None,
    ) -> None:
        if not isinstance(data, HeteroData):
            raise TypeError(f"'data' must be a HeteroData (got {type(data).__name__}); wrap a "
                            f"homogeneous graph with Data.to_heterogeneous()")
        for name, value, default in [("replace", replace, False), ("disjoint", disjoint, False),
                                     ("subgraph_type", str(getattr(subgraph_type, "value", subgraph_type)),
                                      "directional"),
                                     ("time_attr", time_attr, None), ("weight_attr", weight_attr, None)]:
            if value != default:
                raise NotImplementedError(
                    f"HeteroNeighborSampler does not support {name}={value!r} (only {default!r}); "
                    f"install 'pyg-lib' and use make_neighbor_sampler() for PyG's NeighborSampler")
        if generator is not None and seed is not None:
            raise ValueError("Give either 'generator' or 'seed' to HeteroNeighborSampler, not both")

        self.node_types, self.edge_types = data.metadata()
        self.num_nodes: Dict[NodeType, int] = {}
        for node_type in self.node_types:
            num = data[node_type].num_nodes
            if num is None:
                raise ValueError(f"Node type '{node_type}' has no 'num_nodes'; set data['{node_type}'].num_nodes")
            self.num_nodes[node_type] = int(num)

        self.num_neighbors = num_neighbors if isinstance(num_neighbors, NumNeighbors) else NumNeighbors(num_neighbors)
        self.fanouts: Dict[EdgeType, List[int]] = self.num_neighbors.get_values(self.edge_types)
        self.num_hops = self.num_neighbors.num_hops
        for edge_type, fanout in self.fanouts.items():
            if len(fanout) != self.num_hops or any(int(k) < -1 for k in fanout):
                raise ValueError(f"'num_neighbors' for {edge_type} must be {self.num_hops} ints >= -1 "
                                 f"(got {list(fanout)})")

        # CSC per edge type: in-edges of dst node v are positions colptr[v]:colptr[v+1].
        self.colptr: Dict[EdgeType, Tensor] = {}
        self.row: Dict[EdgeType, Tensor] = {}
        self.perm: Dict[EdgeType, Tensor] = {}
        for edge_type in self.edge_types:
            self.colptr[edge_type], self.row[edge_type], self.perm[edge_type] = self._to_csc(data, edge_type)

        self._seed = int(seed) if seed is not None else (
            generator.initial_seed() if generator is not None else int(torch.randint(2**62, (1,))))
        self.generator = generator if generator is not None else torch.Generator().manual_seed(self._seed)
        self._worker_seed: Optional[int] = None

    def _to_csc(self, data: HeteroData, edge_type: EdgeType) -> Tuple[Tensor, Tensor, Tensor]:
        src_type, _, dst_type = edge_type
        edge_index = data[edge_type].get("edge_index")
        if edge_index is None or edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"Edge type {edge_type} needs an 'edge_index' of shape [2, E] "
                             f"(got {None if edge_index is None else tuple(edge_index.shape)})")
        src, dst = edge_index.cpu().long()
        for name, index, node_type in [("source", src, src_type), ("destination", dst, dst_type)]:
            if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.num_nodes[node_type]):
                raise ValueError(f"Edge type {edge_type} has {name} ids outside [0, "
                                 f"{self.num_nodes[node_type]}) of node type '{node_type}'")
        perm = torch.argsort(dst, stable=True)
        colptr = torch.zeros(self.num_nodes[dst_type] + 1, dtype=torch.long)
        torch.cumsum(torch.bincount(dst, minlength=self.num_nodes[dst_type]), 0, out=colptr[1:])
        return colptr, src[perm], perm

    @property
    def is_hetero(self) -> bool:
        return True

    @property
    def disjoint(self) -> bool:
        return False

    @property
    def edge_permutation(self) -> None:
        # `edge` already holds original edge ids.
        return None

    # Public sampling ##################################################################

    def sample(self, seeds: Dict[NodeType, Tensor]) -> HeteroSamplerOutput:
        r"""Samples one subgraph around seeds of one or several node types.

        Args:
            seeds (Dict[str, torch.Tensor]): Global node ids per node type, 1-D.

        Returns:
            HeteroSamplerOutput: ``node[type][:len(seeds[type])]`` equals ``seeds[type]``;
            ``metadata`` is :obj:`None`.
        """
        if not isinstance(seeds, dict):
            raise TypeError(f"'seeds' must be a dict node type -> ids (got {type(seeds).__name__})")
        return self._sample(seeds)

    def sample_from_nodes(self, inputs: NodeSamplerInput, **kwargs) -> HeteroSamplerOutput:
        r"""Samples around ``inputs.node`` of type ``inputs.input_type`` (``NodeLoader``'s hook)."""
        if inputs.input_type is None:
            raise ValueError("HeteroNeighborSampler needs a node type: pass input_nodes=(type, ids)")
        return node_sample(inputs, self._sample)

    def sample_from_edges(
        self,
        inputs: EdgeSamplerInput,
        neg_sampling: Optional[NegativeSampling] = None,
    ) -> HeteroSamplerOutput:
        r"""Samples around both endpoints of seed links (``LinkLoader``'s hook).

        Negatives (``'binary'`` or ``'triplet'``) are drawn with this sampler's generator;
        ``metadata`` is laid out as by PyG's ``NeighborSampler``: ``(input_id,
        edge_label_index, edge_label, time)`` or ``(input_id, src_index, dst_pos_index,
        dst_neg_index, time)``.
        """
        if inputs.input_type is None:
            raise ValueError("HeteroNeighborSampler needs an edge type: pass "
                             "edge_label_index=(edge_type, edge_index)")
        if inputs.time is not None:
            raise NotImplementedError("HeteroNeighborSampler does not support temporal sampling "
                                      "(got edge_label_time)")
        if neg_sampling is not None:
            neg_sampling = _GeneratorNegativeSampling(NegativeSampling.cast(neg_sampling), self._rng())
        return edge_sample(inputs, self._sample, self.num_nodes, False, None, neg_sampling)

    # Sampling core ####################################################################

    def _rng(self) -> torch.Generator:
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker_seed != info.seed:
            # Each worker holds a copy of the parent's generator; re-seed it per worker (and per
            # epoch, since DataLoader draws fresh worker seeds) so they do not repeat each other.
            self._worker_seed = info.seed
            self.generator = torch.Generator().manual_seed((self._seed * 1_000_003 + info.seed) % 2**63)
        return self.generator

    def _check_seeds(self, seeds: Dict[NodeType, Tensor]) -> Dict[NodeType, Tensor]:
        out = {}
        for node_type, ids in seeds.items():
            if node_type not in self.num_nodes:
                raise ValueError(f"Unknown seed node type '{node_type}'; choices: {self.node_types}")
            ids = torch.as_tensor(ids)
            if ids.dim() != 1 or ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
                raise ValueError(f"Seeds of '{node_type}' must be a 1-D integer tensor "
                                 f"(got dtype {ids.dtype}, shape {tuple(ids.shape)})")
            ids = ids.cpu().long()
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.num_nodes[node_type]):
                raise ValueError(f"Seeds of '{node_type}' must lie in [0, {self.num_nodes[node_type]}) "
                                 f"(got min {int(ids.min())}, max {int(ids.max())})")
            out[node_type] = ids
        return out

    def _sample(self, seed: Dict[NodeType, Tensor], seed_time: Optional[Dict[NodeType, Tensor]] = None,
                **kwargs) -> HeteroSamplerOutput:
        if seed_time is not None:
            raise NotImplementedError("HeteroNeighborSampler does not support temporal sampling (got seed times)")
        seed = self._check_seeds(seed)
        gen = self._rng()
        empty = torch.empty(0, dtype=torch.long)

        node = {t: seed.get(t, empty) for t in self.node_types}
        num_sampled_nodes = {t: [node[t].numel()] for t in self.node_types}
        frontier = {t: (0, node[t].numel()) for t in self.node_types}  # [begin, end) of node[t]
        row: Dict[EdgeType, List[Tensor]] = {e: [] for e in self.edge_types}
        col: Dict[EdgeType, List[Tensor]] = {e: [] for e in self.edge_types}
        edge: Dict[EdgeType, List[Tensor]] = {e: [] for e in self.edge_types}
        num_sampled_edges: Dict[EdgeType, List[int]] = {e: [] for e in self.edge_types}

        for hop in range(self.num_hops):
            # Draw for every edge type from the frontier as it stood when the hop began, then
            # register the new nodes of each type once (in edge-type order).
            candidates: Dict[NodeType, List[Tensor]] = {t: [] for t in self.node_types}
            pending = []
            for edge_type in self.edge_types:
                src_type, _, dst_type = edge_type
                begin, end = frontier[dst_type]
                k = int(self.fanouts[edge_type][hop])
                if end == begin or k == 0:
                    num_sampled_edges[edge_type].append(0)
                    continue
                colptr = self.colptr[edge_type]
                dst = node[dst_type][begin:end]
                start = colptr[dst]
                seg, pos = _sample_segments(start, colptr[dst + 1] - start, k, gen)
                offset = sum(c.numel() for c in candidates[src_type])
                candidates[src_type].append(self.row[edge_type][pos])
                pending.append((edge_type, offset, pos.numel(), seg + begin, self.perm[edge_type][pos]))

            local: Dict[NodeType, Tensor] = {}
            for node_type in self.node_types:
                old = node[node_type].numel()
                if candidates[node_type]:
                    new, local[node_type] = _append_unique(node[node_type], torch.cat(candidates[node_type]))
                    node[node_type] = torch.cat([node[node_type], new])
                frontier[node_type] = (old, node[node_type].numel())
                num_sampled_nodes[node_type].append(node[node_type].numel() - old)

            for edge_type, offset, count, dst_local, eid in pending:
                row[edge_type].append(local[edge_type[0]][offset:offset + count])
                col[edge_type].append(dst_local)
                edge[edge_type].append(eid)
                num_sampled_edges[edge_type].append(count)

        def cat(parts: List[Tensor]) -> Tensor:
            return torch.cat(parts) if parts else empty

        return HeteroSamplerOutput(
            node=node,
            row={e: cat(v) for e, v in row.items()},
            col={e: cat(v) for e, v in col.items()},
            edge={e: cat(v) for e, v in edge.items()},
            batch=None,
            num_sampled_nodes=num_sampled_nodes,
            num_sampled_edges=num_sampled_edges,
        )

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(node_types={len(self.node_types)}, "
                f"edge_types={len(self.edge_types)}, num_hops={self.num_hops})")


def _expand_segments(seg: Tensor, start: Tensor, deg: Tensor) -> Tuple[Tensor, Tensor]:
    """All positions ``start[i] .. start[i]+deg[i]-1`` with their segment id ``seg[i]``."""
    total = int(deg.sum())
    ptr = torch.cumsum(deg, 0) - deg
    offset = torch.arange(total) - torch.repeat_interleave(ptr, deg, output_size=total)
    return (torch.repeat_interleave(seg, deg, output_size=total),
            torch.repeat_interleave(start, deg, output_size=total) + offset)


def _sample_segments(start: Tensor, deg: Tensor, k: int, gen: torch.Generator) -> Tuple[Tensor, Tensor]:
    r"""Draws ``min(k, deg[i])`` distinct positions from each segment ``[start[i], start[i]+deg[i])``.

    Uniform over subsets. ``k = -1`` takes every position. Returns ``(seg, pos)`` grouped
    by segment, in segment order.
    """
    seg_all = torch.arange(deg.numel())
    if k < 0:
        return _expand_segments(seg_all, start, deg)
    take_all = deg <= k
    sparse = deg > _REJECTION_RATIO * k
    dense = ~take_all & ~sparse
    parts = [_expand_segments(seg_all[take_all], start[take_all], deg[take_all])]

    if bool(dense.any()):
        # Random key per candidate, sort by (segment, key), keep the first k per segment.
        d = deg[dense]
        seg, pos = _expand_segments(seg_all[dense], start[dense], d)
        order = torch.argsort(torch.rand(pos.numel(), generator=gen))
        order = order[torch.argsort(seg[order], stable=True)]
        rank = torch.arange(pos.numel()) - torch.repeat_interleave(torch.cumsum(d, 0) - d, d)
        keep = order[rank < k]
        parts.append((seg[keep], pos[keep]))

    if bool(sparse.any()):
        # Draw with replacement, drop repeats, redraw what is missing. The procedure is
        # symmetric in the positions, so the resulting k-subset is uniform.
        d = deg[sparse]
        width = int(d.max())
        chosen = torch.empty(0, dtype=torch.long)  # keys j * width + offset, j = sparse segment
        need = torch.full_like(d, k)
        while bool((need > 0).any()):
            active = torch.nonzero(need > 0).view(-1)
            j = torch.repeat_interleave(active, need[active])
            offset = (torch.rand(j.numel(), generator=gen, dtype=torch.float64) * d[j]).long()
            offset = torch.minimum(offset, d[j] - 1)
            chosen = torch.unique(torch.cat([chosen, j * width + offset]))
            need = k - torch.bincount(chosen // width, minlength=d.numel())
        j = chosen // width
        parts.append((seg_all[sparse][j], start[sparse][j] + chosen % width))

    seg = torch.cat([p[0] for p in parts])
    pos = torch.cat([p[1] for p in parts])
    order = torch.argsort(seg, stable=True)
    return seg[order], pos[order]


def _append_unique(nodes: Tensor, candidates: Tensor) -> Tuple[Tensor, Tensor]:
    r"""Maps ``candidates`` to local ids, appending unseen ones after ``nodes``.

    ``nodes`` keep their positions (a repeated seed maps to its first position); new ids
    follow in first-seen order. Returns ``(new_nodes, local_index_of_candidates)``.
    """
    n = nodes.numel()
    allnodes = torch.cat([nodes, candidates])
    uniq, inverse = torch.unique(allnodes, return_inverse=True)
    first = torch.full((uniq.numel(),), allnodes.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(allnodes.numel()), reduce="amin")
    is_new = first >= n
    new_idx = torch.nonzero(is_new).view(-1)
    new_idx = new_idx[torch.argsort(first[new_idx])]
    local = first.clone()
    local[new_idx] = torch.arange(n, n + new_idx.numel())
    return uniq[new_idx], local[inverse[n:]]


class _GeneratorNegativeSampling(NegativeSampling):
    """:class:`NegativeSampling` that draws from a given generator instead of the global RNG."""

    def __init__(self, base: NegativeSampling, generator: torch.Generator) -> None:
        super().__init__(base.mode, base.amount, base.src_weight, base.dst_weight)
        self.generator = generator

    def sample(self, num_samples: int, endpoint: str, num_nodes: Optional[int] = None) -> Tensor:
        weight = self.src_weight if endpoint == "src" else self.dst_weight
        if weight is None:
            if num_nodes is None:
                raise ValueError("Cannot sample negatives without 'num_nodes'")
            return torch.randint(num_nodes, (num_samples,), generator=self.generator)
        if num_nodes is not None and weight.numel() != num_nodes:
            raise ValueError(f"NegativeSampling's {endpoint}_weight has {weight.numel()} entries, "
                             f"expected one per node ({num_nodes})")
        return torch.multinomial(weight, num_samples, replacement=True, generator=self.generator)


def make_neighbor_sampler(data: HeteroData, num_neighbors: NumNeighborsType, **kwargs) -> BaseSampler:
    r"""PyG's :class:`~torch_geometric.sampler.NeighborSampler` when ``pyg-lib`` or
    ``torch-sparse`` is installed, else :class:`HeteroNeighborSampler`.

    Args:
        data (HeteroData): The graph.
        num_neighbors (List[int] or Dict[Tuple[str, str, str], List[int]]): Neighbours per hop.
        **kwargs: Passed on to the chosen sampler. ``seed`` / ``generator`` only apply to
            :class:`HeteroNeighborSampler`; PyG's sampler draws from torch's global RNG, so
            they become a :func:`torch.manual_seed` call there.

    Returns:
        BaseSampler: A sampler for ``NodeLoader(node_sampler=...)`` or
        ``LinkLoader(link_sampler=...)``.

    Example:
        >>> sampler = make_neighbor_sampler(data, [10, 10], seed=0)
        >>> loader = LinkLoader(data, link_sampler=sampler, batch_size=256,
        ...                     edge_label_index=(('user', 'interacted', 'item'), None))
    """
    import torch_geometric.typing as pyg_typing

    if pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE:
        from torch_geometric.sampler import NeighborSampler

        seed, generator = kwargs.pop("seed", None), kwargs.pop("generator", None)
        if seed is not None or generator is not None:
            torch.manual_seed(seed if seed is not None else generator.initial_seed())
        return NeighborSampler(data, num_neighbors, **kwargs)
    return HeteroNeighborSampler(data, num_neighbors, **kwargs)


__all__ = ["HeteroNeighborSampler", "make_neighbor_sampler"]
