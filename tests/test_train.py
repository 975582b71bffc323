"""The training loop's parts: what an epoch visits, negative sampling, and the learning-rate schedule."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.train import NegativeSampler, TrainingConfig, epoch_pairs, learning_rate_factor

USERS = np.array([0, 0, 0, 2, 2, 5])
ITEMS = np.array([10, 11, 12, 20, 21, 50])


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
    # a user's positives are drawn uniformly too
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
    config = TrainingConfig(epochs=5, batch_size=1, learning_rate=0.02, seed=0, lr_decay=0.5, lr_decay_start=2)
    # epochs 1 and 2 at the base rate, then halved after each epoch
    assert [learning_rate_factor(config, done) for done in range(5)] == [1.0, 1.0, 0.5, 0.25, 0.125]
    assert learning_rate_factor(TrainingConfig(3, 1, 0.1, 0), 2) == 1.0


def test_several_negatives_per_positive_come_as_a_matrix_of_true_negatives():
    from tasks.train import negatives_for

    sampler = NegativeSampler(USERS, ITEMS, 60, np.random.default_rng(2))
    negatives = negatives_for(sampler, USERS, 4)
    assert negatives.shape == (len(USERS), 4)
    observed = set(zip(USERS.tolist(), ITEMS.tolist()))
    for user, row in zip(USERS.tolist(), negatives.tolist()):
        assert not any((user, item) in observed for item in row)
    assert negatives_for(sampler, USERS, 1).shape == (len(USERS),)
