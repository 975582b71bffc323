"""NGCF (Wang, He, Wang, Feng and Chua, "Neural Graph Collaborative Filtering", SIGIR 2019, arXiv:1905.08108).

Embedding propagation (paper eqs. 3-4), for a user ``u`` (items alike)::

    m_{u<-i} = p_ui (W1 e_i + W2 (e_i * e_u)),     m_{u<-u} = W1 e_u,     p_ui = 1 / sqrt(|N_u| |N_i|)
    e_u^(l)  = LeakyReLU(m_{u<-u} + sum_{i in N_u} m_{u<-i})

written for the whole graph as the paper's matrix form (eq. 7)::

    E^(l) = LeakyReLU((L + I) E^(l-1) W1 + (L E^(l-1) * E^(l-1)) W2),      L = D^-1/2 A D^-1/2

One sparse product ``L E`` per layer gives both terms: ``(L + I) E = L E + E`` and ``L E * E``. The layers are
concatenated (eq. 9: ``e* = e^(0) || ... || e^(L)``), the score is the inner product (eq. 10), and training is BPR
with L2 on the batch's ego embeddings (eq. 11).

Normalisation: the paper's symmetric ``L`` (default). ``normalization="row"`` is the authors' released code's
default instead: ``D^-1 (A + I)`` (self-loops inside the operator, ``E^(l) = LeakyReLU(L' E W1 + (L' E * E) W2)``).
Both are applied as a symmetric operator rescaled on both sides, so the cheap symmetric backward holds.

As in the released code (TF ``NGCF.py``): the transforms carry biases, LeakyReLU has slope 0.2, each layer's output
is L2-normalised before concatenation (``normalize_layers``), message dropout drops entries of each layer's output
(``message_dropout`` 0.1, the paper's Gowalla setting) and node dropout drops entries of the normalised adjacency
(``node_dropout`` 0.1, the README's Gowalla command ``--node_dropout [0.1]``); both are drop rates (the code's
flags are named "keep probability" but are used as drop rates), both only while training. Our node dropout drops an
edge in both directions at once, so the operator stays symmetric.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gnnrec.models.adjacency import csr_tensor, symmetric_propagate
from gnnrec.models.base import GraphData, InnerProductScorer, Input, Model, PairBatch, Recipe
from gnnrec.models.bpr import joint_embedding_bpr_loss


@dataclass(frozen=True)
class NGCFConfig:
    """The paper's Gowalla settings: ``embedding_dim`` 64, ``num_layers`` 3 of width ``layer_dim`` 64,
    ``message_dropout`` 0.1, ``node_dropout`` 0.1, symmetric normalisation, LeakyReLU slope 0.2, layer outputs
    L2-normalised before concatenation (released code)."""

    embedding_dim: int = 64
    num_layers: int = 3
    layer_dim: int = 64
    message_dropout: float = 0.1
    node_dropout: float = 0.1
    normalization: Literal["symmetric", "row"] = "symmetric"
    normalize_layers: bool = True
    negative_slope: float = 0.2

    def __post_init__(self) -> None:
        if self.embedding_dim < 1 or self.num_layers < 0 or self.layer_dim < 1:
            raise ValueError("embedding_dim and layer_dim must be >= 1, num_layers >= 0")
        if not (0 <= self.message_dropout < 1 and 0 <= self.node_dropout < 1):
            raise ValueError("message_dropout and node_dropout are drop rates in [0, 1)")
        if self.normalization not in ("symmetric", "row"):
            raise ValueError("normalization must be symmetric or row")


class NGCF(Model):
    """NGCF: see the module docstring. Nodes are users ``0..U-1`` then items ``U..U+I-1``; the symmetric core of
    the normalised adjacency and its scaling are buffers, so a checkpoint rebuilds the model without the graph."""

    name: ClassVar[str] = "ngcf"
    summary: ClassVar[str] = "NGCF (Wang et al., SIGIR 2019): propagation with feature interaction, layers concatenated"
    needs: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS})
    output: ClassVar[str] = "ranking"
    batches: ClassVar[tuple[type, ...]] = (PairBatch,)
    Config: ClassVar[type] = NGCFConfig
    # The paper trains 400 epochs of batch 1024 at lr 1e-4. This recipe starts from LightGCN's measured Gowalla one
    # (dynamic negatives, decayed rate) with more, smaller steps, as NGCF's dense transforms learn from the batch
    # only: batch 8192 (Gowalla: ~100 steps an epoch), at least 50 steps an epoch on small data, lr 0.005, L2 1e-4.
    # Not yet tuned on Gowalla (bench/README.md). Early stopping on Recall@20 of 1% of the pairs every 5 epochs.
    recipe: ClassVar[Recipe] = Recipe(
        epochs=60, batch_size=8192, learning_rate=0.005, lr_decay=0.97, lr_decay_start=10, sampling="user",
        negatives=8, negative_sampling="dynamic", l2=1e-4, min_steps_per_epoch=50,
        validation_share=0.01, validation_max_pairs=2000, patience=3, eval_every=5,
    )

    def __init__(self, num_users: int, num_items: int, config: NGCFConfig = NGCFConfig(), *,
                 adjacency: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        num_nodes = num_users + num_items
        if adjacency.shape != (num_nodes, num_nodes) or adjacency.layout != torch.sparse_csr:
            raise ValueError(f"adjacency must be a sparse CSR ({num_nodes}, {num_nodes}) tensor, got {adjacency.shape}")
        if scale.shape != (num_nodes,):
            raise ValueError("one scale per node")
        self.config = config
        self.num_users, self.num_items = num_users, num_items
        self.register_buffer("adjacency_crow", adjacency.crow_indices())
        self.register_buffer("adjacency_col", adjacency.col_indices())
        self.register_buffer("adjacency_values", adjacency.values())
        # Row normalisation D^-1 (A+I) = diag(scale) S diag(1/scale) with S symmetric; symmetric: scale = 1.
        self.register_buffer("scale", scale.float())
        self.embedding = nn.Embedding(num_nodes, config.embedding_dim)
        nn.init.xavier_uniform_(self.embedding.weight)
        widths = [config.embedding_dim] + [config.layer_dim] * config.num_layers
        self.transform = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))  # W1
        self.interaction = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))  # W2
        for layer in [*self.transform, *self.interaction]:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self._edge_ids: torch.Tensor | None = None

    @classmethod
    def from_graph(cls, graph: GraphData, config: NGCFConfig, device: torch.device) -> NGCF:
        adjacency, scale = normalized_adjacency(
            graph.num_users, graph.num_items, graph.train_users, graph.train_items, self_loops=config.normalization == "row"
        )
        return cls(graph.num_users, graph.num_items, config, adjacency=adjacency, scale=scale).to(device)

    @classmethod
    def from_state(cls, sizes, config, state, device) -> NGCF:
        num_nodes = sizes["num_users"] + sizes["num_items"]
        adjacency = csr_tensor(state["adjacency_crow"], state["adjacency_col"], state["adjacency_values"], num_nodes)
        model = cls(**sizes, config=config, adjacency=adjacency, scale=state["scale"])
        model.load_state_dict(state)
        return model.to(device)

    def sizes(self) -> dict[str, int]:
        return {"num_users": self.num_users, "num_items": self.num_items}

    def _adjacency(self) -> torch.Tensor:
        values = self.adjacency_values
        rate = self.config.node_dropout
        if self.training and rate > 0:
            if self._edge_ids is None or self._edge_ids.device != values.device:
                self._edge_ids = _undirected_edge_ids(self.adjacency_crow, self.adjacency_col)
            keep = torch.bernoulli(torch.full((int(self._edge_ids.max()) + 1,), 1 - rate, device=values.device))
            values = values * keep[self._edge_ids] / (1 - rate)
        return csr_tensor(self.adjacency_crow, self.adjacency_col, values, self.num_users + self.num_items)

    def propagate(self) -> torch.Tensor:
        """``e* = e^(0) || ... || e^(L)`` for all users and items: ``(U+I) x (d + L * layer_dim)``."""
        config = self.config
        adjacency = self._adjacency()
        scale = self.scale.unsqueeze(1)
        layer = self.embedding.weight
        outputs = [layer]
        for transform, interaction in zip(self.transform, self.interaction):
            side = symmetric_propagate(adjacency, layer / scale) * scale  # L E (row: D^-1 (A+I) E)
            summed = side + layer if config.normalization == "symmetric" else side  # (L + I) E
            layer = F.leaky_relu(transform(summed) + interaction(side * layer), config.negative_slope)
            layer = F.dropout(layer, config.message_dropout, self.training)
            outputs.append(F.normalize(layer, dim=1) if config.normalize_layers else layer)
        return torch.cat(outputs, dim=1)

    def encode(self) -> InnerProductScorer:
        final = self.propagate()
        return InnerProductScorer(final[: self.num_users], final[self.num_users :])

    def loss(self, batch: PairBatch, encoded: InnerProductScorer, recipe: Recipe) -> torch.Tensor:
        return joint_embedding_bpr_loss(
            encoded.user_vectors, encoded.item_vectors, self.embedding.weight, self.num_users,
            batch.users, batch.positives, batch.negatives, recipe.l2,
        )


def normalized_adjacency(
    num_users: int, num_items: int, users: np.ndarray, items: np.ndarray, self_loops: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The symmetric operator and the per-node scale of NGCF's normalisation, users first.

    Without self-loops: ``L = D^-1/2 A D^-1/2`` and scale 1 (the paper). With them: ``S = D^-1/2 (A+I) D^-1/2``
    and scale ``D^-1/2``, where ``D`` is the degree of ``A + I``, so that ``diag(scale) S diag(1/scale) = D^-1
    (A+I)`` (the released code). Duplicate pairs count once."""
    pairs = np.unique(np.stack([np.asarray(users, np.int64), np.asarray(items, np.int64)]), axis=1)
    users, items = pairs[0], pairs[1]
    num_nodes = num_users + num_items
    rows = np.concatenate([users, items + num_users])
    cols = np.concatenate([items + num_users, users])
    if self_loops:
        rows, cols = np.concatenate([rows, np.arange(num_nodes)]), np.concatenate([cols, np.arange(num_nodes)])
    degree = np.bincount(rows, minlength=num_nodes).astype(np.float64)
    inverse_root = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1)), 0.0)
    values = (inverse_root[rows] * inverse_root[cols]).astype(np.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*support is in beta.*")
        coo = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])), torch.from_numpy(values),
                                      (num_nodes, num_nodes), check_invariants=False)
        adjacency = coo.coalesce().to_sparse_csr()
    scale = inverse_root if self_loops else np.ones(num_nodes)
    return adjacency, torch.from_numpy(scale.astype(np.float32))


def _undirected_edge_ids(crow: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    """For each stored entry ``(i, j)`` of a symmetric CSR matrix, one id shared with its mirror ``(j, i)``."""
    rows = torch.repeat_interleave(torch.arange(len(crow) - 1, device=crow.device), crow.diff())
    low, high = torch.minimum(rows, col), torch.maximum(rows, col)
    _, ids = torch.unique(low * (len(crow) - 1) + high, return_inverse=True)
    return ids
