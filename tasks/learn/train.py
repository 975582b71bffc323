"""Train: fit a registered model on a day's graph by its recipe, seeded and deterministic on CPU.

One loop, read top to bottom in :func:`train`: carve a validation part out of the training pairs (when the recipe
asks for one), build the model on what is left, then per epoch: run the epoch (the trainer's own, or the model's
``train_epoch`` hook), step the learning-rate schedule, judge the model on the validation part every
``eval_every`` epochs, report to ``on_epoch``, and stop once ``patience`` judgements in a row brought no
improvement (keeping the best judged weights).

The trainer builds every batch a model trains on (:class:`models.base.PairBatch`, ``RatingBatch``,
``TripleBatch``): which pairs an epoch visits, how many negatives, and, for dynamic negative sampling, which of the
K candidates is the hardest (scored by the model's own ``score_pairs`` under ``no_grad``) are the recipe's choices,
made here.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnnrec.models.base import (
    DEFAULT_MONITOR, MONITORS, GraphData, Model, PairBatch, RatingBatch, Recipe, Scorer, TripleBatch,
)
from gnnrec.models.registry import MODELS, build_model, model_class

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 2


@dataclass(frozen=True)
class EpochProgress:
    """What ``on_epoch`` gets after every epoch. ``epochs`` is the budget (training may stop before it);
    ``validation`` is the monitored metric (``monitor``, e.g. ``recall@20``) when it was judged this epoch. The
    model is in eval mode while the callback runs, so it may score it."""

    epoch: int
    epochs: int
    loss: float
    seconds: float
    validation: float | None
    monitor: str | None
    model: Model


@dataclass(frozen=True)
class TrainingReport:
    epoch_losses: list[float]
    seconds: float
    epochs_planned: int = 0
    batch_size: int = 0
    validation_pairs: int = 0
    validation: list[tuple[int, float]] = field(default_factory=list)
    monitor: str | None = None
    best_epoch: int | None = None
    stopped_early: bool = False

    @property
    def final_loss(self) -> float | None:
        return self.epoch_losses[-1] if self.epoch_losses else None


# --- Sampling ----------------------------------------------------------------------------------------------------


class NegativeSampler:
    """Uniform negatives: items the user has not interacted with in training."""

    def __init__(self, users: np.ndarray, items: np.ndarray, num_items: int, rng: np.random.Generator) -> None:
        self.num_items = num_items
        self.rng = rng
        self.observed = np.unique(users.astype(np.int64) * num_items + items.astype(np.int64))

    def is_observed(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.num_items + items
        position = np.searchsorted(self.observed, keys).clip(max=len(self.observed) - 1)
        return self.observed[position] == keys

    def sample(self, users: np.ndarray, max_rounds: int = 50) -> np.ndarray:
        negatives = self.rng.integers(0, self.num_items, size=len(users))
        # Rejection sampling: with sparse data almost every draw is a true negative after a round or two. A user who
        # has seen nearly every item keeps what the last round drew rather than looping forever.
        for _ in range(max_rounds):
            clash = self.is_observed(users, negatives)
            if not clash.any():
                break
            negatives[clash] = self.rng.integers(0, self.num_items, size=int(clash.sum()))
        return negatives


def epoch_pairs(
    users: np.ndarray, items: np.ndarray, num_users: int, sampling: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The (user, positive item) pairs of one epoch, in visiting order; always ``len(users)`` of them."""
    if sampling == "pair":
        order = rng.permutation(len(users))
        return users[order], items[order]
    # User-uniform: light users weigh as much as heavy ones, which is what a per-user average metric rewards.
    by_user = np.argsort(users, kind="stable")
    degree = np.bincount(users, minlength=num_users)
    starts = np.concatenate([[0], np.cumsum(degree)[:-1]])
    active = np.flatnonzero(degree)
    drawn = active[rng.integers(0, len(active), size=len(users))]
    offsets = (rng.random(len(users)) * degree[drawn]).astype(np.int64)
    return drawn, items[by_user[starts[drawn] + offsets]]


def negatives_for(sampler: NegativeSampler, users: np.ndarray, count: int) -> np.ndarray:
    """``count`` negatives per user: a ``B`` vector for one, ``B x count`` for more."""
    if count == 1:
        return sampler.sample(users)
    return sampler.sample(np.repeat(users, count)).reshape(len(users), count)


