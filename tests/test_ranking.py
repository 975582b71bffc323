import numpy as np
import pytest
import torch

from gnnrec.models.base import InnerProductScorer
from gnnrec.tasks.learn.ranking import UserItemSets, rank_top_k

NEG_INF = -np.inf

# One-dimensional towers, so every score is a product of small integers and exact in float32.
# Item "values":            0    1    2    3    4    5    6
ITEM_VECTORS = torch.tensor([[2.0], [3.0], [3.0], [1.0], [3.0], [2.0], [0.0]])
# User 0 scores items by value, user 1 by minus value, user 2 (an all-zero, cold-start vector) ties every item at 0.
USER_VECTORS = torch.tensor([[1.0], [-1.0], [0.0]])
# Orders by (score desc, item asc):
#   user 0: scores [2, 3, 3, 1, 3, 2, 0] -> items 1, 2, 4 (3), 0, 5 (2), 3 (1), 6 (0)
#   user 1: scores [-2, -3, -3, -1, -3, -2, 0] -> items 6 (0), 3 (-1), 0, 5 (-2), 1, 2, 4 (-3)
#   user 2: all 0 -> items 0, 1, 2, ..., 6
ALL_USERS = np.array([0, 1, 2])
CHUNKINGS = [(user_batch, item_chunk) for user_batch in (1, 2, 1024) for item_chunk in (1, 2, 3, 4, 7, 16384)]


def scorer() -> InnerProductScorer:
    return InnerProductScorer(USER_VECTORS, ITEM_VECTORS)


@pytest.mark.parametrize("user_batch, item_chunk", CHUNKINGS)
def test_ties_at_the_k_boundary_go_to_the_smaller_item(user_batch: int, item_chunk: int) -> None:
    # k=2: user 0's three items scored 3 (1, 2, 4) straddle the boundary, so the two smallest win; user 2 ties all.
    top = rank_top_k(scorer(), ALL_USERS, 7, 2, None, user_batch=user_batch, item_chunk=item_chunk)
    np.testing.assert_array_equal(top.items, [[1, 2], [6, 3], [0, 1]])
    np.testing.assert_array_equal(top.scores, [[3, 3], [0, -1], [0, 0]])
    # k=4: the tie at the boundary is now between items 0 and 5 (user 0, score 2) and 0 and 5 (user 1, score -2).
    top = rank_top_k(scorer(), ALL_USERS, 7, 4, None, user_batch=user_batch, item_chunk=item_chunk)
    np.testing.assert_array_equal(top.items, [[1, 2, 4, 0], [6, 3, 0, 5], [0, 1, 2, 3]])
    np.testing.assert_array_equal(top.scores, [[3, 3, 3, 2], [0, -1, -2, -2], [0, 0, 0, 0]])
    assert top.items.dtype == np.int64 and top.scores.dtype == np.float32


@pytest.mark.parametrize("user_batch, item_chunk", CHUNKINGS)
def test_excluded_items_are_never_returned(user_batch: int, item_chunk: int) -> None:
    # Exclude user 0's items 1 and 4, nothing of user 1's, user 2's item 0.
    exclude = UserItemSets.from_pairs(np.array([0, 0, 2]), np.array([4, 1, 0]), num_users=3)
    top = rank_top_k(scorer(), ALL_USERS, 7, 4, exclude, user_batch=user_batch, item_chunk=item_chunk)
    # user 0: 2 (3), then 0 and 5 (2), then 3 (1); user 2: everything but 0, in index order.
    np.testing.assert_array_equal(top.items, [[2, 0, 5, 3], [6, 3, 0, 5], [1, 2, 3, 4]])
    np.testing.assert_array_equal(top.scores, [[3, 2, 2, 1], [0, -1, -2, -2], [0, 0, 0, 0]])


