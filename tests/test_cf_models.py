"""NGCF, GC-MC (on ratings and on implicit feedback) and PinSage against their papers' equations, on graphs small enough to write out densely."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gnnrec.models.base import GraphData, PairBatch, RatingBatch
from gnnrec.models.gcmc import GCMC, GCMCConfig, node_dropout
from gnnrec.models.gcmc_implicit import GCMCImplicit, GCMCImplicitConfig
from gnnrec.models.ngcf import NGCF, NGCFConfig
from gnnrec.models.pinsage import PinSage, PinSageConfig, importance_neighbors
from gnnrec.models.registry import build_model, resolve_recipe

CPU = torch.device("cpu")
# 4 users, 5 items; every user and item has an interaction.
USERS = np.array([0, 0, 1, 1, 1, 2, 2, 3, 3, 3])
ITEMS = np.array([0, 1, 1, 2, 3, 0, 4, 2, 3, 4])
RATINGS = np.array([5, 3, 4, 1, 2, 5, 4, 3, 1, 2], dtype=float)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def dense_adjacency(num_users: int, num_items: int, users, items, values=None) -> np.ndarray:
    a = np.zeros((num_users + num_items,) * 2)
    values = np.ones(len(users)) if values is None else values
    a[users, items + num_users] = values
    a[items + num_users, users] = values
    return a


def graph(ratings: bool = False) -> GraphData:
    return GraphData(4, 5, USERS, ITEMS, RATINGS if ratings else None)


@pytest.mark.parametrize("normalization", ["symmetric", "row"])
def test_ngcf_propagation_is_the_papers_matrix_form(normalization):
    config = NGCFConfig(embedding_dim=6, num_layers=2, layer_dim=5, message_dropout=0.0, node_dropout=0.0,
                        normalization=normalization, normalize_layers=False)
    model = NGCF.from_graph(graph(), config, CPU).eval()
    a = dense_adjacency(4, 5, USERS, ITEMS)
    if normalization == "symmetric":  # (L + I) E W1 + (L E * E) W2, L = D^-1/2 A D^-1/2
        d = a.sum(1) ** -0.5
        operator, plus_identity = d[:, None] * a * d[None, :], True
    else:  # the released code: L' = D^-1 (A + I), L' E W1 + (L' E * E) W2
        a_hat = a + np.eye(len(a))
        operator, plus_identity = a_hat / a_hat.sum(1, keepdims=True), False
    operator = torch.tensor(operator, dtype=torch.float32)
    layer = model.embedding.weight.detach()
    expected = [layer]
    for w1, w2 in zip(model.transform, model.interaction):
        side = operator @ layer
        with torch.no_grad():
            layer = torch.nn.functional.leaky_relu(w1(side + layer if plus_identity else side) + w2(side * layer), 0.2)
        expected.append(layer)
    with torch.no_grad():
        torch.testing.assert_close(model.propagate(), torch.cat(expected, dim=1), rtol=1e-5, atol=1e-6)
    assert model.propagate().shape == (9, 6 + 2 * 5)


def test_ngcf_node_dropout_drops_edges_in_both_directions_and_only_in_training():
    model = NGCF.from_graph(graph(), NGCFConfig(node_dropout=0.5), CPU).train()
    dropped = model._adjacency().to_dense()
    torch.testing.assert_close(dropped, dropped.T)
    full = model.eval()._adjacency().to_dense()
    kept = dropped != 0
    assert 0 < kept.sum() < (full != 0).sum()
    torch.testing.assert_close(dropped[kept], full[kept] * 2)  # survivors rescaled by 1 / (1 - rate)


@pytest.mark.parametrize("normalization", ["left", "symmetric"])
def test_gcmc_messages_are_the_papers_per_level_sums(normalization):
    config = GCMCConfig(hidden_dim=10, embedding_dim=3, dropout=0.0, normalization=normalization, accumulation="stack")
    model = GCMC.from_graph(graph(ratings=True), config, CPU).eval()
    assert model.levels.tolist() == [1, 2, 3, 4, 5]
    degree = dense_adjacency(4, 5, USERS, ITEMS).sum(1)
    weights = model.level_weights.detach().cumsum(0)  # ordinal sharing: W_r = T_1 + ... + T_r
    messages = []
    for r, level in enumerate([1, 2, 3, 4, 5]):
        a = dense_adjacency(4, 5, USERS[RATINGS == level], ITEMS[RATINGS == level])
        c = degree[:, None] * np.ones_like(a) if normalization == "left" else np.sqrt(np.outer(degree, degree))
        messages.append(torch.tensor(a / c, dtype=torch.float32) @ weights[r])
    hidden = torch.relu(torch.cat(messages, dim=1))
    encoded = model.encode()
    with torch.no_grad():
        torch.testing.assert_close(encoded.user_vectors, model.user_dense(hidden[:4]), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(encoded.item_vectors, model.item_dense(hidden[4:]), rtol=1e-5, atol=1e-6)
        # E[r] = sum_r r softmax_r(u^T Q_r v), Q_r = sum_s a_rs P_s
        q = torch.einsum("rs,sde->rde", model.coefficients, model.basis)
        logits = torch.einsum("d,rde,e->r", encoded.user_vectors[1], q, encoded.item_vectors[2])
        expected = (torch.softmax(logits, 0) * model.levels).sum()
        torch.testing.assert_close(encoded.score_pairs(torch.tensor([1]), torch.tensor([2]))[0], expected)


def test_gcmc_learns_the_ratings_it_trains_on_and_needs_them():
    model = GCMC.from_graph(graph(ratings=True), GCMCConfig(hidden_dim=20, embedding_dim=8, dropout=0.0), CPU)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    batch = RatingBatch(torch.from_numpy(USERS), torch.from_numpy(ITEMS), torch.from_numpy(RATINGS).float())
    recipe = resolve_recipe("gcmc")
    for _ in range(150):
        optimizer.zero_grad()
        model.loss(batch, model.encode(), recipe).backward()
        optimizer.step()
    predicted = model.eval().scorer().score_pairs(batch.users, batch.items)
    assert torch.all(predicted >= 1) and torch.all(predicted <= 5)
    assert (predicted - batch.ratings).abs().max() < 0.5, predicted
    with pytest.raises(ValueError, match="needs ratings data"):
        build_model("gcmc", graph(ratings=False))


@pytest.mark.parametrize("normalization", ["left", "symmetric"])
def test_gcmc_implicit_is_one_level_gcmc_scored_by_the_bilinear_logit(normalization):
    config = GCMCImplicitConfig(hidden_dim=6, embedding_dim=4, dropout=0.0, normalization=normalization, num_basis=2)
    model = GCMCImplicit.from_graph(graph(), config, CPU).eval()
    a = dense_adjacency(4, 5, USERS, ITEMS)
    degree = a.sum(1)
    c = degree[:, None] * np.ones_like(a) if normalization == "left" else np.sqrt(np.outer(degree, degree))
    hidden = torch.relu(torch.tensor(a / c, dtype=torch.float32) @ model.node_weights.detach())  # one level, eqs. 2-3
    encoded = model.encode()
    with torch.no_grad():
        users, items = model.user_dense(hidden[:4]), model.item_dense(hidden[4:])
        q = torch.einsum("s,sde->de", model.coefficients[0], model.basis)  # Q = sum_s a_s P_s
        expected = users @ q @ items.T  # u^T Q v for every pair
        torch.testing.assert_close(encoded.score(torch.arange(4), slice(0, 5)), expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(encoded.user_vectors, users, rtol=1e-5, atol=1e-6)


def test_gcmc_implicit_sees_every_interaction_as_one_edge_whatever_its_rating():
    with_ratings = GCMCImplicit.from_graph(graph(ratings=True), GCMCImplicitConfig(), CPU)
    repeated = GraphData(4, 5, np.concatenate([USERS, USERS[:3]]), np.concatenate([ITEMS, ITEMS[:3]]))
    for other in (with_ratings, GCMCImplicit.from_graph(repeated, GCMCImplicitConfig(), CPU)):
        assert other.degree.tolist() == [2, 3, 2, 3, 2, 2, 2, 2, 2]
        for part in ("crow", "col", "values"):
            assert torch.equal(getattr(other, f"adjacency_{part}"), getattr(with_ratings, f"adjacency_{part}"))


def test_node_dropout_drops_whole_nodes_and_rescales_the_rest_only_in_training():
    weights = torch.ones(3, 1000, 2)  # levels x nodes x width
    dropped = node_dropout(weights, 0.25, training=True)
    per_node = dropped[0, :, 0]
    assert torch.equal(per_node.unique(), torch.tensor([0.0, 1 / 0.75]))
    assert torch.equal(dropped, per_node.view(1, 1000, 1).expand(3, 1000, 2))  # every level and column of a node alike
    assert 150 < int((per_node == 0).sum()) < 350
    assert torch.equal(node_dropout(weights, 0.25, training=False), weights)


def test_pinsage_neighbours_are_the_most_visited_items_through_users_and_seeded():
    first = importance_neighbors(4, 5, USERS, ITEMS, num_neighbors=3, num_walks=200, walk_length=1, seed=3)
    again = importance_neighbors(4, 5, USERS, ITEMS, num_neighbors=3, num_walks=200, walk_length=1, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    neighbors, weights = first
    assert neighbors.shape == weights.shape == (6, 3)
    # One hop: item 0's users are 0 and 2, whose other items are 1 and 4; nothing else is reachable.
    assert sorted(neighbors[0][weights[0] > 0].tolist()) == [1, 4]
    assert (neighbors[0][weights[0] == 0] == 5).all()  # padded with the padding item
    assert np.allclose(weights[:5].sum(1), 1) and (weights[5] == 0).all()
    assert (np.diff(weights, axis=1) <= 0).all()  # most visited first


def test_pinsage_convolves_as_algorithm_1_writes_it():
    """CONVOLVE per target, written out pair by pair: n_u = sum_v alpha_uv ReLU(Q h_v + q) / sum_v alpha_uv,
    z_u = normalize(ReLU(W [h_u || n_u] + w)), twice, then the dense head."""
    model = PinSage.from_graph(graph(), PinSageConfig(embedding_dim=4, num_neighbors=2), CPU).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_()

        def convolve(item: int, depth: int) -> torch.Tensor:
            h = model.item_features.weight[item]
            if depth == 0:
                return h
            k = depth - 1  # layer 0 convolves the input features
            own = convolve(item, depth - 1)
            pooled = torch.zeros(4)
            for v, alpha in zip(model.neighbors[item].tolist(), model.weights[item].tolist()):
                pooled += alpha * torch.relu(model.pool[k](convolve(v, depth - 1)))
            pooled /= max(float(model.weights[item].sum()), 1e-12)
            return F.normalize(torch.relu(model.combine[k](torch.cat([own, pooled]))), dim=0)

        expected = torch.stack([model.head(convolve(item, model.config.num_layers)) for item in range(5)])
        torch.testing.assert_close(model.embed_items(torch.arange(5)), expected)


def test_pinsage_sampled_embeddings_match_the_catalog_and_a_step_touches_only_its_neighbourhood():
    model = PinSage.from_graph(graph(), PinSageConfig(embedding_dim=8, num_neighbors=1, inference_chunk=2), CPU).eval()
    catalog = model.scorer()
    with torch.no_grad():
        torch.testing.assert_close(model.embed_items(torch.tensor([3])), catalog.item_vectors[3:4])
    model.train()
    batch = PairBatch(torch.tensor([0]), torch.tensor([0]), torch.tensor([[2]]))
    model.loss(batch, model.encode(), resolve_recipe("pinsage")).backward()
    touched = set(torch.nonzero(model.item_features.weight.grad.abs().sum(1)).flatten().tolist())
    hood = {0, 2}
    for _ in range(2):  # two layers of one neighbour each (the padding item carries no gradient)
        hood |= {int(model.neighbors[i, 0]) for i in hood if i < 5}
    assert touched <= hood and {0, 2} <= touched
