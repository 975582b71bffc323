"""GC-MC on implicit feedback: the baseline of the NGCF paper (Wang et al., "Neural Graph Collaborative Filtering",
SIGIR 2019, sec. 4.2), where GC-MC (van den Berg et al., 2017) ranks the catalog of Gowalla, Yelp2018 and
Amazon-Book.

Why a model of its own rather than ``gcmc`` switching modes: the contract makes ``output`` and ``batches`` facts of
the class, read before any day's graph exists (the trainer carves its validation part by the output kind before it
builds the model, the default monitor and the evaluator's protocols follow from it, a checkpoint is rebuilt by name
alone). A ``gcmc`` that trained on ratings one day and on pairs the next would publish RMSE one day and Recall the
next under one name, and its ML-100K reproduction would depend on the data. So ``gcmc`` stays the rating model and
this one is the ranking model, built from GC-MC's own pieces (:mod:`models.gcmc`).

Implicit data has one edge type, "interacted", so GC-MC reduces to one rating level (the NGCF authors' adaptation
in their released code, ``--alg_type gcmc --adj_type gcmc``): one graph convolution with left normalisation and
the hidden width equal to the embedding size, the dense layer, and the bilinear decoder's logit as the score::

    h_i = ReLU(sum_{j in N_i} (1 / |N_i|) W x_j)         (GC-MC eqs. 2-3, one level)
    u_i = W_user h_i,  v_j = W_item h_j                  (eq. 4, the dense layer)
    y_ij = u_i^T Q v_j,  Q = sum_s a_s P_s              (eq. 5's logit: with one level its softmax is constant)

trained with BPR on sampled negatives (L2 on the batch's rows of ``W``), like every baseline of the NGCF paper.
Since ``u^T Q v = u . (Q v)``, the scorer is an inner product of the users' vectors with the items' vectors mapped by
``Q``: full ranking is a matrix product over item chunks, never a users x items matrix at once.

Where the NGCF authors' code differs, we keep GC-MC's own form: ReLU without bias (theirs: LeakyReLU with a bias),
one dense layer each for users and items (theirs: one shared), GC-MC's node dropout on the input and dropout on the
dense layer's input (theirs: dropout on the dense output), and the bilinear decoder (theirs: an inner product, which
is the bilinear form with ``Q = I``; with one level ``Q`` folds into the item dense layer, so neither is richer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gnnrec.models.adjacency import csr_tensor
from gnnrec.models.base import GraphData, InnerProductScorer, Input, Model, PairBatch, Recipe
from gnnrec.models.bpr import joint_embedding_bpr_loss
from gnnrec.models.gcmc import (
    bilinear_decoder_parameters, degree_root, level_adjacency, level_message, node_degree, node_dropout,
)


@dataclass(frozen=True)
class GCMCImplicitConfig:
    """The NGCF paper's GC-MC settings on Gowalla: one graph convolution whose ``hidden_dim`` equals the
    ``embedding_dim``, 64; ``dropout`` 0.1 (the NGCF authors' message dropout, here GC-MC's node dropout and the
    dense layer's input dropout); ``normalization`` left (``1 / |N_i|``, their ``gcmc`` adjacency); ``num_basis``
    1 decoder basis matrix (with one level, more would only reparametrise ``Q``)."""

    hidden_dim: int = 64
    embedding_dim: int = 64
    dropout: float = 0.1
    normalization: Literal["left", "symmetric"] = "left"
    num_basis: int = 1

    def __post_init__(self) -> None:
        if self.hidden_dim < 1 or self.embedding_dim < 1 or self.num_basis < 1:
            raise ValueError("hidden_dim, embedding_dim and num_basis must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must lie in [0, 1)")
        if self.normalization not in ("left", "symmetric"):
            raise ValueError("normalization must be left or symmetric")


class GCMCImplicit(Model):
    """GC-MC as a ranking model: see the module docstring. Nodes are users ``0..U-1`` then items ``U..U+I-1``; the
    one level's operator and the degrees are buffers, so a checkpoint rebuilds the model without the graph."""

    name: ClassVar[str] = "gcmc-implicit"
    summary: ClassVar[str] = "GC-MC on implicit feedback (NGCF paper's baseline): one interaction level, bilinear logit, BPR"
    needs: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS})
    output: ClassVar[str] = "ranking"
    batches: ClassVar[tuple[type, ...]] = (PairBatch,)
    Config: ClassVar[type] = GCMCImplicitConfig
    # The NGCF paper trains its baselines with BPR, Adam, batch 1024 and one uniform negative per positive until
    # early stopping. We take NGCF's schedule (bench/README.md), the same dense-transform situation: batch 8192
    # (Gowalla: ~100 steps an epoch), at least 50 steps an epoch on small data, lr 0.005 decayed from epoch 10, L2
    # 1e-4, user-uniform sampling; early stopping on Recall@20 of 1% of the training pairs (at most 2000) every 5
    # epochs, 3 judgements of patience. With 8 uniform negatives per positive (the BPR loss averaged over them): a
    # step of a full-graph encoder is dear, and 8 negatives give each step 8 times the ranking pairs. On Gowalla's
    # validation part after 10 epochs: Recall@20 0.075 with 8, 0.054 with 1 (the paper's), at 1.7x the time
    # (bench/README.md). NGCF's 8-candidate *dynamic* negatives lost on ML-100K u1: Recall@20
    # 0.2474 / NDCG@20 0.4042 against 0.2560 / 0.4576 with one uniform negative.
    recipe: ClassVar[Recipe] = Recipe(
        epochs=60, batch_size=8192, learning_rate=0.005, lr_decay=0.97, lr_decay_start=10, sampling="user",
        negatives=8, negative_sampling="uniform", l2=1e-4, min_steps_per_epoch=50,
        validation_share=0.01, validation_max_pairs=2000, patience=3, eval_every=5,
    )

    def __init__(self, num_users: int, num_items: int, config: GCMCImplicitConfig = GCMCImplicitConfig(), *,
                 adjacency: torch.Tensor, degree: torch.Tensor) -> None:
        super().__init__()
        num_nodes = num_users + num_items
        if adjacency.shape != (num_nodes, num_nodes) or adjacency.layout != torch.sparse_csr:
            raise ValueError(f"adjacency must be a sparse CSR ({num_nodes}, {num_nodes}) tensor, got {adjacency.shape}")
        if degree.shape != (num_nodes,):
            raise ValueError("one degree per node")
        self.config = config
        self.num_users, self.num_items = num_users, num_items
        self.register_buffer("adjacency_crow", adjacency.crow_indices())
        self.register_buffer("adjacency_col", adjacency.col_indices())
        self.register_buffer("adjacency_values", adjacency.values())
        self.register_buffer("degree", degree.float())
        # W x_j with one-hot x_j is row j of a table (GC-MC's W_r for the one level), Glorot-initialised like W_r.
        self.node_weights = nn.Parameter(torch.empty(num_nodes, config.hidden_dim))
        nn.init.xavier_uniform_(self.node_weights)
        self.user_dense = nn.Linear(config.hidden_dim, config.embedding_dim, bias=False)
        self.item_dense = nn.Linear(config.hidden_dim, config.embedding_dim, bias=False)
        self.basis, self.coefficients = bilinear_decoder_parameters(1, config.num_basis, config.embedding_dim)

    @classmethod
    def from_graph(cls, graph: GraphData, config: GCMCImplicitConfig, device: torch.device) -> GCMCImplicit:
        # Every interaction is one "interacted" edge, whatever its rating; a pair seen twice is one edge.
        pairs = np.unique(np.stack([graph.train_users.astype(np.int64), graph.train_items.astype(np.int64)]), axis=1)
        users, items = pairs[0], pairs[1]
        degree = node_degree(users, items, graph.num_users, graph.num_items)
        adjacency = level_adjacency(users, items, graph.num_users, degree)
        return cls(graph.num_users, graph.num_items, config, adjacency=adjacency, degree=torch.from_numpy(degree)).to(device)

    @classmethod
    def from_state(cls, sizes, config, state, device) -> GCMCImplicit:
        num_nodes = sizes["num_users"] + sizes["num_items"]
        adjacency = csr_tensor(state["adjacency_crow"], state["adjacency_col"], state["adjacency_values"], num_nodes)
        model = cls(**sizes, config=config, adjacency=adjacency, degree=state["degree"])
        model.load_state_dict(state)
        return model.to(device)

    def sizes(self) -> dict[str, int]:
        return {"num_users": self.num_users, "num_items": self.num_items}

    def decoder_matrix(self) -> torch.Tensor:
        """``Q = sum_s a_s P_s``, the one level's bilinear form (``d x d``)."""
        return torch.einsum("s,sde->de", self.coefficients[0], self.basis)

    def encode(self) -> InnerProductScorer:
        config = self.config
        adjacency = csr_tensor(self.adjacency_crow, self.adjacency_col, self.adjacency_values, self.num_users + self.num_items)
        weights = node_dropout(self.node_weights, config.dropout, self.training)
        hidden = torch.relu(level_message(adjacency, weights, degree_root(self.degree), config.normalization))
        hidden = F.dropout(hidden, config.dropout, self.training)
        users = self.user_dense(hidden[: self.num_users])
        items = self.item_dense(hidden[self.num_users :])
        return InnerProductScorer(users, items @ self.decoder_matrix().T)  # u^T Q v = u . (Q v)

    def loss(self, batch: PairBatch, encoded: InnerProductScorer, recipe: Recipe) -> torch.Tensor:
        return joint_embedding_bpr_loss(
            encoded.user_vectors, encoded.item_vectors, self.node_weights, self.num_users,
            batch.users, batch.positives, batch.negatives, recipe.l2,
        )
