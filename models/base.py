"""The contract every recommender in gnnrec honours.

The trainer, the evaluator and the publisher only ever talk to a model through this contract, so none of them
branches on a model's name. A model class declares, as class attributes:

- ``name`` and ``summary``: its registry name and a one-line description;
- ``needs``: the inputs beyond interactions it learns from (:class:`Input`);
- ``output``: what its score means (``ranking``: a preference, ``rating``: a predicted rating on the data's scale,
  ``logit``: a click probability's logit), which decides the metrics it is judged by;
- ``batches``: the batch types it trains on (:class:`PairBatch`, :class:`RatingBatch`, :class:`TripleBatch`),
  which the trainer builds for it;
- ``Config``: a frozen dataclass of its architecture options, defaulting to the paper's values;
- ``recipe``: its default training :class:`Recipe`, the best one we know.

and implements :meth:`Model.from_graph` / :meth:`Model.from_state` (build for a day's graph / rebuild from a
checkpoint, without the graph), :meth:`Model.encode` (the shared forward pass of one training step),
:meth:`Model.loss` and, optionally, :meth:`Model.train_epoch` for an unusual schedule.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from gnnrec.tasks.learn.train import EpochContext

OutputKind = Literal["ranking", "rating", "logit"]
OUTPUT_KINDS: tuple[str, ...] = ("ranking", "rating", "logit")

# The most (user, item) pairs a non-inner-product scorer evaluates at once, whatever the batch or catalog size.
DEFAULT_PAIR_BUDGET = 1 << 20


class Input(enum.StrEnum):
    """The raw sources a model can learn from, beyond implicit user-item interactions."""

    INTERACTIONS = "interactions"
    RATINGS = "ratings"
    SOCIAL = "social"
    KG = "kg"


@dataclass(frozen=True)
class GraphData:
    """Everything a model may be built from, as dense internal indices (``0..n-1``), all as of one day.

    ``train_users[k], train_items[k]`` is the k-th distinct training interaction (user, item); ``train_ratings`` is
    its explicit rating where the source had one (NaN otherwise). Social edges are directed ``src -> dst``; KG
    triples are ``(head, relation, tail)`` over entity indices, and ``item_entity[i]`` is item ``i``'s entity
    (``-1`` when unlinked).
    """

    num_users: int
    num_items: int
    train_users: np.ndarray
    train_items: np.ndarray
    train_ratings: np.ndarray | None = None
    social_src: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    social_dst: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    num_entities: int = 0
    num_relations: int = 0
    kg_head: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    kg_relation: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    kg_tail: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    item_entity: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.train_users.shape != self.train_items.shape:
            raise ValueError("train_users and train_items must have the same shape")
        if len(self.train_users) and (self.train_users.max() >= self.num_users or self.train_items.max() >= self.num_items):
            raise ValueError("an interaction refers to a user or item index outside the declared sizes")
        if self.train_ratings is not None and self.train_ratings.shape != self.train_users.shape:
            raise ValueError("train_ratings must have one value per training interaction")
        if self.social_src.shape != self.social_dst.shape:
            raise ValueError("social_src and social_dst must have the same shape")

    @property
    def available_inputs(self) -> frozenset[Input]:
        inputs = {Input.INTERACTIONS}
        if self.train_ratings is not None and not np.isnan(self.train_ratings).all():
            inputs.add(Input.RATINGS)
        if len(self.social_src):
            inputs.add(Input.SOCIAL)
        if len(self.kg_head):
            inputs.add(Input.KG)
        return frozenset(inputs)


# --- Batches: built by the trainer, typed by what they hold; a model never re-interprets a flag in them. --------


@dataclass(frozen=True)
class PairBatch:
    """``users[b]`` interacted with ``positives[b]`` and not with ``negatives[b]`` (``B``) or ``negatives[b, :]``
    (``B x K``). Which negatives these are (uniform draws, or the hardest of K draws) is the recipe's business,
    settled by the trainer before the model sees the batch."""

    users: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor


@dataclass(frozen=True)
class RatingBatch:
    """``users[b]`` gave ``items[b]`` the explicit rating ``ratings[b]`` (float, on the data's scale)."""

    users: torch.Tensor
    items: torch.Tensor
    ratings: torch.Tensor


@dataclass(frozen=True)
class TripleBatch:
    """KG triples ``(heads[b], relations[b], tails[b])`` and, for each, a corrupted tail drawn uniformly over the
    entities (``corrupted_tails[b]``), as TransE/TransR-style objectives contrast them."""

    heads: torch.Tensor
    relations: torch.Tensor
    tails: torch.Tensor
    corrupted_tails: torch.Tensor


Batch = PairBatch | RatingBatch | TripleBatch


# --- Scorers ---------------------------------------------------------------------------------------------------


@runtime_checkable
class Scorer(Protocol):
    """Scores users against a contiguous chunk of items (ranking, publishing) or against given items (pairs)."""

    def score(self, users: torch.Tensor, items: slice) -> torch.Tensor:
        """A fresh ``len(users) x (items.stop - items.start)`` float tensor; higher is better."""
        ...

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of the pairs ``(users[j], items[j])``, shaped like ``items`` (``users`` broadcast to it)."""
        ...


class InnerProductScorer:
    """Scores as ``user_vectors[u] . item_vectors[i]``: the scorer of every two-tower model."""

    def __init__(self, user_vectors: torch.Tensor, item_vectors: torch.Tensor, pair_budget: int = DEFAULT_PAIR_BUDGET) -> None:
        if user_vectors.shape[1] != item_vectors.shape[1]:
            raise ValueError(f"tower widths differ: {user_vectors.shape[1]} vs {item_vectors.shape[1]}")
        self.user_vectors = user_vectors
        self.item_vectors = item_vectors
        self.pair_budget = pair_budget

    def score(self, users: torch.Tensor, items: slice) -> torch.Tensor:
        return self.user_vectors[users] @ self.item_vectors[items].T

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        users, items = torch.broadcast_tensors(_expand_users(users, items), items)
        width = self.user_vectors.shape[1]
        # Gathering both sides costs 2 x d floats per pair: bound it like any other pair scorer.
        return pairs_in_chunks(
            lambda u, i: (self.user_vectors[u] * self.item_vectors[i]).sum(dim=-1), users, items,
            max(1, self.pair_budget // max(width, 1)),
        )

    def detach(self) -> InnerProductScorer:
        return InnerProductScorer(self.user_vectors.detach(), self.item_vectors.detach(), self.pair_budget)


def _expand_users(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """``users`` lined up with ``items``: a ``B`` vector against ``B x K`` items becomes ``B x 1``."""
    if users.dim() == 1 and items.dim() == 2:
        return users.unsqueeze(1)
    return users


def pairs_in_chunks(
    score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], users: torch.Tensor, items: torch.Tensor, budget: int
) -> torch.Tensor:
    """``score`` over the pairs ``(users[j], items[j])`` (same shape), at most ``budget`` pairs per call."""
    if users.shape != items.shape:
        raise ValueError(f"users {tuple(users.shape)} and items {tuple(items.shape)} must have the same shape")
    flat_users, flat_items = users.reshape(-1), items.reshape(-1)
    if len(flat_users) <= budget:
        return score(flat_users, flat_items).reshape(items.shape)
    parts = [score(flat_users[s : s + budget], flat_items[s : s + budget]) for s in range(0, len(flat_users), budget)]
    return torch.cat(parts).reshape(items.shape)


class PairScorer:
    """A scorer for models whose score of a (user, item) pair is not an inner product (an MLP over both, an item
    vector that depends on the user). Subclasses implement :meth:`score_pair_chunk`; :meth:`score` and
    :meth:`score_pairs` then never hand it more than ``pair_budget`` pairs, whatever the user batch or catalog."""

    def __init__(self, pair_budget: int = DEFAULT_PAIR_BUDGET) -> None:
        if pair_budget < 1:
            raise ValueError("pair_budget must be >= 1")
        self.pair_budget = pair_budget

    def score_pair_chunk(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of ``(users[j], items[j])`` for two 1-d tensors of at most ``pair_budget`` entries."""
        raise NotImplementedError

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        users, items = torch.broadcast_tensors(_expand_users(users, items), items)
        return pairs_in_chunks(self.score_pair_chunk, users, items, self.pair_budget)

    def score(self, users: torch.Tensor, items: slice) -> torch.Tensor:
        columns = torch.arange(items.start, items.stop, device=users.device)
        out = torch.empty(len(users), len(columns), device=users.device)
        rows_per_call = max(1, self.pair_budget // max(len(columns), 1))
        for start in range(0, len(users), rows_per_call):
            block = users[start : start + rows_per_call]
            grid_users = block.unsqueeze(1).expand(len(block), len(columns))
            grid_items = columns.unsqueeze(0).expand(len(block), len(columns))
            out[start : start + len(block)] = self.score_pairs(grid_users, grid_items)
        return out


# --- Recipes ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How to train a model: each model class carries its default (``Model.recipe``), overridable field by field.

    - ``epochs``: the most epochs to train; ``batch_size``: examples per optimiser step. ``min_steps_per_epoch``
      makes the recipe carry over to smaller data: where an epoch at ``batch_size`` would make fewer optimiser
      steps, the batch shrinks until it makes that many. A recipe tuned on a big dataset so keeps its per-epoch
      learning-rate schedule and its number of steps on a small one (the epoch budget in steps scales with the
      data only from above).
    - ``learning_rate`` (Adam), multiplied by ``lr_decay`` after every epoch from ``lr_decay_start`` on.
    - ``sampling``: what an epoch of pair batches visits, every training pair once (``pair``) or as many draws of
      a uniform user and one of their positives (``user``, the LightGCN authors' sampler).
    - ``negatives`` per positive, and ``negative_sampling``: ``uniform`` hands the model all of them (``B x K``),
      ``dynamic`` hands it the one of the K that it currently scores highest (Zhang et al., SIGIR 2013).
    - ``l2``: the model's regularisation weight (BPR models: on the batch's ego embeddings).
    - Early stopping: ``validation_share`` of the *training* pairs (at most ``validation_max_pairs``, one per user,
      only from users with at least 3 training pairs) is held out of training and of the model's graph; every
      ``eval_every`` epochs the model is judged on it by ``monitor`` (default by output kind: Recall@20 for ranking,
      RMSE for rating, AUC for logit models); after ``patience`` judgements without improvement training stops,
      and the best judged weights are kept. ``validation_share = 0`` trains on everything for ``epochs``.
    - ``seed`` seeds the initial weights, the sampling and the validation carve.
    """

    epochs: int = 40
    batch_size: int = 2048
    learning_rate: float = 0.005
    lr_decay: float = 1.0
    lr_decay_start: int = 0
    sampling: Literal["pair", "user"] = "pair"
    negatives: int = 1
    negative_sampling: Literal["uniform", "dynamic"] = "uniform"
    l2: float = 1e-4
    min_steps_per_epoch: int = 0
    validation_share: float = 0.0
    validation_max_pairs: int = 5000
    patience: int = 3
    eval_every: int = 1
    monitor: str | None = None
    seed: int = 2026

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 0:
            problems.append("epochs must be >= 0")
        if self.batch_size < 1:
            problems.append("batch_size must be >= 1")
        if not self.learning_rate > 0:
            problems.append("learning_rate must be > 0")
        if not 0 < self.lr_decay <= 1:
            problems.append("lr_decay must lie in (0, 1]")
        if self.lr_decay_start < 0 or self.min_steps_per_epoch < 0:
            problems.append("lr_decay_start and min_steps_per_epoch must be >= 0")
        if self.sampling not in ("pair", "user"):
            problems.append("sampling must be 'pair' or 'user'")
        if self.negatives < 1:
            problems.append("negatives must be >= 1")
        if self.negative_sampling not in ("uniform", "dynamic"):
            problems.append("negative_sampling must be 'uniform' or 'dynamic'")
        if self.l2 < 0:
            problems.append("l2 must be >= 0")
        if not 0 <= self.validation_share < 1:
            problems.append("validation_share must lie in [0, 1)")
        if self.validation_max_pairs < 0 or self.patience < 0 or self.eval_every < 1:
            problems.append("validation_max_pairs and patience must be >= 0, eval_every >= 1")
        if self.monitor is not None and self.monitor not in MONITORS:
            problems.append(f"monitor must be one of {', '.join(MONITORS)}")
        if not 0 <= self.seed < 2**63:
            problems.append("seed must lie in 0..2**63-1")
        if problems:
            raise ValueError("; ".join(problems))

    def steps_batch_size(self, examples: int) -> int:
        """The batch size used for ``examples`` per epoch: ``batch_size``, shrunk to make ``min_steps_per_epoch``."""
        if examples <= 0 or math.ceil(examples / self.batch_size) >= self.min_steps_per_epoch:
            return self.batch_size
        return max(1, min(self.batch_size, math.ceil(examples / self.min_steps_per_epoch)))


# (metric name, k or None, higher is better) for each value ``Recipe.monitor`` may take.
MONITORS: dict[str, tuple[str, int | None, bool]] = {
    "recall@20": ("recall", 20, True),
    "ndcg@20": ("ndcg", 20, True),
    "rmse": ("rmse", None, False),
    "mae": ("mae", None, False),
    "auc": ("auc", None, True),
}
DEFAULT_MONITOR: dict[str, str] = {"ranking": "recall@20", "rating": "rmse", "logit": "auc"}


@dataclass(frozen=True)
class NoConfig:
    """The config of a model with no options."""


# --- Models ----------------------------------------------------------------------------------------------------


class Model(nn.Module):
    """Base class of every registered model (an ``nn.Module``); see the module docstring for what a subclass sets.

    The constructor of a subclass takes sizes, its ``Config`` and tensors only; :meth:`from_graph` adapts a day's
    :class:`GraphData` to it, and :meth:`from_state` rebuilds it from a checkpoint's state without any graph (so a
    model must keep every graph-derived tensor its scorer needs, e.g. an adjacency, as a buffer).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    needs: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS})
    output: ClassVar[OutputKind] = "ranking"
    batches: ClassVar[tuple[type, ...]] = (PairBatch,)
    Config: ClassVar[type] = NoConfig
    recipe: ClassVar[Recipe] = Recipe()

    config: Any

    @classmethod
    def from_graph(cls, graph: GraphData, config: Any, device: torch.device) -> Model:
        """The untrained model for ``graph`` on ``device``."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, sizes: dict[str, int], config: Any, state: dict[str, torch.Tensor], device: torch.device) -> Model:
        """The model a checkpoint describes: by default ``cls(**sizes, config=config)`` with ``state`` loaded."""
        model = cls(**sizes, config=config)
        model.load_state_dict(state)
        return model.to(device)

    def sizes(self) -> dict[str, int]:
        """The size arguments of the constructor (stored in checkpoints)."""
        raise NotImplementedError

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def encode(self) -> Scorer:
        """The forward pass one training step shares between its batches (LightGCN: the propagation), as a scorer
        whose scores carry gradients. The trainer picks dynamic negatives with its ``score_pairs`` under
        ``no_grad``, then hands it to :meth:`loss`. Never called on a model with no parameters."""
        raise NotImplementedError

    def loss(self, batch: Batch, encoded: Scorer, recipe: Recipe) -> torch.Tensor:
        """The objective to minimise on one batch, regularisation included."""
        raise NotImplementedError

    def scorer(self) -> Scorer:
        """The trained model frozen into a scorer for ranking and publishing; called in eval mode."""
        with torch.no_grad():
            encoded = self.encode()
        return encoded.detach() if hasattr(encoded, "detach") else encoded

    # A model with an unusual schedule (KGAT: a BPR pass, a KG pass, an attention refresh) overrides this hook.
    # It runs one epoch with the :class:`tasks.learn.train.EpochContext` it gets (batches of a type, one optimiser
    # step, the recipe, the device) and returns the epoch's mean loss. ``None`` means the trainer's own epoch.
    train_epoch: ClassVar[Callable[[Model, EpochContext], float] | None] = None
