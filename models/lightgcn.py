"""LightGCN (He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation",
SIGIR 2020)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gnnrec.models.adjacency import csr_tensor, normalized_bipartite_adjacency, symmetric_propagate
from gnnrec.models.base import GraphData, InnerProductScorer, Input, Model, PairBatch, Recipe
from gnnrec.models.bpr import joint_embedding_bpr_loss


@dataclass(frozen=True)
class LightGCNConfig:
    """The paper's architecture: ``embedding_dim`` 64, ``num_layers`` 3, layer weights ``1 / (K + 1)``; embeddings
    initialised normal with ``init_std`` 0.1."""

    embedding_dim: int = 64
    num_layers: int = 3
    init_std: float = 0.1

    def __post_init__(self) -> None:
        if self.embedding_dim < 1 or self.num_layers < 0 or self.init_std <= 0:
            raise ValueError("embedding_dim must be >= 1, num_layers >= 0 and init_std > 0")


class LightGCN(Model):
    """Linear propagation on the normalised user-item graph, no transforms and no non-linearity.

    Propagation (paper eq. 3, written for the whole graph as eq. 7)::

        e^(k+1) = D^-1/2 A D^-1/2 e^(k)

    Layer combination (eq. 4) with ``alpha_k = 1 / (K + 1)``::

        e = sum_{k=0..K} alpha_k e^(k)

    Prediction ``y_ui = e_u . e_i`` (eq. 5), trained with BPR plus L2 on the ego embeddings (eq. 15).
    The normalised adjacency (from :func:`models.adjacency.normalized_bipartite_adjacency`, users first) is kept as
    three CSR buffers, so a checkpoint holds it and rebuilding the model needs no graph.
    """

    name: ClassVar[str] = "lightgcn"
    summary: ClassVar[str] = "LightGCN (He et al., SIGIR 2020): linear propagation, layer mean"
    needs: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS})
    output: ClassVar[str] = "ranking"
    batches: ClassVar[tuple[type, ...]] = (PairBatch,)
    Config: ClassVar[type] = LightGCNConfig
    # The Gowalla recipe (bench/README.md: Recall@20 0.1801 in 30 epochs; 0.1793 in 30 with the validation part
    # carved out, so 40 epochs: the learning rate is still 0.0055 at epoch 30). Gowalla makes 25 steps an epoch at
    # batch 32768: smaller data keeps 25 steps an epoch by shrinking the batch. Early stopping watches Recall@20 on
    # 1% of the training pairs (at most 2000, a quarter of a percent of Gowalla's), every 5 epochs.
    recipe: ClassVar[Recipe] = Recipe(
        epochs=40, batch_size=32768, learning_rate=0.02, lr_decay=0.95, lr_decay_start=5, sampling="user",
        negatives=16, negative_sampling="dynamic", l2=1e-3, min_steps_per_epoch=25,
        validation_share=0.01, validation_max_pairs=2000, patience=2, eval_every=5,
    )

    def __init__(
        self, num_users: int, num_items: int, config: LightGCNConfig = LightGCNConfig(), *,
        adjacency: torch.Tensor,
    ) -> None:
        super().__init__()
        num_nodes = num_users + num_items
        if adjacency.shape != (num_nodes, num_nodes) or adjacency.layout != torch.sparse_csr:
            raise ValueError(f"adjacency must be a sparse CSR ({num_nodes}, {num_nodes}) tensor, got {adjacency.shape}")
        self.config = config
        self.num_users, self.num_items = num_users, num_items
        self.register_buffer("adjacency_crow", adjacency.crow_indices())
        self.register_buffer("adjacency_col", adjacency.col_indices())
        self.register_buffer("adjacency_values", adjacency.values())
        self.embedding = nn.Embedding(num_nodes, config.embedding_dim)
        nn.init.normal_(self.embedding.weight, std=config.init_std)

    @classmethod
    def from_graph(cls, graph: GraphData, config: LightGCNConfig, device: torch.device) -> LightGCN:
        adjacency = normalized_bipartite_adjacency(graph.num_users, graph.num_items, graph.train_users, graph.train_items)
        return cls(graph.num_users, graph.num_items, config, adjacency=adjacency).to(device)

    @classmethod
    def from_state(cls, sizes, config, state, device) -> LightGCN:
        num_nodes = sizes["num_users"] + sizes["num_items"]
        adjacency = csr_tensor(state["adjacency_crow"], state["adjacency_col"], state["adjacency_values"], num_nodes)
        model = cls(**sizes, config=config, adjacency=adjacency)
        model.load_state_dict(state)
        return model.to(device)

    def sizes(self) -> dict[str, int]:
        return {"num_users": self.num_users, "num_items": self.num_items}

    @property
    def adjacency(self) -> torch.Tensor:
        return csr_tensor(self.adjacency_crow, self.adjacency_col, self.adjacency_values, self.num_users + self.num_items)

    def propagate(self) -> torch.Tensor:
        """Final embeddings of all users and items, ``(U+I) x d``: the mean of layers ``0..K``."""
        adjacency = self.adjacency
        layer = self.embedding.weight
        total = layer
        for _ in range(self.config.num_layers):
            layer = symmetric_propagate(adjacency, layer)
            total = total + layer
        return total / (self.config.num_layers + 1)

    def encode(self) -> InnerProductScorer:
        final = self.propagate()
        return InnerProductScorer(final[: self.num_users], final[self.num_users :])

    def loss(self, batch: PairBatch, encoded: InnerProductScorer, recipe: Recipe) -> torch.Tensor:
        return joint_embedding_bpr_loss(
            encoded.user_vectors, encoded.item_vectors, self.embedding.weight, self.num_users,
            batch.users, batch.positives, batch.negatives, recipe.l2,
        )
