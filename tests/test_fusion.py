"""Fusion strategies: the shared contract (missing modalities, no modality, gradients,
persistence, errors), run over every strategy by name, and ContextGNN with one of them."""
from __future__ import annotations

import copy

import pytest
import torch

from ctxrec.fusion import AttentionFusion, ConcatFusion, GatedFusion, MeanFusion, get_fusion
from ctxrec.training.models import ContextGNN
from ctxrec.training.recommender import Context, Recommender
from ctxrec.training.trainer import TrainConfig

STRATEGIES = ["mean", "concat", "gated", "attention"]
WEIGHTED = ["gated", "attention"]
DIMS = {"text": 6, "image": 5, "audio": 3}
OUT = 8
# rows: all present, text only, image+audio, none, audio only, all present
PRESENT = {"text": [1, 1, 0, 0, 0, 1], "image": [1, 0, 1, 0, 0, 1], "audio": [1, 0, 1, 0, 1, 1]}
TEXT_ONLY, NONE = 1, 3


def batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    n = len(PRESENT["text"])
    feats = {m: torch.randn(n, d, generator=g) * 3 + 1 for m, d in DIMS.items()}
    mask = {m: torch.tensor(v, dtype=torch.bool) for m, v in PRESENT.items()}
    return feats, mask


def make(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return get_fusion(name, DIMS, OUT).fit_scale(*batch(seed=7)).eval()


def test_registry_builds_the_right_classes():
    expected = {"mean": MeanFusion, "concat": ConcatFusion, "gated": GatedFusion, "attention": AttentionFusion}
    for name, cls in expected.items():
        assert type(get_fusion(name, DIMS, OUT)) is cls


@pytest.mark.parametrize("name", STRATEGIES)
def test_output_shape(name):
    out = make(name)(*batch())
    assert out["fused"].shape == (6, OUT)
    if "weights" in out:
        assert out["weights"].shape == (6, len(DIMS))


@pytest.mark.parametrize("name", STRATEGIES)
def test_missing_modality_uses_only_the_present_ones(name):
    fuse = make(name)
    feats, mask = batch()
    out = fuse(feats, mask)["fused"]
    assert out[TEXT_ONLY].abs().sum() > 0

    # whatever an absent modality holds (even NaN/inf) must not reach the output
    garbage = {m: x.clone() for m, x in feats.items()}
    garbage["image"][TEXT_ONLY] = torch.randn(DIMS["image"]) * 100
    garbage["audio"][TEXT_ONLY] = torch.tensor([float("nan"), float("inf"), -5.0])
    torch.testing.assert_close(fuse(garbage, mask)["fused"], out)

    # ... while the present one does
    changed = {m: x.clone() for m, x in feats.items()}
    changed["text"][TEXT_ONLY] += 1.0
    assert not torch.allclose(fuse(changed, mask)["fused"][TEXT_ONLY], out[TEXT_ONLY])


@pytest.mark.parametrize("name", STRATEGIES)
def test_no_modality_gives_zeros_not_nan(name):
    fuse = make(name).train()
    feats, mask = batch()
    for m in feats:
        feats[m][NONE] = float("nan")
    out = fuse(feats, mask)
    for key, value in out.items():
        assert torch.isfinite(value).all(), f"{key} has NaN/inf"
        assert (value[NONE] == 0).all(), f"{key} of a row with no modality is not zero"


@pytest.mark.parametrize("name", STRATEGIES)
def test_gradients_reach_every_parameter(name):
    fuse = make(name).train()
    feats, mask = batch()
    feats["image"][TEXT_ONLY] = float("nan")  # an absent, broken vector must not poison gradients
    fuse(feats, mask)["fused"].pow(2).sum().backward()
    for pname, p in fuse.named_parameters():
        assert p.grad is not None, f"no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient for {pname}"
        assert p.grad.abs().sum() > 0, f"zero gradient for {pname}"


@pytest.mark.parametrize("name", WEIGHTED)
def test_weights_are_a_distribution_over_present_modalities(name):
    out = make(name)(*batch())
    w = out["weights"]
    present = torch.stack([torch.tensor(PRESENT[m], dtype=torch.bool) for m in DIMS], 1)
    assert (w[~present] == 0).all()
    assert (w[present] > 0).all()
    rows = present.any(1)
    torch.testing.assert_close(w[rows].sum(1), torch.ones(int(rows.sum())))
    assert (w[~rows] == 0).all()


@pytest.mark.parametrize("name", STRATEGIES)
def test_state_dict_round_trip(name):
    fuse = make(name, seed=0)
    torch.manual_seed(123)
    other = get_fusion(name, DIMS, OUT).eval()  # other init, unfitted scale
    feats, mask = batch()
    assert not torch.allclose(other(feats, mask)["fused"], fuse(feats, mask)["fused"])
    other.load_state_dict(fuse.state_dict())
    a, b = fuse(feats, mask), other(feats, mask)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="Unknown fusion 'nope'.*attention, concat, gated, mean"):
        get_fusion("nope", DIMS, OUT)


@pytest.mark.parametrize("name", STRATEGIES)
@pytest.mark.parametrize("dims, out_dim, match", [
    ({}, OUT, "at least one modality"),
    ({"text": 0}, OUT, "positive integers"),
    ({"text": 2.5}, OUT, "positive integers"),
    (DIMS, 0, "out_dim"),
    (DIMS, "8", "out_dim"),
])
def test_bad_dims_or_out_dim(name, dims, out_dim, match):
    with pytest.raises(ValueError, match=match):
        get_fusion(name, dims, out_dim)


def test_strategy_specific_arguments():
    with pytest.raises(ValueError, match=r"`heads` must be a positive integer dividing out_dim=8, got 3"):
        get_fusion("attention", DIMS, 8, heads=3)
    with pytest.raises(ValueError, match="`heads`"):
        AttentionFusion(DIMS, 8, heads=0)
    assert get_fusion("attention", DIMS, 8, heads=2).attn.num_heads == 2
    with pytest.raises(ValueError, match="`hidden` must be a positive integer"):
        get_fusion("concat", DIMS, 8, hidden=0)
    assert get_fusion("concat", DIMS, 8, hidden=32).mlp[0].out_features == 32


def test_context_gnn_trains_with_gated_fusion(checkerboard, tmp_path):
    graph = copy.deepcopy(checkerboard)  # the fixture is shared: add features to a copy
    n = graph.num_items
    g = torch.Generator().manual_seed(0)
    graph.data["item"].x_text = torch.randn(n, 8, generator=g)
    graph.data["item"].mask_text = torch.arange(n) % 5 != 0
    graph.data["item"].x_image = torch.randn(n, 4, generator=g)
    graph.data["item"].mask_image = torch.arange(n) % 3 != 0

    train = TrainConfig(epochs=5, batch_size=4096, lr=0.02, patience=5, seed=0)
    model = ContextGNN(hidden=16, features=("text", "image"), fusion="gated", train=train).fit(graph)
    assert model.config()["fusion"] == "gated"
    assert isinstance(model.fusion["item"], GatedFusion)
    losses = model.history.loss
    assert len(losses) > 0 and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]

    model.save(tmp_path / "m")
    again = Recommender.load(tmp_path / "m", graph)
    assert isinstance(again.fusion["item"], GatedFusion)
    ctx = Context(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    torch.testing.assert_close(again.score(torch.arange(3), ctx), model.score(torch.arange(3), ctx))
