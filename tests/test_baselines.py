"""Baselines in the shared harness (ItemKNN, EASE, MF-BPR, ContentKNN, and the library peers
ImplicitALS / ImplicitBPR) and grid search on validation: the Recommender contract on the
checkerboard, plus small graphs whose right answer is known by hand or by a direct numpy solve."""
from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import write_board
from test_models import RecommenderContract

from ctxrec.graph.build import build_graph
from ctxrec.data import RecGraph, SplitConfig
from ctxrec.graph.export import to_rec_graph
from ctxrec.training.models import (EASE, MFBPR, MODELS, ContentKNN, ImplicitALS, ImplicitBPR, ItemKNN, MostPop,
                                   make_model)
from ctxrec.training.models.content_knn import fit_centering
from ctxrec.training.models.interactions import gram, user_rows
from ctxrec.training.recommender import Recommender
from ctxrec.training.trainer import TrainConfig
from ctxrec.training.tuning import DEFAULT_GRIDS, Trial, expand_params, tune

#: MF-BPR settings that learn the checkerboard in well under a second
MF_FAST = TrainConfig(epochs=10, batch_size=256, lr=0.05, patience=10, loss="bpr", seed=0)

needs_implicit = pytest.mark.skipif(importlib.util.find_spec("implicit") is None,
                                    reason="the library peers run the 'implicit' package: pip install implicit")

#: library peers small and regularised enough to generalise on the tiny boards
PEERS = {"als": lambda **kw: ImplicitALS(factors=8, regularization=1.0, **kw),
         "bpr": lambda **kw: ImplicitBPR(factors=8, learning_rate=0.05, **kw)}


