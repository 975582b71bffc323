"""Evaluate: judge a trained model on held-out (user, item) pairs by one or more protocols.

Protocols (``protocol`` strings):

- ``full``: every item the user had not trained on is ranked (training items masked, items that did not exist yet
  left out); Recall, NDCG, Precision, HitRate and MRR at each k (:func:`tasks.learn.metrics.ranking_metrics`).
- ``sampled:N``: each test user's positives are ranked against N items sampled uniformly, without replacement,
  from those the user has neither trained on nor holds out (DiffNet's protocol with N = 1000, NCF's with one
  positive and N = 100); HR@k and NDCG@k (:func:`tasks.learn.metrics.sampled_ranking_metrics`). Seeded.
- ``ctr``: each test pair is labelled 1 and paired with one item sampled as above, labelled 0 (KGCN's protocol);
  AUC over all the pairs at once, and for ``logit`` models F1 at ``sigmoid(logit) >= 0.5``. Seeded.
- ``rating``: MAE and RMSE of the predicted ratings against the test ratings (``rating`` models).

Which run is decided by the model's output kind plus the ranking protocol asked for (:func:`protocols_for`).
Every function here is a pure function of arrays and a scorer; nothing reads the warehouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gnnrec.models.base import GraphData, Scorer
from gnnrec.tasks.learn.metrics import auc, f1_at_half, ranking_metrics, rating_errors, sampled_ranking_metrics
from gnnrec.tasks.learn.ranking import UserItemSets, rank_top_k

METRIC_KS = (10, 20, 50)
SAMPLED_DEFAULT_N = 1000
# Users scored at once by the pair protocols: users x (positives + N) pairs go through score_pairs per call.
_USERS_PER_CALL = 256


@dataclass(frozen=True)
class Metric:
    """One figure of an evaluation: ``protocol`` as given (``full``, ``sampled:1000``, ``ctr``, ``rating``),
    the metric's ``name`` (``recall``, ``ndcg``, ``hr``, ``auc``, ``f1``, ``mae``, ``rmse``, ...), its cut-off
    ``k`` where it has one (``None`` otherwise), and its value."""

    protocol: str
    name: str
    k: int | None
    value: float


def parse_protocol(protocol: str) -> tuple[str, int | None]:
    """``"full"`` -> ``("full", None)``, ``"sampled:1000"`` -> ``("sampled", 1000)``; a ValueError otherwise."""
    kind, _, count = protocol.partition(":")
    if kind in ("full", "ctr", "rating") and not count:
        return kind, None
    if kind == "sampled":
        if not count:
            return kind, SAMPLED_DEFAULT_N
        if count.isdigit() and int(count) >= 1:
            return kind, int(count)
    raise ValueError(f"unknown evaluation protocol {protocol!r}; choose full, sampled:N (N >= 1), ctr or rating")


def split_protocols(protocol: str) -> list[str]:
    """``"sampled:1000, full"`` -> ``["sampled:1000", "full"]``: each checked by :func:`parse_protocol`, in the
    order given, once each."""
    names = [name.strip() for name in protocol.split(",")]
    for name in names:
        parse_protocol(name)
    return list(dict.fromkeys(names))


def protocols_for(output: str, protocol: str | None = None) -> list[str]:
    """The protocols a model of ``output`` kind is judged by: its kind's own (``rating``: MAE/RMSE; ``logit``:
    ``ctr``), then each of the comma-separated ranking protocols ``protocol`` (default ``full``) that is not
    already among them."""
    own = {"ranking": [], "rating": ["rating"], "logit": ["ctr"]}
    if output not in own:
        raise ValueError(f"unknown output kind {output!r}")
    ranking = split_protocols(protocol or "full")
    if output != "rating" and any(parse_protocol(name)[0] == "rating" for name in ranking):
        raise ValueError(f"protocol 'rating' judges predicted ratings; a {output} model predicts none")
    return own[output] + [name for name in ranking if name not in own[output]]


def evaluate(
    scorer: Scorer,
    output: str,
    graph: GraphData,
    test_users: np.ndarray,
    test_items: np.ndarray,
    *,
    test_ratings: np.ndarray | None = None,
    unavailable_items: np.ndarray | None = None,
    protocol: str | None = None,
    ks: Sequence[int] = METRIC_KS,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> list[Metric]:
    """Judge ``scorer`` (a model of ``output`` kind trained on ``graph``) on the test pairs by
    :func:`protocols_for` ``(output, protocol)``. ``unavailable_items`` (items that did not exist at the training
    cut-off) are never ranked or sampled. A protocol with nothing to judge (no test pair, no test rating) gives no
    figures."""
    test_users = np.asarray(test_users, dtype=np.int64)
    test_items = np.asarray(test_items, dtype=np.int64)
    unavailable = np.unique(np.asarray(unavailable_items if unavailable_items is not None else [], dtype=np.int64))
    device = torch.device(device)
    metrics: list[Metric] = []
    for name in protocols_for(output, protocol):
        kind, count = parse_protocol(name)
        if kind == "full":
            figures = full_ranking(scorer, graph, test_users, test_items, unavailable, device, ks)
            metrics += [Metric(name, metric, k, value) for (metric, k), value in sorted(figures.items())]
        elif kind == "sampled":
            figures = sampled_ranking(scorer, graph, test_users, test_items, unavailable, count, seed, device, ks)
            metrics += [Metric(name, metric, k, value) for (metric, k), value in sorted(figures.items())]
        elif kind == "ctr":
            figures = ctr(scorer, graph, test_users, test_items, unavailable, seed, device, with_f1=output == "logit")
            metrics += [Metric(name, metric, None, value) for metric, value in figures.items()]
        else:
            figures = rating(scorer, test_users, test_items, test_ratings, device)
            metrics += [Metric(name, metric, None, value) for metric, value in figures.items()]
    return metrics


def seen_sets(graph: GraphData) -> UserItemSets:
    """Each user's training items: what they are never shown again. (Items that do not exist yet for them are masked
    for everyone at once: ``rank_top_k``'s ``exclude_for_all``.)"""
    return UserItemSets.from_pairs(graph.train_users, graph.train_items, graph.num_users)


