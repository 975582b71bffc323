"""DiffNet (Wu et al., "A Neural Influence Diffusion Model for Social Recommendation", SIGIR 2019), without the
review/feature fusion the public data lacks.

Influence diffusion over the row-normalised social graph (paper eq. 4-5, ``S_u`` the users ``u`` follows)::

    h_u^(0) = p_u
    h_u^(k+1) = s(W^(k+1) [ sum_{v in S_u} h_v^(k) / |S_u|  ,  h_u^(k) ])

then the user's final vector is the *last* layer plus the mean of the vectors of the items they consumed (eq. 6),
``u_u = h_u^(K) + sum_{i in R_u} q_i / |R_u|``, and the score is ``q_i . u_u`` (eq. 7). We use the last layer, as
the paper writes it (the released code sums the layers, a later trick; ``layer_combination=sum`` gives that).
Trained with BPR on sampled negatives (the paper's pair-wise loss), L2 on the batch's ego embeddings.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import nn

from gnnrec.models.adjacency import csr_tensor, sparse_matmul
from gnnrec.models.base import GraphData, InnerProductScorer, Input, Model, PairBatch, Recipe
from gnnrec.models.bpr import bpr_loss

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh, "none": lambda x: x}


@dataclass(frozen=True)
class DiffNetConfig:
    """``embedding_dim`` 64 and ``num_layers`` (the diffusion depth K) 2, the paper's choice; ``layer_combination``
    ``last`` (the paper) or ``sum`` (the released code). ``activation`` is s: ``none`` (identity) by default, not the
    sigmoid. With the sigmoid every user's diffused vector lies in (0, 1)^d, nearly the same vector for all users,
    so the ranking comes from the consumed items' mean alone: on the demo world Recall@20 was 0.2214 with the real
    social edges and 0.2214 with them shuffled; with the identity, 0.3032 against 0.2581
    (tests/test_social_models.py)."""

    embedding_dim: int = 64
    num_layers: int = 2
    activation: Literal["sigmoid", "relu", "tanh", "none"] = "none"
    layer_combination: Literal["last", "sum"] = "last"
    init_std: float = 0.1

    def __post_init__(self) -> None:
        if self.embedding_dim < 1 or self.num_layers < 0 or self.init_std <= 0:
            raise ValueError("embedding_dim must be >= 1, num_layers >= 0 and init_std > 0")


def row_normalised(rows: np.ndarray, cols: np.ndarray, num_rows: int, num_cols: int) -> tuple[np.ndarray, ...]:
    """CSR arrays ``(crow, col, values)`` of the 0/1 matrix with ones at ``(rows, cols)`` (duplicates once), each
    row divided by its number of ones; an empty row stays empty."""
    keys = np.unique(np.asarray(rows, np.int64) * num_cols + np.asarray(cols, np.int64))
    rows, cols = keys // num_cols, keys % num_cols
    degree = np.bincount(rows, minlength=num_rows)
    crow = np.concatenate([[0], np.cumsum(degree)]).astype(np.int64)
    return crow, cols.astype(np.int64), (1.0 / degree[rows]).astype(np.float32)


def _transpose_csr(matrix: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*support is in beta.*")
        return matrix.to_sparse_coo().t().coalesce().to_sparse_csr()


class DiffNet(Model):
    """Layer-wise influence diffusion on the social graph plus the consumed items' mean; inner-product scores."""

    name: ClassVar[str] = "diffnet"
    summary: ClassVar[str] = "DiffNet (Wu et al., SIGIR 2019): influence diffusion over the social graph, BPR"
    needs: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS, Input.SOCIAL})
    output: ClassVar[str] = "ranking"
    batches: ClassVar[tuple[type, ...]] = (PairBatch,)
    Config: ClassVar[type] = DiffNetConfig
    # The released configuration (yelp_diffnet.ini): 8 negatives per positive, Adam at 0.001, batch 512; the paper's
    # 300-epoch budget is cut by early stopping on Recall@20 over 1% of the training pairs.
    recipe: ClassVar[Recipe] = Recipe(
        epochs=100, batch_size=512, learning_rate=0.001, sampling="pair", negatives=8, negative_sampling="uniform",
        l2=1e-4, min_steps_per_epoch=20, validation_share=0.01, validation_max_pairs=2000, patience=3, eval_every=5,
    )

    def __init__(
        self, num_users: int, num_items: int, config: DiffNetConfig = DiffNetConfig(), *,
        social: torch.Tensor, consumed: torch.Tensor,
    ) -> None:
        super().__init__()
        if social.shape != (num_users, num_users) or consumed.shape != (num_users, num_items):
            raise ValueError("social must be users x users and consumed users x items (sparse CSR)")
        self.config = config
        self.num_users, self.num_items = num_users, num_items
        for name, matrix in (("social", social), ("consumed", consumed)):
            self.register_buffer(f"{name}_crow", matrix.crow_indices())
            self.register_buffer(f"{name}_col", matrix.col_indices())
            self.register_buffer(f"{name}_values", matrix.values())
        d = config.embedding_dim
        self.user_embedding = nn.Embedding(num_users, d)
        self.item_embedding = nn.Embedding(num_items, d)
        nn.init.normal_(self.user_embedding.weight, std=config.init_std)
        nn.init.normal_(self.item_embedding.weight, std=config.init_std)
        self.layers = nn.ModuleList(nn.Linear(2 * d, d) for _ in range(config.num_layers))
        self._transposes: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_graph(cls, graph: GraphData, config: DiffNetConfig, device: torch.device) -> DiffNet:
        u, i = graph.num_users, graph.num_items
        social = csr_tensor(*map(torch.from_numpy, row_normalised(graph.social_src, graph.social_dst, u, u)), (u, u))
        consumed = csr_tensor(*map(torch.from_numpy, row_normalised(graph.train_users, graph.train_items, u, i)), (u, i))
        return cls(u, i, config, social=social, consumed=consumed).to(device)

    @classmethod
    def from_state(cls, sizes, config, state, device) -> DiffNet:
        u, i = sizes["num_users"], sizes["num_items"]
        social = csr_tensor(state["social_crow"], state["social_col"], state["social_values"], (u, u))
        consumed = csr_tensor(state["consumed_crow"], state["consumed_col"], state["consumed_values"], (u, i))
        model = cls(**sizes, config=config, social=social, consumed=consumed)
        model.load_state_dict(state)
        return model.to(device)

    def sizes(self) -> dict[str, int]:
        return {"num_users": self.num_users, "num_items": self.num_items}

    def _matrix(self, name: str, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        crow = getattr(self, f"{name}_crow")
        cached = self._transposes.get(name)
        if cached is None or cached[0].device != crow.device:
            matrix = csr_tensor(crow, getattr(self, f"{name}_col"), getattr(self, f"{name}_values"), shape)
            cached = self._transposes[name] = (matrix, _transpose_csr(matrix))
        return cached

    def diffuse(self) -> torch.Tensor:
        """The users' final diffused vectors ``h^(K)`` (or the layer sum), ``U x d``."""
        social, social_t = self._matrix("social", (self.num_users, self.num_users))
        activation = ACTIVATIONS[self.config.activation]
        layer = self.user_embedding.weight
        total = layer
        for linear in self.layers:
            neighbours = sparse_matmul(social, social_t, layer)
            layer = activation(linear(torch.cat([neighbours, layer], dim=1)))
            total = total + layer
        return total if self.config.layer_combination == "sum" else layer

    def encode(self) -> InnerProductScorer:
        consumed, consumed_t = self._matrix("consumed", (self.num_users, self.num_items))
        items = self.item_embedding.weight
        users = self.diffuse() + sparse_matmul(consumed, consumed_t, items)
        return InnerProductScorer(users, items)

    def loss(self, batch: PairBatch, encoded: InnerProductScorer, recipe: Recipe) -> torch.Tensor:
        users = encoded.user_vectors[batch.users]
        pos = encoded.item_vectors[batch.positives]
        neg = encoded.item_vectors[batch.negatives]
        ego = (self.user_embedding.weight[batch.users], pos, neg)
        return bpr_loss(users, pos, neg, ego, recipe.l2)