def build_board(folder: Path, history: Dict[int, List[int]], n_items: int,
                vectors: Optional[np.ndarray] = None, split: Optional[SplitConfig] = None) -> RecGraph:
    """A graph from ``user -> items`` (every pair in train unless ``split`` says otherwise).

    Ids are zero-padded, so user ``u`` and item ``j`` keep their numbers as indices; items
    nobody consumed are still nodes (cold items). ``vectors`` [n_items, d] become ``x_text``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    item_ids = [f"i{j:03d}" for j in range(n_items)]
    pd.DataFrame({"item_id": item_ids, "name": item_ids, "description": "a thing", "category": "c",
                  "price": 1.0}).to_csv(folder / "items.csv", index=False)
    base = pd.Timestamp("2024-01-01 10:00")
    rows = [{"user_id": f"u{u:03d}", "action": "view", "item_id": f"i{j:03d}",
             "time": (base + pd.Timedelta(days=u, minutes=3 * pos)).isoformat(), "location": "Springfield"}
            for u, items in history.items() for pos, j in enumerate(items)]
    pd.DataFrame(rows).to_csv(folder / "interactions.csv", index=False)
    tables = build_graph(folder / "interactions.csv", folder / "items.csv").tables
    vecs = {("Item", "text"): (np.array(item_ids), vectors.astype(np.float32))} if vectors is not None else None
    return to_rec_graph(tables, vecs, split or SplitConfig(test=0.0, val=0.0))


def matrix(history: Dict[int, List[int]], n_users: int, n_items: int) -> np.ndarray:
    x = np.zeros((n_users, n_items))
    for u, items in history.items():
        x[u, items] = 1
    return x


#: two disjoint worlds: users 0-5 consume only items 0-4, users 6-11 only items 5-9
TWO_GROUPS = {u: [5 * (u // 6) + (u + t) % 5 for t in range(3)] for u in range(12)}


@pytest.fixture(scope="module")
def two_groups(tmp_path_factory):
    return build_board(tmp_path_factory.mktemp("groups"), TWO_GROUPS, 10)


@pytest.fixture(scope="module")
def text_board(tmp_path_factory):
    """The checkerboard with text vectors: group A items near e0, group B items near e1."""
    paths = write_board(tmp_path_factory.mktemp("textboard"), context_board=False)
    tables = build_graph(paths["interactions"], paths["items"], paths["context"]).tables
    ids = np.sort(tables.nodes["Item"]["id"].astype(str).to_numpy())
    rng = np.random.default_rng(0)
    vec = 0.2 * rng.standard_normal((len(ids), 8))
    vec[np.arange(len(ids)), (np.arange(len(ids)) >= len(ids) // 2).astype(int)] += 1.0
    return to_rec_graph(tables, {("Item", "text"): (ids, vec.astype(np.float32))})


# --- the Recommender contract (tests/test_models.py) on the checkerboard ---------------


class TestItemKNN(RecommenderContract):
    @classmethod
    def make(cls):
        return ItemKNN(k=10, shrink=1.0)


class TestEASE(RecommenderContract):
    @classmethod
    def make(cls):
        return EASE(l2=10.0)


class TestMFBPR(RecommenderContract):
    @classmethod
    def make(cls):
        return MFBPR(embedding_dim=16, train=MF_FAST)

    def test_history_selects_on_validation(self, fitted):
        h = fitted.history
        assert h.best_epoch == max(range(len(h.val)), key=lambda e: (h.val[e], -e))


@needs_implicit
class TestImplicitALS(RecommenderContract):
    @classmethod
    def make(cls):
        return PEERS["als"]()


@needs_implicit
class TestImplicitBPR(RecommenderContract):
    @classmethod
    def make(cls):
        return PEERS["bpr"]()


class TestContentKNN(RecommenderContract):
    @pytest.fixture(scope="class")
    @classmethod
    def checkerboard(cls, text_board):  # the contract's data, with item vectors
        return text_board

    @classmethod
    def make(cls):
        return ContentKNN()


class TestContentKNNWhiten(TestContentKNN):
    @classmethod
    def make(cls):
        return ContentKNN(center="whiten")


# --- ItemKNN -------------------------------------------------------------------------


def test_neighbourhood_models_stay_in_group(two_groups):
    users = torch.arange(12)
    for model in (ItemKNN(), ItemKNN(k=2, shrink=10.0), EASE(), EASE(l2=1.0)):
        items, scores = model.fit(two_groups).recommend(users, k=2)
        assert torch.all(items // 5 == (users // 6).unsqueeze(1)), model.config()
        assert torch.all(scores > 0), model.config()


@pytest.mark.parametrize("chunk, float64_up_to", [(2048, 8192), (3, 0)])
def test_itemknn_matches_cosine_with_shrink(two_groups, monkeypatch, chunk, float64_up_to):
    """In one block of rows (float64), and in blocks of 3 rows with float32 matrices (a large catalogue's path)."""
    import ctxrec.training.models.interactions as interactions

    monkeypatch.setattr(interactions, "FLOAT64_UP_TO", float64_up_to)
    x = matrix(TWO_GROUPS, 12, 10)
    co = x.T @ x
    norm = np.sqrt(np.diag(co))
    for shrink in (0.0, 10.0):
        expected = co / (np.outer(norm, norm) + shrink)
        np.fill_diagonal(expected, 0)
        model = ItemKNN(k=100, shrink=shrink).fit(two_groups, chunk=chunk)
        np.testing.assert_allclose(model.similarity().numpy(), expected, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(model.score(torch.arange(12)).numpy(), x @ expected, rtol=1e-5, atol=1e-6)


def test_itemknn_keeps_top_k_per_item(checkerboard):
    full = ItemKNN(k=1000).fit(checkerboard).similarity()
    pruned = ItemKNN(k=3).fit(checkerboard).similarity()
    assert torch.all((pruned != 0).sum(1) <= 3)
    kept = pruned != 0
    assert torch.equal(pruned[kept], full[kept])
    # every dropped neighbour is no more similar than the weakest kept one
    weakest = torch.where(kept, pruned, torch.full_like(pruned, float("inf"))).min(1).values
    assert torch.all(torch.where(kept, torch.zeros_like(full), full).max(1).values <= weakest + 1e-7)


def test_itemknn_cold_items_score_zero(tmp_path):
    graph = build_board(tmp_path, {0: [0, 1], 1: [1, 2]}, 4)  # item 3: no train users
    model = ItemKNN().fit(graph)
    scores = model.score(torch.arange(2))
    assert torch.isfinite(scores).all() and torch.all(scores[:, 3] == 0)
    assert model.similar_items(torch.tensor([0]), k=1)[0].item() == 1


# --- EASE ------------------------------------------------------------------------------


def test_ease_matches_numpy_solve(tmp_path):
    rng = np.random.default_rng(3)
    history = {u: sorted(rng.choice(7, size=rng.integers(2, 6), replace=False).tolist()) for u in range(9)}
    graph = build_board(tmp_path, history, 7)
    x = matrix(history, 9, 7)
    np.testing.assert_array_equal(user_rows(graph, torch.arange(9)).numpy(), x)
    l2 = 3.0
    p = np.linalg.inv(x.T @ x + l2 * np.eye(7))
    b = np.eye(7) - p / np.diag(p)  # B = I - P diagMat(1 / diag(P)), Steck (2019) eq. 8
    model = EASE(l2=l2).fit(graph)
    assert torch.all(model.weights.diagonal() == 0)
    np.testing.assert_allclose(model.weights.numpy(), b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.score(torch.arange(9)).numpy(), x @ b, rtol=1e-5, atol=1e-6)


def test_gram_counts_pairs_once(checkerboard):
    # a pair seen in several sessions is one entry of X, so diag(X^T X) is the item's user count
    pairs = torch.unique(torch.stack([checkerboard.train.user, checkerboard.train.item]), dim=1)
    assert len(checkerboard.train) > pairs.size(1)
    users = torch.bincount(pairs[1], minlength=checkerboard.num_items).double()
    assert torch.equal(gram(checkerboard, batch_size=7).diagonal(), users)


@pytest.mark.parametrize("float64_up_to", [100, 0])
def test_ease_with_items_without_edges_matches_numpy_solve(tmp_path, monkeypatch, float64_up_to):
    """Items 2 and 5 have no training edges: only the other items' block is inverted, and B is
    the full solve's (whose rows and columns of 2 and 5 are 0), in float64 and in float32."""
    import ctxrec.training.models.interactions as interactions

    monkeypatch.setattr(interactions, "FLOAT64_UP_TO", float64_up_to)
    rng = np.random.default_rng(4)
    history = {u: sorted(rng.choice([0, 1, 3, 4, 6], size=rng.integers(2, 5), replace=False).tolist()) for u in range(9)}
    graph = build_board(tmp_path, history, 7)
    x = matrix(history, 9, 7)
    assert x[:, [2, 5]].sum() == 0
    p = np.linalg.inv(x.T @ x + 3.0 * np.eye(7))
    b = np.eye(7) - p / np.diag(p)
    np.testing.assert_allclose(b[[2, 5]], 0, atol=1e-12)
    np.testing.assert_allclose(EASE(l2=3.0).fit(graph).weights.numpy(), b, rtol=1e-4, atol=1e-6)


def test_ease_rejects_non_positive_l2():
    with pytest.raises(ValueError, match="l2 must be > 0"):
        EASE(l2=0.0)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        ItemKNN(k=0)


# --- ContentKNN ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cold_board(tmp_path_factory):
    """Item 2 has user 0's items' vector but no interactions; item 5 too, but is masked."""
    e = np.eye(4)
    vectors = np.stack([e[0], e[0], e[0], e[1], 0.6 * e[0] + 0.8 * e[2], e[0]])
    graph = build_board(tmp_path_factory.mktemp("cold"), {0: [0, 1], 1: [3, 4], 2: [3]}, 6, vectors)
    graph.data["item"].mask_text[5] = False
    return graph


def test_content_knn_recommends_cold_item_with_same_vector(cold_board):
    pairs = torch.stack([cold_board.train.user, cold_board.train.item])
    assert not (pairs[1] == 2).any()  # item 2 is cold
    model = ContentKNN().fit(cold_board)
    items, scores = model.recommend(torch.tensor([0]), k=2)
    assert items[0].tolist() == [2, 4] and scores[0, 0].item() == pytest.approx(1.0)
    assert scores[0, 1].item() == pytest.approx(0.6)  # cos(e0, 0.6 e0 + 0.8 e2)
    assert torch.all(model.score(torch.arange(3))[:, 5] == 0)  # masked vector: zero, whatever x holds


def test_content_knn_profile_is_mean_of_normalised_vectors(cold_board):
    model = ContentKNN().fit(cold_board)
    # user 1: items 3 (e1) and 4 (0.6 e0 + 0.8 e2), mean (0.3, 0.5, 0.4, 0) / |.|
    profile = np.array([0.3, 0.5, 0.4, 0.0]) / np.linalg.norm([0.3, 0.5, 0.4])
    x = cold_board.data["item"].x_text.numpy()
    expected = x @ profile / np.linalg.norm(x, axis=1)
    expected[5] = 0
    np.testing.assert_allclose(model.score(torch.tensor([1]))[0].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_content_knn_without_vectors_says_how_to_get_them(two_groups, text_board):
    with pytest.raises(ValueError, match=r"feature='text'.*x_text.*none.*ctxrec encode --encoder text"):
        ContentKNN().fit(two_groups)
    with pytest.raises(ValueError, match=r"feature='image'.*x_image.*choose feature= from \['text'\]"):
        ContentKNN(feature="image").fit(text_board)


@pytest.fixture(scope="module")
def offset_board(tmp_path_factory):
    """Items 10 e0 + e1 (group A: 0-3) or 10 e0 - e1 (group B: 4-7) on a shared offset; items
    2, 3, 6, 7 also have a nuisance 2.5 e_k in a dimension of their own. User 0 consumed A's
    clean items 0, 1; user 1 B's clean items 4, 5.

    Raw cosines are all near 1 and rank by the nuisance: for user 0 the clean B items score
    99/101 = 0.980, above its own group's noisy items, 101/sqrt(101 * 107.25) = 0.970.
    """
    x = np.zeros((8, 6))
    x[:, 0] = 10.0
    x[:, 1] = [1, 1, 1, 1, -1, -1, -1, -1]
    for k, item in enumerate([2, 3, 6, 7]):
        x[item, 2 + k] = 2.5
    return build_board(tmp_path_factory.mktemp("offset"), {0: [0, 1], 1: [4, 5]}, 8, x)


def test_content_knn_mean_centering_recovers_the_group(offset_board):
    users = torch.tensor([0, 1])
    raw, _ = ContentKNN().fit(offset_board).recommend(users, k=2)
    assert [set(r) for r in raw.tolist()] == [{4, 5}, {0, 1}]  # raw: the other group's clean items win
    for center in ("mean", "whiten"):
        items, _ = ContentKNN(center=center).fit(offset_board).recommend(users, k=2)
        assert [set(r) for r in items.tolist()] == [{2, 3}, {6, 7}], center
    scores = ContentKNN(center="mean").fit(offset_board).score(users)
    assert torch.all(scores[0, :4] > 0) and torch.all(scores[0, 4:] < 0)  # centred: the groups point apart


def test_content_knn_mean_is_over_every_item_with_a_vector(cold_board):
    # mu is the mean unit vector of the items whose mask is True, cold ones included
    model = ContentKNN(center="mean").fit(cold_board)
    x = cold_board.data["item"].x_text.numpy()[:5]
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    z = unit - unit.mean(0)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    np.testing.assert_allclose(model.item_embeddings()[:5].numpy(), z, rtol=1e-5, atol=1e-6)
    assert torch.all(model.item_embeddings()[5] == 0)  # masked: still a zero vector
    profile = z[[0, 1]].mean(0)
    expected = np.append(z @ profile / np.linalg.norm(profile), 0.0)
    np.testing.assert_allclose(model.score(torch.tensor([0]))[0].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_whitening_makes_the_covariance_the_identity():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(500, 6, generator=gen, dtype=torch.float64) @ torch.diag(torch.tensor([5.0, 2, 1, .5, .2, .1],
                                                                                         dtype=torch.float64))
    x = x + 3.0
    mask = torch.ones(500, dtype=torch.bool)
    mask[:50] = False  # fitted on the other 450 rows only
    mean, w = fit_centering(x, mask, whiten=True, eps=1e-10)
    z = (x[mask] - mean) @ w
    torch.testing.assert_close(z.mean(0), torch.zeros(6, dtype=torch.float64), rtol=0, atol=1e-10)
    torch.testing.assert_close(z.T @ z / 450, torch.eye(6, dtype=torch.float64), rtol=0, atol=1e-4)
    torch.testing.assert_close(w, w.T)  # ZCA: symmetric, so whitened vectors stay close to the originals
    # whiten_dim=2 keeps the two largest components: the covariance is the projector onto them
    _, w2 = fit_centering(x, mask, whiten=True, eps=1e-10, dim=2)
    z2 = (x[mask] - mean) @ w2
    lam, u = torch.linalg.eigh((x[mask] - mean).T @ (x[mask] - mean) / 450)
    torch.testing.assert_close(z2.T @ z2 / 450, u[:, -2:] @ u[:, -2:].T, rtol=0, atol=1e-4)
    assert torch.linalg.matrix_rank(w2).item() == 2


def test_whitening_equals_mean_centering_on_isotropic_vectors(tmp_path):
    # items 5 e0 +- e_k: centred, they are +- e_k / |.|, whose covariance is a multiple of the identity
    x = np.zeros((6, 4))
    x[:, 0] = 5.0
    for k in range(3):
        x[2 * k, 1 + k], x[2 * k + 1, 1 + k] = 1.0, -1.0
    graph = build_board(tmp_path, {0: [0, 2], 1: [1], 2: [3, 4, 5]}, 6, x)
    users = torch.arange(3)
    mean = ContentKNN(center="mean").fit(graph)
    for dim in (None, 3):
        white = ContentKNN(center="whiten", whiten_dim=dim).fit(graph)
        torch.testing.assert_close(white.score(users), mean.score(users), rtol=0, atol=1e-5)
        torch.testing.assert_close(white.item_embeddings(), mean.item_embeddings(), rtol=0, atol=1e-5)


def test_content_knn_rejects_bad_center():
    with pytest.raises(ValueError, match=r"center='zscore' is not a transform; choose from \['none', 'mean', 'wh"):
        ContentKNN(center="zscore")
    with pytest.raises(ValueError, match="whiten_eps must be > 0"):
        ContentKNN(center="whiten", whiten_eps=0.0)
    with pytest.raises(ValueError, match="whiten_dim must be a positive integer or None"):
        ContentKNN(center="whiten", whiten_dim=0)
    assert ContentKNN().config() == {"feature": "text", "center": "none", "whiten_eps": 1.0, "whiten_dim": None}


# --- library peers (implicit) ----------------------------------------------------------


@needs_implicit
@pytest.mark.parametrize("peer", sorted(PEERS))
def test_peers_rank_their_own_block_first(peer, two_groups):
    users = torch.arange(12)
    model = PEERS[peer]().fit(two_groups)
    items, scores = model.recommend(users, k=2)  # each user has exactly 2 unseen items in its block
    assert torch.all(items // 5 == (users // 6).unsqueeze(1)), peer
    others = model.score(users).reshape(12, 2, 5)[torch.arange(12), 1 - users // 6]
    assert torch.all(scores[:, 1] > others.max(1).values), peer


@needs_implicit
@pytest.mark.parametrize("peer", sorted(PEERS))
def test_peers_are_deterministic_for_a_seed(peer, two_groups):
    users = torch.arange(12)
    first = PEERS[peer](seed=3).fit(two_groups).score(users)
    assert torch.equal(first, PEERS[peer](seed=3).fit(two_groups).score(users))
    assert not torch.equal(first, PEERS[peer](seed=4).fit(two_groups).score(users))


@needs_implicit
def test_als_does_not_depend_on_threads(two_groups):
    users = torch.arange(12)
    one = PEERS["als"](num_threads=1).fit(two_groups).score(users)
    assert torch.equal(one, PEERS["als"](num_threads=2).fit(two_groups).score(users))


@needs_implicit
@pytest.mark.parametrize("peer", sorted(PEERS))
def test_peers_cold_items_score_zero(peer, tmp_path):
    graph = build_board(tmp_path, {0: [0, 1], 1: [1, 2]}, 4)  # item 3: no train users
    model = PEERS[peer]().fit(graph)
    scores = model.score(torch.arange(2))
    assert scores.shape == (2, 4) and torch.isfinite(scores).all() and torch.all(scores[:, 3] == 0)
    extra = 1 if peer == "bpr" else 0  # implicit's BPR keeps the item bias as one more column
    assert model.item_factors.shape == (4, 8 + extra) and model.item_embeddings().shape == (4, 8)


def test_peers_without_implicit_say_how_to_install(two_groups, monkeypatch):
    monkeypatch.setitem(sys.modules, "implicit", None)  # makes `import implicit` fail, as if absent
    with pytest.raises(ImportError, match=r"`ImplicitALS` needs 'implicit': "
                                          r"pip install 'ctxrec\[peers\]' \(or pip install implicit\)"):
        ImplicitALS().fit(two_groups)
    with pytest.raises(ImportError, match=r"`ImplicitBPR` needs 'implicit'"):
        ImplicitBPR().fit(two_groups)


def test_peers_reject_bad_arguments():
    with pytest.raises(ValueError, match="ImplicitALS factors must be a positive integer, got 0"):
        ImplicitALS(factors=0)
    with pytest.raises(ValueError, match="ImplicitALS alpha must be > 0"):
        ImplicitALS(alpha=0.0)
    with pytest.raises(ValueError, match=r"ImplicitBPR num_threads must be an integer >= 0 \(0: all cores\)"):
        ImplicitBPR(num_threads=-1)
    with pytest.raises(ValueError, match="ImplicitBPR learning_rate must be > 0"):
        ImplicitBPR(learning_rate=0.0)


# --- MF-BPR ----------------------------------------------------------------------------


class RandomScores(MostPop):
    """Uniform random scores, fixed by a seed: the chance level."""

    def score(self, users, context=None):
        gen = torch.Generator().manual_seed(0)
        return torch.rand(len(users), self.graph.num_items, generator=gen)


def test_mf_bpr_default_loss_is_bpr():
    assert MFBPR().train_config.loss == "bpr"
    assert MFBPR(train={"lr": 0.01}).train_config.loss == "bpr"
    assert MFBPR().name == "MF-BPR"
    assert MFBPR(train={"loss": "softmax"}).name == "MF-softmax"


def test_mf_bpr_beats_random_on_synthetic_world():
    from ctxrec.datasets.graphs import synthetic_graph

    _, graph = synthetic_graph("tiny", seed=0)
    mf = MFBPR(embedding_dim=16, train=MF_FAST).fit(graph)
    chance = RandomScores().fit(graph).evaluate("test")
    got = mf.evaluate("test")
    assert got["ndcg@20"] > chance["ndcg@20"] + 0.05, (got["ndcg@20"], chance["ndcg@20"])
    assert got["recall@20"] > chance["recall@20"]


# --- persistence -----------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: ItemKNN(k=3, shrink=2.0), lambda: EASE(l2=7.0), ContentKNN,
    lambda: ContentKNN(center="whiten", whiten_eps=0.01, whiten_dim=4),
    lambda: MFBPR(embedding_dim=8, train=TrainConfig(epochs=2, loss="bpr")),
    pytest.param(PEERS["als"], marks=needs_implicit), pytest.param(PEERS["bpr"], marks=needs_implicit)])
def test_save_load_round_trip(make, text_board, tmp_path):
    model = make().fit(text_board)
    if isinstance(model, torch.nn.Module):
        model.cpu()  # the trainer may have moved it to a GPU; the loaded copy lives on the CPU
    model.save(tmp_path / "m")
    again = Recommender.load(tmp_path / "m", text_board)
    assert type(again) is type(model) and again.config() == model.config()
    users = torch.arange(text_board.num_users)
    assert torch.equal(again.score(users).cpu(), model.score(users).cpu())


def test_registered_by_name():
    for name, klass in {"itemknn": ItemKNN, "ease": EASE, "mf_bpr": MFBPR, "content_knn": ContentKNN,
                        "implicit_als": ImplicitALS, "implicit_bpr": ImplicitBPR}.items():
        assert MODELS[name] is klass and isinstance(make_model(name), klass)
    assert {"mostpop", "lightgcn", "context_gnn"} <= set(MODELS)


# --- tuning on validation ----------------------------------------------------------------


class CountingItemKNN(ItemKNN):
    """ItemKNN that records which split each evaluate call used."""

    splits: List[str] = []

    def evaluate(self, split="val", *args, **kwargs):
        CountingItemKNN.splits.append(split)
        return super().evaluate(split, *args, **kwargs)


def test_tune_picks_best_validation_and_never_looks_at_test(checkerboard, monkeypatch):
    monkeypatch.setitem(MODELS, "counting_itemknn", CountingItemKNN)
    monkeypatch.setattr(CountingItemKNN, "splits", [])
    grid = {"k": [1, 30], "shrink": [0.0, 50.0]}
    model, params, trials = tune("counting_itemknn", grid, checkerboard, metric="ndcg@10")
    assert CountingItemKNN.splits == ["val"] * 4  # one validation per grid point, test never
    assert [t.params for t in trials] == [dict(zip(grid, v)) for v in itertools.product(*grid.values())]
    assert all(isinstance(t, Trial) and t.seconds >= 0 for t in trials)
    best = max(trials, key=lambda t: t.val)  # max() keeps the first of ties, as tune does
    assert params == best.params and isinstance(model, CountingItemKNN)
    assert model.config() == {"k": params["k"], "shrink": params["shrink"]}
    assert model.evaluate("val", ks=(10,))["ndcg@10"] == pytest.approx(best.val)
    assert len({t.val for t in trials}) > 1  # the grid matters here, so the choice is real


def test_tune_nested_train_params(checkerboard):
    model, params, trials = tune("mf_bpr", {"train.lr": [0.001, 0.02]}, checkerboard,
                                 base={"embedding_dim": 8, "train": {"epochs": 3, "batch_size": 512}})
    assert len(trials) == 2 and params["train.lr"] in (0.001, 0.02)
    cfg = model.train_config
    assert (cfg.lr, cfg.epochs, cfg.batch_size, cfg.loss) == (params["train.lr"], 3, 512, "bpr")
    assert model.embedding_dim == 8


def test_tune_empty_grid_fits_once(checkerboard):
    model, params, trials = tune("mostpop", None, checkerboard)
    assert params == {} and len(trials) == 1 and isinstance(model, MostPop)


def test_expand_params():
    assert expand_params({"train.lr": 0.01, "reg": 0.0}, {"train": {"epochs": 5}, "reg": 1.0}) == \
        {"train": {"epochs": 5, "lr": 0.01}, "reg": 0.0}
    out = expand_params({"train.lr": 0.5}, {"train": TrainConfig(epochs=3)})
    assert out["train"]["lr"] == 0.5 and out["train"]["epochs"] == 3
    with pytest.raises(ValueError, match="'train' is 5 in base"):
        expand_params({"train.lr": 0.1}, {"train": 5})


def test_tune_errors(checkerboard, monkeypatch):
    with pytest.raises(ValueError, match=r"grid\['k'\] must be a non-empty list"):
        tune("itemknn", {"k": 50}, checkerboard)
    with pytest.raises(ValueError, match=r"grid\['k'\] must be a non-empty list"):
        tune("itemknn", {"k": []}, checkerboard)
    with pytest.raises(ValueError, match="metric must look like 'ndcg@20'"):
        tune("mostpop", {}, checkerboard, metric="ndcg")
    with pytest.raises(ValueError, match="metric 'auc@10' is not one evaluate"):
        tune("mostpop", {}, checkerboard, metric="auc@10")
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        tune("nope", {}, checkerboard)
    from ctxrec.training import tuning

    monkeypatch.delitem(tuning.DEFAULT_GRIDS, "context_gnn")
    with pytest.raises(ValueError, match="no default grid for model 'context_gnn'"):
        tune("context_gnn", None, checkerboard)


def test_default_grids_are_small_and_buildable():
    assert set(DEFAULT_GRIDS) <= set(MODELS)
    for name, grid in DEFAULT_GRIDS.items():
        combos = list(itertools.product(*grid.values()))
        assert 1 <= len(combos) <= 8, name
        for values in combos:
            make_model(name, **expand_params(dict(zip(grid, values))))
