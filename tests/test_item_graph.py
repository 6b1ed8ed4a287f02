"""ItemGraph: the Recommender contract, and small graphs whose answer is known by hand:
recency weights, the EASE special case, cold items through the modality graph, the context prior."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from test_baselines import build_board, text_board  # noqa: F401 (fixture)
from test_models import RecommenderContract, group_of

from ctxrec.training.models import EASE, ItemGraph, make_model
from ctxrec.training.models.item_graph import mapped_columns, user_edges
from ctxrec.training.recommender import Context


class TestItemGraph(RecommenderContract):
    @classmethod
    def make(cls):
        return ItemGraph(l2=10.0, features=())


class TestItemGraphWithResidual(RecommenderContract):
    @classmethod
    def make(cls):
        return ItemGraph(l2=10.0, features=(), factors=4, epochs=2)


class TestItemGraphWithVectors(RecommenderContract):
    @pytest.fixture(scope="class")
    @classmethod
    def checkerboard(cls, text_board):  # noqa: F811 (the contract's data, with item vectors)
        return text_board

    @classmethod
    def make(cls):
        return ItemGraph(l2=10.0, features=("text",), k=5)


#: users 1-6 consume items 0-2 (group A), users 7-12 items 3-5 (group B); user 0 consumed
#: 0 and 1 long ago and 3 last (build_board orders a user's items in time as listed)
DRIFT = {0: [0, 1, 3], **{u: [0, 1, 2] for u in range(1, 7)}, **{u: [3, 4, 5] for u in range(7, 13)}}


@pytest.fixture(scope="module")
def drift(tmp_path_factory):
    return build_board(tmp_path_factory.mktemp("drift"), DRIFT, 6)


def test_user_edges_weigh_each_pair_by_its_rank_from_the_latest(drift):
    edges = user_edges(drift, recency=2.0)
    row = edges.rows(torch.tensor([0]))[0]
    # item 3 is user 0's latest pair (rank 0), then 1 (rank 1), then 0 (rank 2)
    assert row.tolist() == pytest.approx([math.exp(-1.0), math.exp(-0.5), 0.0, 1.0, 0.0, 0.0])
    assert user_edges(drift, recency=None).rows(torch.tensor([0, 7])).tolist() == [
        [1.0, 1.0, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]]


def test_without_recency_and_features_it_is_ease(drift):
    users = torch.arange(drift.num_users)
    expected = EASE(l2=5.0).fit(drift).score(users)
    assert torch.allclose(ItemGraph(l2=5.0, recency=None, features=()).fit(drift).score(users), expected)


def test_recency_follows_the_users_latest_taste(drift):
    """Two of user 0's three items are group A, but the latest is group B: without recency the
    best unseen item is A's item 2; with a short recency it is one of B's items 4, 5."""
    old, _ = ItemGraph(l2=1.0, recency=None, features=()).fit(drift).recommend(torch.tensor([0]), k=1)
    new, _ = ItemGraph(l2=1.0, recency=0.5, features=()).fit(drift).recommend(torch.tensor([0]), k=1)
    assert old.item() == 2 and new.item() in (4, 5)


@pytest.fixture(scope="module")
def cold_pair(tmp_path_factory):
    """Items 4 and 5 have no interactions; 4's vector is that of group A (items 0-1), 5's that
    of group B (items 2-3). Users 0-2 consume group A, users 3-5 group B."""
    e = np.eye(3)
    vectors = np.stack([e[0], e[0] + 0.1 * e[2], e[1], e[1] + 0.1 * e[2], e[0] - 0.1 * e[2], e[1] - 0.1 * e[2]])
    history = {u: [0, 1] if u < 3 else [2, 3] for u in range(6)}
    return build_board(tmp_path_factory.mktemp("coldpair"), history, 6, vectors)


@pytest.mark.parametrize("content, mapping", [(0.0, 0.0), (2.0, 0.0), (0.0, 1.0), (2.0, 1.0)])
def test_cold_items_are_scored_through_the_modality_graph(cold_pair, content, mapping):
    model = ItemGraph(l2=1.0, features=("text",), k=1, content=content, mapping=mapping).fit(cold_pair)
    assert model.cold_items.tolist() == [4, 5]
    scores = model.score(torch.arange(6))[:, 4:]
    assert torch.all(scores[:3, 0] > scores[:3, 1]) and torch.all(scores[3:, 1] > scores[3:, 0])


def test_mapping_reads_a_cold_items_column_off_its_vector():
    """Warm items 0-2 with orthonormal vectors; cold item 3 has item 1's vector, so with a tiny
    ridge its predicted column is item 1's column over the warm rows, and 0 on the cold row."""
    weights = torch.tensor([[0.0, 0.5, -0.2, 0.0], [0.3, 0.0, 0.7, 0.0], [0.1, 0.4, 0.0, 0.0], [0.0] * 4])
    vectors = torch.cat([torch.eye(3), torch.eye(3)[1:2]])
    column = mapped_columns(weights, vectors, torch.tensor([0, 1, 2]), torch.tensor([3]), ridge=1e-6)
    assert torch.allclose(column[:, 0], weights[:, 1], atol=1e-5)
    shrunk = mapped_columns(weights, vectors, torch.tensor([0, 1, 2]), torch.tensor([3]), ridge=1.0)
    assert torch.allclose(shrunk[:, 0], weights[:, 1] / 2, atol=1e-5)  # ridge 1 on a unit vector halves it


