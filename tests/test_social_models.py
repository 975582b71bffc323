"""The social models (issue 13) use the social signal, and their building blocks compute what the papers write.

- On the planted demo world (``tasks/data/demo.py``: communities share a taste, 85% of a user's edges stay in the
  community), DiffNet beats itself trained on the same data with the social edges shuffled (seeded, a margin).
- GraphRec and GraphRec+ predict ratings, and the demo world's 3 days hold too few of them to train a rating model
  (RMSE 1.27 real, 1.24 shuffled); where every user has 10-24 ratings of their own, shuffled edges did as well
  (RMSE 0.608 real, 0.550 shuffled). Friends matter for the users whose own history says little, so a planted
  rating world with cold users (2 ratings each, judged on 6 more) and homophilous edges judges them: each beats
  itself with the edges shuffled by a wide margin.
- Hand-built tiny graphs check GraphRec's segment softmax and attention pooling and DiffNet's row-normalised
  diffusion value by value.
- The ``diffnet`` importer lands the authors' files as days, on hand-built files.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from gnnrec.models.base import GraphData
from gnnrec.models.diffnet import DiffNet, DiffNetConfig
from gnnrec.models.base import PairScorer
from gnnrec.models.graphrec import (
    Aggregator, GraphRec, GraphRecConfig, gather_rows, item_item_graph, mlp, opinion_vectors, segment_softmax, split_linear,
)

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- The planted demo world as a graph -----------------------------------------------------------------------


DEMO_DAYS = 3


@dataclasses.dataclass(frozen=True)
class DemoGraph:
    graph: GraphData
    test_users: np.ndarray
    test_items: np.ndarray
    test_ratings: np.ndarray
    homophily: float


@cache
def demo_graph() -> DemoGraph:
    """The demo world (800 users, 4 communities, 400 items, 3 days: a few events per user, so friends carry
    information their own history lacks) read straight from its landing files; one
    rated pair of each user with at least 3 rated pairs (and one pair of every other user with 5+ pairs) is the
    test set."""
    import tempfile

    from gnnrec.tasks.data.demo import generate_demo_world

    with tempfile.TemporaryDirectory() as tmp:
        summary = generate_demo_world(Path(tmp), start=date(2026, 1, 1), days=DEMO_DAYS, users=800, items=400, seed=3)
        events = pl.concat(
            [pl.read_parquet(p) if p.suffix == ".parquet" else pl.read_csv(p) for p in sorted(Path(tmp, "interactions").rglob("*.*"))],
            how="diagonal_relaxed",
        ).select("user_id", "item_id", pl.col("rating").cast(pl.Float64))
        social = pl.concat([pl.read_parquet(p) for p in sorted(Path(tmp, "social").rglob("*.parquet"))])
    users = {u: k for k, u in enumerate(sorted(set(events["user_id"]) | set(social["src_user_id"]) | set(social["dst_user_id"])))}
    items = {i: k for k, i in enumerate(sorted(set(events["item_id"])))}
    u = np.array([users[x] for x in events["user_id"]])
    i = np.array([items[x] for x in events["item_id"]])
    r = events["rating"].fill_null(float("nan")).to_numpy()
    src = np.array([users[x] for x in social["src_user_id"]])
    dst = np.array([users[x] for x in social["dst_user_id"]])
    community = {users[k]: c for k, c in summary.user_community.items() if k in users}
    homophily = float(np.mean([community[a] == community[b] for a, b in zip(src, dst)]))

    rng = np.random.default_rng(1)
    test = np.zeros(len(u), dtype=bool)
    for user in np.unique(u):
        rows = rng.permutation(np.flatnonzero(u == user))
        rated = rows[~np.isnan(r[rows])]
        if len(rated) >= 3:
            test[rated[0]] = True
        elif len(rows) >= 3:
            test[rows[0]] = True
    graph = GraphData(len(users), len(items), u[~test], i[~test], r[~test], social_src=src, social_dst=dst)
    return DemoGraph(graph, u[test], i[test], r[test], homophily)


def test_the_demo_worlds_social_edges_are_homophilous():
    assert demo_graph().homophily > 0.8


def with_shuffled_friends(graph: GraphData, seed: int = 11) -> GraphData:
    """The same graph with each social edge's target drawn from a seeded permutation of all targets: out- and
    in-degrees are kept, who follows whom is not."""
    return dataclasses.replace(graph, social_dst=np.random.default_rng(seed).permutation(graph.social_dst))


def demo_recall_at_20(name: str, graph: GraphData) -> float:
    from gnnrec.models.registry import resolve_config, resolve_recipe
    from gnnrec.tasks.learn.evaluate import evaluate
    from gnnrec.tasks.learn.train import fit

    demo = demo_graph()
    model, _ = fit(name, graph, resolve_config(name), resolve_recipe(name), CPU)
    metrics = evaluate(model.scorer(), model.output, graph, demo.test_users, demo.test_items, ks=(20,))
    return next(m.value for m in metrics if m.protocol == "full" and m.name == "recall" and m.k == 20)


# Measured (default config and recipe): 0.3032 with the real edges, 0.2581 shuffled; seeds 1 and 2 of the recipe
# gave 0.3004 / 0.2525 and 0.2891 / 0.2539. With the sigmoid the paper names as s (``activation=sigmoid``) both
# were 0.2214: every user's diffused vector is squashed into (0, 1)^d, nearly the same for all, and the ranking
# came from the consumed items' mean alone.
SOCIAL_RECALL_MARGIN = 0.02


def test_diffnet_uses_the_social_edges():
    graph = demo_graph().graph
    real, shuffled = demo_recall_at_20("diffnet", graph), demo_recall_at_20("diffnet", with_shuffled_friends(graph))
    assert real > shuffled + SOCIAL_RECALL_MARGIN, (real, shuffled)


# --- A planted rating world with cold users: GraphRec and GraphRec+ read their friends ----------------------------


@dataclasses.dataclass(frozen=True)
class ColdUserWorld:
    graph: GraphData
    test_users: np.ndarray
    test_items: np.ndarray
    test_ratings: np.ndarray


@cache
def cold_user_world(seed: int = 1, users: int = 240, items: int = 80, communities: int = 4) -> ColdUserWorld:
    """Users in 4 communities rate 80 items of 4 genres: their community's genre about 4.8, the opposite genre
    about 1.2, the other two 3 (noise sd 0.4, rounded to 1..5). Every item is rated alike by the communities
    together, so an item's mean says nothing about a user. 70% of the users train on 15 ratings; the rest (cold)
    train on 2 and are judged on 6 more. Each user follows 8 others, 90% inside the community, so only the friends
    tell a cold user's taste."""
    rng = np.random.default_rng(seed)
    community = rng.integers(0, communities, users)
    genre = np.arange(items) % communities
    taste = np.full((communities, communities), 3.0)
    taste[np.arange(communities), np.arange(communities)] = 4.8
    taste[np.arange(communities), (np.arange(communities) + 2) % communities] = 1.2
    cold = rng.random(users) < 0.3
    train, test = [], []
    for user in range(users):
        picked = rng.choice(items, 8 if cold[user] else 15, replace=False)
        ratings = np.clip(np.rint(taste[community[user], genre[picked]] + rng.normal(0, 0.4, len(picked))), 1, 5)
        rows = [(user, item, rating) for item, rating in zip(picked, ratings)]
        train += rows[:2] if cold[user] else rows
        test += rows[2:] if cold[user] else []
    src, dst = [], []
    for user in range(users):
        same = np.flatnonzero((community == community[user]) & (np.arange(users) != user))
        other = np.flatnonzero(community != community[user])
        inside = int((rng.random(8) < 0.9).sum())
        dst += [*rng.choice(same, inside, replace=False), *rng.choice(other, 8 - inside, replace=False)]
        src += [user] * 8
    train_users, train_items, train_ratings = (np.array(column) for column in zip(*train))
    test_users, test_items, test_ratings = (np.array(column) for column in zip(*test))
    graph = GraphData(users, items, train_users, train_items, train_ratings.astype(np.float64),
                      social_src=np.array(src), social_dst=np.array(dst))
    return ColdUserWorld(graph, test_users, test_items, test_ratings.astype(np.float64))


