"""Biased matrix factorisation on explicit ratings (Koren, Bell and Volinsky, "Matrix Factorization Techniques for
Recommender Systems", IEEE Computer 2009, eq. 4): ``r_ui = mu + b_u + b_i + p_u . q_i``, trained on squared error.

The rating baseline every rating model (GraphRec, GraphRec+) is compared with in the same pipeline, on the same split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from gnnrec.models.base import DEFAULT_PAIR_BUDGET, GraphData, Input, Model, PairScorer, RatingBatch, Recipe


@dataclass(frozen=True)
class BiasedMFConfig:
    """``embedding_dim``: the width of ``p_u`` and ``q_i`` (64, GraphRec's embedding size, so the two compare at one
    width); ``init_std``: their normal initialisation. Biases start at 0 and ``mu`` at the training ratings' mean."""

    embedding_dim: int = 64
    init_std: float = 0.1

    def __post_init__(self) -> None:
        if self.embedding_dim < 1 or self.init_std <= 0:
            raise ValueError("embedding_dim must be >= 1 and init_std > 0")


class BiasedScorer(PairScorer):
    """``mu + b_u + b_i + p_u . q_i``; ``score`` runs as one matrix product per block (it is an inner product plus
    two rank-one terms), ``score_pairs`` in chunks of the pair budget."""

    def __init__(self, mu, user_bias, item_bias, user_vectors, item_vectors, pair_budget: int = DEFAULT_PAIR_BUDGET):
        super().__init__(pair_budget)
        self.mu, self.user_bias, self.item_bias = mu, user_bias, item_bias
        self.user_vectors, self.item_vectors = user_vectors, item_vectors

    def score_pair_chunk(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self.user_vectors[users] * self.item_vectors[items]).sum(dim=-1)
        return self.mu + self.user_bias[users] + self.item_bias[items] + dot

    def score(self, users: torch.Tensor, items: slice) -> torch.Tensor:
        dot = self.user_vectors[users] @ self.item_vectors[items].T
        return dot + (self.mu + self.user_bias[users]).unsqueeze(1) + self.item_bias[items].unsqueeze(0)

    def detach(self) -> BiasedScorer:
        parts = (self.mu, self.user_bias, self.item_bias, self.user_vectors, self.item_vectors)
        return BiasedScorer(*(p.detach() for p in parts), pair_budget=self.pair_budget)


class BiasedMF(Model):
    """Biased MF: free user and item vectors and biases around a global mean, squared error plus L2 on the batch's
    vectors and biases (``recipe.l2`` times their mean squared norm)."""

    name: ClassVar[str] = "biased-mf"
    summary: ClassVar[str] = "biased matrix factorisation on ratings, squared error (Koren et al., 2009)"
    needs: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS, Input.RATINGS})
    output: ClassVar[str] = "rating"
    batches: ClassVar[tuple[type, ...]] = (RatingBatch,)
    Config: ClassVar[type] = BiasedMFConfig
    # Early stopping on the RMSE of 5% of the training ratings (at most 5000, one per user), judged every epoch: a
    # free-embedding model overfits sparse ratings within a few epochs, so the budget is an upper bound.
    recipe: ClassVar[Recipe] = Recipe(
        epochs=60, batch_size=1024, learning_rate=0.002, l2=0.05, min_steps_per_epoch=20,
        validation_share=0.05, validation_max_pairs=5000, patience=3, eval_every=1,
    )

    def __init__(self, num_users: int, num_items: int, config: BiasedMFConfig = BiasedMFConfig(), mean: float = 0.0):
        super().__init__()
        if min(num_users, num_items) <= 0:
            raise ValueError("num_users and num_items must be positive")
        self.config = config
        self.num_users, self.num_items = num_users, num_items
        self.user_embedding = nn.Embedding(num_users, config.embedding_dim)
        self.item_embedding = nn.Embedding(num_items, config.embedding_dim)
        nn.init.normal_(self.user_embedding.weight, std=config.init_std)
        nn.init.normal_(self.item_embedding.weight, std=config.init_std)
        self.user_bias = nn.Parameter(torch.zeros(num_users))
        self.item_bias = nn.Parameter(torch.zeros(num_items))
        self.mu = nn.Parameter(torch.tensor(float(mean)))

    @classmethod
    def from_graph(cls, graph: GraphData, config: BiasedMFConfig, device: torch.device) -> BiasedMF:
        return cls(graph.num_users, graph.num_items, config, mean=rating_mean(graph)).to(device)

    def sizes(self) -> dict[str, int]:
        return {"num_users": self.num_users, "num_items": self.num_items}

    def encode(self) -> BiasedScorer:
        return BiasedScorer(self.mu, self.user_bias, self.item_bias, self.user_embedding.weight, self.item_embedding.weight)

    def loss(self, batch: RatingBatch, encoded: BiasedScorer, recipe: Recipe) -> torch.Tensor:
        predicted = encoded.score_pair_chunk(batch.users, batch.items)
        error = (predicted - batch.ratings).pow(2).mean()
        penalty = (
            encoded.user_vectors[batch.users].pow(2).sum(dim=-1) + encoded.item_vectors[batch.items].pow(2).sum(dim=-1)
            + encoded.user_bias[batch.users].pow(2) + encoded.item_bias[batch.items].pow(2)
        ).mean()
        return error + recipe.l2 * penalty


def rating_mean(graph: GraphData) -> float:
    """The mean of the training ratings (0 when there are none)."""
    if graph.train_ratings is None:
        return 0.0
    rated = graph.train_ratings[~np.isnan(graph.train_ratings)]
    return float(rated.mean()) if len(rated) else 0.0
