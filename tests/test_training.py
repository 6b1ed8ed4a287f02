"""The training loop's parts: losses, full-graph vs sampled message passing, checkpoints
and resume, and the benchmark commands on tiny inputs."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from ctxrec.training.losses import BatchEmbeddings, batch_loss, bpr_loss, softmax_loss
from ctxrec.training.models import ContextGNN
from ctxrec.training.recommender import Context
from ctxrec.training.trainer import TrainConfig


def test_losses_by_hand():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    pos = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    neg = torch.tensor([[[0.0, 1.0], [2.0, 0.0]], [[1.0, 0.0], [0.0, 3.0]]])
    emb = BatchEmbeddings(q, pos, neg)
    s_pos = torch.tensor([1.0, 2.0])
    s_neg = torch.tensor([[0.0, 2.0], [0.0, 6.0]])
    assert torch.isclose(batch_loss(emb, "bpr"), -torch.nn.functional.logsigmoid(s_pos[:, None] - s_neg).mean())
    expected = -torch.log_softmax(torch.cat([s_pos[:, None], s_neg], 1), 1)[:, 0].mean()
    assert torch.isclose(batch_loss(emb, "softmax"), expected)
    # -inf negatives (masked in-batch ones) drop out of both
    masked = torch.tensor([[0.0, float("-inf")], [0.0, 6.0]])
    assert torch.isclose(bpr_loss(s_pos, masked), -torch.nn.functional.logsigmoid(
        torch.tensor([1.0, 2.0, -4.0])).mean())
    assert torch.isfinite(softmax_loss(s_pos, masked))
    # full softmax: cross-entropy over the catalogue
    emb.catalogue, emb.targets = torch.tensor([[1.0, 1.0], [0.0, 1.0], [2.0, 0.0]]), torch.tensor([0, 1])
    logits = q @ emb.catalogue.T
    assert torch.isclose(batch_loss(emb, "full_softmax"), torch.nn.functional.cross_entropy(logits, emb.targets))
    # items outside the catalogue mask (never seen in training) drop out of the denominator
    mask = torch.tensor([True, True, False])
    assert torch.isclose(batch_loss(emb, "full_softmax", catalogue_mask=mask),
                         torch.nn.functional.cross_entropy(logits[:, :2], emb.targets))
    with pytest.raises(ValueError, match="choose one of"):
        batch_loss(emb, "hinge")


def test_sampled_full_softmax_by_hand():
    """A large catalogue's full softmax ranks each positive among drawn items with the log-Q
    correction; drawing every item once is the exact loss, and a draw of the positive drops out."""
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    catalogue = torch.tensor([[1.0, 1.0], [0.0, 1.0], [2.0, 0.0]])
    emb = BatchEmbeddings(q, q, q.unsqueeze(1), catalogue=catalogue, targets=torch.tensor([0, 1]))
    exact = batch_loss(emb, "full_softmax")
    assert torch.isclose(batch_loss(emb, "full_softmax", columns=torch.arange(3), catalogue_size=3), exact)
    # two draws of item 2 out of 3 items: each counts e^s * 3/2; row 1's positive is never drawn
    drawn = batch_loss(emb, "full_softmax", columns=torch.tensor([2, 2]), catalogue_size=3)
    s = q @ catalogue.T
    rows = [-(s[b, t] - torch.log(torch.exp(s[b, t]) + 2 * 1.5 * torch.exp(s[b, 2]))) for b, t in ((0, 0), (1, 1))]
    assert torch.isclose(drawn, torch.stack(rows).mean())
    # huge logits stay finite (the sum is shifted), and a row whose every draw is its positive adds
    # 0 with finite gradients
    big = BatchEmbeddings(q * 500, q, q.unsqueeze(1), catalogue=catalogue, targets=torch.tensor([0, 1]))
    assert torch.isclose(batch_loss(big, "full_softmax", columns=torch.arange(3), catalogue_size=3),
                         batch_loss(big, "full_softmax"))
    query = q.clone().requires_grad_()
    own = BatchEmbeddings(query, q, q.unsqueeze(1), catalogue=catalogue, targets=torch.tensor([0, 0]))
    loss = batch_loss(own, "full_softmax", columns=torch.tensor([0, 0]), catalogue_size=3)
    loss.backward()
    assert float(loss) == 0.0 and torch.isfinite(query.grad).all()


def test_negatives_come_from_the_pool_and_skip_positives():
    from ctxrec.training.sampling import NegativeSampler

    users, items = torch.tensor([0, 0, 1]), torch.tensor([1, 2, 3])
    sampler = NegativeSampler(users, items, num_items=6, pool=torch.tensor([1, 2, 3, 4]))
    neg = sampler.sample(torch.tensor([0, 1] * 50), num=8, generator=torch.Generator().manual_seed(0))
    assert set(neg[0::2].unique().tolist()) <= {3, 4} and set(neg[1::2].unique().tolist()) <= {1, 2, 4}


def test_config_errors():
    with pytest.raises(ValueError, match="loss must be one of"):
        TrainConfig(loss="mse")
    with pytest.raises(ValueError, match="needs in_batch_negatives"):
        TrainConfig(loss="bpr", num_negatives=0)
    with pytest.raises(ValueError, match="val_protocol must be"):
        TrainConfig(val_protocol="leave-one-out")


def test_sampled_batch_equals_full_graph_with_all_neighbours(context_board):
    """With every neighbour sampled, the mini-batch path (edge lists, scattered) computes the
    full-graph vectors (sparse CSR adjacency products)."""
    full = ContextGNN(hidden=16, features=(), dropout=0.0, train=TrainConfig(seed=3))
    full.prepare(context_board)
    sampled = ContextGNN(hidden=16, features=(), dropout=0.0, train=TrainConfig(seed=3, num_neighbors=[-1, -1]))
    sampled.prepare(context_board)
    sampled.load_state_dict(full.state_dict())
    full.train(), sampled.train()
    ev = context_board.train
    b = torch.arange(0, 64)
    neg = torch.randint(context_board.num_items, (64, 3), generator=torch.Generator().manual_seed(0))
    ctx = Context(ev.time[b], ev.place[b])
    for catalogue in (False, True):
        a = full.batch(ev.user[b], ev.item[b], neg, ctx, catalogue=catalogue)
        s = sampled.batch(ev.user[b], ev.item[b], neg, ctx, catalogue=catalogue)
        for name in ("query", "pos", "neg") + (("catalogue",) if catalogue else ()):
            assert torch.allclose(getattr(a, name), getattr(s, name), atol=1e-5), name
    with pytest.raises(ValueError, match="one fanout per layer"):
        ContextGNN(hidden=8, features=(), train=TrainConfig(num_neighbors=[5])).prepare(context_board)


@pytest.mark.parametrize("softmax_items", [4096, 8])
def test_resume_after_interruption_equals_one_run(context_board, tmp_path, softmax_items):
    """Stopping after 2 epochs and resuming to 4 gives the same weights as 4 epochs at once,
    also when the softmax ranks among drawn items (the draws come from the checkpointed generator)."""
    def model(epochs, ckpt=None):
        cfg = TrainConfig(epochs=epochs, patience=99, seed=1, lr=0.02, checkpoint_dir=ckpt, softmax_items=softmax_items)
        return ContextGNN(hidden=8, features=(), dropout=0.1, train=cfg)

    straight = model(4).fit(context_board)
    ckpt = str(tmp_path / "ckpt")
    first = model(2, ckpt).fit(context_board)
    assert len(first.history.loss) == 2 and (tmp_path / "ckpt" / "checkpoint.safetensors").exists()
    resumed = model(4, ckpt).fit(context_board)
    assert resumed.history.resumed_from == 2 and len(resumed.history.loss) == 4
    assert resumed.history.loss == pytest.approx(straight.history.loss, rel=1e-5)
    a, b = straight.state_dict(), resumed.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    meta = json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())
    assert meta["epoch"] == 3 and meta["model"] == "ContextGNN"


@pytest.mark.slow
def test_bench_context_and_scale_smoke(tmp_path):
    from ctxrec.bench.context import run as run_context
    from ctxrec.bench.report import hash_world
    from ctxrec.bench.scale import run as run_scale
    from ctxrec.datasets.synthetic import SIZES, generate_world

    figures = run_context(seeds=(0, 1), world="tiny", epochs=2, cache_dir=str(tmp_path / "cache"), out_dir=str(tmp_path))
    saved = json.loads((tmp_path / "context_world.json").read_text())
    assert {"oracle", "lightgcn", "context_gnn", "mostpop", "item_graph"} <= set(saved)
    # Oracle and MostPop do not train, so their test NDCG@20 on the tiny world is fixed by the world
    # (seeds 0 and 1), the temporal split and the metric; values from this run, before any change
    oracle = [s["ndcg@20"] for s in saved["oracle"]["per_seed"]]
    assert oracle == pytest.approx([0.69104, 0.63501], abs=1e-4)
    assert saved["oracle"]["ndcg@20"] == pytest.approx(sum(oracle) / 2, abs=1e-9)
    assert [s["ndcg@20"] for s in saved["mostpop"]["per_seed"]] == pytest.approx([0.45908, 0.31011], abs=1e-4)
    for name in ("mostpop", "lightgcn", "context_gnn", "item_graph"):
        assert saved[name]["ndcg@20_vs_oracle"] == pytest.approx(saved[name]["ndcg@20"] / saved["oracle"]["ndcg@20"])
    assert len(figures["context_gnn"]["per_seed"]) == 2 and "recall@20" in saved["lightgcn"]
    meta = saved["_meta"]
    assert meta["command"] == "ctxrec bench context --seeds 0,1 --world tiny --epochs 2"
    assert meta["data"]["hash"] == {str(s): hash_world(generate_world(replace(SIZES["tiny"], seed=s))) for s in (0, 1)}
    # the tiny world's temporal split (seed 0: the same counts as tests/test_privacy.py)
    assert meta["split"]["0"]["events"] == {"train": 606, "val": 26, "test": 81}
    assert meta["split"]["1"]["events"] == {"train": 593, "val": 29, "test": 79}

    run_scale(factors=(1, 2), base_users=60, batch_size=1024, out_dir=str(tmp_path))
    scale = json.loads((tmp_path / "scale.json").read_text())
    # world sizes and splits are fixed by the generator (60 and 120 users, seed 0); values from this run
    assert [scale[s]["interactions"] for s in ("1x", "2x")] == [5877, 11723]
    assert [scale[s]["train_events"] for s in ("1x", "2x")] == [4060, 8126]
    assert [scale[s]["batches_per_epoch"] for s in ("1x", "2x")] == [4, 8]  # ceil(train_events / 1024)
    for s in ("1x", "2x"):
        assert scale[s]["epoch_s"] == pytest.approx(scale[s]["s_per_batch"] * scale[s]["batches_per_epoch"])
        assert scale["_meta"]["split"][s]["events"]["train"] == scale[s]["train_events"]
    assert scale["2x"]["cost_per_event_vs_1x"] == pytest.approx(scale["2x"]["us_per_event"] / scale["1x"]["us_per_event"])
    # the first batch's sampled-softmax loss of the seeded model (TrainConfig seed 0), from this run
    assert scale["1x"]["loss_first"] == pytest.approx(13.5815, rel=1e-3)
    assert scale["_meta"]["command"] == "ctxrec bench scale --factors 1,2 --base-users 60 --batch-size 1024 --batches 60"
    assert len(set(scale["_meta"]["data"]["hash"].values())) == 2
