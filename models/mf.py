"""Matrix factorisation trained with BPR (Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit
Feedback", UAI 2009): ``y_ui = p_u . q_i``."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from models.base import InnerProductScorer, Input, TrainingBatch
from models.bpr import bpr_loss, hardest_negatives


class MatrixFactorization(nn.Module):
    """MF-BPR: one free embedding per user and per item, scored by inner product."""

    requires: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS})

    def __init__(self, num_users: int, num_items: int, embedding_dim: int, l2: float, init_std: float = 0.1) -> None:
        super().__init__()
        if min(num_users, num_items, embedding_dim) <= 0:
            raise ValueError("num_users, num_items and embedding_dim must be positive")
        self.l2 = l2
        self.user_embedding = nn.Embedding(num_users, embedding_dim)
        self.item_embedding = nn.Embedding(num_items, embedding_dim)
        nn.init.normal_(self.user_embedding.weight, std=init_std)
        nn.init.normal_(self.item_embedding.weight, std=init_std)

    def training_loss(self, batch: TrainingBatch) -> torch.Tensor:
        users = self.user_embedding(batch.users)
        pos = self.item_embedding(batch.pos_items)
        neg_items = batch.neg_items
        if batch.hardest_negative and neg_items.dim() == 2:
            neg_items = hardest_negatives(users, self.item_embedding.weight, neg_items)
        neg = self.item_embedding(neg_items)
        return bpr_loss(users, pos, neg, (users, pos, neg), self.l2)

    def scorer(self) -> InnerProductScorer:
        return InnerProductScorer(self.user_embedding.weight.detach(), self.item_embedding.weight.detach())
