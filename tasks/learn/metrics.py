"""Top-K ranking metrics; recall, precision and NDCG as the LightGCN authors' evaluation code computes them.

LightGCN is He et al., SIGIR 2020; hit rate and MRR are the usual first-hit definitions.

For one user with relevant (held-out) items ``T`` and a ranked list ``r_1, r_2, ...``, let ``hit_j = [r_j in T]``;
the padding item ``-1`` is never relevant. Then:

- ``recall@k    = sum_{j<=k} hit_j / |T|`` (over ``|T|``, not ``min(|T|, k)``, as the authors divide)
- ``precision@k = sum_{j<=k} hit_j / k``
- ``ndcg@k      = DCG@k / IDCG@k`` with binary relevance: ``DCG@k = sum_{j<=k} hit_j / log2(j + 1)`` and
  ``IDCG@k = sum_{j<=min(|T|, k)} 1 / log2(j + 1)``, the DCG of a list starting with every relevant item
- ``hit_rate@k  = 1`` if some ``hit_j`` with ``j <= k``, else ``0``
- ``mrr@k       = 1 / j`` for the first ``j`` with ``hit_j``, when ``j <= k``, else ``0``

Each metric is the mean over the evaluated users: those with at least one relevant item. A user with none has
nothing to find (recall and NDCG would be 0/0, the others a foregone 0), so such a user is left out of every average
rather than counted as 0; when no user has a relevant item there is nothing to average and ``ranking_metrics``
raises.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gnnrec.tasks.learn.ranking import UserItemSets


def hit_matrix(top_items: np.ndarray, relevant: Sequence[np.ndarray] | UserItemSets) -> tuple[np.ndarray, np.ndarray]:
    """Which ranked items are relevant, and how many relevant items each row has.

    Row ``i`` of ``top_items`` is judged against ``relevant[i]`` (for a :class:`UserItemSets`, its row ``i``: use
    ``sets.take(top.users)`` to line a set keyed by user up with a :class:`TopK`). Returns ``hits``, a boolean array
    shaped like ``top_items``, and ``num_relevant[i]``, the number of distinct items in ``relevant[i]``.
    """
    top_items = np.asarray(top_items, dtype=np.int64)
    if top_items.ndim != 2:
        raise ValueError("top_items must be a 2-d array, one ranked list per row")
    sets = relevant if isinstance(relevant, UserItemSets) else _sets_of_rows(relevant)
    if sets.num_users != len(top_items):
        raise ValueError(f"{len(top_items)} ranked lists but {sets.num_users} relevant sets")
    num_relevant = np.diff(sets.indptr)
    if len(sets.indices) == 0:
        return np.zeros(top_items.shape, dtype=bool), num_relevant

    # One sorted key per (row, relevant item) and a binary search per ranked item tests membership for all rows at
    # once; sets are sorted within a row and rows come in order, so the keys are sorted already.
    width = max(int(sets.indices.max()), int(top_items.max(initial=0))) + 1
    relevant_keys = np.repeat(np.arange(len(top_items), dtype=np.int64) * width, num_relevant) + sets.indices
    ranked_keys = np.arange(len(top_items), dtype=np.int64)[:, None] * width + top_items
    found = np.minimum(np.searchsorted(relevant_keys, ranked_keys), len(relevant_keys) - 1)
    # Padding needs its own test: row i's -1 has the key of item width-1 in row i-1.
    hits = (relevant_keys[found] == ranked_keys) & (top_items >= 0)
    return hits, num_relevant


def ranking_metrics(
    top_items: np.ndarray, relevant: Sequence[np.ndarray] | UserItemSets, ks: Sequence[int] = (10, 20, 50)
) -> dict[tuple[str, int], float]:
    """Every metric of the module docstring at every k, as ``{(metric, k): mean over evaluated users}``.

    ``relevant`` is lined up with the rows of ``top_items`` as in :func:`hit_matrix`. Each ``k`` must be at most
    the length of the ranked lists; a list shorter than its user's catalog is padded with ``-1``.
    """
    top_items = np.asarray(top_items, dtype=np.int64)
    if top_items.ndim != 2:
        raise ValueError("top_items must be a 2-d array, one ranked list per row")
    if not ks or min(ks) < 1 or max(ks) > top_items.shape[1]:
        raise ValueError(f"every k must lie in [1, {top_items.shape[1]}], the length of the ranked lists; got {ks}")
    hits, num_relevant = hit_matrix(top_items, relevant)
    evaluated = num_relevant > 0
    if not evaluated.any():
        raise ValueError("no user has a relevant item, so there is no user to evaluate")
    depth = max(ks)
    hits, num_relevant = hits[evaluated, :depth], num_relevant[evaluated]

    discounts = 1.0 / np.log2(np.arange(2, depth + 2))
    # Column k-1 of a cumulative sum is the value "at k", for every k in one pass.
    hits_at = np.cumsum(hits, axis=1)
    dcg_at = np.cumsum(hits * discounts, axis=1)
    ideal_dcg_at = np.cumsum(discounts)
    first_hit = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, depth + 1)

    results: dict[tuple[str, int], float] = {}
    for k in ks:
        found = hits_at[:, k - 1]
        results["recall", k] = float(np.mean(found / num_relevant))
        results["ndcg", k] = float(np.mean(dcg_at[:, k - 1] / ideal_dcg_at[np.minimum(num_relevant, k) - 1]))
        results["precision", k] = float(np.mean(found / k))
        results["hit_rate", k] = float(np.mean(found > 0))
        results["mrr", k] = float(np.mean(np.where(first_hit <= k, 1.0 / first_hit, 0.0)))
    return results


def _sets_of_rows(relevant: Sequence[np.ndarray]) -> UserItemSets:
    per_row = [np.asarray(items, dtype=np.int64).ravel() for items in relevant]
    rows = np.repeat(np.arange(len(per_row), dtype=np.int64), [len(items) for items in per_row])
    return UserItemSets.from_pairs(rows, np.concatenate([np.empty(0, dtype=np.int64), *per_row]), len(per_row))


def sampled_ranking_metrics(
    positive_scores: Sequence[np.ndarray], negative_scores: Sequence[np.ndarray], ks: Sequence[int] = (10, 20, 50)
) -> dict[tuple[str, int], float]:
    """HR@k and NDCG@k of the sampled protocol, as DiffNet's evaluation code (and NCF's, for one positive) defines
    them: each user's positives ``P`` are ranked together with its sampled negatives, and with ``hits`` the
    positives in the top k,

    - ``hr@k   = hits / min(|P|, k)``
    - ``ndcg@k = sum over hits at (1-based) place j of 1 / log2(j + 1), over IDCG of min(|P|, k) places``

    averaged over the users with at least one positive. An equal score ranks the negative first (a constant scorer
    earns nothing). Row ``u`` of each argument holds user ``u``'s scores.
    """
    if len(positive_scores) != len(negative_scores):
        raise ValueError("one row of negative scores per row of positive scores")
    if not ks or min(ks) < 1:
        raise ValueError("every k must be >= 1")
    depth = max(ks)
    discounts = 1.0 / np.log2(np.arange(2, depth + 2))
    ideal = np.cumsum(discounts)
    hr = {k: [] for k in ks}
    ndcg = {k: [] for k in ks}
    for positives, negatives in zip(positive_scores, negative_scores):
        positives = np.asarray(positives, dtype=np.float64).ravel()
        negatives = np.asarray(negatives, dtype=np.float64).ravel()
        if len(positives) == 0:
            continue
        scores = np.concatenate([positives, negatives])
        is_positive = np.concatenate([np.ones(len(positives), bool), np.zeros(len(negatives), bool)])
        # Score descending; among equal scores negatives (False) before positives (True).
        order = np.lexsort((is_positive, -scores))
        hits = is_positive[order[:depth]]
        hits = np.pad(hits, (0, depth - len(hits)))
        hits_at = np.cumsum(hits)
        dcg_at = np.cumsum(hits * discounts)
        for k in ks:
            target = min(len(positives), k)
            hr[k].append(hits_at[k - 1] / target)
            ndcg[k].append(dcg_at[k - 1] / ideal[target - 1])
    if not hr[ks[0]]:
        raise ValueError("no user has a positive, so there is no user to evaluate")
    results: dict[tuple[str, int], float] = {}
    for k in ks:
        results["hr", k] = float(np.mean(hr[k]))
        results["ndcg", k] = float(np.mean(ndcg[k]))
    return results


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The area under the ROC curve over *all* the (label, score) pairs at once (not a mean of per-batch AUCs):
    the chance that a random positive outscores a random negative, ties counting one half (Mann-Whitney U)."""
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError("one score per label")
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs at least one positive and one negative")
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # Average 1-based ranks over runs of equal scores.
    starts = np.flatnonzero(np.concatenate([[True], sorted_scores[1:] != sorted_scores[:-1]]))
    ends = np.concatenate([starts[1:], [len(scores)]])
    run_ranks = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(run_ranks, ends - starts)
    u = ranks[labels].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def f1_at_half(labels: np.ndarray, logits: np.ndarray) -> float:
    """F1 of predicting a click when ``sigmoid(logit) >= 0.5`` (KGCN's threshold), i.e. when ``logit >= 0``."""
    labels = np.asarray(labels).astype(bool).ravel()
    predicted = np.asarray(logits, dtype=np.float64).ravel() >= 0.0
    true_positives = int((labels & predicted).sum())
    if true_positives == 0:
        return 0.0
    precision = true_positives / int(predicted.sum())
    recall = true_positives / int(labels.sum())
    return float(2 * precision * recall / (precision + recall))


def rating_errors(ratings: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """MAE and RMSE of predicted ratings against the true ones."""
    ratings = np.asarray(ratings, dtype=np.float64).ravel()
    predictions = np.asarray(predictions, dtype=np.float64).ravel()
    if ratings.shape != predictions.shape or len(ratings) == 0:
        raise ValueError("one prediction per rating, and at least one rating")
    error = predictions - ratings
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error**2).mean()))}
