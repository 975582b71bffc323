"""Every registered model trains (its loss falls), is deterministic, and the learning ones beat popularity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.adjacency import normalized_bipartite_adjacency
from models.base import GraphData, InnerProductScorer, Recommender
from models.lightgcn import LightGCN
from models.registry import MODELS, ModelHyperparameters, build_model
from tasks.db import connect
from tasks.evaluate import evaluate_holdout
from tasks.graph import catalog_sizes, load_graph, load_holdout, unavailable_items
from tasks.train import TrainingConfig, fit, is_trainable

CPU = torch.device("cpu")
SMALL_HP = ModelHyperparameters(embedding_dim=16, num_layers=2, l2=1e-4)


def _two_block_graph() -> GraphData:
    """Users 0-9 like items 0-7, users 10-19 like items 8-15: a structure any model can learn."""
    rng = np.random.default_rng(0)
    users, items = [], []
    for user in range(20):
        block = 0 if user < 10 else 8
        for item in rng.choice(8, size=5, replace=False):
            users.append(user)
            items.append(block + item)
    return GraphData(num_users=20, num_items=16, train_users=np.array(users), train_items=np.array(items))


def test_registry_models_honour_the_contract():
    graph = _two_block_graph()
    for name in MODELS:
        model = build_model(name, graph, SMALL_HP, CPU)
        assert isinstance(model, Recommender), name
        with torch.no_grad():
            scores = model.scorer().score(torch.arange(3), slice(4, 10))
        assert scores.shape == (3, 6), name
        assert torch.isfinite(scores).all(), name


@pytest.mark.parametrize("name", [n for n in MODELS if is_trainable(build_model(n, _two_block_graph(), SMALL_HP, CPU))])
def test_loss_falls_and_training_is_deterministic(name):
    graph = _two_block_graph()
    config = TrainingConfig(epochs=30, batch_size=32, learning_rate=0.01, seed=3)
    model, report = fit(name, graph, SMALL_HP, config, CPU)
    assert report.epoch_losses[-1] < 0.6 * report.epoch_losses[0]
    again, _ = fit(name, graph, SMALL_HP, config, CPU)
    for (key, first), (_, second) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(first, second), key


def test_popularity_scores_distinct_users_per_item():
    graph = GraphData(num_users=3, num_items=3, train_users=np.array([0, 0, 1, 2, 2]), train_items=np.array([1, 1, 1, 2, 1]))
    scores = build_model("pop", graph, SMALL_HP, CPU).scorer().score(torch.tensor([0, 2]), slice(0, 3))
    # item 0: nobody; item 1: users 0, 1, 2 (user 0's repeat counts once); item 2: user 2
    assert scores.tolist() == [[0.0, 3.0, 1.0], [0.0, 3.0, 1.0]]


def test_unknown_model_and_missing_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        build_model("nope", _two_block_graph(), SMALL_HP, CPU)


def test_lightgcn_propagation_matches_the_dense_formula():
    """e = mean_k (D^-1/2 A D^-1/2)^k e0 on a 2-user, 3-item graph, computed densely by hand."""
    users, items = np.array([0, 0, 1]), np.array([0, 1, 1])
    adjacency = normalized_bipartite_adjacency(2, 3, users, items)
    model = LightGCN(2, 3, embedding_dim=4, num_layers=2, adjacency=adjacency, l2=0.0)
    dense = adjacency.to_dense()
    e0 = model.embedding.weight.detach()
    expected = (e0 + dense @ e0 + dense @ dense @ e0) / 3
    torch.testing.assert_close(model.propagate().detach(), expected)
    scorer = model.scorer()
    assert isinstance(scorer, InnerProductScorer)
    torch.testing.assert_close(scorer.score(torch.tensor([1]), slice(0, 3)), expected[1:2] @ expected[2:].T)


def _holdout_recall(name: str, world, epochs: int) -> float:
    _, db, ds = world
    with connect(db) as con:
        holdout = load_holdout(con, ds, eval_days=1)
        sizes = catalog_sizes(con, ds)
        graph = load_graph(con, sizes, holdout.cutoff)
        unavailable = unavailable_items(con, holdout.cutoff, ds)
    config = TrainingConfig(epochs=epochs, batch_size=1024, learning_rate=0.005, seed=2026)
    model, _ = fit(name, graph, ModelHyperparameters(embedding_dim=32, num_layers=3, l2=1e-4), config, CPU)
    with torch.no_grad():
        metrics = evaluate_holdout(model.scorer(), graph, holdout, unavailable, CPU, ks=(20,))
    return metrics[("recall", 20)]


@pytest.mark.slow
def test_graph_and_mf_models_beat_popularity_on_planted_world(planted_world):
    pop = _holdout_recall("pop", planted_world, epochs=0)
    mf = _holdout_recall("mf", planted_world, epochs=40)
    lightgcn = _holdout_recall("lightgcn", planted_world, epochs=40)
    assert pop > 0.03  # popularity itself is a real signal in this world
    assert mf > 1.2 * pop, (mf, pop)
    assert lightgcn > 1.5 * pop, (lightgcn, pop)


def test_bpr_loss_with_several_negatives_averages_them():
    from models.bpr import bpr_loss

    user = torch.tensor([[1.0, 0.0]])
    pos = torch.tensor([[2.0, 0.0]])
    negs = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    # scores: pos 2, negs 0 and 1 -> mean(softplus(-2), softplus(-1)); no penalty with l2 = 0
    expected = (torch.nn.functional.softplus(torch.tensor(-2.0)) + torch.nn.functional.softplus(torch.tensor(-1.0))) / 2
    torch.testing.assert_close(bpr_loss(user, pos, negs, (user, pos, negs), l2=0.0), expected)
    # penalty: (|u|^2 + |p|^2 + mean_k |n_k|^2) / (2 * batch) = (1 + 4 + 1) / 2 = 3
    torch.testing.assert_close(bpr_loss(user, pos, negs, (user, pos, negs), l2=1.0) - expected, torch.tensor(3.0))


def test_hardest_negative_is_the_candidate_the_user_scores_highest():
    from models.bpr import hardest_negatives

    users = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    items = torch.tensor([[0.5, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, -1.0]])
    candidates = torch.tensor([[0, 1, 2], [3, 0, 2]])
    # user 0 scores items 0, 1, 2 as 0.5, 3, 0 -> item 1; user 1 scores items 3, 0, 2 as -1, 0, 2 -> item 2
    assert hardest_negatives(users, items, candidates).tolist() == [1, 2]


@pytest.mark.parametrize("name", ["mf", "lightgcn"])
def test_dynamic_negative_sampling_trains_against_the_hardest_candidate(name):
    from models.base import TrainingBatch
    from models.bpr import bpr_loss

    graph = _two_block_graph()
    model = build_model(name, graph, SMALL_HP, CPU)
    candidates = torch.tensor([[0, 9, 12], [3, 8, 15]])
    batch = TrainingBatch(torch.tensor([0, 11]), torch.tensor([1, 9]), candidates, hardest_negative=True)
    with torch.no_grad():
        scorer = model.scorer()
        scores = torch.stack([scorer.score(torch.tensor([u]), slice(0, 16))[0] for u in (0, 11)])
        chosen = candidates.gather(1, scores.gather(1, candidates).argmax(dim=1, keepdim=True)).squeeze(1)
        expected = model.training_loss(TrainingBatch(batch.users, batch.pos_items, chosen))
        assert torch.allclose(model.training_loss(batch), expected)
        assert not torch.allclose(expected, model.training_loss(TrainingBatch(batch.users, batch.pos_items, candidates)))
    config = TrainingConfig(epochs=30, batch_size=32, learning_rate=0.01, seed=3, negatives=4, negative_sampling="dynamic")
    _, report = fit(name, graph, SMALL_HP, config, CPU)
    assert report.epoch_losses[-1] < 0.6 * report.epoch_losses[0]
