"""The Recommender contract, run over every model on data with a known answer
(implicit's checkerboard test), plus the context board for context-aware models."""
from __future__ import annotations

import pytest
import torch

from ctxrec.training.models import ContextGNN, LightGCN, MostPop
from ctxrec.training.recommender import Context, Recommender
from ctxrec.training.trainer import TrainConfig

FAST = TrainConfig(epochs=30, batch_size=4096, lr=0.02, patience=30, seed=0)


def group_of(graph, items: torch.Tensor) -> torch.Tensor:
    """0 for the first half of the items (group A), 1 for the second."""
    ids = graph.ids["item"][items.numpy()]
    return torch.tensor([int(int(i[1:]) >= 20) for i in ids.ravel()]).reshape(items.shape)


class RecommenderContract:
    """Tests every Recommender passes; subclasses set ``make``."""

    personalised = True

    @classmethod
    def make(cls) -> Recommender:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, checkerboard):
        return cls.make().fit(checkerboard)

    def test_recommend_shapes_and_order(self, fitted, checkerboard):
        items, scores = fitted.recommend(torch.arange(5), k=7)
        assert items.shape == (5, 7) and scores.shape == (5, 7)
        assert torch.all(scores[:, :-1] >= scores[:, 1:])

    def test_filter_seen(self, fitted, checkerboard):
        seen = checkerboard.seen()
        items, _ = fitted.recommend(torch.arange(checkerboard.num_users), k=5)
        rows, cols = seen.mask_index(torch.arange(checkerboard.num_users))
        seen_pairs = set(zip(rows.tolist(), cols.tolist()))
        for u, row in enumerate(items.tolist()):
            assert not any((u, i) in seen_pairs for i in row)
        unfiltered, _ = fitted.recommend(torch.arange(checkerboard.num_users), k=5, filter_seen=False)
        if self.personalised:
            assert any((u, i) in seen_pairs for u, row in enumerate(unfiltered.tolist()) for i in row)

    def test_checkerboard(self, fitted, checkerboard):
        if not self.personalised:
            pytest.skip("not a personalised model: the checkerboard does not apply")
        users = torch.arange(checkerboard.num_users)
        items, _ = fitted.recommend(users, k=5)
        user_group = torch.tensor([int(i[1:]) % 2 for i in checkerboard.ids["user"]])
        agree = (group_of(checkerboard, items) == user_group.unsqueeze(1)).float().mean()
        assert agree > 0.9, f"only {agree:.2f} of recommendations match the user's group"

    def test_evaluate_better_than_chance(self, fitted, checkerboard):
        res = fitted.evaluate("test")
        assert set(res) >= {"recall@10", "ndcg@20", "hit_rate@10", "precision@10", "mrr@20"}
        assert all(0.0 <= v <= 1.0 for v in res.values())
        if self.personalised:
            # random ranking of ~36 unseen items with ~6 relevant (same group has 20): recall@10 ~ 0.3
            assert res["recall@10"] > 0.4

    def test_save_load_same_scores(self, fitted, checkerboard, tmp_path):
        fitted.save(tmp_path / "m")
        again = Recommender.load(tmp_path / "m", checkerboard)
        assert type(again) is type(fitted)
        ctx = Context(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long))
        torch.testing.assert_close(again.score(torch.arange(3), ctx), fitted.score(torch.arange(3), ctx))

    def test_recommend_ids(self, fitted, checkerboard):
        user = str(checkerboard.ids["user"][0])
        ranked = fitted.recommend_ids(user, k=3, time="mon 09:00", place="Springfield")
        assert len(ranked) == 3 and all(i in set(checkerboard.ids["item"]) for i, _ in ranked)
        with pytest.raises(ValueError, match="unknown user id 'nobody'"):
            fitted.recommend_ids("nobody")
        with pytest.raises(ValueError, match="unknown place"):
            fitted.recommend_ids(user, place="Atlantis")
        with pytest.raises(ValueError, match="cannot read time"):
            fitted.recommend_ids(user, time="someday")


class TestMostPop(RecommenderContract):
    personalised = False

    @classmethod
    def make(cls):
        return MostPop()

    def test_order_is_popularity(self, fitted, checkerboard):
        items, _ = fitted.recommend(torch.tensor([0]), k=3, filter_seen=False)
        counts = torch.bincount(torch.unique(torch.stack([checkerboard.train.user, checkerboard.train.item]), dim=1)[1],
                                minlength=checkerboard.num_items)
        assert counts[items[0]].tolist() == sorted(counts.tolist(), reverse=True)[:3]