def full_ranking(
    scorer: Scorer, graph: GraphData, test_users: np.ndarray, test_items: np.ndarray, unavailable: np.ndarray,
    device: torch.device, ks: Sequence[int] = METRIC_KS,
) -> dict[tuple[str, int], float]:
    """The ``full`` protocol's figures, ``{(metric, k): value}`` (empty when there is no test pair)."""
    users = np.unique(test_users)
    if len(users) == 0:
        return {}
    top = rank_top_k(scorer, users, graph.num_items, max(ks), seen_sets(graph), device=device, exclude_for_all=unavailable)
    relevant = UserItemSets.from_pairs(test_users, test_items, graph.num_users).take(users)
    return ranking_metrics(top.items, relevant, ks)


def evaluate_holdout(
    scorer: Scorer, graph: GraphData, holdout, unavailable_items: np.ndarray, device: torch.device,
    ks: Sequence[int] = METRIC_KS,
) -> dict[tuple[str, int], float]:
    """The ``full`` protocol on a :class:`tasks.graph.ids.Holdout`, as ``{(metric, k): value}``."""
    return full_ranking(scorer, graph, holdout.users, holdout.items, np.asarray(unavailable_items, np.int64), device, ks)


def _forbidden_sets(graph: GraphData, test_users: np.ndarray, test_items: np.ndarray) -> UserItemSets:
    """Per user, the items that are not "unobserved": trained on or held out."""
    return UserItemSets.from_pairs(
        np.concatenate([graph.train_users, test_users]), np.concatenate([graph.train_items, test_items]), graph.num_users
    )


def sample_unobserved(
    user: int, forbidden: UserItemSets, unavailable: np.ndarray, num_items: int, count: int, rng: np.random.Generator
) -> np.ndarray:
    """Up to ``count`` distinct items, uniformly drawn among those ``user`` has neither trained on nor holds out
    and that exist (fewer only when fewer such items exist), in the order drawn."""
    blocked = np.union1d(forbidden.items_of(user), unavailable)
    blocked = blocked[blocked < num_items]
    available = num_items - len(blocked)
    count = min(count, available)
    if count <= 0:
        return np.empty(0, dtype=np.int64)
    if count * 2 > available:  # dense user: draw from the explicit complement
        return rng.permutation(np.setdiff1d(np.arange(num_items), blocked, assume_unique=True))[:count]
    picked: list[np.ndarray] = []
    seen = blocked
    have = 0
    while have < count:
        draw = rng.integers(0, num_items, size=2 * (count - have) + 8)
        _, first = np.unique(draw, return_index=True)
        draw = draw[np.sort(first)]  # distinct, in draw order
        draw = draw[~np.isin(draw, seen)][: count - have]
        picked.append(draw)
        seen = np.union1d(seen, draw)
        have += len(draw)
    return np.concatenate(picked)


