"""The contract every recommender in gnnrec honours.

The trainer, the evaluator and the publisher only ever talk to a model through this contract, so none of them
branches on a model's name: a model says which inputs it needs (``requires``), how to compute its training loss on
a batch, and how to hand out a :class:`Scorer` once training is over.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
import torch


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


@dataclass(frozen=True)
class TrainingBatch:
    """One BPR batch: ``users[k]`` prefers ``pos_items[k]`` (observed) to ``neg_items[k]`` (sampled unobserved).

    ``neg_items`` is ``B`` or ``B x K``. With ``hardest_negative`` the model trains each positive against the one of
    its ``K`` candidates it currently scores highest (dynamic negative sampling) instead of against all of them.
    """

    users: torch.Tensor
    pos_items: torch.Tensor
    neg_items: torch.Tensor
    hardest_negative: bool = False


@runtime_checkable
class Scorer(Protocol):
    """Scores a batch of users against a contiguous chunk of items; never the whole catalog for every user."""

    def score(self, users: torch.Tensor, items: slice) -> torch.Tensor:
        """Return a ``len(users) x (items.stop - items.start)`` float tensor; higher is better."""
        ...


@runtime_checkable
class Recommender(Protocol):
    """What the trainer, evaluator and publisher need from a model."""

    requires: ClassVar[frozenset[Input]]

    def parameters(self, recurse: bool = True): ...

    def train(self, mode: bool = True): ...

    def training_loss(self, batch: TrainingBatch) -> torch.Tensor:
        """The objective to minimise on one batch (regularisation included)."""
        ...

    def scorer(self) -> Scorer:
        """Freeze the trained model into a scorer (e.g. propagate embeddings once); called under ``no_grad``."""
        ...


class InnerProductScorer:
    """Scores as ``user_vectors[u] . item_vectors[i]``: the scorer of every two-tower model."""

    def __init__(self, user_vectors: torch.Tensor, item_vectors: torch.Tensor) -> None:
        if user_vectors.shape[1] != item_vectors.shape[1]:
            raise ValueError(f"tower widths differ: {user_vectors.shape[1]} vs {item_vectors.shape[1]}")
        self.user_vectors = user_vectors
        self.item_vectors = item_vectors

    def score(self, users: torch.Tensor, items: slice) -> torch.Tensor:
        return self.user_vectors[users] @ self.item_vectors[items].T
