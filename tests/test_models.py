"""The models' own arithmetic (propagation, BPR, popularity counts) and the registry's option handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnrec.models.adjacency import normalized_bipartite_adjacency
from gnnrec.models.base import GraphData, InnerProductScorer, PairBatch, PairScorer, Recipe
from gnnrec.models.lightgcn import LightGCN, LightGCNConfig
from gnnrec.models.registry import MODELS, ModelHyperparameters, build_model, resolve_config, resolve_recipe

CPU = torch.device("cpu")


def _two_block_graph() -> GraphData:
    """Users 0-9 like items 0-7, users 10-19 like items 8-15."""
    rng = np.random.default_rng(0)
    users, items = [], []
    for user in range(20):
        block = 0 if user < 10 else 8
        for item in rng.choice(8, size=5, replace=False):
            users.append(user)
            items.append(block + item)
    return GraphData(num_users=20, num_items=16, train_users=np.array(users), train_items=np.array(items))


def test_popularity_scores_distinct_users_per_item():
    graph = GraphData(num_users=3, num_items=3, train_users=np.array([0, 0, 1, 2, 2]), train_items=np.array([1, 1, 1, 2, 1]))
    scores = build_model("pop", graph).scorer().score(torch.tensor([0, 2]), slice(0, 3))
    # item 0: nobody; item 1: users 0, 1, 2 (user 0's repeat counts once); item 2: user 2
    assert scores.tolist() == [[0.0, 3.0, 1.0], [0.0, 3.0, 1.0]]


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'nope'; choose one of pop, mf, lightgcn"):
        build_model("nope", _two_block_graph())


def test_lightgcn_propagation_matches_the_dense_formula():
    """e = mean_k (D^-1/2 A D^-1/2)^k e0 on a 2-user, 3-item graph, computed densely by hand."""
    users, items = np.array([0, 0, 1]), np.array([0, 1, 1])
    adjacency = normalized_bipartite_adjacency(2, 3, users, items)
    model = LightGCN(2, 3, LightGCNConfig(embedding_dim=4, num_layers=2), adjacency=adjacency)
    dense = adjacency.to_dense()
    e0 = model.embedding.weight.detach()
    expected = (e0 + dense @ e0 + dense @ dense @ e0) / 3
    torch.testing.assert_close(model.propagate().detach(), expected)
    scorer = model.scorer()
    assert isinstance(scorer, InnerProductScorer)
    torch.testing.assert_close(scorer.score(torch.tensor([1]), slice(0, 3)), expected[1:2] @ expected[2:].T)


def test_lightgcn_keeps_its_adjacency_in_its_state():
    model = build_model("lightgcn", _two_block_graph(), LightGCNConfig(embedding_dim=4, num_layers=1))
    state = model.state_dict()
    assert {"adjacency_crow", "adjacency_col", "adjacency_values", "embedding.weight"} <= set(state)
    assert len(state["adjacency_values"]) == 2 * 100  # 100 distinct pairs (20 users x 5), both directions


def test_bpr_loss_with_several_negatives_averages_them():
    from gnnrec.models.bpr import bpr_loss

    user = torch.tensor([[1.0, 0.0]])
    pos = torch.tensor([[2.0, 0.0]])
    negs = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    # scores: pos 2, negs 0 and 1 -> mean(softplus(-2), softplus(-1)); no penalty with l2 = 0
    expected = (torch.nn.functional.softplus(torch.tensor(-2.0)) + torch.nn.functional.softplus(torch.tensor(-1.0))) / 2
    torch.testing.assert_close(bpr_loss(user, pos, negs, (user, pos, negs), l2=0.0), expected)
    # penalty: (|u|^2 + |p|^2 + mean_k |n_k|^2) / (2 * batch) = (1 + 4 + 1) / 2 = 3
    torch.testing.assert_close(bpr_loss(user, pos, negs, (user, pos, negs), l2=1.0) - expected, torch.tensor(3.0))


@pytest.mark.parametrize("name", ["mf", "lightgcn"])
def test_the_loss_takes_l2_from_the_recipe(name):
    model = build_model(name, _two_block_graph())
    batch = PairBatch(torch.tensor([0, 11]), torch.tensor([1, 9]), torch.tensor([12, 3]))
    with torch.no_grad():
        plain = model.loss(batch, model.encode(), Recipe(l2=0.0))
        regularised = model.loss(batch, model.encode(), Recipe(l2=1.0))
    assert regularised > plain


def test_resolve_config_parses_typed_values_and_names_what_is_wrong():
    assert resolve_config("lightgcn", {"num_layers": "2", "embedding_dim": "32"}) == LightGCNConfig(embedding_dim=32, num_layers=2)
    assert resolve_config("lightgcn") == LightGCNConfig()
    with pytest.raises(ValueError, match=r"^unknown model 'lightgcn' option 'layers'; valid: embedding_dim, num_layers, init_std$"):
        resolve_config("lightgcn", {"layers": "2"})
    with pytest.raises(ValueError, match=r"^model 'mf' option embedding_dim: expected an integer, got 'big'$"):
        resolve_config("mf", {"embedding_dim": "big"})
    with pytest.raises(ValueError, match="option 'x'; valid: none: it has no options"):
        resolve_config("pop", {"x": "1"})
    with pytest.raises(ValueError, match="num_layers >= 0"):
        resolve_config("lightgcn", {"num_layers": "-1"})


def test_resolve_recipe_overrides_the_models_default():
    recipe = resolve_recipe("lightgcn", {"epochs": 5, "learning_rate": "0.01", "sampling": "pair"})
    assert (recipe.epochs, recipe.learning_rate, recipe.sampling) == (5, 0.01, "pair")
    assert recipe.batch_size == MODELS["lightgcn"].recipe.batch_size
    with pytest.raises(ValueError, match=r"unknown model 'mf' recipe field 'epoch'; valid: epochs, batch_size"):
        resolve_recipe("mf", {"epoch": 3})
    with pytest.raises(ValueError, match=r"recipe field negative_sampling: expected one of 'uniform', 'dynamic', got 'hard'"):
        resolve_recipe("mf", {"negative_sampling": "hard"})
    with pytest.raises(ValueError, match="validation_share must lie in"):
        resolve_recipe("mf", {"validation_share": 1.5})


def test_lightgcn_defaults_are_the_paper_and_the_gowalla_recipe():
    assert LightGCNConfig() == LightGCNConfig(embedding_dim=64, num_layers=3)
    recipe = MODELS["lightgcn"].recipe
    assert (recipe.epochs, recipe.batch_size, recipe.learning_rate, recipe.lr_decay, recipe.lr_decay_start) == (40, 32768, 0.02, 0.95, 5)
    assert (recipe.sampling, recipe.negatives, recipe.negative_sampling, recipe.l2) == ("user", 16, "dynamic", 1e-3)


def test_min_steps_per_epoch_shrinks_the_batch_on_small_data_only():
    recipe = Recipe(batch_size=32768, min_steps_per_epoch=25)
    assert recipe.steps_batch_size(810_128) == 32768  # Gowalla: 25 steps an epoch at the full batch (the last short)
    assert recipe.steps_batch_size(808_128) == 32768  # ... and without its validation part
    assert recipe.steps_batch_size(10_000) == 400
    assert Recipe(batch_size=1024).steps_batch_size(10) == 1024


def test_the_old_shared_hyperparameters_still_build_models():
    model = build_model("lightgcn", _two_block_graph(), ModelHyperparameters(embedding_dim=8, num_layers=1), CPU)
    assert model.config == LightGCNConfig(embedding_dim=8, num_layers=1)


def test_a_pair_scorer_never_scores_more_than_its_budget_at_once():
    calls = []

    class Sum(PairScorer):
        def score_pair_chunk(self, users, items):
            calls.append(len(users))
            return (users * 100 + items).float()

    scorer = Sum(pair_budget=7)
    block = scorer.score(torch.tensor([1, 2, 3]), slice(10, 15))
    assert block.tolist() == [[110, 111, 112, 113, 114], [210, 211, 212, 213, 214], [310, 311, 312, 313, 314]]
    assert max(calls) <= 7
    calls.clear()
    pairs = scorer.score_pairs(torch.tensor([1, 2]), torch.tensor([[3, 4, 5], [6, 7, 8]]))
    assert pairs.tolist() == [[103, 104, 105], [206, 207, 208]] and max(calls) <= 7
