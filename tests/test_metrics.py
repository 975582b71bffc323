from math import log2

import numpy as np
import pytest

from gnnrec.tasks.learn.metrics import hit_matrix, ranking_metrics
from gnnrec.tasks.learn.ranking import UserItemSets

# Four users ranked to depth 5.
TOP_ITEMS = np.array(
    [
        [3, 1, 7, 2, 9],  # relevant {1, 2, 11}: hits at positions 2 and 4; more relevant items than k for k <= 2
        [6, 5, -1, -1, -1],  # relevant {6, 8}: hit at position 1, then padding; fewer relevant items than k >= 3
        [0, 4, 6, 8, 10],  # relevant {5}: no hit
        [1, 2, 3, 4, 5],  # relevant {}: not evaluated, so every mean below is over the first three users
    ]
)
RELEVANT = [np.array([1, 2, 11]), np.array([8, 6]), np.array([5]), np.array([], dtype=np.int64)]

# IDCG with 1, 2 and 3 relevant items at the top.
IDCG_1 = 1 / log2(2)
IDCG_2 = 1 / log2(2) + 1 / log2(3)
IDCG_3 = 1 / log2(2) + 1 / log2(3) + 1 / log2(4)

EXPECTED = {
    # k=1: only user 1 hits (item 6 at position 1).
    ("recall", 1): (0 / 3 + 1 / 2 + 0) / 3,
    ("precision", 1): (0 + 1 / 1 + 0) / 3,
    ("ndcg", 1): (0 + (1 / log2(2)) / IDCG_1 + 0) / 3,
    ("hit_rate", 1): (0 + 1 + 0) / 3,
    ("mrr", 1): (0 + 1 / 1 + 0) / 3,
    # k=2: user 0 hits item 1 at position 2 (recall over |T| = 3, not min(3, 2)); its IDCG is over min(3, 2) = 2.
    ("recall", 2): (1 / 3 + 1 / 2 + 0) / 3,
    ("precision", 2): (1 / 2 + 1 / 2 + 0) / 3,
    ("ndcg", 2): ((1 / log2(3)) / IDCG_2 + (1 / log2(2)) / IDCG_2 + 0) / 3,
    ("hit_rate", 2): (1 + 1 + 0) / 3,
    ("mrr", 2): (1 / 2 + 1 / 1 + 0) / 3,
    # k=3: nothing new (item 7 is not relevant, user 1's third place is padding); user 0's IDCG now covers 3 places,
    # user 1's stays at min(|T|, k) = 2.
    ("recall", 3): (1 / 3 + 1 / 2 + 0) / 3,
    ("precision", 3): (1 / 3 + 1 / 3 + 0) / 3,
    ("ndcg", 3): ((1 / log2(3)) / IDCG_3 + (1 / log2(2)) / IDCG_2 + 0) / 3,
    ("hit_rate", 3): (1 + 1 + 0) / 3,
    ("mrr", 3): (1 / 2 + 1 / 1 + 0) / 3,
    # k=5: user 0 also hits item 2 at position 4.
    ("recall", 5): (2 / 3 + 1 / 2 + 0) / 3,
    ("precision", 5): (2 / 5 + 1 / 5 + 0) / 3,
    ("ndcg", 5): ((1 / log2(3) + 1 / log2(5)) / IDCG_3 + (1 / log2(2)) / IDCG_2 + 0) / 3,
    ("hit_rate", 5): (1 + 1 + 0) / 3,
    ("mrr", 5): (1 / 2 + 1 / 1 + 0) / 3,
}


def test_hit_matrix_marks_relevant_places_and_never_padding() -> None:
    hits, num_relevant = hit_matrix(TOP_ITEMS, RELEVANT)
    # The padding of user 1 must not match user 0's item 11, the largest item (a key collision to rule out).
    np.testing.assert_array_equal(
        hits,
        [
            [False, True, False, True, False],
            [True, False, False, False, False],
            [False] * 5,
            [False] * 5,
        ],
    )
    np.testing.assert_array_equal(num_relevant, [3, 2, 1, 0])


def test_every_metric_at_every_k_matches_the_hand_computed_value() -> None:
    results = ranking_metrics(TOP_ITEMS, RELEVANT, ks=(1, 2, 3, 5))
    assert results.keys() == EXPECTED.keys()
    for key, expected in EXPECTED.items():
        assert results[key] == pytest.approx(expected, abs=1e-12), key