def hardest_negatives(encoded: Scorer, users: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """For each row of ``candidates`` (``B x K``), the one the model scores highest for its user, chosen without
    gradient (dynamic negative sampling, Zhang et al., SIGIR 2013): the loss then trains on the mistakes that
    cost ranking quality."""
    with torch.no_grad():
        scores = encoded.score_pairs(users, candidates)
        best = scores.argmax(dim=1, keepdim=True)
    return candidates.gather(1, best).squeeze(1)


def learning_rate_factor(recipe: Recipe, epochs_done: int) -> float:
    """The factor on the base learning rate for the epoch after ``epochs_done`` epochs."""
    return recipe.lr_decay ** max(0, epochs_done - recipe.lr_decay_start + 1)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def is_trainable(model: Model) -> bool:
    return any(p.requires_grad for p in model.parameters())


# --- Validation part ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationPart:
    """Training pairs held out of training to judge the model by while it trains."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None


def carve_validation(
    graph: GraphData, recipe: Recipe, output: str, rng: np.random.Generator
) -> tuple[GraphData, ValidationPart | None]:
    """Split ``graph``'s training pairs into what trains and a validation part: ``validation_share`` of the pairs
    (at most ``validation_max_pairs``), one random pair each from random users with at least 3 training pairs
    (rated pairs only for rating models). Nothing of the test day is ever here: ``graph`` is the training graph."""
    wanted = min(int(round(recipe.validation_share * len(graph.train_users))), recipe.validation_max_pairs)
    if wanted <= 0:
        return graph, None
    degree = np.bincount(graph.train_users, minlength=graph.num_users)
    eligible = degree[graph.train_users] >= 3
    if output == "rating":
        eligible &= graph.train_ratings is not None and ~np.isnan(graph.train_ratings)
    candidates = rng.permutation(np.flatnonzero(eligible))
    _, first = np.unique(graph.train_users[candidates], return_index=True)  # one random pair per user
    chosen = candidates[np.sort(first)][:wanted]
    if len(chosen) == 0:
        return graph, None
    keep = np.ones(len(graph.train_users), dtype=bool)
    keep[chosen] = False
    ratings = graph.train_ratings
    training = replace(
        graph, train_users=graph.train_users[keep], train_items=graph.train_items[keep],
        train_ratings=None if ratings is None else ratings[keep],
    )
    part = ValidationPart(graph.train_users[chosen], graph.train_items[chosen], None if ratings is None else ratings[chosen])
    return training, part


def judge(model: Model, graph: GraphData, part: ValidationPart, monitor: str, seed: int, device: torch.device) -> float:
    """The ``monitor`` metric of ``model`` (trained on ``graph``) on the validation part."""
    from gnnrec.tasks.learn.evaluate import ctr, full_ranking, rating

    name, k, _ = MONITORS[monitor]
    scorer = model.scorer()
    no_items = np.empty(0, np.int64)
    if name in ("recall", "ndcg"):
        figures = full_ranking(scorer, graph, part.users, part.items, no_items, device, ks=(k,))
        return figures[name, k]
    if name in ("rmse", "mae"):
        return rating(scorer, part.users, part.items, part.ratings, device)[name]
    return ctr(scorer, graph, part.users, part.items, no_items, seed, device, with_f1=False)[name]


# --- Epochs ------------------------------------------------------------------------------------------------------


@dataclass
class EpochContext:
    """What an epoch function works with: the model, its training graph, the recipe, the optimiser.

    ``batches(kind)`` yields one epoch of batches of ``kind`` (a pair batch's ``negatives`` are the K uniform
    candidates, B x K, or B when K = 1); ``step(batch)`` makes one optimiser step on it: ``model.encode()``, the
    hardest candidate per row when the recipe samples negatives dynamically, ``model.loss``, backward, update; it
    returns the loss. ``step_loss(loss)`` makes a step on a loss the epoch function computed itself.
    A model's ``train_epoch`` hook (KGAT: a BPR pass, a KG pass, an attention refresh) is written with these.
    """

    model: Model
    graph: GraphData
    recipe: Recipe
    device: torch.device
    rng: np.random.Generator
    optimizer: torch.optim.Optimizer
    batch_size: int
    sampler: NegativeSampler | None = None

    def batches(self, kind: type) -> Iterator[Any]:
        if kind is PairBatch:
            yield from self._pair_batches()
        elif kind is RatingBatch:
            yield from self._rating_batches()
        elif kind is TripleBatch:
            yield from self._triple_batches()
        else:
            raise TypeError(f"the trainer builds no {kind.__name__} batches")

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def _pair_batches(self) -> Iterator[PairBatch]:
        graph, recipe = self.graph, self.recipe
        if self.sampler is None:
            self.sampler = NegativeSampler(graph.train_users, graph.train_items, graph.num_items, self.rng)
        users, items = epoch_pairs(graph.train_users, graph.train_items, graph.num_users, recipe.sampling, self.rng)
        for start in range(0, len(users), self.batch_size):
            batch_users = users[start : start + self.batch_size]
            negatives = negatives_for(self.sampler, batch_users, recipe.negatives)
            yield PairBatch(self._tensor(batch_users), self._tensor(items[start : start + self.batch_size]), self._tensor(negatives))

    def _rating_batches(self) -> Iterator[RatingBatch]:
        graph = self.graph
        ratings = graph.train_ratings if graph.train_ratings is not None else np.full(len(graph.train_users), np.nan)
        rated = np.flatnonzero(~np.isnan(ratings))
        order = rated[self.rng.permutation(len(rated))]
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            yield RatingBatch(
                self._tensor(graph.train_users[chosen]), self._tensor(graph.train_items[chosen]),
                self._tensor(ratings[chosen].astype(np.float32)),
            )

    def _triple_batches(self) -> Iterator[TripleBatch]:
        graph = self.graph
        order = self.rng.permutation(len(graph.kg_head))
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            corrupted = self.rng.integers(0, max(graph.num_entities, 1), size=len(chosen))
            yield TripleBatch(
                self._tensor(graph.kg_head[chosen]), self._tensor(graph.kg_relation[chosen]),
                self._tensor(graph.kg_tail[chosen]), self._tensor(corrupted),
            )

    def step(self, batch: Any) -> float:
        encoded = self.model.encode()
        if isinstance(batch, PairBatch) and self.recipe.negative_sampling == "dynamic" and batch.negatives.dim() == 2:
            batch = PairBatch(batch.users, batch.positives, hardest_negatives(encoded, batch.users, batch.negatives))
        return self.step_loss(self.model.loss(batch, encoded, self.recipe))

    def step_loss(self, loss: torch.Tensor) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()


def trainer_epoch(model: Model, context: EpochContext) -> float:
    """The trainer's own epoch: one pass of batches of the model's batch type, one step each; the mean loss."""
    if len(model.batches) != 1:
        raise TypeError(
            f"{type(model).__name__} trains on {len(model.batches)} batch types; it must supply train_epoch"
        )
    losses = [context.step(batch) for batch in context.batches(model.batches[0])]
    return float(np.mean(losses)) if losses else 0.0


def examples_per_epoch(model: Model, graph: GraphData) -> int:
    kind = model.batches[0]
    if kind is RatingBatch:
        return 0 if graph.train_ratings is None else int((~np.isnan(graph.train_ratings)).sum())
    if kind is TripleBatch:
        return len(graph.kg_head)
    return len(graph.train_users)


# --- Fitting -----------------------------------------------------------------------------------------------------


def fit(
    name: str,
    graph: GraphData,
    config: Any,
    recipe: Recipe,
    device: torch.device,
    on_epoch: Callable[[EpochProgress], None] | None = None,
) -> tuple[Model, TrainingReport]:
    """Build the named model for ``graph`` with ``config`` and train it by ``recipe``; the same inputs give the same
    model on CPU. With a validation part, the model is built on the training pairs without it."""
    cls = model_class(name)
    seed_everything(recipe.seed)
    training, part = carve_validation(graph, recipe, cls.output, np.random.default_rng([recipe.seed, 1]))
    with deterministic_kernels(device):
        model = build_model(name, training, config, device)
        report = train(model, training, recipe, device, on_epoch, part)
    return model, report


@contextlib.contextmanager
def deterministic_kernels(device: torch.device) -> Iterator[None]:
    """On CPU, ask torch for its deterministic kernels while training, then restore the caller's setting.

    Without it, the scatter-add behind the backward of an embedding gather sums duplicate rows in an order that
    varies between runs, so LightGCN's weights (and published scores) drift in the last bits from run to run.
    """
    if device.type != "cpu":
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def train(
    model: Model,
    graph: GraphData,
    recipe: Recipe,
    device: torch.device,
    on_epoch: Callable[[EpochProgress], None] | None = None,
    validation: ValidationPart | None = None,
) -> TrainingReport:
    """Train ``model`` (built on ``graph``) by ``recipe``; see the module docstring. Leaves it in eval mode."""
    started = time.perf_counter()
    examples = examples_per_epoch(model, graph)
    if not is_trainable(model) or examples == 0 or recipe.epochs == 0:
        model.eval()
        return TrainingReport([], time.perf_counter() - started)
    monitor = (recipe.monitor or DEFAULT_MONITOR[model.output]) if validation is not None else None
    higher_is_better = MONITORS[monitor][2] if monitor else True
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=recipe.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda done: learning_rate_factor(recipe, done))
    context = EpochContext(
        model, graph, recipe, device, np.random.default_rng(recipe.seed), optimizer, recipe.steps_batch_size(examples)
    )
    run_epoch = type(model).train_epoch or trainer_epoch
    losses: list[float] = []
    judged: list[tuple[int, float]] = []
    best: tuple[float, int, dict] | None = None  # (value, epoch, weights)
    since_best, stopped_early = 0, False
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        losses.append(run_epoch(model, context))
        schedule.step()
        model.eval()
        value = None
        if validation is not None and (epoch % recipe.eval_every == 0 or epoch == recipe.epochs):
            with torch.no_grad():
                value = judge(model, graph, validation, monitor, recipe.seed, device)
            judged.append((epoch, value))
            if best is None or (value > best[0] if higher_is_better else value < best[0]):
                best, since_best = (value, epoch, copy.deepcopy(model.state_dict())), 0
            else:
                since_best += 1
        log.info("epoch %d/%d loss %.5f%s", epoch, recipe.epochs, losses[-1], "" if value is None else f" {monitor} {value:.4f}")
        if on_epoch is not None:
            on_epoch(EpochProgress(epoch, recipe.epochs, losses[-1], time.perf_counter() - started, value, monitor, model))
        if recipe.patience and since_best >= recipe.patience:
            stopped_early = True
            break
    if stopped_early and best is not None:
        # Stopped after `patience` judgements without improvement: keep the best judged weights. A budget that runs
        # out keeps the final weights, which had not shown a sustained decline.
        model.load_state_dict(best[2])
    model.eval()
    return TrainingReport(
        losses, time.perf_counter() - started, recipe.epochs, context.batch_size,
        0 if validation is None else len(validation.users), judged, monitor,
        None if best is None else best[1], stopped_early,
    )


# --- Checkpoints -------------------------------------------------------------------------------------------------


def save_checkpoint(path: Path, model: Model, meta: dict) -> Path:
    """Write a checkpoint that describes itself: the model's name, config, sizes and state (graph-derived buffers
    included, e.g. LightGCN's adjacency), and ``meta`` (e.g. ``as_of``, ``ds``; plain JSON-like values). Written to
    a temporary file and renamed, so a reader never sees half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "model": model.name,
            "config": dataclasses.asdict(model.config),
            "sizes": model.sizes(),
            "state": model.state_dict(),
            "meta": dict(meta),
        },
        staging,
    )
    staging.replace(path)
    return path


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> tuple[Model, dict]:
    """Rebuild the model a checkpoint describes, without any graph; returns it (in eval mode) and its ``meta``."""
    checkpoint = torch.load(path, map_location=torch.device(device), weights_only=True)
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a gnnrec checkpoint of format {CHECKPOINT_FORMAT}")
    name = checkpoint["model"]
    if name not in MODELS:
        raise ValueError(f"{path} holds model {name!r}, which this gnnrec does not know")
    cls = MODELS[name]
    config = cls.Config(**checkpoint["config"])
    model = cls.from_state(checkpoint["sizes"], config, checkpoint["state"], torch.device(device))
    model.eval()
    return model, checkpoint["meta"]
