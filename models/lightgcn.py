"""LightGCN (He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation",
SIGIR 2020)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from models.adjacency import symmetric_propagate
from models.base import InnerProductScorer, Input, TrainingBatch
from models.bpr import bpr_loss, hardest_negatives


class LightGCN(nn.Module):
    """Linear propagation on the normalised user-item graph, no transforms and no non-linearity.

    Propagation (paper eq. 3, written for the whole graph as eq. 7)::

        e^(k+1) = D^-1/2 A D^-1/2 e^(k)

    Layer combination (eq. 4) with ``alpha_k = 1 / (K + 1)``::

        e = sum_{k=0..K} alpha_k e^(k)

    Prediction ``y_ui = e_u . e_i`` (eq. 5), trained with BPR plus L2 on the ego embeddings (eq. 15).
    ``adjacency`` must be the symmetric normalised ``(U+I) x (U+I)`` matrix from
    :func:`models.adjacency.normalized_bipartite_adjacency`, users first, on the device the model will live on.
    """

    requires: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS})

    def __init__(
        self,
        num_users: int,
        num_items: int,
        embedding_dim: int,
        num_layers: int,
        adjacency: torch.Tensor,
        l2: float,
        init_std: float = 0.1,
    ) -> None:
        super().__init__()
        num_nodes = num_users + num_items
        if adjacency.shape != (num_nodes, num_nodes):
            raise ValueError(f"adjacency is {tuple(adjacency.shape)}, expected ({num_nodes}, {num_nodes})")
        if num_layers < 0:
            raise ValueError("num_layers must be >= 0")
        self.num_users = num_users
        self.num_layers = num_layers
        self.l2 = l2
        self.adjacency = adjacency
        self.embedding = nn.Embedding(num_nodes, embedding_dim)
        nn.init.normal_(self.embedding.weight, std=init_std)

    def propagate(self) -> torch.Tensor:
        """Final embeddings of all users and items, ``(U+I) x d``: the mean of layers ``0..K``."""
        layer = self.embedding.weight
        total = layer
        for _ in range(self.num_layers):
            layer = symmetric_propagate(self.adjacency, layer)
            total = total + layer
        return total / (self.num_layers + 1)

    def training_loss(self, batch: TrainingBatch) -> torch.Tensor:
        final = self.propagate()
        item_offset = self.num_users
        users = final[batch.users]
        pos = final[batch.pos_items + item_offset]
        neg_items = batch.neg_items
        if batch.hardest_negative and neg_items.dim() == 2:
            neg_items = hardest_negatives(users, final[item_offset:], neg_items)
        neg = final[neg_items + item_offset]
        ego = self.embedding.weight
        ego_vectors = (ego[batch.users], ego[batch.pos_items + item_offset], ego[neg_items + item_offset])
        return bpr_loss(users, pos, neg, ego_vectors, self.l2)

    def scorer(self) -> InnerProductScorer:
        final = self.propagate().detach()
        return InnerProductScorer(final[: self.num_users], final[self.num_users :])