def sampled_ranking(
    scorer: Scorer, graph: GraphData, test_users: np.ndarray, test_items: np.ndarray, unavailable: np.ndarray,
    count: int, seed: int, device: torch.device, ks: Sequence[int] = METRIC_KS,
) -> dict[tuple[str, int], float]:
    """The ``sampled:count`` protocol's figures, ``{("hr" | "ndcg", k): value}`` (empty when no test pair)."""
    users = np.unique(test_users)
    if len(users) == 0:
        return {}
    rng = np.random.default_rng(seed)
    forbidden = _forbidden_sets(graph, test_users, test_items)
    positives = UserItemSets.from_pairs(test_users, test_items, graph.num_users)
    candidates = [
        (positives.items_of(u), sample_unobserved(u, forbidden, unavailable, graph.num_items, count, rng)) for u in users
    ]
    positive_scores, negative_scores = [], []
    for start in range(0, len(users), _USERS_PER_CALL):
        block = range(start, min(start + _USERS_PER_CALL, len(users)))
        pair_users = np.concatenate([np.full(len(p) + len(n), users[j]) for j in block for p, n in [candidates[j]]])
        pair_items = np.concatenate([np.concatenate([p, n]) for j in block for p, n in [candidates[j]]])
        scores = _score_pairs(scorer, pair_users, pair_items, device)
        offset = 0
        for j in block:
            p, n = candidates[j]
            positive_scores.append(scores[offset : offset + len(p)])
            negative_scores.append(scores[offset + len(p) : offset + len(p) + len(n)])
            offset += len(p) + len(n)
    return sampled_ranking_metrics(positive_scores, negative_scores, ks)


def ctr_pairs(
    graph: GraphData, test_users: np.ndarray, test_items: np.ndarray, unavailable: np.ndarray, rng: np.random.Generator,
    max_rounds: int = 100,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``ctr`` protocol's labelled pairs: every test pair (label 1), then for each one a pair of the same user
    and an item drawn uniformly among those the user neither trained on nor holds out and that exist (label 0).
    Returns (users, items, labels)."""
    num_items = graph.num_items
    forbidden = _forbidden_sets(graph, test_users, test_items)
    keys = np.repeat(np.arange(forbidden.num_users, dtype=np.int64), np.diff(forbidden.indptr)) * num_items + forbidden.indices
    missing = np.zeros(num_items, dtype=bool)
    missing[unavailable] = True

    def clashes(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        wanted = users * num_items + items
        position = np.searchsorted(keys, wanted).clip(max=max(len(keys) - 1, 0))
        return (keys[position] == wanted if len(keys) else np.zeros(len(users), bool)) | missing[items]

    negatives = rng.integers(0, num_items, size=len(test_users))
    for _ in range(max_rounds):
        clash = clashes(test_users, negatives)
        if not clash.any():
            break
        negatives[clash] = rng.integers(0, num_items, size=int(clash.sum()))
    keep = ~clashes(test_users, negatives)  # a user with no unobserved item left gets no negative
    users = np.concatenate([test_users, test_users[keep]])
    items = np.concatenate([test_items, negatives[keep]])
    labels = np.concatenate([np.ones(len(test_users), np.int8), np.zeros(int(keep.sum()), np.int8)])
    return users, items, labels


def ctr(
    scorer: Scorer, graph: GraphData, test_users: np.ndarray, test_items: np.ndarray, unavailable: np.ndarray,
    seed: int, device: torch.device, with_f1: bool = True,
) -> dict[str, float]:
    """The ``ctr`` protocol's figures: ``auc`` over all pairs, and ``f1`` at logit 0 when ``with_f1``."""
    if len(test_users) == 0:
        return {}
    users, items, labels = ctr_pairs(graph, np.asarray(test_users, np.int64), np.asarray(test_items, np.int64),
                                     unavailable, np.random.default_rng(seed))
    if labels.min() == 1:
        return {}
    scores = _score_pairs(scorer, users, items, device)
    figures = {"auc": auc(labels, scores)}
    if with_f1:
        figures["f1"] = f1_at_half(labels, scores)
    return figures


def rating(
    scorer: Scorer, test_users: np.ndarray, test_items: np.ndarray, test_ratings: np.ndarray | None, device: torch.device
) -> dict[str, float]:
    """The ``rating`` protocol's figures: MAE and RMSE over the test pairs that carry a rating."""
    if test_ratings is None:
        return {}
    test_ratings = np.asarray(test_ratings, dtype=np.float64)
    rated = ~np.isnan(test_ratings)
    if not rated.any():
        return {}
    predictions = _score_pairs(scorer, np.asarray(test_users)[rated], np.asarray(test_items)[rated], device)
    return rating_errors(test_ratings[rated], predictions)


def _score_pairs(scorer: Scorer, users: np.ndarray, items: np.ndarray, device: torch.device) -> np.ndarray:
    with torch.no_grad():
        scores = scorer.score_pairs(
            torch.from_numpy(np.asarray(users, np.int64)).to(device), torch.from_numpy(np.asarray(items, np.int64)).to(device)
        )
    return scores.float().cpu().numpy()