def cold_user_rmse(name: str, graph: GraphData) -> float:
    """RMSE on the cold users' held-out ratings of ``name`` trained on ``graph`` with its default recipe, cut to 10
    epochs of 20 steps to keep the suite fast (on the real edges its validation RMSE is still falling there)."""
    from gnnrec.models.registry import resolve_config, resolve_recipe
    from gnnrec.tasks.learn.train import fit

    world = cold_user_world()
    recipe = dataclasses.replace(resolve_recipe(name), epochs=10, min_steps_per_epoch=20)
    model, _ = fit(name, graph, resolve_config(name), recipe, CPU)
    with torch.no_grad():
        predicted = model.scorer().score_pairs(torch.from_numpy(world.test_users), torch.from_numpy(world.test_items))
    return float(np.sqrt(np.mean((predicted.numpy() - world.test_ratings) ** 2)))


# Measured (world seeds 1 and 2): GraphRec 0.616 / 0.596 with the real edges, 1.223 / 1.218 shuffled; GraphRec+
# 0.619 / 0.617 real, 1.095 / 1.106 shuffled. Biased MF, which has no friends to read, is at 1.33 (seed 1).
COLD_USER_RMSE_MARGIN = 0.25


@pytest.mark.parametrize("name", ["graphrec", "graphrec-plus"])
def test_graphrec_reads_the_friends_of_cold_users(name):
    graph = cold_user_world().graph
    real, shuffled = cold_user_rmse(name, graph), cold_user_rmse(name, with_shuffled_friends(graph))
    assert real < shuffled - COLD_USER_RMSE_MARGIN, (real, shuffled)


