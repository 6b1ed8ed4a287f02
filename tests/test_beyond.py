"""Beyond-accuracy and group measures against hand-computed examples."""
import math

import pytest
import torch

from ctxrec.training.beyond import (GroupReport, beyond_accuracy, coverage, exposure_by_group, gini, group_report,
                                    item_popularity, novelty, popularity_groups, recall_by_item_group)
from ctxrec.training.metrics import per_query_metrics


def test_item_popularity_counts_distinct_users():
    pop = item_popularity(torch.tensor([0, 0, 1, 2, 2]), torch.tensor([1, 1, 1, 3, 0]), num_items=5)
    assert pop.tolist() == [1, 2, 0, 1, 0]


def test_coverage_counts_items_in_any_list_ignoring_padding():
    top = torch.tensor([[0, 1, 5], [0, 2, -1]])
    assert coverage(top, num_items=10, k=1) == 0.1
    assert coverage(top, num_items=10, k=2) == 0.3
    assert coverage(top, num_items=10, k=3) == 0.4


def test_novelty_is_mean_smoothed_self_information():
    pop = torch.tensor([3, 1, 0])  # 3 training users
    top = torch.tensor([[0, 1], [2, 1]])
    # p = (count + 1) / (3 + 1): 1, 1/2, 1/4 -> 0, 1, 2 bits; slots at k=2: 0, 1, 2, 1
    assert novelty(top, pop, num_users=3, k=2) == pytest.approx((0 + 1 + 2 + 1) / 4)
    assert novelty(top, pop, num_users=3, k=1) == pytest.approx((0 + 2) / 2)
    assert novelty(torch.tensor([[-1]]), pop, num_users=3, k=1) == 0.0


@pytest.mark.parametrize("n", [2, 5, 10])
def test_gini_known_cases(n):
    equal = torch.arange(n).reshape(1, n)  # every item once
    assert gini(equal, num_items=n, k=n) == pytest.approx(0.0)
    one = torch.zeros(4, 1, dtype=torch.long)  # item 0 takes every slot
    assert gini(one, num_items=n, k=1) == pytest.approx((n - 1) / n)


def test_gini_by_hand():
    # exposure [2, 1, 1, 0] -> sorted [0, 1, 1, 2]: (-3*0 - 1*1 + 1*1 + 3*2) / (4 * 4)
    assert gini(torch.tensor([[0, 1], [0, 2]]), num_items=4, k=2) == pytest.approx(6 / 16)
    assert gini(torch.tensor([[-1]]), num_items=4, k=1) == 0.0


def test_popularity_groups_by_item_rank():
    pop = torch.tensor([5, 0, 9, 1, 3, 7, 2, 8, 4, 6])
    groups = popularity_groups(pop)  # 2 head, 6 mid, 2 tail
    assert [i for i, g in enumerate(groups) if g == "head"] == [2, 7]
    assert [i for i, g in enumerate(groups) if g == "tail"] == [1, 3]
    assert groups.count("mid") == 6
    # ties go by item index; a 0 tail share leaves no tail
    assert popularity_groups(torch.tensor([1, 1, 1, 1]), shares=(0.5, 0.5, 0.0)) == ["head", "head", "mid", "mid"]
    with pytest.raises(ValueError, match="summing to 1"):
        popularity_groups(pop, shares=(0.5, 0.5, 0.5))


def test_exposure_by_group():
    groups = ["head", "mid", "tail", "tail"]
    top = torch.tensor([[0, 1, 2], [0, 3, -1]])
    assert exposure_by_group(top, groups, k=1) == {"head": 1.0, "mid": 0.0, "tail": 0.0}
    assert exposure_by_group(top, groups, k=3) == pytest.approx({"head": 2 / 5, "mid": 1 / 5, "tail": 2 / 5})
    # integer codes work too
    assert exposure_by_group(top, torch.tensor([0, 1, 1, 1]), k=2) == {"0": 0.5, "1": 0.5}


def test_recall_by_item_group_pools_hits_over_queries():
    groups = ["head", "head", "tail", "tail", "tail"]
    top = torch.tensor([[0, 2], [1, 4]])
    relevant = [{0, 3}, {1, 2, 4}]
    res = recall_by_item_group(top, relevant, groups, k=2)
    # head relevant: 0, 1 (both hit); tail relevant: 3, 2, 4 (only 4 hit)
    assert res == pytest.approx({"head": 1.0, "tail": 1 / 3})
    res1 = recall_by_item_group(top, relevant, groups, k=1)
    assert res1 == pytest.approx({"head": 1.0, "tail": 0.0})
    none = recall_by_item_group(top, [{0}, {1}], groups, k=2)
    assert none["head"] == 1.0 and math.isnan(none["tail"])


def test_group_report_means_and_gap():
    values = {"recall@10": torch.tensor([1.0, 0.0, 0.5, 0.5]), "hit_rate@10": torch.tensor([1.0, 0.0, 1.0, 1.0])}
    rep = group_report(values, ["F", "M", "M", "X"])
    assert isinstance(rep, GroupReport)
    assert rep.counts == {"F": 1, "M": 2, "X": 1}
    assert rep.means["M"] == pytest.approx({"recall@10": 0.25, "hit_rate@10": 0.5})
    assert rep.gap == pytest.approx({"recall@10": 0.75, "hit_rate@10": 0.5})
    assert "gap" in str(rep) and "recall@10" in str(rep)


def test_group_report_aligns_labels_with_kept_queries():
    top = torch.tensor([[0, 1], [2, 3], [4, 5]])
    values, kept = per_query_metrics(top, [[0], [], [9]], ks=(1,))  # query 1 has no relevant item
    labels = ["young", "old", "old"]
    rep = group_report(values, labels, kept=kept)
    assert rep.counts == {"old": 1, "young": 1}
    assert rep.means["young"]["hit_rate@1"] == 1.0 and rep.gap["hit_rate@1"] == 1.0
    with pytest.raises(ValueError, match="kept="):
        group_report(values, labels)


def test_beyond_accuracy_keys_and_values():
    top = torch.tensor([[0, 1], [0, 2]])
    pop = torch.tensor([3, 1, 0, 0])
    res = beyond_accuracy(top, num_items=4, item_popularity=pop, num_users=3, ks=(1, 2))
    assert set(res) == {f"{m}@{k}" for m in ("coverage", "novelty", "gini") for k in (1, 2)}
    assert res["coverage@1"] == 0.25 and res["coverage@2"] == 0.75
    assert res["gini@1"] == pytest.approx(3 / 4) and res["novelty@1"] == 0.0


def test_errors_name_the_value_and_fix():
    with pytest.raises(ValueError, match="rank more items"):
        coverage(torch.tensor([[0, 1]]), num_items=3, k=5)
    with pytest.raises(ValueError, match="holds item 7"):
        gini(torch.tensor([[7]]), num_items=3, k=1)
    with pytest.raises(ValueError, match="unsqueeze"):
        coverage(torch.tensor([0, 1]), num_items=3, k=1)
    with pytest.raises(ValueError, match="num_users is 2"):
        novelty(torch.tensor([[0]]), torch.tensor([5]), num_users=2, k=1)
