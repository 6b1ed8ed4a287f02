"""The session encoder: prefixes of earlier session items, the Transformer over them, and
the context GNN using them on a world whose sessions have an intent."""
from __future__ import annotations

import tempfile

import pytest
import torch

from ctxrec.datasets.synthetic import WorldConfig, generate_world
from ctxrec.graph.build import build_graph
from ctxrec.data import SplitConfig, session_prefixes
from ctxrec.graph.export import to_rec_graph
from ctxrec.training.models import ContextGNN
from ctxrec.training.models.session import SessionEncoder
from ctxrec.training.recommender import Context
from ctxrec.training.trainer import TrainConfig


def _tables(cfg: WorldConfig):
    world = generate_world(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        files = world.write(tmp)
        return world, build_graph(files["interactions"], files["items"], files["context"]).tables


def test_prefixes_by_hand():
    session = torch.tensor([0, 0, 1, 0, 1, 0])
    item = torch.tensor([5, 6, 7, 8, 9, 4])
    assert session_prefixes(session, item, 2).tolist() == [[-1, -1], [-1, 5], [-1, -1], [5, 6], [-1, 7], [6, 8]]
    # an invisible event (held out) is never part of a prefix, but gets one itself
    keep = torch.tensor([True, False, True, True, True, True])
    assert session_prefixes(session, item, 3, keep).tolist() == [
        [-1, -1, -1], [-1, -1, 5], [-1, -1, -1], [-1, -1, 5], [-1, -1, 7], [-1, 5, 8]]


def test_encoder_reads_items_and_handles_empty_sessions():
    torch.manual_seed(0)
    enc = SessionEncoder(16, max_len=4).eval()
    vectors = torch.randn(3, 4, 16)
    vectors[2] = vectors[1]
    items = torch.tensor([[-1, -1, -1, -1], [-1, -1, 2, 3], [-1, -1, 2, 3]])
    out = enc(vectors, items)
    assert out.shape == (3, 16) and torch.isfinite(out).all()
    assert torch.allclose(out[1], out[2])  # same items, same vectors
    other = vectors.clone()
    other[2, 3] = torch.randn(16)  # (a constant shift would vanish in the LayerNorm)
    assert not torch.allclose(enc(other, items)[2], out[2])  # the newest item matters
    pad_changed = vectors.clone()
    pad_changed[1, :2] = 99.0  # padded slots are never read
    assert torch.allclose(enc(pad_changed, items)[1], out[1], atol=1e-6)
    with pytest.raises(ValueError, match="heads=3 must divide dim=16"):
        SessionEncoder(16, heads=3)


@pytest.fixture(scope="module")
def intent_world():
    cfg = WorldConfig(n_users=120, n_items=120, n_places=3, sessions_per_user=15, items_per_session=6,
                      images=False, audio=False, session_intent=3.0, days=60)
    return _tables(cfg)


def test_session_intent_world(intent_world):
    world, _ = intent_world
    assert "intent" in world.sessions
    # the intent category dominates its session: far above the 1-in-8 a category would get by chance
    ev = world.interactions.assign(session=world.event_session)
    cat = world.items.set_index("item_id")["category"]
    intent = world.sessions.set_index("session_id")["intent"]
    share = (ev["item_id"].map(cat).to_numpy() == ev["session"].map(intent).to_numpy()).mean()
    assert share > 0.4
    # without intent the world is unchanged by the new option
    base = WorldConfig(n_users=20, n_items=30, images=False, audio=False)
    a, b = generate_world(base), generate_world(WorldConfig(**{**base.__dict__, "session_intent": 0.0}))
    assert a.interactions.equals(b.interactions) and "intent" not in a.sessions


def test_export_prefixes_never_leak_held_out_items_into_training(intent_world):
    _, tables = intent_world
    g = to_rec_graph(tables, None, SplitConfig(session_len=4))
    assert g.train.prefix.shape == (len(g.train), 4) and g.test.prefix.shape == (len(g.test), 4)
    held = set(zip(g.val.user.tolist(), g.val.item.tolist())) | set(zip(g.test.user.tolist(), g.test.item.tolist()))
    users = g.train.user.unsqueeze(1).expand_as(g.train.prefix)
    pairs = set(zip(users[g.train.prefix >= 0].tolist(), g.train.prefix[g.train.prefix >= 0].tolist()))
    assert not pairs & held
    # held-out events see the earlier items of their session, train ones included
    assert (g.test.prefix >= 0).any(1).float().mean() > 0.5
    assert to_rec_graph(tables, None).train.prefix is None  # off by default


def test_evaluate_session_protocol_needs_prefixes(intent_world):
    _, tables = intent_world
    model = ContextGNN(hidden=16, features=(), train=TrainConfig(epochs=1))
    model.fit(to_rec_graph(tables, None))
    with pytest.raises(ValueError, match="session_len"):
        model.evaluate("val", protocol="session")
    with pytest.raises(ValueError, match="protocol must be"):
        model.evaluate("val", protocol="nope")


@pytest.mark.slow
def test_session_encoder_finds_the_intent(intent_world):
    """With sessions about one category, reading the session so far must beat not reading it."""
    _, tables = intent_world
    g = to_rec_graph(tables, None, SplitConfig(session_len=5))
    scores = {}
    for length in (0, 5):
        m = ContextGNN(hidden=32, features=(), session_len=length,
                       train=TrainConfig(epochs=150, patience=10, seed=0, val_protocol="session")).fit(g)
        scores[length] = m.evaluate("test", protocol="session")["ndcg@20"]
    assert scores[5] > scores[0] + 0.05, scores


def test_sampled_batches_and_save_load_with_sessions(intent_world, tmp_path):
    _, tables = intent_world
    g = to_rec_graph(tables, None, SplitConfig(session_len=3))
    cfg = TrainConfig(epochs=1, num_neighbors=[4, 2], loss="softmax", seed=0)
    model = ContextGNN(hidden=16, features=(), session_len=3, train=cfg).fit(g)
    assert torch.isfinite(torch.tensor(model.history.loss)).all()
    ctx = Context(g.test.time[:5], g.test.place[:5], g.test.prefix[:5])
    before = model.score(g.test.user[:5], ctx)
    model.save(tmp_path / "m")
    again = ContextGNN.load(tmp_path / "m", g)
    assert torch.allclose(again.score(g.test.user[:5], ctx), before)
    # a longer prefix than the encoder reads keeps the newest items
    long = Context(ctx.time, ctx.place, torch.cat([torch.full((5, 4), 7), ctx.session_items], 1))
    assert torch.allclose(again.score(g.test.user[:5], long), before)
