"""Evaluation protocols (full, sampled:N, ctr, rating) on hand-built worlds with hand-computed figures."""

from __future__ import annotations

from math import log2, sqrt

import numpy as np
import pytest
import torch

from gnnrec.models.base import GraphData, InnerProductScorer
from gnnrec.tasks.learn.evaluate import Metric, ctr_pairs, evaluate, parse_protocol, protocols_for, sample_unobserved
from gnnrec.tasks.learn.metrics import auc, f1_at_half, rating_errors, sampled_ranking_metrics
from gnnrec.tasks.learn.ranking import UserItemSets


def _same_for_everyone(item_scores: list[float], num_users: int) -> InnerProductScorer:
    return InnerProductScorer(torch.ones(num_users, 1), torch.tensor(item_scores).unsqueeze(1))


# user 0 trained on item 0 and holds out item 2; user 1 trained on item 1 and holds out item 3
GRAPH = GraphData(num_users=2, num_items=6, train_users=np.array([0, 1]), train_items=np.array([0, 1]))
TEST_USERS, TEST_ITEMS = np.array([0, 1]), np.array([2, 3])
SCORER = _same_for_everyone([0.0, 0.0, 5.0, 1.0, 3.0, 2.0], 2)


def _figures(metrics: list[Metric]) -> dict[tuple[str, str, int | None], float]:
    return {(m.protocol, m.name, m.k): m.value for m in metrics}


def test_full_ranks_every_item_the_user_did_not_train_on():
    figures = _figures(evaluate(SCORER, "ranking", GRAPH, TEST_USERS, TEST_ITEMS, ks=(1, 4)))
    # user 0: 2, 4, 5, 3, 1 (item 0 masked) -> hit at 1; user 1: 2, 4, 5, 3, 0 -> hit at 4
    assert figures["full", "recall", 1] == 0.5
    assert figures["full", "recall", 4] == 1.0
    assert figures["full", "ndcg", 4] == pytest.approx((1 + 1 / log2(5)) / 2)
    assert {p for p, _, _ in figures} == {"full"}


def test_full_never_ranks_an_item_that_did_not_exist_at_the_cut_off():
    figures = _figures(evaluate(SCORER, "ranking", GRAPH, TEST_USERS, TEST_ITEMS, ks=(1, 3),
                                unavailable_items=np.array([4])))
    # item 4 gone for both: user 0: 2, 5, 3, 1 -> hit at 1; user 1: 2, 5, 3, 0 -> hit at 3 (at 4 with item 4 there)
    assert figures["full", "recall", 1] == 0.5
    assert figures["full", "recall", 3] == 1.0


def test_sampled_ranks_the_positives_against_unobserved_items_only():
    # N = 10 is more than any user has unobserved, so every unobserved existing item is drawn, whatever the seed.
    metrics = evaluate(SCORER, "ranking", GRAPH, TEST_USERS, TEST_ITEMS, protocol="sampled:10", ks=(1, 5),
                       unavailable_items=np.array([5]), seed=3)
    figures = _figures(metrics)
    # user 0: item 2 (5) against 1 (0), 3 (1), 4 (3) -> place 1; user 1: item 3 (1) against 0 (0), 2 (5), 4 (3)
    # -> place 3
    assert figures["sampled:10", "hr", 1] == 0.5
    assert figures["sampled:10", "hr", 5] == 1.0
    assert figures["sampled:10", "ndcg", 5] == pytest.approx((1 + 1 / log2(4)) / 2)
    assert all(m.protocol == "sampled:10" for m in metrics)


def test_several_protocols_give_each_ones_own_figures_in_the_order_asked():
    alone = {p: _figures(evaluate(SCORER, "ranking", GRAPH, TEST_USERS, TEST_ITEMS, protocol=p, ks=(1, 5),
                                  unavailable_items=np.array([5]), seed=3)) for p in ("sampled:10", "full")}
    both = evaluate(SCORER, "ranking", GRAPH, TEST_USERS, TEST_ITEMS, protocol="sampled:10,full", ks=(1, 5),
                    unavailable_items=np.array([5]), seed=3)
    assert [m.protocol for m in both] == ["sampled:10"] * len(alone["sampled:10"]) + ["full"] * len(alone["full"])
    assert _figures(both) == alone["sampled:10"] | alone["full"]


def test_sampled_negatives_are_distinct_unobserved_existing_items_and_seeded():
    forbidden = UserItemSets.from_pairs(np.array([0, 0, 1]), np.array([0, 1, 2]), 2)
    first = sample_unobserved(0, forbidden, np.array([7]), 100, 50, np.random.default_rng(1))
    assert len(first) == 50 and len(set(first.tolist())) == 50
    assert not set(first.tolist()) & {0, 1, 7}
    assert first.tolist() == sample_unobserved(0, forbidden, np.array([7]), 100, 50, np.random.default_rng(1)).tolist()
    # a dense user gets every item left, no more
    assert sorted(sample_unobserved(0, forbidden, np.array([7]), 5, 50, np.random.default_rng(1)).tolist()) == [2, 3, 4]