@pytest.mark.parametrize("user_batch, item_chunk", CHUNKINGS)
def test_items_excluded_for_all_are_masked_as_columns_beside_each_users_own(user_batch: int, item_chunk: int) -> None:
    # The same as user 0's items 1 and 4 and user 2's item 0 excluded, plus items 2 and 6 for everyone (repeated,
    # unsorted: a set).
    exclude = UserItemSets.from_pairs(np.array([0, 0, 2]), np.array([4, 1, 0]), num_users=3)
    top = rank_top_k(scorer(), ALL_USERS, 7, 4, exclude, user_batch=user_batch, item_chunk=item_chunk,
                     exclude_for_all=np.array([6, 2, 6]))
    np.testing.assert_array_equal(top.items, [[0, 5, 3, -1], [3, 0, 5, 1], [1, 3, 4, 5]])
    np.testing.assert_array_equal(top.scores, [[2, 2, 1, NEG_INF], [-1, -2, -2, -3], [0, 0, 0, 0]])
    # Spelt out per user, the same sets give the same lists.
    spelt = UserItemSets.from_pairs(np.array([0, 0, 2] + [0, 1, 2] * 2), np.array([4, 1, 0] + [2] * 3 + [6] * 3), 3)
    again = rank_top_k(scorer(), ALL_USERS, 7, 4, spelt, user_batch=user_batch, item_chunk=item_chunk)
    np.testing.assert_array_equal(again.items, top.items)
    np.testing.assert_array_equal(again.scores, top.scores)


@pytest.mark.parametrize("user_batch, item_chunk", CHUNKINGS)
def test_rows_are_padded_when_fewer_than_k_items_remain(user_batch: int, item_chunk: int) -> None:
    # User 0 keeps only items 5 (score 2) and 6 (score 0); user 1 keeps nothing; user 2 keeps item 3.
    exclude = UserItemSets.from_pairs(
        np.array([0] * 5 + [1] * 7 + [2] * 6),
        np.array([0, 1, 2, 3, 4] + list(range(7)) + [0, 1, 2, 4, 5, 6]),
        num_users=3,
    )
    top = rank_top_k(scorer(), ALL_USERS, 7, 3, exclude, user_batch=user_batch, item_chunk=item_chunk)
    np.testing.assert_array_equal(top.items, [[5, 6, -1], [-1, -1, -1], [3, -1, -1]])
    np.testing.assert_array_equal(top.scores, [[2, 0, NEG_INF], [NEG_INF] * 3, [0, NEG_INF, NEG_INF]])


def test_k_larger_than_the_catalog_pads_every_row() -> None:
    top = rank_top_k(scorer(), np.array([1]), 7, 9, None, item_chunk=3)
    np.testing.assert_array_equal(top.items, [[6, 3, 0, 5, 1, 2, 4, -1, -1]])
    np.testing.assert_array_equal(top.scores, [[0, -1, -2, -2, -3, -3, -3, NEG_INF, NEG_INF]])


def test_rows_follow_the_given_users_in_order() -> None:
    top = rank_top_k(scorer(), np.array([2, 0, 2]), 7, 1, None)
    np.testing.assert_array_equal(top.users, [2, 0, 2])
    np.testing.assert_array_equal(top.items, [[0], [1], [0]])


def test_no_users_and_no_items_give_empty_results() -> None:
    top = rank_top_k(scorer(), np.array([], dtype=np.int64), 7, 5, None)
    assert top.items.shape == (0, 5) and top.scores.shape == (0, 5) and top.users.shape == (0,)
    top = rank_top_k(scorer(), ALL_USERS, 0, 2, None)
    np.testing.assert_array_equal(top.items, np.full((3, 2), -1))
    np.testing.assert_array_equal(top.scores, np.full((3, 2), NEG_INF))


def test_nan_scores_fail_loudly() -> None:
    items = ITEM_VECTORS.clone()
    items[5] = torch.nan
    with pytest.raises(ValueError, match="NaN"):
        rank_top_k(InnerProductScorer(USER_VECTORS, items), ALL_USERS, 7, 2, None, item_chunk=3)
    # User 2 alone: its second chunk scores [0, 0, NaN], a tie at the k-th place that goes the exact way.
    with pytest.raises(ValueError, match="NaN"):
        rank_top_k(InnerProductScorer(USER_VECTORS, items), np.array([2]), 7, 2, None, item_chunk=3)


