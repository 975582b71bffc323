"""The training loop's parts: what an epoch visits, negative sampling, the schedule, the validation part and early
stopping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnrec.models.base import GraphData, InnerProductScorer, Recipe
from gnnrec.models.registry import resolve_config, resolve_recipe
from gnnrec.tasks.learn.train import (
    EpochProgress, NegativeSampler, carve_validation, epoch_pairs, fit, hardest_negatives, learning_rate_factor,
    negatives_for,
)

USERS = np.array([0, 0, 0, 2, 2, 5])
ITEMS = np.array([10, 11, 12, 20, 21, 50])
CPU = torch.device("cpu")


def test_pair_sampling_visits_every_pair_once():
    users, items = epoch_pairs(USERS, ITEMS, 6, "pair", np.random.default_rng(0))
    assert sorted(zip(users.tolist(), items.tolist())) == sorted(zip(USERS.tolist(), ITEMS.tolist()))


def test_user_sampling_draws_users_uniformly_with_their_own_positives():
    rng = np.random.default_rng(0)
    drawn_users, drawn_items = [], []
    for _ in range(3000):
        users, items = epoch_pairs(USERS, ITEMS, 6, "user", rng)
        assert len(users) == len(USERS)
        drawn_users.append(users)
        drawn_items.append(items)
    users, items = np.concatenate(drawn_users), np.concatenate(drawn_items)
    owned = set(zip(USERS.tolist(), ITEMS.tolist()))
    assert all(pair in owned for pair in zip(users.tolist(), items.tolist()))
    # users 0, 2 and 5 each a third of the draws although they have 3, 2 and 1 pairs; users 1, 3, 4 never
    shares = np.bincount(users, minlength=6) / len(users)
    assert shares[[1, 3, 4]].tolist() == [0.0, 0.0, 0.0]
    assert shares[[0, 2, 5]] == pytest.approx([1 / 3] * 3, abs=0.01)
    user0 = items[users == 0]
    assert np.bincount(user0 - 10) / len(user0) == pytest.approx([1 / 3] * 3, abs=0.02)


def test_negatives_are_never_training_items_when_others_exist():
    sampler = NegativeSampler(USERS, ITEMS, 60, np.random.default_rng(1))
    users = np.repeat(USERS, 500)
    negatives = sampler.sample(users)
    observed = set(zip(USERS.tolist(), ITEMS.tolist()))
    assert not any(pair in observed for pair in zip(users.tolist(), negatives.tolist()))
    assert negatives.min() >= 0 and negatives.max() < 60


def test_learning_rate_decays_after_the_start_epoch():
    recipe = Recipe(epochs=5, batch_size=1, learning_rate=0.02, lr_decay=0.5, lr_decay_start=2)
    # epochs 1 and 2 at the base rate, then halved after each epoch
    assert [learning_rate_factor(recipe, done) for done in range(5)] == [1.0, 1.0, 0.5, 0.25, 0.125]
    assert learning_rate_factor(Recipe(), 2) == 1.0


def test_several_negatives_per_positive_come_as_a_matrix_of_true_negatives():
    sampler = NegativeSampler(USERS, ITEMS, 60, np.random.default_rng(2))
    negatives = negatives_for(sampler, USERS, 4)
    assert negatives.shape == (len(USERS), 4)
    observed = set(zip(USERS.tolist(), ITEMS.tolist()))
    for user, row in zip(USERS.tolist(), negatives.tolist()):
        assert not any((user, item) in observed for item in row)
    assert negatives_for(sampler, USERS, 1).shape == (len(USERS),)


def test_hardest_negative_is_the_candidate_the_model_scores_highest():
    users = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    items = torch.tensor([[0.5, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, -1.0]])
    candidates = torch.tensor([[0, 1, 2], [3, 0, 2]])
    # user 0 scores items 0, 1, 2 as 0.5, 3, 0 -> item 1; user 1 scores items 3, 0, 2 as -1, 0, 2 -> item 2
    assert hardest_negatives(InnerProductScorer(users, items), torch.tensor([0, 1]), candidates).tolist() == [1, 2]


def _graph() -> GraphData:
    rng = np.random.default_rng(0)
    users, items = [], []
    for user in range(40):
        block = 0 if user < 20 else 10
        for item in rng.choice(10, size=6, replace=False):
            users.append(user)
            items.append(block + item)
    return GraphData(num_users=41, num_items=20, train_users=np.array(users), train_items=np.array(items))


def test_the_validation_part_is_one_pair_each_of_users_with_three_or_more_and_leaves_the_graph():
    graph = GraphData(
        num_users=4, num_items=9, train_users=np.array([0, 0, 0, 1, 1, 2, 2, 2, 2]), train_items=np.arange(9),
        train_ratings=np.arange(9, dtype=float),
    )
    training, part = carve_validation(graph, Recipe(validation_share=0.5), "ranking", np.random.default_rng(0))
    # share 0.5 of 9 pairs -> 4 wanted, but only users 0 and 2 have 3 pairs: one pair each
    assert sorted(part.users.tolist()) == [0, 2]
    held = set(zip(part.users.tolist(), part.items.tolist()))
    kept = set(zip(training.train_users.tolist(), training.train_items.tolist()))
    assert not held & kept and len(held | kept) == 9
    assert part.ratings.tolist() == part.items.astype(float).tolist()  # ratings travel with their pairs
    assert carve_validation(graph, Recipe(validation_share=0.0), "ranking", np.random.default_rng(0)) == (graph, None)


def test_fit_reports_every_epoch_in_eval_mode_and_stops_early_on_the_validation_part():
    seen: list[EpochProgress] = []

    def on_epoch(progress: EpochProgress) -> None:
        assert not progress.model.training
        seen.append(progress)

    # A learning rate far too high overfits at once: validation recall stops improving and training stops.
    recipe = resolve_recipe("mf", {
        "epochs": 40, "batch_size": 16, "learning_rate": 0.5, "validation_share": 0.2, "patience": 2, "eval_every": 1,
        "min_steps_per_epoch": 0,
    })
    model, report = fit("mf", _graph(), resolve_config("mf", {"embedding_dim": "8"}), recipe, CPU, on_epoch)
    assert [p.epoch for p in seen] == list(range(1, len(report.epoch_losses) + 1))
    assert all(p.epochs == 40 and p.monitor == "recall@20" and p.validation is not None for p in seen)
    assert [p.seconds for p in seen] == sorted(p.seconds for p in seen)
    assert report.validation_pairs == 40 and report.monitor == "recall@20"  # 48 wanted, one for each of 40 users
    assert report.stopped_early and len(report.epoch_losses) < 40
    best_value = max(value for _, value in report.validation)
    assert dict(report.validation)[report.best_epoch] == best_value
    assert len(report.epoch_losses) - report.best_epoch == 2  # two judgements without improvement
    assert not model.training


def test_without_a_validation_part_the_budget_is_trained_out():
    recipe = resolve_recipe("lightgcn", {"epochs": 3, "validation_share": 0.0})
    _, report = fit("lightgcn", _graph(), resolve_config("lightgcn", {"embedding_dim": "8"}), recipe, CPU)
    assert len(report.epoch_losses) == 3 and report.validation == [] and not report.stopped_early
    assert report.batch_size == 10  # 240 pairs at 25 steps an epoch


def test_a_model_with_nothing_to_train_reports_no_epoch():
    model, report = fit("pop", _graph(), resolve_config("pop"), resolve_recipe("pop", {"epochs": 5}), CPU)
    assert report.epoch_losses == [] and not model.training
