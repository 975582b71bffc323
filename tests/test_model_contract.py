"""Every registered model honours the contract (models/base.py): one test per property, parametrized over MODELS.

A small planted world (users in taste clusters, items with a global popularity skew) is built in memory; each model
trains on it with its own default recipe, unchanged, so the test also shows that the recipes carry over to data far
smaller than the one they were tuned on.
"""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import pytest
import torch

from gnnrec.models.base import OUTPUT_KINDS, GraphData, Input, Model, PairBatch, RatingBatch, Recipe, Scorer, TripleBatch
from gnnrec.models.registry import MODELS, build_model, resolve_config, resolve_recipe
from gnnrec.tasks.learn.evaluate import evaluate
from gnnrec.tasks.learn.train import fit, load_checkpoint, save_checkpoint

CPU = torch.device("cpu")
NAMES = list(MODELS)
# How much better than popularity a model of each output kind must be on the planted world.
RECALL_MARGIN = 1.5  # ranking: Recall@20 at least this many times popularity's
RMSE_MARGIN = 0.8  # rating: RMSE at most this share of the global-mean predictor's
AUC_MARGIN = 0.05  # logit: ctr AUC at least this much above popularity's


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: on a shared 2-core machine a second torch thread only waits for the first (10x slower
    under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclasses.dataclass(frozen=True)
class World:
    graph: GraphData
    test_users: np.ndarray
    test_items: np.ndarray
    test_ratings: np.ndarray


@cache
def planted_world() -> World:
    """400 users in 8 taste clusters of 30 items each (240 items); each user has 12-30 interactions, 85% inside
    their cluster, the rest anywhere, every draw skewed towards popular items. A fifth of each user's pairs is the
    test set. Every pair carries a 1-5 rating (drawn after the pairs, so the pairs do not depend on it): about 4
    inside the user's cluster and 2 outside, plus an item quality and noise, for the models that learn from
    ratings."""
    rng = np.random.default_rng(5)
    num_users, clusters, per_cluster = 400, 8, 30
    num_items = clusters * per_cluster
    popularity = rng.permutation(1.0 / np.arange(1, num_items + 1) ** 0.6)
    users, items = [], []
    for user in range(num_users):
        cluster = user % clusters
        inside = np.arange(cluster * per_cluster, (cluster + 1) * per_cluster)
        count = int(rng.integers(12, 31))
        chosen: set[int] = set()
        while len(chosen) < count:
            pool = inside if rng.random() < 0.85 else np.arange(num_items)
            weights = popularity[pool] / popularity[pool].sum()
            chosen.add(int(rng.choice(pool, p=weights)))
        picked = rng.permutation(sorted(chosen))
        users += [user] * len(picked)
        items += picked.tolist()
    users, items = np.array(users), np.array(items)
    test = np.zeros(len(users), dtype=bool)
    for user in range(num_users):
        rows = np.flatnonzero(users == user)
        test[rows[: len(rows) // 5]] = True
    ratings, social_src, social_dst = planted_ratings_and_friends(users, items, num_users, num_items, clusters, per_cluster)
    graph = GraphData(
        num_users=num_users, num_items=num_items, train_users=users[~test], train_items=items[~test],
        train_ratings=ratings[~test], social_src=social_src, social_dst=social_dst,
    )
    return World(graph, users[test], items[test], ratings[test])


def planted_ratings_and_friends(users, items, num_users, num_items, clusters, per_cluster):
    """Ratings and social edges for the same world, from their own random stream (so the pairs above, and every
    model that ignores ratings and friends, are unchanged): a rating is 4 inside the user's cluster and 2 outside,
    plus a user and an item offset and noise, rounded into 1..5; each user follows about 5 others, 85% of them in
    their own cluster (homophily)."""
    rng = np.random.default_rng(55)
    user_offset = rng.normal(0, 0.5, num_users)
    item_offset = rng.normal(0, 0.5, num_items)
    inside = (items // per_cluster) == (users % clusters)
    raw = np.where(inside, 4.0, 2.0) + user_offset[users] + item_offset[items] + rng.normal(0, 0.3, len(users))
    ratings = np.clip(np.rint(raw), 1, 5)
    src = np.repeat(np.arange(num_users), rng.poisson(5, num_users))
    same = rng.random(len(src)) < 0.85
    members = rng.integers(0, num_users // clusters, len(src)) * clusters
    dst = np.where(same, members + src % clusters, rng.integers(0, num_users, len(src)))
    keep = src != dst
    pairs = np.unique(np.stack([src[keep], dst[keep]]), axis=1)
    return ratings, pairs[0], pairs[1]


@cache
def planted_kg_world() -> World:
    """The planted world plus a KG over its items (entity ``i`` is item ``i``): each item ``belongs_to`` its taste
    cluster's attribute entity (240..247), is ``related_to`` another item of its cluster, and ``mentions`` one of
    16 random entities (248..263), which carry no taste. For the models that need a KG; the pairs are the planted
    world's."""
    world = planted_world()
    rng = np.random.default_rng(6)
    items = np.arange(world.graph.num_items)
    clusters = items // 30
    related = clusters * 30 + (items % 30 + rng.integers(1, 30, len(items))) % 30
    heads = np.concatenate([items, items, items])
    relations = np.repeat([0, 1, 2], len(items))
    tails = np.concatenate([240 + clusters, related, 248 + rng.integers(0, 16, len(items))])
    graph = dataclasses.replace(
        world.graph, num_entities=264, num_relations=3, kg_head=heads, kg_relation=relations, kg_tail=tails,
        item_entity=items,
    )
    return World(graph, world.test_users, world.test_items, world.test_ratings)


def world_for(name: str) -> World:
    return planted_kg_world() if Input.KG in MODELS[name].needs else planted_world()


@cache
def trained(name: str) -> tuple[Model, object]:
    """The model trained on the planted world (with its KG where it needs one), default config and recipe."""
    return fit(name, world_for(name).graph, resolve_config(name), resolve_recipe(name), CPU)


def ctr_auc(model: Model) -> float:
    world = planted_world()
    metrics = evaluate(model.scorer(), model.output, world.graph, world.test_users, world.test_items, protocol="ctr")
    return next(m.value for m in metrics if m.protocol == "ctr" and m.name == "auc")


def recall_at_20(model: Model) -> float:
    world = planted_world()
    metrics = evaluate(model.scorer(), model.output, world.graph, world.test_users, world.test_items, ks=(20,))
    return next(m.value for m in metrics if m.protocol == "full" and m.name == "recall" and m.k == 20)


def rmse(model: Model) -> float:
    world = planted_world()
    metrics = evaluate(
        model.scorer(), model.output, world.graph, world.test_users, world.test_items, test_ratings=world.test_ratings,
        ks=(20,),
    )
    return next(m.value for m in metrics if m.protocol == "rating" and m.name == "rmse")


@pytest.mark.parametrize("name", NAMES)
def test_the_class_declares_the_contract(name):
    cls = MODELS[name]
    assert cls.name == name and cls.summary and "\n" not in cls.summary
    assert cls.output in OUTPUT_KINDS
    assert cls.batches and all(kind in (PairBatch, RatingBatch, TripleBatch) for kind in cls.batches)
    assert dataclasses.is_dataclass(cls.Config) and cls.Config.__dataclass_params__.frozen
    assert isinstance(cls.recipe, Recipe)
    with pytest.raises(ValueError, match="unknown model .* option 'no_such_option'; valid: "):
        resolve_config(name, {"no_such_option": "1"})


@pytest.mark.parametrize("name", NAMES)
def test_scores_have_the_contracts_shapes_and_score_agrees_with_score_pairs(name):
    model, _ = trained(name)
    assert not model.training  # fit leaves the model in eval mode
    scorer = model.scorer()
    assert isinstance(scorer, Scorer)
    users = torch.tensor([0, 7, 399, 7])
    block = scorer.score(users, slice(5, 65))
    assert block.shape == (4, 60) and block.dtype == torch.float32 and torch.isfinite(block).all()
    items = torch.arange(5, 65).expand(4, 60)
    torch.testing.assert_close(scorer.score_pairs(users, items), block, rtol=1e-5, atol=1e-6)
    flat = scorer.score_pairs(users.repeat_interleave(60), items.reshape(-1))
    assert flat.shape == (240,)
    torch.testing.assert_close(flat.reshape(4, 60), block, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_the_loss_falls(name):
    model, report = trained(name)
    if not model.trainable:
        assert report.epoch_losses == []
        return
    assert report.epoch_losses[-1] < 0.7 * report.epoch_losses[0], report.epoch_losses


@pytest.mark.parametrize("name", NAMES)
def test_training_is_deterministic_on_cpu(name):
    graph = world_for(name).graph
    recipe = resolve_recipe(name, {"epochs": min(3, resolve_recipe(name).epochs), "eval_every": 1, "seed": 9})
    first, first_report = fit(name, graph, resolve_config(name), recipe, CPU)
    second, second_report = fit(name, graph, resolve_config(name), recipe, CPU)
    assert first_report.epoch_losses == second_report.epoch_losses
    assert first_report.validation == second_report.validation
    for (key, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), key


@pytest.mark.parametrize("name", NAMES)
def test_a_checkpoint_rebuilds_the_model_without_the_graph(name, tmp_path):
    model, _ = trained(name)
    path = save_checkpoint(tmp_path / "model.pt", model, {"as_of": "2026-01-09", "ds": "2026-01-10"})
    restored, meta = load_checkpoint(path, CPU)
    assert type(restored) is type(model) and restored.config == model.config and restored.sizes() == model.sizes()
    assert meta == {"as_of": "2026-01-09", "ds": "2026-01-10"}
    assert not restored.training
    users = torch.arange(0, 400, 7)
    assert torch.equal(restored.scorer().score(users, slice(0, 240)), model.scorer().score(users, slice(0, 240)))


@pytest.mark.parametrize("name", [n for n in NAMES if n != "pop"])
def test_it_beats_popularity_on_the_planted_world(name):
    model, _ = trained(name)
    popularity = recall_at_20(trained("pop")[0])
    assert popularity > 0.05  # popularity is a real signal here
    if model.output == "ranking":
        assert recall_at_20(model) > RECALL_MARGIN * popularity, (recall_at_20(model), popularity)
    elif model.output == "rating":
        # Popularity predicts no rating: the rating baseline is the global mean of the training ratings.
        world = planted_world()
        baseline = float(np.sqrt(((world.test_ratings - np.nanmean(world.graph.train_ratings)) ** 2).mean()))
        ours = rmse(model)
        assert ours < RMSE_MARGIN * baseline, (ours, baseline)
    elif model.output == "logit":
        assert ctr_auc(model) > ctr_auc(trained("pop")[0]) + AUC_MARGIN, (ctr_auc(model), ctr_auc(trained("pop")[0]))
    else:
        pytest.fail(f"no margin defined for {model.output} models yet")


def test_build_model_refuses_an_input_the_day_lacks():
    class NeedsSocial(MODELS["mf"]):
        needs = frozenset({"social"})

    MODELS["needs-social"] = NeedsSocial
    try:
        with pytest.raises(ValueError, match="model 'needs-social' needs social data"):
            build_model("needs-social", without_friends(planted_world().graph), None, CPU)
    finally:
        del MODELS["needs-social"]


def without_friends(graph: GraphData) -> GraphData:
    return dataclasses.replace(graph, social_src=np.empty(0, np.int64), social_dst=np.empty(0, np.int64))


@pytest.mark.parametrize("name", [n for n in NAMES if MODELS[n].needs - {"interactions"}])
def test_a_model_refuses_a_day_without_an_input_it_needs(name):
    graph = planted_world().graph
    for missing, day in (("social", without_friends(graph)), ("ratings", dataclasses.replace(graph, train_ratings=None))):
        if missing in MODELS[name].needs:
            with pytest.raises(ValueError, match=f"model '{name}' needs {missing} data, which the landing data"):
                build_model(name, day, None, CPU)