def brute_force(scores: np.ndarray, exclude: UserItemSets, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference: a stable argsort of the full matrix on (-score, item), excluded items dropped, then padded."""
    items = np.full((len(scores), k), -1, dtype=np.int64)
    top_scores = np.full((len(scores), k), NEG_INF, dtype=np.float32)
    for user, row in enumerate(scores):
        candidates = np.setdiff1d(np.arange(len(row)), exclude.items_of(user))
        ranked = candidates[np.lexsort((candidates, -row[candidates]))][:k]
        items[user, : len(ranked)] = ranked
        top_scores[user, : len(ranked)] = row[ranked]
    return items, top_scores


@pytest.mark.parametrize("k", [1, 5, 10, 37, 40])
def test_matches_brute_force_whatever_the_batch_and_chunk_sizes(k: int) -> None:
    num_users, num_items = 50, 37
    generator = torch.Generator().manual_seed(k)
    # Small integer towers give many exact ties, within chunks, across them and at the k-th place.
    user_vectors = torch.randint(-2, 3, (num_users, 3), generator=generator).float()
    item_vectors = torch.randint(-2, 3, (num_items, 3), generator=generator).float()
    rng = np.random.default_rng(k)
    pairs = rng.integers(0, [num_users, num_items], size=(400, 2))
    # User 7 has every item excluded.
    users = np.concatenate([pairs[:, 0], np.full(num_items, 7)])
    items = np.concatenate([pairs[:, 1], np.arange(num_items)])
    exclude = UserItemSets.from_pairs(users, items, num_users)
    expected_items, expected_scores = brute_force((user_vectors @ item_vectors.T).numpy(), exclude, k)
    assert (expected_items[7] == -1).all()

    all_users = np.arange(num_users)
    for user_batch in (1, 7, 50, 64):
        for item_chunk in (1, 2, 3, 5, 36, 37, 100):
            top = rank_top_k(
                InnerProductScorer(user_vectors, item_vectors), all_users, num_items, k, exclude, user_batch, item_chunk
            )
            np.testing.assert_array_equal(top.items, expected_items, err_msg=f"{user_batch=} {item_chunk=}")
            np.testing.assert_array_equal(top.scores, expected_scores, err_msg=f"{user_batch=} {item_chunk=}")


class RecordingScorer:
    def __init__(self, inner: InnerProductScorer) -> None:
        self.inner = inner
        self.requests: list[tuple[int, slice]] = []

    def score(self, users: torch.Tensor, items: slice) -> torch.Tensor:
        self.requests.append((len(users), items))
        return self.inner.score(users, items)


def test_the_scorer_is_asked_for_at_most_one_batch_by_one_chunk_at_a_time() -> None:
    recording = RecordingScorer(scorer())
    rank_top_k(recording, np.array([0, 1, 2, 0, 1]), 7, 2, None, user_batch=2, item_chunk=3)
    # Three user batches (2, 2 and 1 users), each over the chunks [0, 3), [3, 6), [6, 7).
    chunks = [slice(0, 3), slice(3, 6), slice(6, 7)]
    assert recording.requests == [(2, c) for c in chunks] + [(2, c) for c in chunks] + [(1, c) for c in chunks]


def test_user_item_sets_dedup_sort_and_take() -> None:
    sets = UserItemSets.from_pairs(np.array([2, 0, 2, 2, 0]), np.array([5, 3, 1, 5, 3]), num_users=4)
    np.testing.assert_array_equal(sets.indptr, [0, 1, 1, 3, 3])
    np.testing.assert_array_equal(sets.indices, [3, 1, 5])
    np.testing.assert_array_equal(sets.items_of(2), [1, 5])
    assert sets.items_of(3).size == 0

    taken = sets.take(np.array([2, 3, 0, 2]))
    np.testing.assert_array_equal(taken.indptr, [0, 2, 2, 3, 5])
    np.testing.assert_array_equal(taken.indices, [1, 5, 3, 1, 5])


def test_user_item_sets_reject_users_outside_the_declared_range() -> None:
    with pytest.raises(ValueError):
        UserItemSets.from_pairs(np.array([0, 4]), np.array([1, 1]), num_users=4)