# --- Hand-built graphs: exact values ----------------------------------------------------------------------------


def test_segment_softmax_normalises_each_segment_exactly():
    scores = torch.tensor([1.0, 2.0, 3.0, 0.5, -1.0, 7.0])
    segment = torch.tensor([0, 0, 0, 2, 2, 3])
    weights = segment_softmax(scores, segment, 4)
    expected = torch.cat([torch.softmax(scores[:3], 0), torch.softmax(scores[3:5], 0), torch.tensor([1.0])])
    torch.testing.assert_close(weights, expected)
    assert torch.zeros(4).index_add(0, segment, weights).tolist() == pytest.approx([1.0, 0.0, 1.0, 1.0])


def test_gather_rows_lists_each_nodes_neighbours_in_order():
    ptr = torch.tensor([0, 2, 2, 5, 6])  # node 0: entries 0-1, node 1: none, node 2: 2-4, node 3: 5
    positions, segment = gather_rows(ptr, torch.tensor([2, 1, 0, 2]))
    assert positions.tolist() == [2, 3, 4, 0, 1, 2, 3, 4]
    assert segment.tolist() == [0, 0, 0, 2, 2, 3, 3, 3]


def test_attention_with_equal_scores_is_the_mean_and_weights_follow_the_scores():
    torch.manual_seed(0)
    aggregator = Aggregator(2, dropout=0.0).eval()
    with torch.no_grad():
        aggregator.attention.out.weight.zero_()  # every score equal: the weights are 1/|N|
        aggregator.linear.weight.copy_(torch.eye(2))
        aggregator.linear.bias.zero_()
    messages = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 1.0], [4.0, 4.0]])
    segment = torch.tensor([0, 0, 0, 1])
    targets = torch.zeros(3, 2)
    pooled = aggregator(messages, segment, targets, 3)
    torch.testing.assert_close(pooled, torch.tensor([[3.0, 3.0], [4.0, 4.0], [0.0, 0.0]]))
    with torch.no_grad():  # scores = the message's first coordinate (hidden = relu(identity on the message))
        aggregator.attention.hidden.weight.zero_()
        aggregator.attention.hidden.weight[0, 0] = 1.0
        aggregator.attention.hidden.bias.zero_()
        aggregator.attention.out.weight.copy_(torch.tensor([[1.0, 0.0]]))
        aggregator.attention.out.bias.zero_()
    pooled = aggregator(messages, segment, targets, 3)
    alpha = torch.softmax(torch.tensor([1.0, 3.0, 5.0]), 0)
    torch.testing.assert_close(pooled[0], torch.relu(alpha @ messages[:3]))


