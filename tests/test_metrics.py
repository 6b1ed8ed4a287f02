"""Metrics against hand-computed examples."""
import math

import pytest
import torch

from ctxrec.training.metrics import ranking_metrics


def test_single_query_by_hand():
    # ranked [5, 2, 9, 1], relevant {2, 1, 7}: hits at ranks 2 and 4
    res = ranking_metrics(torch.tensor([[5, 2, 9, 1]]), [{2, 1, 7}], ks=(2, 4))
    assert res["recall@2"] == pytest.approx(1 / 3)
    assert res["precision@2"] == pytest.approx(1 / 2)
    assert res["hit_rate@2"] == 1.0
    assert res["mrr@2"] == pytest.approx(1 / 2)
    assert res["ndcg@2"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    dcg4 = 1 / math.log2(3) + 1 / math.log2(5)
    idcg4 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert res["ndcg@4"] == pytest.approx(dcg4 / idcg4)
    assert res["recall@4"] == pytest.approx(2 / 3)
    assert res["precision@4"] == pytest.approx(2 / 4)


def test_mean_over_queries_and_misses():
    res = ranking_metrics(torch.tensor([[0, 1], [2, 3]]), [[0], [9]], ks=(1, 2))
    assert res["hit_rate@1"] == 0.5 and res["recall@2"] == 0.5 and res["mrr@2"] == 0.5
    assert res["ndcg@1"] == 0.5


def test_pairs_form_equals_list_form():
    top = torch.tensor([[3, 1, 2], [0, 1, 2]])
    a = ranking_metrics(top, [{1}, {0, 2}], ks=(1, 3))
    b = ranking_metrics(top, (torch.tensor([0, 1, 1]), torch.tensor([1, 0, 2])), ks=(1, 3))
    assert a == pytest.approx(b)
    assert a["ndcg@3"] == pytest.approx((1 / math.log2(3) + 1.5 / (1 + 1 / math.log2(3))) / 2)


def test_queries_without_relevant_items_are_skipped_and_padding_never_hits():
    res = ranking_metrics(torch.tensor([[0, -1], [4, 5]]), [[0], []], ks=(2,))
    assert res["recall@2"] == 1.0 and res["precision@2"] == 0.5


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="rank more items"):
        ranking_metrics(torch.tensor([[0, 1]]), [[0]], ks=(5,))
    with pytest.raises(ValueError, match="relevant has 2 queries"):
        ranking_metrics(torch.tensor([[0, 1]]), [[0], [1]], ks=(1,))
