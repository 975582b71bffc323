"""Evaluate: rank the whole catalog for every held-out user and score the lists against what they did next."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from models.base import GraphData, Scorer
from tasks.graph import Holdout
from tasks.metrics import ranking_metrics
from tasks.ranking import UserItemSets, rank_top_k

METRIC_KS = (10, 20, 50)


def exclusion_sets(graph: GraphData, users: np.ndarray, unavailable_items: np.ndarray) -> UserItemSets:
    """What each user must never be shown: their training items, plus items that do not exist yet for them."""
    users = np.asarray(users, dtype=np.int64)
    extra_users = np.repeat(users, len(unavailable_items))
    extra_items = np.tile(unavailable_items, len(users))
    return UserItemSets.from_pairs(
        np.concatenate([graph.train_users, extra_users]),
        np.concatenate([graph.train_items, extra_items]),
        graph.num_users,
    )


def evaluate_holdout(
    scorer: Scorer,
    graph: GraphData,
    holdout: Holdout,
    unavailable_items: np.ndarray,
    device: torch.device,
    ks: Sequence[int] = METRIC_KS,
) -> dict[tuple[str, int], float]:
    """Full-ranking metrics of a model trained on ``graph`` (the data up to the cut-off) on the held-out pairs.

    Every item the user had not interacted with before the cut-off is a candidate; training items are masked.
    """
    users = np.unique(holdout.users)
    if len(users) == 0:
        return {}
    exclude = exclusion_sets(graph, users, unavailable_items)
    top = rank_top_k(scorer, users, graph.num_items, max(ks), exclude, device=device)
    relevant = UserItemSets.from_pairs(holdout.users, holdout.items, graph.num_users).take(users)
    return ranking_metrics(top.items, relevant, ks)