def test_graphrec_plus_item_graph_keeps_the_top_co_interacted_items():
    users = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3])
    items = np.array([0, 1, 2, 0, 1, 0, 1, 0, 2])
    src, dst = item_item_graph(users, items, 4, 3, top_n=1, threshold=1)
    # item 0 shares 3 users with item 1 and 2 with item 2; item 1: 3 with 0; item 2: 2 with 0, 1 with 1
    assert list(zip(src.tolist(), dst.tolist())) == [(0, 1), (1, 0), (2, 0)]
    src, dst = item_item_graph(users, items, 4, 3, top_n=5, threshold=3)
    assert list(zip(src.tolist(), dst.tolist())) == [(0, 1), (1, 0)]


def test_graphrec_scorer_splits_the_first_layer_exactly():
    graph = demo_graph().graph
    model = GraphRec.from_graph(graph, GraphRecConfig(embedding_dim=8), CPU).eval()
    users, items = torch.tensor([0, 5, 9]), torch.tensor([3, 3, 7])
    with torch.no_grad():
        h, z = model.user_tower(model.user_factors(users)), model.item_tower(model.item_factors(items))
        direct = model.predict_from_first_layer(model.rating_first(torch.cat([h, z], dim=1)))
        torch.testing.assert_close(model.scorer().score_pairs(users, items), direct, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.encode().score_pairs(users, items), direct, rtol=1e-5, atol=1e-5)


def test_split_first_layers_equal_the_concatenated_inputs():
    torch.manual_seed(0)
    network, layer = mlp([8, 4, 4]), torch.nn.Linear(8, 4)
    nodes, opinions = torch.randn(5, 4), torch.randn(7, 4)
    levels = torch.tensor([0, 6, 3, 3, 1, 2])
    for rows in (torch.tensor([4, 0, 4, 2, 1, 3]), torch.tensor([1, 2])):  # more entries than nodes, and fewer
        expected = network(torch.cat([nodes[rows], opinions[levels[: len(rows)]]], dim=1))
        torch.testing.assert_close(opinion_vectors(network, nodes, rows, opinions, levels[: len(rows)]), expected)
    messages, segment = torch.randn(6, 4), torch.tensor([0, 0, 2, 2, 2, 1])
    torch.testing.assert_close(split_linear(layer, messages, nodes, segment), layer(torch.cat([messages, nodes[segment]], dim=1)))


def test_graphrec_grid_scores_equal_its_pair_scores():
    model = GraphRec.from_graph(demo_graph().graph, GraphRecConfig(embedding_dim=8), CPU).eval()
    scorer = model.scorer()
    scorer.pair_budget = 50  # several row blocks per call
    users = torch.tensor([0, 5, 9, 3, 2, 8, 7])
    with torch.no_grad():
        grid = scorer.score(users, slice(3, 40))
        torch.testing.assert_close(grid, PairScorer.score(scorer, users, slice(3, 40)))