def test_mapping_fills_the_cold_columns_of_the_stored_weights(cold_pair):
    off = ItemGraph(l2=1.0, features=("text",), mapping=0.0).fit(cold_pair)
    on = ItemGraph(l2=1.0, features=("text",), mapping=1.0).fit(cold_pair)
    assert torch.all(off.weights[:, 4:] == 0) and torch.any(on.weights[:4, 4:] != 0)
    assert torch.equal(off.weights[:, :4], on.weights[:, :4])
    # users of group A (items 0-1) get item 4 (group A's vector) from the mapping alone
    mapped = on.users.rows(torch.arange(6)) @ on.weights[:, 4:]
    assert torch.all(mapped[:3, 0] > mapped[:3, 1]) and torch.all(mapped[3:, 1] > mapped[3:, 0])


def test_mapping_reorders_cold_items_without_moving_them_against_warm_ones(cold_pair):
    """Cold and warm items compete in a temporal split: the mapping keeps each user's mean and
    spread of the cold scores (on MovieLens temporal, adding it unscaled lowered validation NDCG@20
    from 0.214 to 0.203)."""
    users = torch.arange(6)
    off = ItemGraph(l2=1.0, features=("text",), k=1, mapping=0.0).fit(cold_pair).score(users)[:, 4:]
    on = ItemGraph(l2=1.0, features=("text",), k=1, mapping=1.0).fit(cold_pair).score(users)[:, 4:]
    assert torch.allclose(on.mean(1), off.mean(1), atol=1e-6) and torch.allclose(on.std(1), off.std(1), atol=1e-6)


def test_without_features_cold_items_score_zero(cold_pair):
    scores = ItemGraph(l2=1.0, features=("image",)).fit(cold_pair).score(torch.arange(6))
    assert torch.all(scores[:, 4:] == 0)


def test_context_prior_follows_the_time_slot(context_board):
    """The context board: group A on weekday mornings, group B on Saturday evenings."""
    users = torch.arange(context_board.num_users)
    n, place = len(users), torch.full((len(users),), -1)
    morning = Context(torch.full((n,), context_board.lookup("time", "mon-morning")), place)
    evening = Context(torch.full((n,), context_board.lookup("time", "sat-evening")), place)
    model = ItemGraph(l2=10.0, features=(), context=1.0).fit(context_board)
    a, _ = model.recommend(users, k=5, context=morning)
    b, _ = model.recommend(users, k=5, context=evening)
    assert (group_of(context_board, a) == 0).float().mean() > 0.9
    assert (group_of(context_board, b) == 1).float().mean() > 0.9
    blind = ItemGraph(l2=10.0, features=(), context=0.0).fit(context_board)
    assert torch.equal(blind.score(users, morning), blind.score(users, evening))


