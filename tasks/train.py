"""Train: fit the selected model on a day's graph with mini-batch BPR, seeded and deterministic on CPU."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from models.base import GraphData, Recommender, TrainingBatch
from models.registry import ModelHyperparameters, build_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingConfig:
    """How to fit a model.

    ``sampling`` picks what one epoch visits: every training pair once (``pair``), or as many (user, random
    positive) draws with users drawn uniformly (``user``), as the LightGCN authors' code does. The learning rate is
    multiplied by ``lr_decay`` after every epoch from ``lr_decay_start`` on: large early steps for speed, small late
    ones to settle in a minimum instead of rattling around it. ``negatives`` per positive share one forward pass,
    so more of them add signal to each (costly) graph propagation almost for free. ``negative_sampling`` says what
    the loss does with them: ``uniform`` averages BPR over all of them, ``dynamic`` keeps only the one the model
    scores highest (Zhang et al., SIGIR 2013), which spends each propagation on the pairs still ranked wrong.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    sampling: Literal["pair", "user"] = "pair"
    lr_decay: float = 1.0
    lr_decay_start: int = 0
    negatives: int = 1
    negative_sampling: Literal["uniform", "dynamic"] = "uniform"


@dataclass(frozen=True)
class TrainingReport:
    epoch_losses: list[float]
    seconds: float

    @property
    def final_loss(self) -> float | None:
        return self.epoch_losses[-1] if self.epoch_losses else None


class NegativeSampler:
    """Uniform negatives for BPR: items the user has not interacted with in training."""

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


def learning_rate_factor(config: TrainingConfig, epochs_done: int) -> float:
    """The factor on the base learning rate for the epoch after ``epochs_done`` epochs."""
    return config.lr_decay ** max(0, epochs_done - config.lr_decay_start + 1)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def is_trainable(model: Recommender) -> bool:
    return any(p.requires_grad for p in model.parameters())


def fit(
    model_name: str,
    graph: GraphData,
    hyperparameters: ModelHyperparameters,
    config: TrainingConfig,
    device: torch.device,
    on_epoch: Callable[[int, float, Recommender], None] | None = None,
) -> tuple[Recommender, TrainingReport]:
    """Build the named model for ``graph`` and train it; the same inputs and seed give the same model on CPU."""
    seed_everything(config.seed)
    with deterministic_kernels(device):
        model = build_model(model_name, graph, hyperparameters, device)
        report = train(model, graph, config, device, on_epoch)
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
    model: Recommender,
    graph: GraphData,
    config: TrainingConfig,
    device: torch.device,
    on_epoch: Callable[[int, float, Recommender], None] | None = None,
) -> TrainingReport:
    """Mini-batch BPR: each epoch draws ``len(train pairs)`` positives (see :class:`TrainingConfig`), one sampled
    negative each."""
    started = time.perf_counter()
    if not is_trainable(model) or len(graph.train_users) == 0:
        return TrainingReport([], time.perf_counter() - started)
    rng = np.random.default_rng(config.seed)
    sampler = NegativeSampler(graph.train_users, graph.train_items, graph.num_items, rng)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda done: learning_rate_factor(config, done))
    losses: list[float] = []
    model.train()
    for epoch in range(config.epochs):
        epoch_users, epoch_items = epoch_pairs(
            graph.train_users, graph.train_items, graph.num_users, config.sampling, rng
        )
        total, batches = 0.0, 0
        for start in range(0, len(epoch_users), config.batch_size):
            users = epoch_users[start : start + config.batch_size]
            batch = TrainingBatch(
                users=torch.from_numpy(users).to(device),
                pos_items=torch.from_numpy(epoch_items[start : start + config.batch_size]).to(device),
                neg_items=torch.from_numpy(negatives_for(sampler, users, config.negatives)).to(device),
                hardest_negative=config.negative_sampling == "dynamic",
            )
            optimizer.zero_grad(set_to_none=True)
            loss = model.training_loss(batch)
            loss.backward()
            optimizer.step()
            total += loss.item()
            batches += 1
        schedule.step()
        losses.append(total / batches)
        log.info("epoch %d/%d loss %.5f", epoch + 1, config.epochs, losses[-1])
        if on_epoch is not None:
            on_epoch(epoch + 1, losses[-1], model)
    model.eval()
    return TrainingReport(losses, time.perf_counter() - started)


def save_checkpoint(path: Path, model: Recommender, model_name: str, metadata: dict) -> Path:
    """Write the trained weights with what is needed to rebuild the model (its name and the graph's cut-off)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    torch.save({"model": model_name, "state": model.state_dict(), **metadata}, staging)
    staging.replace(path)
    return path


def load_checkpoint(path: Path, model: Recommender, device: torch.device) -> dict:
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(checkpoint["state"])
    model.eval()
    return checkpoint
