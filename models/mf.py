"""Matrix factorisation trained with BPR (Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit
Feedback", UAI 2009): ``y_ui = p_u . q_i``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gnnrec.models.base import GraphData, InnerProductScorer, Input, Model, PairBatch, Recipe
from gnnrec.models.bpr import bpr_loss


@dataclass(frozen=True)
class MFConfig:
    """``embedding_dim``: the width of each user's and item's vector (64, as the LightGCN paper's MF baseline);
    ``init_std``: the standard deviation of their normal initialisation."""

    embedding_dim: int = 64
    init_std: float = 0.1

    def __post_init__(self) -> None:
        if self.embedding_dim < 1 or self.init_std <= 0:
            raise ValueError("embedding_dim must be >= 1 and init_std > 0")


class MatrixFactorization(Model):
    """MF-BPR: one free embedding per user and per item, scored by inner product."""

    name: ClassVar[str] = "mf"
    summary: ClassVar[str] = "matrix factorisation with BPR (Rendle et al., UAI 2009)"
    needs: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS})
    output: ClassVar[str] = "ranking"
    batches: ClassVar[tuple[type, ...]] = (PairBatch,)
    Config: ClassVar[type] = MFConfig
    # LightGCN's Gowalla recipe left MF at 72% of its published Recall@20 (bench/README.md): one step per 32768
    # pairs is too few for free embeddings, which learn nothing from a neighbour's step. Smaller batches at a lower
    # rate give MF many more steps per epoch; dynamic negatives keep the signal per step high.
    recipe: ClassVar[Recipe] = Recipe(
        epochs=60, batch_size=4096, learning_rate=0.005, lr_decay=0.97, lr_decay_start=10, sampling="user",
        negatives=8, negative_sampling="dynamic", l2=1e-4, min_steps_per_epoch=50,
        validation_share=0.01, validation_max_pairs=5000, patience=3, eval_every=5,
    )

    def __init__(self, num_users: int, num_items: int, config: MFConfig = MFConfig()) -> None:
        super().__init__()
        if min(num_users, num_items) <= 0:
            raise ValueError("num_users and num_items must be positive")
        self.config = config
        self.num_users, self.num_items = num_users, num_items
        self.user_embedding = nn.Embedding(num_users, config.embedding_dim)
        self.item_embedding = nn.Embedding(num_items, config.embedding_dim)
        nn.init.normal_(self.user_embedding.weight, std=config.init_std)
        nn.init.normal_(self.item_embedding.weight, std=config.init_std)

    @classmethod
    def from_graph(cls, graph: GraphData, config: MFConfig, device: torch.device) -> MatrixFactorization:
        return cls(graph.num_users, graph.num_items, config).to(device)

    def sizes(self) -> dict[str, int]:
        return {"num_users": self.num_users, "num_items": self.num_items}

    def encode(self) -> InnerProductScorer:
        return InnerProductScorer(self.user_embedding.weight, self.item_embedding.weight)

    def loss(self, batch: PairBatch, encoded: InnerProductScorer, recipe: Recipe) -> torch.Tensor:
        users = encoded.user_vectors[batch.users]
        pos = encoded.item_vectors[batch.positives]
        neg = encoded.item_vectors[batch.negatives]
        return bpr_loss(users, pos, neg, (users, pos, neg), recipe.l2)