def test_residual_learns_the_time_slot_the_closed_form_cannot_see(context_board):
    """Without the context prior the closed form scores a user the same in every context; the
    learned residual's time-slot embeddings move the ranking to the slot's group."""
    users = torch.arange(context_board.num_users)
    n, place = len(users), torch.full((len(users),), -1)
    morning = Context(torch.full((n,), context_board.lookup("time", "mon-morning")), place)
    evening = Context(torch.full((n,), context_board.lookup("time", "sat-evening")), place)
    model = ItemGraph(l2=10.0, features=(), factors=8, epochs=150).fit(context_board)
    a, _ = model.recommend(users, k=5, context=morning, filter_seen=False)
    b, _ = model.recommend(users, k=5, context=evening, filter_seen=False)
    assert (group_of(context_board, a) == 0).float().mean() > 0.9
    assert (group_of(context_board, b) == 1).float().mean() > 0.9


def test_residual_survives_save_and_load(context_board, tmp_path):
    users = torch.arange(context_board.num_users)
    ctx = Context(torch.full((len(users),), context_board.lookup("time", "mon-morning")), torch.full((len(users),), -1))
    model = ItemGraph(l2=10.0, features=(), factors=4, epochs=3, seed=1).fit(context_board)
    again = ItemGraph.load(model.save(tmp_path / "model"), context_board)
    assert again.residual is not None
    assert torch.allclose(again.score(users, ctx), model.score(users, ctx))
    # the seed fixes the fit
    twin = ItemGraph(l2=10.0, features=(), factors=4, epochs=3, seed=1).fit(context_board)
    assert torch.allclose(twin.score(users, ctx), model.score(users, ctx))


@pytest.mark.parametrize("kwargs, match", [({"l2": 0.0}, "l2 must be > 0"), ({"recency": -1.0}, "recency must be > 0"),
                                           ({"factors": -1}, "factors must be an integer >= 0"),
                                           ({"epochs": 1.5}, "epochs must be an integer >= 0"),
                                           ({"k": 0}, "k must be a positive integer"),
                                           ({"content": -1.0}, "content must be >= 0"),
                                           ({"mapping": -0.5}, "mapping must be >= 0")])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_model("item_graph", **kwargs)


def test_cold_scores_are_on_the_scale_of_the_weighted_edges(cold_pair):
    """With recency the warm scores come from weights below 1; the cold items' scores (from the
    unweighted edges) are scaled by the weights' total over the edge count, so they compare."""
    users = torch.arange(6)
    plain = ItemGraph(l2=1.0, features=("text",), k=1, content=0.0, recency=None).fit(cold_pair)
    model = ItemGraph(l2=1.0, features=("text",), k=1, content=0.0, recency=0.5).fit(cold_pair)
    mass = model.users.rows(users).sum(1) / model.plain.rows(users).sum(1)
    assert torch.all(mass < 1)
    assert torch.allclose(model.score(users)[:, 4:], plain.score(users)[:, 4:] * mass.unsqueeze(1), atol=1e-6)


def test_residual_loss_over_every_item_drawn_once_is_the_full_softmax():
    """A large catalogue's residual ranks each positive among drawn items (log-Q corrected):
    drawing every item once gives the full softmax's cross-entropy exactly."""
    from ctxrec.training.models.residual import ContextResidual

    model = ContextResidual(4, 6, 3, 2, dim=5, seed=1)
    z = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    users, items = torch.tensor([0, 1, 3, 3]), torch.tensor([2, 5, 0, 4])
    time, place = torch.tensor([0, -1, 2, 1]), torch.tensor([1, 0, -1, 1])
    full = model.loss(z, users, items, time, place)
    assert torch.isclose(full, torch.nn.functional.cross_entropy(model(z[users], users, time, place), items))
    assert torch.isclose(model.loss(z, users, items, time, place, columns=torch.arange(6)), full, atol=1e-6)