def test_diffnet_diffuses_over_the_row_normalised_social_graph_exactly():
    # 0 follows 1 and 2, 1 follows 2, 2 follows nobody; 0 consumed items 0 and 1, 1 item 1, 2 nothing.
    graph = GraphData(3, 2, np.array([0, 0, 1]), np.array([0, 1, 1]), social_src=np.array([0, 0, 1]),
                      social_dst=np.array([1, 2, 2]))
    model = DiffNet.from_graph(graph, DiffNetConfig(embedding_dim=2, num_layers=1, activation="none"), CPU)
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]])
    q = torch.tensor([[1.0, 1.0], [3.0, -1.0]])
    with torch.no_grad():
        model.user_embedding.weight.copy_(p)
        model.item_embedding.weight.copy_(q)
        model.layers[0].weight.copy_(torch.cat([torch.eye(2), torch.zeros(2, 2)], dim=1))  # h' = mean of followees
        model.layers[0].bias.zero_()
    diffused = model.diffuse().detach()
    torch.testing.assert_close(diffused, torch.tensor([[2.0, 3.0], [4.0, 4.0], [0.0, 0.0]]))
    scorer = model.scorer()
    final = diffused + torch.tensor([[2.0, 0.0], [3.0, -1.0], [0.0, 0.0]])  # plus the consumed items' mean
    torch.testing.assert_close(scorer.user_vectors, final)
    torch.testing.assert_close(scorer.score(torch.arange(3), slice(0, 2)), final @ q.T)
    with torch.no_grad():  # the self half: [S h, h] with W = [0, I] keeps h
        model.layers[0].weight.copy_(torch.cat([torch.zeros(2, 2), torch.eye(2)], dim=1))
    torch.testing.assert_close(model.diffuse().detach(), p)


# --- The diffnet importer -----------------------------------------------------------------------------------------


def test_the_diffnet_importer_lands_train_and_links_then_validation_then_test(tmp_path: Path):
    from gnnrec.tasks.data.importers import ImportOptionError, import_dataset

    folder = tmp_path / "yelp"
    folder.mkdir()
    (folder / "yelp.train.rating").write_text("0\t5\t1\n0\t6\t1\n1\t5\t1\n")
    (folder / "yelp.val.rating").write_text("1\t7\t1\n")
    (folder / "yelp.test.rating").write_text("0\t7\t1\n2\t5\t1\n")
    (folder / "yelp.links").write_text("0\t1\t1\n1\t0\t1\n0\t1\t1\n2\t2\t1\n")
    summary = import_dataset("diffnet", folder, tmp_path / "landing", day=date(2020, 1, 3))
    assert summary.days == [date(2020, 1, 1), date(2020, 1, 2), date(2020, 1, 3)]
    assert summary.rows == {"interactions": 6, "social": 2}
    landed = {
        str(p.relative_to(tmp_path / "landing")): pl.read_parquet(p).rows()
        for p in sorted((tmp_path / "landing").rglob("*.parquet"))
    }
    assert landed == {
        "interactions/ds=2020-01-01/diffnet.parquet": [
            ("0", "5", "visit", "2020-01-01T00:00:00Z"), ("0", "6", "visit", "2020-01-01T00:00:00Z"),
            ("1", "5", "visit", "2020-01-01T00:00:00Z"),
        ],
        "interactions/ds=2020-01-02/diffnet.parquet": [("1", "7", "visit", "2020-01-02T00:00:00Z")],
        "interactions/ds=2020-01-03/diffnet.parquet": [
            ("0", "7", "visit", "2020-01-03T00:00:00Z"), ("2", "5", "visit", "2020-01-03T00:00:00Z"),
        ],
        "social/ds=2020-01-01/diffnet.parquet": [("0", "1"), ("1", "0")],
    }
    with pytest.raises(ImportOptionError, match="--seed does not apply"):
        import_dataset("diffnet", folder, tmp_path / "other", seed=3)
    (folder / "yelp.links").write_text("0\tx\t1\n")
    with pytest.raises(ValueError, match="yelp.links, line 1: dst_user_id must be a non-negative integer"):
        import_dataset("diffnet", folder, tmp_path / "other")
