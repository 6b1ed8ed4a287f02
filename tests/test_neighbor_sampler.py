"""HeteroNeighborSampler: sampled edges are real, fanouts hold, and PyG's loaders accept it."""
from __future__ import annotations

import time

import pytest
import torch
from torch_geometric.data import HeteroData
from torch_geometric.loader import LinkLoader, NodeLoader
from torch_geometric.loader.utils import filter_hetero_data
from torch_geometric.nn import HeteroConv, SAGEConv
from torch_geometric.sampler import HeteroSamplerOutput, NegativeSampling

from ctxrec.training.neighbor_sampler import (
    HeteroNeighborSampler,
    _sample_segments,
    make_neighbor_sampler,
)

UI = ("user", "interacted", "item")
SIZES = {"user": 30, "item": 40, "session": 60, "time": 4, "place": 3, "category": 5}
DIM = 8


def _pairs(gen: torch.Generator, num_src: int, num_dst: int, num: int) -> torch.Tensor:
    src = torch.randint(num_src, (num,), generator=gen)
    dst = torch.randint(num_dst, (num,), generator=gen)
    key = torch.unique(src * num_dst + dst)
    return torch.stack([key // num_dst, key % num_dst])


def make_graph(seed: int = 0) -> HeteroData:
    """A small context graph: every relation in both directions, hubs at time/place/category."""
    gen = torch.Generator().manual_seed(seed)
    data = HeteroData()
    for node_type, num in SIZES.items():
        data[node_type].x = torch.randn(num, DIM, generator=gen)
    n = SIZES
    sessions = torch.arange(n["session"])
    forward = {
        UI: _pairs(gen, n["user"], n["item"], 200),
        ("user", "has", "session"): torch.stack([torch.randint(n["user"], (n["session"],), generator=gen), sessions]),
        ("session", "contains", "item"): _pairs(gen, n["session"], n["item"], 150),
        ("session", "at_time", "time"): torch.stack([sessions, torch.randint(n["time"], (n["session"],), generator=gen)]),
        ("session", "at_place", "place"): torch.stack([sessions, torch.randint(n["place"], (n["session"],),
                                                                                generator=gen)]),
        ("item", "in_category", "category"): torch.stack([torch.arange(n["item"]),
                                                          torch.randint(n["category"], (n["item"],), generator=gen)]),
    }
    for (src, rel, dst), edge_index in forward.items():
        data[src, rel, dst].edge_index = edge_index
        data[dst, f"rev_{rel}", src].edge_index = edge_index.flip(0)
    data[UI].edge_attr = torch.arange(forward[UI].size(1), dtype=torch.float).view(-1, 1)
    return data


@pytest.fixture(scope="module")
def data() -> HeteroData:
    return make_graph()


def check_output(data: HeteroData, out: HeteroSamplerOutput, seeds: dict, fanouts: dict) -> None:
    """Every invariant a sampled subgraph must satisfy; ``fanouts``: edge type -> list per hop."""
    for node_type, ids in seeds.items():
        assert torch.equal(out.node[node_type][:ids.numel()], ids), "seeds must come first, in order"
    unique_seeds = all(ids.unique().numel() == ids.numel() for ids in seeds.values())
    for node_type, nodes in out.node.items():
        if unique_seeds:
            assert nodes.unique().numel() == nodes.numel(), f"duplicate nodes of {node_type}"
        assert sum(out.num_sampled_nodes[node_type]) == nodes.numel()

    for edge_type in data.edge_types:
        src_type, _, dst_type = edge_type
        row, col, eid = out.row[edge_type], out.col[edge_type], out.edge[edge_type]
        assert row.numel() == col.numel() == eid.numel() == sum(out.num_sampled_edges[edge_type])
        if unique_seeds:  # a repeated seed gets its own in-edges at each of its positions
            assert eid.unique().numel() == eid.numel(), f"duplicate edges of {edge_type}"
        edge_index = data[edge_type].edge_index
        glob = torch.stack([out.node[src_type][row], out.node[dst_type][col]])
        assert torch.equal(edge_index[:, eid], glob), f"sampled {edge_type} edges are not real or ids are off"

        in_deg = torch.bincount(edge_index[1], minlength=data[dst_type].num_nodes)
        node_bounds = torch.tensor([0] + out.num_sampled_nodes[dst_type]).cumsum(0)
        edge_bounds = torch.tensor([0] + out.num_sampled_edges[edge_type]).cumsum(0)
        for hop, k in enumerate(fanouts[edge_type]):
            sl = slice(int(edge_bounds[hop]), int(edge_bounds[hop + 1]))
            lo, hi = int(node_bounds[hop]), int(node_bounds[hop + 1])
            hop_col, hop_eid = col[sl], eid[sl]
            assert bool(((hop_col >= lo) & (hop_col < hi)).all()), "hop edges must end in that hop's frontier"
            counts = torch.bincount(hop_col - lo, minlength=hi - lo) if hi > lo else torch.zeros(0, dtype=torch.long)
            deg = in_deg[out.node[dst_type][lo:hi]]
            expected = deg if k < 0 else deg.clamp(max=k)
            assert torch.equal(counts, expected), f"fanout {k} of {edge_type} in hop {hop} not respected"
            for local in range(lo, hi):
                if k < 0 or k >= int(in_deg[out.node[dst_type][local]]):
                    every = (edge_index[1] == out.node[dst_type][local]).nonzero().view(-1)
                    assert set(hop_eid[hop_col == local].tolist()) == set(every.tolist())


@pytest.mark.parametrize("num_neighbors", [[2, 2], [3, 1], [5, -1], [-1, -1], [1, 0, 2]])
def test_sampled_edges_are_real_and_fanouts_hold(data, num_neighbors):
    sampler = HeteroNeighborSampler(data, num_neighbors, seed=0)
    fanouts = {e: num_neighbors for e in data.edge_types}
    for seeds in [{"user": torch.tensor([4, 0, 17, 9])},
                  {"user": torch.tensor([1, 2]), "item": torch.tensor([5, 3]), "time": torch.tensor([2]),
                   "place": torch.tensor([0, 1])},
                  {"category": torch.tensor([0])}]:
        out = sampler.sample(seeds)
        check_output(data, out, seeds, fanouts)
        assert all(len(v) == len(num_neighbors) + 1 for v in out.num_sampled_nodes.values())
        assert all(len(v) == len(num_neighbors) for v in out.num_sampled_edges.values())


def test_fanout_per_edge_type(data):
    fanouts = {e: [2, 1] for e in data.edge_types}
    fanouts[("time", "rev_at_time", "session")] = [0, 0]
    fanouts[("session", "at_time", "time")] = [-1, 3]
    sampler = HeteroNeighborSampler(data, fanouts, seed=1)
    seeds = {"time": torch.tensor([0, 3]), "user": torch.tensor([7])}
    out = sampler.sample(seeds)
    check_output(data, out, seeds, fanouts)
    assert out.row[("time", "rev_at_time", "session")].numel() == 0


def test_repeated_seeds_keep_their_positions(data):
    sampler = HeteroNeighborSampler(data, [-1, 2], seed=0)
    seeds = {"user": torch.tensor([3, 3, 5])}
    out = sampler.sample(seeds)
    assert out.node["user"][:3].tolist() == [3, 3, 5]
    assert out.node["user"][3:].unique().numel() == out.node["user"].numel() - 3
    et = ("item", "rev_interacted", "user")
    first, second = out.edge[et][out.col[et] == 0], out.edge[et][out.col[et] == 1]
    assert first.numel() > 0 and torch.equal(first.sort().values, second.sort().values)
    check_output(data, out, seeds, {e: [-1, 2] for e in data.edge_types})


def _as_tuple(out: HeteroSamplerOutput) -> list:
    keys = sorted(out.edge)
    return ([out.node[k] for k in sorted(out.node)] + [out.row[k] for k in keys] + [out.col[k] for k in keys]
            + [out.edge[k] for k in keys])


def _same(a: HeteroSamplerOutput, b: HeteroSamplerOutput) -> bool:
    return all(torch.equal(x, y) for x, y in zip(_as_tuple(a), _as_tuple(b)))


def test_seeded_runs_repeat_and_other_seeds_differ(data):
    seeds = {"user": torch.arange(10), "time": torch.tensor([1])}
    a = HeteroNeighborSampler(data, [2, 2], seed=7)
    b = HeteroNeighborSampler(data, [2, 2], generator=torch.Generator().manual_seed(7))
    c = HeteroNeighborSampler(data, [2, 2], seed=8)
    outs_a = [a.sample(seeds) for _ in range(3)]
    outs_b = [b.sample(seeds) for _ in range(3)]
    outs_c = [c.sample(seeds) for _ in range(3)]
    assert all(_same(x, y) for x, y in zip(outs_a, outs_b))
    assert not all(_same(x, y) for x, y in zip(outs_a, outs_c))
    assert not _same(outs_a[0], outs_a[1]), "successive calls should draw new neighbourhoods"
    torch.manual_seed(3)
    d = HeteroNeighborSampler(data, [2, 2]).sample(seeds)
    torch.manual_seed(3)
    assert _same(d, HeteroNeighborSampler(data, [2, 2]).sample(seeds))


def test_segment_sampling_is_uniform():
    gen = torch.Generator().manual_seed(0)
    trials = 4000
    # deg 5, k 2: the sort-by-random-key path; every one of the 10 pairs equally likely.
    deg = torch.full((trials,), 5)
    seg, pos = _sample_segments(torch.arange(trials) * 5, deg, 2, gen)
    assert torch.equal(torch.bincount(seg, minlength=trials), torch.full((trials,), 2))
    off = (pos - seg * 5).view(trials, 2).sort(dim=1).values
    pair_counts = torch.bincount(off[:, 0] * 5 + off[:, 1], minlength=25)
    pair_counts = pair_counts[pair_counts > 0]
    assert pair_counts.numel() == 10 and int(pair_counts.min()) > 300 and int(pair_counts.max()) < 500
    # deg 40, k 3: the rejection path (degree > 4k); inclusion probability 3/40 each.
    deg = torch.full((trials,), 40)
    seg, pos = _sample_segments(torch.arange(trials) * 40, deg, 3, gen)
    off = pos - seg * 40
    assert torch.equal(torch.bincount(seg, minlength=trials), torch.full((trials,), 3))
    assert torch.unique(seg * 40 + off).numel() == 3 * trials, "no position twice in a segment"
    hits = torch.bincount(off, minlength=40)
    assert int(hits.min()) > 220 and int(hits.max()) < 380  # expected 300
    # Mixed degrees, zero-degree and -1 (all).
    start, deg = torch.tensor([0, 3, 3, 50]), torch.tensor([3, 0, 47, 9])
    seg, pos = _sample_segments(start, deg, -1, gen)
    assert torch.equal(pos, torch.arange(59))
    seg, pos = _sample_segments(start, deg, 4, gen)
    assert torch.bincount(seg, minlength=4).tolist() == [3, 0, 4, 4]
    assert bool((pos >= start[seg]).all() and (pos < (start + deg)[seg]).all())


def _check_batch_edges(data: HeteroData, batch: HeteroData) -> None:
    for edge_type in data.edge_types:
        src_type, _, dst_type = edge_type
        ei = batch[edge_type].edge_index
        glob = torch.stack([batch[src_type].n_id[ei[0]], batch[dst_type].n_id[ei[1]]])
        assert torch.equal(data[edge_type].edge_index[:, batch[edge_type].e_id], glob)
    assert torch.equal(batch[UI].edge_attr.view(-1), batch[UI].e_id.float())


class TwoLayerSAGE(torch.nn.Module):
    def __init__(self, edge_types: list, hidden: int = 16) -> None:
        super().__init__()
        self.conv1 = HeteroConv({e: SAGEConv((DIM, DIM), hidden) for e in edge_types}, aggr="sum")
        self.conv2 = HeteroConv({e: SAGEConv((hidden, hidden), hidden) for e in edge_types}, aggr="sum")

    def forward(self, x_dict: dict, edge_index_dict: dict) -> dict:
        h = {k: v.relu() for k, v in self.conv1(x_dict, edge_index_dict).items()}
        return self.conv2(h, edge_index_dict)


def test_node_loader_batches_match_full_graph(data):
    torch.manual_seed(0)
    model = TwoLayerSAGE(data.edge_types).eval()
    sampler = HeteroNeighborSampler(data, [-1, -1], seed=0)
    idx = torch.tensor([5, 1, 22, 9, 13, 0, 29, 17, 3])
    loader = NodeLoader(data, node_sampler=sampler, input_nodes=("user", idx), batch_size=4)
    with torch.no_grad():
        full = model(data.x_dict, data.edge_index_dict)["user"]
        seen = []
        for batch in loader:
            size = batch["user"].batch_size
            assert torch.equal(batch["user"].n_id[:size], idx[batch["user"].input_id])
            _check_batch_edges(data, batch)
            out = model(batch.x_dict, batch.edge_index_dict)["user"][:size]
            assert torch.allclose(out, full[batch["user"].n_id[:size]], atol=1e-5)
            seen.append(batch["user"].input_id)
    assert torch.equal(torch.cat(seen), torch.arange(idx.numel()))


def test_multi_type_seeds_match_full_graph(data):
    torch.manual_seed(1)
    model = TwoLayerSAGE(data.edge_types).eval()
    sampler = HeteroNeighborSampler(data, [-1, -1], seed=0)
    seeds = {"user": torch.tensor([2, 8]), "item": torch.tensor([30, 4, 11]), "time": torch.tensor([3]),
             "place": torch.tensor([1, 0])}
    out = sampler.sample(seeds)
    batch = filter_hetero_data(data, dict(out.node), dict(out.row), dict(out.col), dict(out.edge))
    with torch.no_grad():
        full = model(data.x_dict, data.edge_index_dict)
        part = model(batch.x_dict, batch.edge_index_dict)
    for node_type, ids in seeds.items():
        assert torch.allclose(part[node_type][:ids.numel()], full[node_type][ids], atol=1e-5)


@pytest.mark.parametrize("mode", [None, "binary", "triplet"])
def test_link_loader(data, mode):
    edge_index = data[UI].edge_index[:, :50]
    sampler = HeteroNeighborSampler(data, [3, 2], seed=0)
    neg = NegativeSampling(mode) if mode else None
    loader = LinkLoader(data, link_sampler=sampler, edge_label_index=(UI, edge_index), neg_sampling=neg,
                        batch_size=16)
    batches = list(loader)
    assert sum(b[UI].input_id.numel() for b in batches) == 50
    for batch in batches:
        _check_batch_edges(data, batch)
        pos = edge_index[:, batch[UI].input_id]
        size = pos.size(1)
        if mode == "triplet":
            assert torch.equal(batch["user"].n_id[batch["user"].src_index], pos[0])
            assert torch.equal(batch["item"].n_id[batch["item"].dst_pos_index], pos[1])
            neg_items = batch["item"].n_id[batch["item"].dst_neg_index]
            assert neg_items.shape == (size,) and bool((neg_items < SIZES["item"]).all())
        else:
            label_index = batch[UI].edge_label_index
            glob = torch.stack([batch["user"].n_id[label_index[0]], batch["item"].n_id[label_index[1]]])
            assert torch.equal(glob[:, :size], pos)
            if mode == "binary":
                label = batch[UI].edge_label
                assert glob.size(1) == 2 * size and label.tolist() == [1.0] * size + [0.0] * size
            else:
                assert glob.size(1) == size and "edge_label" not in batch[UI]
    # Negatives come from the sampler's generator: same seed, same batches.
    again = LinkLoader(data, link_sampler=HeteroNeighborSampler(data, [3, 2], seed=0),
                       edge_label_index=(UI, edge_index), neg_sampling=neg, batch_size=16)
    for a, b in zip(batches, again):
        assert torch.equal(a["item"].n_id, b["item"].n_id)


def test_errors(data):
    with pytest.raises(NotImplementedError, match="disjoint"):
        HeteroNeighborSampler(data, [2], disjoint=True)
    with pytest.raises(NotImplementedError, match="time_attr"):
        HeteroNeighborSampler(data, [2], time_attr="time")
    with pytest.raises(NotImplementedError, match="weight_attr"):
        HeteroNeighborSampler(data, [2], weight_attr="w")
    with pytest.raises(ValueError, match="not both"):
        HeteroNeighborSampler(data, [2], seed=0, generator=torch.Generator())
    with pytest.raises(TypeError, match="HeteroData"):
        HeteroNeighborSampler(data.to_homogeneous(), [2])
    sampler = HeteroNeighborSampler(data, [2], seed=0)
    with pytest.raises(ValueError, match="Unknown seed node type 'song'"):
        sampler.sample({"song": torch.tensor([0])})
    with pytest.raises(ValueError, match=r"\[0, 30\)"):
        sampler.sample({"user": torch.tensor([30])})
    with pytest.raises(ValueError, match="integer"):
        sampler.sample({"user": torch.tensor([0.5])})
    with pytest.raises(ValueError, match="ints >= -1"):
        HeteroNeighborSampler(data, [-2])


def test_worker_copies_draw_different_neighbourhoods(data, monkeypatch):
    import copy
    from types import SimpleNamespace

    seeds = {"user": torch.arange(30)}
    parent = HeteroNeighborSampler(data, [1, 1], seed=0)
    outs = []
    for worker_seed in (100, 101):
        worker = copy.deepcopy(parent)
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda s=worker_seed: SimpleNamespace(seed=s))
        outs.append(worker.sample(seeds))
    assert not _same(outs[0], outs[1])


def test_factory_picks_backend(data, monkeypatch):
    import torch_geometric.typing as pyg_typing
    from torch_geometric.sampler import NeighborSampler

    monkeypatch.setattr(pyg_typing, "WITH_PYG_LIB", False)
    monkeypatch.setattr(pyg_typing, "WITH_TORCH_SPARSE", False)
    assert isinstance(make_neighbor_sampler(data, [2, 2], seed=0), HeteroNeighborSampler)
    monkeypatch.setattr(pyg_typing, "WITH_PYG_LIB", True)
    sampler = make_neighbor_sampler(data, [2, 2], seed=0)
    assert isinstance(sampler, NeighborSampler) and not isinstance(sampler, HeteroNeighborSampler)


def test_scale_sanity(capsys):
    """200k edges: build and sample once; the time is printed, not asserted."""
    gen = torch.Generator().manual_seed(0)
    big = HeteroData()
    big["user"].num_nodes, big["item"].num_nodes, big["time"].num_nodes = 20_000, 10_000, 24
    ui = torch.stack([torch.randint(20_000, (80_000,), generator=gen), torch.randint(10_000, (80_000,), generator=gen)])
    it = torch.stack([torch.arange(10_000).repeat(2), torch.randint(24, (20_000,), generator=gen)])
    big[UI].edge_index, big["item", "rev_interacted", "user"].edge_index = ui, ui.flip(0)
    big["item", "at", "time"].edge_index, big["time", "rev_at", "item"].edge_index = it, it.flip(0)
    t0 = time.perf_counter()
    sampler = HeteroNeighborSampler(big, [10, 10], seed=0)
    t1 = time.perf_counter()
    seeds = {"user": torch.randperm(20_000, generator=gen)[:1024], "time": torch.arange(24)}
    out = sampler.sample(seeds)
    t2 = time.perf_counter()
    for edge_type in big.edge_types:
        src_type, _, dst_type = edge_type
        glob = torch.stack([out.node[src_type][out.row[edge_type]], out.node[dst_type][out.col[edge_type]]])
        assert torch.equal(big[edge_type].edge_index[:, out.edge[edge_type]], glob)
    with capsys.disabled():
        print(f"\n[scale] 200k edges: CSC build {t1 - t0:.3f}s, sample 1024 users + 24 hubs "
              f"[10, 10] {t2 - t1:.3f}s, {sum(v.numel() for v in out.node.values())} nodes")