def test_sampled_metrics_follow_diffnets_definitions():
    # user A: positives 0.9, 0.1 against 0.5, 0.95, 0.2 -> order n p n n p; user B: 0.5 against 0.5 (tie: the
    # negative first), 0.1 -> n p n; user C: no positive, not evaluated
    figures = sampled_ranking_metrics(
        [np.array([0.9, 0.1]), np.array([0.5]), np.array([])],
        [np.array([0.5, 0.95, 0.2]), np.array([0.5, 0.1]), np.array([0.3])],
        ks=(1, 3, 5),
    )
    idcg2 = 1 + 1 / log2(3)
    assert figures["hr", 1] == 0 and figures["ndcg", 1] == 0
    assert figures["hr", 3] == pytest.approx((1 / 2 + 1) / 2)  # A: 1 hit / min(2, 3); B: 1 / min(1, 3)
    assert figures["ndcg", 3] == pytest.approx(((1 / log2(3)) / idcg2 + 1 / log2(3)) / 2)
    assert figures["hr", 5] == pytest.approx((2 / 2 + 1) / 2)
    assert figures["ndcg", 5] == pytest.approx(((1 / log2(3) + 1 / log2(6)) / idcg2 + 1 / log2(3)) / 2)


def test_ctr_pairs_each_positive_with_one_unobserved_item():
    # three items: user 0 trained on 0, holds out 1 -> only 2 is unobserved; user 1 trained on 2, holds out 0 -> 1
    graph = GraphData(num_users=2, num_items=3, train_users=np.array([0, 1]), train_items=np.array([0, 2]))
    users, items, labels = ctr_pairs(graph, np.array([0, 1]), np.array([1, 0]), np.empty(0, np.int64), np.random.default_rng(0))
    assert list(zip(users.tolist(), items.tolist(), labels.tolist())) == [(0, 1, 1), (1, 0, 1), (0, 2, 0), (1, 1, 0)]
    scorer = _same_for_everyone([1.0, 3.0, 2.0], 2)
    # positives score 3 and 1, negatives 2 and 3: (3>2) + (3=3)/2 + 0 + 0 = 1.5 of 4 pairs
    logit = _figures(evaluate(scorer, "logit", graph, np.array([0, 1]), np.array([1, 0]), protocol="ctr"))
    assert logit == {("ctr", "auc", None): 0.375, ("ctr", "f1", None): pytest.approx(2 / 3)}  # all >= 0: all clicks
    ranking = _figures(evaluate(scorer, "ranking", graph, np.array([0, 1]), np.array([1, 0]), protocol="ctr"))
    assert ranking == {("ctr", "auc", None): 0.375}  # F1 only for logits: a ranking score has no threshold


def test_auc_is_over_all_pairs_with_ties_counting_half():
    labels = np.array([1, 1, 0, 0, 1, 0])
    scores = np.array([0.9, 0.4, 0.4, 0.1, 0.8, 0.7])
    # 0.9 beats all 3 negatives; 0.4 ties 0.4 and beats 0.1; 0.8 beats all 3 -> 7.5 of 9
    assert auc(labels, scores) == pytest.approx(7.5 / 9)
    # not the mean of two halves' AUCs ([1, 0] scored [0.9, 0.1]: 1; [1, 0] scored [0.2, 0.8]: 0; mean 0.5) but over
    # all 4 (positive, negative) pairs: 0.9 beats 0.1 and 0.8, 0.2 beats 0.1 -> 3 of 4
    assert auc(np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.2, 0.8])) == 0.75
    with pytest.raises(ValueError):
        auc(np.array([1, 1]), np.array([0.1, 0.2]))


def test_f1_thresholds_the_sigmoid_at_one_half():
    labels = np.array([1, 1, 0, 0, 1, 0])
    logits = np.array([2.0, -1.0, 0.0, -3.0, 1.0, 0.5])
    # predicted clicks where logit >= 0: items 0, 2, 4, 5 -> 2 true of 4; 2 of 3 clicks found
    assert f1_at_half(labels, logits) == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_rating_models_get_mae_and_rmse_over_the_rated_test_pairs():
    assert rating_errors(np.array([4.0, 2.0, 5.0]), np.array([3.5, 2.0, 3.0])) == pytest.approx(
        {"mae": 2.5 / 3, "rmse": sqrt((0.25 + 0 + 4) / 3)}
    )
    scorer = InnerProductScorer(torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [2.0], [3.0], [4.0], [0.0], [0.0]]))
    figures = _figures(evaluate(scorer, "rating", GRAPH, np.array([0, 1, 1]), np.array([2, 3, 4]),
                                test_ratings=np.array([2.0, 9.0, np.nan]), ks=(1,)))
    # predictions 3 and 8 for ratings 2 and 9; the unrated pair does not count
    assert figures["rating", "mae", None] == 1.0 and figures["rating", "rmse", None] == 1.0
    assert ("full", "recall", 1) in figures


def test_which_protocols_run_is_the_output_kind_plus_the_one_asked_for():
    assert protocols_for("ranking") == ["full"]
    assert protocols_for("ranking", "sampled:1000") == ["sampled:1000"]
    assert protocols_for("rating") == ["rating", "full"]
    assert protocols_for("logit") == ["ctr", "full"]
    assert protocols_for("logit", "ctr") == ["ctr"]
    # several ranking protocols, comma-separated: in the order given, once each, after the kind's own
    assert protocols_for("ranking", "sampled:1000, full,sampled:1000") == ["sampled:1000", "full"]
    assert protocols_for("rating", "full,rating,sampled:50") == ["rating", "full", "sampled:50"]
    with pytest.raises(ValueError, match="unknown evaluation protocol 'ful'"):
        protocols_for("ranking", "full,ful")
    assert parse_protocol("sampled") == ("sampled", 1000)
    for bad in ("sampled:0", "sampled:x", "topk", "full:3"):
        with pytest.raises(ValueError, match="unknown evaluation protocol"):
            parse_protocol(bad)
    with pytest.raises(ValueError, match="a ranking model predicts none"):
        protocols_for("ranking", "rating")


def test_nothing_to_judge_gives_no_figures():
    assert evaluate(SCORER, "ranking", GRAPH, np.empty(0, np.int64), np.empty(0, np.int64)) == []