class TestLightGCN(RecommenderContract):
    @classmethod
    def make(cls):
        return LightGCN(embedding_dim=16, train=FAST)


class TestContextGNN(RecommenderContract):
    @classmethod
    def make(cls):
        return ContextGNN(hidden=16, features=(), train=FAST)

    def test_context_changes_recommendations(self, context_board):
        model = ContextGNN(hidden=16, features=(), train=FAST).fit(context_board)
        users = torch.arange(context_board.num_users)
        n = len(users)
        morning = context_board.lookup("time", "mon-morning")
        evening = context_board.lookup("time", "sat-evening")
        place = torch.full((n,), -1)
        a, _ = model.recommend(users, k=5, context=Context(torch.full((n,), morning), place))
        b, _ = model.recommend(users, k=5, context=Context(torch.full((n,), evening), place))
        share_a = (group_of(context_board, a) == 0).float().mean()
        share_b = (group_of(context_board, b) == 1).float().mean()
        assert share_a > 0.8 and share_b > 0.8, (share_a, share_b)

    def test_the_no_context_ablation_cannot_read_the_context(self, context_board):
        """context=False leaves time and place out of message passing and the query: the
        context board's answer (group by time slot) is then out of its reach."""
        model = ContextGNN(hidden=16, features=(), train=FAST, context=False).fit(context_board)
        assert not any({"time", "place"} & {et[0], et[2]} for et in model.edge_types)
        users = torch.arange(context_board.num_users)
        n, place = len(users), torch.full((len(users),), -1)
        morning = Context(torch.full((n,), context_board.lookup("time", "mon-morning")), place)
        evening = Context(torch.full((n,), context_board.lookup("time", "sat-evening")), place)
        assert torch.equal(model.score(users, morning), model.score(users, evening))
        a, _ = model.recommend(users, k=5, context=morning)
        b, _ = model.recommend(users, k=5, context=evening)
        share = ((group_of(context_board, a) == 0).float().mean() + (group_of(context_board, b) == 1).float().mean()) / 2
        assert share < 0.7, share  # the model with context gets > 0.8 of each (test above)
        assert model.config()["context"] is False

    def test_history_selects_on_validation(self, fitted):
        h = fitted.history
        assert h.best_epoch == max(range(len(h.val)), key=lambda e: (h.val[e], -e))
        assert len(h.loss) == len(h.val) > 0


def test_catalogue_scores_equal_the_torch_product():
    """The CPU scoring path (numpy's BLAS) gives torch's q @ items.T up to float32 rounding."""
    from ctxrec.training.models.context_gnn import catalogue_scores

    gen = torch.Generator().manual_seed(0)
    queries, items = torch.randn(5, 17, generator=gen), torch.randn(1000, 17, generator=gen)
    got = catalogue_scores(queries, items)
    assert got.shape == (5, 1000) and got.dtype == torch.float32
    assert torch.allclose(got, queries @ items.T, atol=1e-5)
    assert torch.equal(got.topk(10, dim=1).indices, (queries @ items.T).topk(10, dim=1).indices)
    wide = catalogue_scores(queries.double(), items.double())  # other dtypes go through torch
    assert torch.allclose(wide, (queries @ items.T).double(), atol=1e-5)


def test_lightgcn_precomputed_normalisation_matches_pyg(checkerboard):
    """The CSR adjacency normalised once gives PyG's LightGCN embeddings normalised per call."""
    from torch_geometric.nn.models import LightGCN as PygLightGCN

    model = LightGCN(embedding_dim=8, num_layers=3, train=FAST)
    model.prepare(checkerboard)
    reference = PygLightGCN(checkerboard.num_users + checkerboard.num_items, 8, 3)
    reference.load_state_dict(model.model.state_dict())
    ei = checkerboard.data["user", "interacted", "item"].edge_index
    u, i = ei[0], ei[1] + checkerboard.num_users
    expected = reference.get_embedding(torch.stack([torch.cat([u, i]), torch.cat([i, u])]))
    assert torch.allclose(model.model.get_embedding(model.adj_t), expected, atol=1e-6)
    assert not torch.allclose(model.model.get_embedding(model.adj_t), model.model.embedding.weight, atol=1e-3)
