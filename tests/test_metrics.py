"""Metrics against hand-computed examples."""
import math

import pytest
import torch

from ctxrec.training.metrics import METRICS, per_query_metrics, ranking_metrics


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


def test_f1_and_map_by_hand():
    # same list as above: hits at ranks 2 and 4 of [5, 2, 9, 1], |relevant| = 3
    res = ranking_metrics(torch.tensor([[5, 2, 9, 1]]), [{2, 1, 7}], ks=(1, 2, 4))
    assert res["f1@1"] == 0.0 and res["map@1"] == 0.0  # P = R = 0
    assert res["f1@2"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))  # 2/5
    assert res["f1@4"] == pytest.approx(2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3))  # 4/7
    # AP@2 = P@2 / min(3, 2); AP@4 = (P@2 + P@4) / min(3, 4)
    assert res["map@2"] == pytest.approx((1 / 2) / 2)
    assert res["map@4"] == pytest.approx((1 / 2 + 2 / 4) / 3)


def test_map_normaliser_is_min_relevant_k():
    # 4 relevant items, a perfect 2-long list: AP@2 = (1 + 1) / min(4, 2) = 1
    res = ranking_metrics(torch.tensor([[0, 1, 9]]), [{0, 1, 2, 3}], ks=(2, 3))
    assert res["map@2"] == 1.0
    assert res["map@3"] == pytest.approx((1 + 1) / 3)
    # F1 and MAP average per query: [1, 0] -> 0.5
    two = ranking_metrics(torch.tensor([[0, 1], [2, 3]]), [[0], [9]], ks=(1,))
    assert two["f1@1"] == 0.5 and two["map@1"] == 0.5


def test_every_metric_at_every_k():
    res = ranking_metrics(torch.tensor([[0, 1]]), [[1]], ks=(1, 2))
    assert set(res) == {f"{m}@{k}" for m in METRICS for k in (1, 2)}
    empty = ranking_metrics(torch.tensor([[0, 1]]), [[]], ks=(1,))
    assert set(empty) == {f"{m}@1" for m in METRICS} and set(empty.values()) == {0.0}


def test_per_query_values_and_kept_indices():
    top = torch.tensor([[0, 1], [2, 3], [4, 5], [6, 7]])
    relevant = [[1], [], [4, 5], [9]]
    values, kept = per_query_metrics(top, relevant, ks=(1, 2))
    assert kept.tolist() == [0, 2, 3]  # query 1 has no relevant item
    assert values["hit_rate@1"].tolist() == [0.0, 1.0, 0.0]
    assert values["mrr@2"].tolist() == [0.5, 1.0, 0.0]
    assert values["recall@2"].tolist() == [1.0, 1.0, 0.0]
    means = ranking_metrics(top, relevant, ks=(1, 2))
    assert means == pytest.approx({name: float(v.mean()) for name, v in values.items()})
    values, kept = per_query_metrics(top, [[], [], [], []], ks=(1,))
    assert kept.numel() == 0 and values["ndcg@1"].shape == (0,)


def test_per_query_padding_and_duplicates():
    # a duplicated relevant pair counts once; -1 padding never hits
    values, _ = per_query_metrics(torch.tensor([[3, -1, -1]]), (torch.tensor([0, 0]), torch.tensor([3, 3])), ks=(3,))
    assert values["recall@3"].item() == 1.0 and values["precision@3"].item() == pytest.approx(1 / 3)
    assert values["map@3"].item() == 1.0


def test_shape_errors_say_how_to_fix():
    with pytest.raises(ValueError, match="unsqueeze"):
        per_query_metrics(torch.tensor([0, 1]), [[0]], ks=(1,))
    with pytest.raises(ValueError, match="equal shapes"):
        ranking_metrics(torch.tensor([[0, 1]]), (torch.tensor([0]), torch.tensor([0, 1])), ks=(1,))
    with pytest.raises(ValueError, match="positive"):
        ranking_metrics(torch.tensor([[0, 1]]), [[0]], ks=(0,))


def test_parity_with_trec_eval_on_random_rankings():
    """Every metric agrees with trec_eval (pytrec_eval-terrier) per query to 1e-6.

    trec_eval defines P_K, recall_K, ndcg_cut_K (binary gains, 1/log2(rank + 1)), success_K
    (= HitRate@K) and recip_rank as :mod:`ctxrec.training.metrics` does. Two differ:
    recip_rank has no cut-off, so MRR@K is compared with recip_rank of the run cut to its
    top K; map_cut_K divides AP@K by |relevant| where ctxrec divides by min(|relevant|, K),
    so MAP@K is compared with ``map_cut_K * |relevant| / min(|relevant|, K)``. F1@K is
    checked against 2PR/(P+R) of trec_eval's P_K and recall_K.
    """
    import numpy as np
    import pytrec_eval

    rng = np.random.default_rng(7)
    ks, k_max, n_items, n_queries = (1, 5, 10, 20), 25, 60, 400
    topk = np.full((n_queries, k_max), -1, dtype=np.int64)
    relevant = []
    for q in range(n_queries):
        length = int(rng.integers(0, k_max + 1))  # 0..25 ranked items, the rest -1 padding
        topk[q, :length] = rng.choice(n_items, size=length, replace=False)
        # 0..30 relevant items: some queries have none (skipped), many have more than K
        relevant.append(rng.choice(n_items, size=int(rng.integers(0, 31)), replace=False).tolist())
    # trec_eval ranks by score, so each item's score is its rank reversed (no ties)
    run = {str(q): {str(i): float(k_max - r) for r, i in enumerate(row) if i >= 0} for q, row in enumerate(topk)}
    qrels = {str(q): {str(i): 1 for i in rel} for q, rel in enumerate(relevant) if rel}
    cuts = ",".join(map(str, ks))
    ref = pytrec_eval.RelevanceEvaluator(qrels, {f"P.{cuts}", f"recall.{cuts}", f"ndcg_cut.{cuts}",
                                                 f"success.{cuts}", f"map_cut.{cuts}"}).evaluate(run)
    rr = {k: pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(
        {q: {i: s for i, s in items.items() if s > k_max - k} for q, items in run.items()}) for k in ks}

    values, kept = per_query_metrics(torch.from_numpy(topk), relevant, ks=ks)
    assert [str(q) for q in kept.tolist()] == sorted(ref, key=int)
    n_rel = np.array([len(relevant[q]) for q in kept.tolist()], dtype=np.float64)
    for k in ks:
        def col(measure, table=ref):
            return np.array([table[str(q)][measure] for q in kept.tolist()])

        p, r = col(f"P_{k}"), col(f"recall_{k}")
        expected = {"precision": p, "recall": r, "ndcg": col(f"ndcg_cut_{k}"), "hit_rate": col(f"success_{k}"),
                    "mrr": col("recip_rank", rr[k]), "map": col(f"map_cut_{k}") * n_rel / np.minimum(n_rel, k),
                    "f1": np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)}
        assert set(expected) == set(METRICS)
        for name, want in expected.items():
            np.testing.assert_allclose(values[f"{name}@{k}"].double().numpy(), want, atol=1e-6, rtol=0,
                                       err_msg=f"{name}@{k}")
    means = ranking_metrics(torch.from_numpy(topk), relevant, ks=ks)
    assert means == pytest.approx({name: float(v.mean()) for name, v in values.items()}, abs=1e-9)
    # the cases that tell the MAP normalisers and padding apart did occur
    assert (n_rel > 20).any() and (topk == -1).any() and len(kept) < n_queries