def test_ndcg_discounts_by_position_and_normalises_over_min_relevant_k() -> None:
    # Hits at positions 1 and 3, two relevant items: (1/log2(2) + 1/log2(4)) / (1/log2(2) + 1/log2(3)).
    results = ranking_metrics(np.array([[4, 0, 2]]), [np.array([2, 4])], ks=(3,))
    assert results["ndcg", 3] == pytest.approx((1 / log2(2) + 1 / log2(4)) / (1 / log2(2) + 1 / log2(3)))
    assert results["recall", 3] == pytest.approx(2 / 2)
    assert results["precision", 3] == pytest.approx(2 / 3)
    assert results["mrr", 3] == pytest.approx(1 / 1)


def test_users_without_relevant_items_are_left_out_of_the_average() -> None:
    without_user_3 = ranking_metrics(TOP_ITEMS[:3], RELEVANT[:3], ks=(1, 2, 3, 5))
    assert ranking_metrics(TOP_ITEMS, RELEVANT, ks=(1, 2, 3, 5)) == pytest.approx(without_user_3)


def test_no_user_with_a_relevant_item_is_an_error() -> None:
    with pytest.raises(ValueError, match="no user has a relevant item"):
        ranking_metrics(TOP_ITEMS[3:], RELEVANT[3:], ks=(1,))


def test_relevant_sets_may_come_as_user_item_sets_and_with_duplicates() -> None:
    users = np.array([0, 0, 0, 0, 1, 1, 1, 2])
    items = np.array([11, 2, 1, 2, 6, 8, 6, 5])
    sets = UserItemSets.from_pairs(users, items, num_users=4)
    duplicated = [np.array([1, 2, 11, 2]), np.array([8, 6, 6]), np.array([5, 5]), np.array([], dtype=np.int64)]
    as_sequence = ranking_metrics(TOP_ITEMS, duplicated, ks=(1, 2, 3, 5))
    as_sets = ranking_metrics(TOP_ITEMS, sets, ks=(1, 2, 3, 5))
    for key, expected in EXPECTED.items():
        assert as_sequence[key] == pytest.approx(expected, abs=1e-12), key
        assert as_sets[key] == pytest.approx(expected, abs=1e-12), key


def test_k_beyond_the_ranked_lists_or_misaligned_sets_are_errors() -> None:
    with pytest.raises(ValueError, match="every k"):
        ranking_metrics(TOP_ITEMS, RELEVANT, ks=(6,))
    with pytest.raises(ValueError, match="relevant sets"):
        ranking_metrics(TOP_ITEMS, RELEVANT[:3], ks=(1,))


def per_user_reference(ranked: np.ndarray, relevant: set[int], k: int) -> dict[str, float]:
    """The module docstring's definitions, one user at a time."""
    hits = [item in relevant for item in ranked[:k]]
    first = hits.index(True) + 1 if any(hits) else None
    return {
        "recall": sum(hits) / len(relevant),
        "precision": sum(hits) / k,
        "ndcg": sum(hit / log2(j + 1) for j, hit in enumerate(hits, start=1))
        / sum(1 / log2(j + 1) for j in range(1, min(len(relevant), k) + 1)),
        "hit_rate": float(any(hits)),
        "mrr": 1 / first if first else 0.0,
    }


def test_vectorised_metrics_match_a_per_user_loop_on_random_rankings() -> None:
    rng = np.random.default_rng(0)
    num_users, num_items, depth = 40, 30, 12
    top_items = np.stack([rng.permutation(num_items)[:depth] for _ in range(num_users)])
    top_items[rng.random(top_items.shape) < 0.1] = -1
    relevant = [rng.choice(num_items, size=rng.integers(0, 8), replace=False) for _ in range(num_users)]
    results = ranking_metrics(top_items, relevant, ks=(1, 5, 12))
    evaluated = [user for user in range(num_users) if len(relevant[user])]
    for k in (1, 5, 12):
        per_user = [per_user_reference(top_items[user], set(relevant[user].tolist()), k) for user in evaluated]
        for metric in per_user[0]:
            assert results[metric, k] == pytest.approx(np.mean([row[metric] for row in per_user]), abs=1e-12)
