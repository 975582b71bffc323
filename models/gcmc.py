"""GC-MC (van den Berg, Kipf and Welling, "Graph Convolutional Matrix Completion", KDD 2018 Deep Learning Day,
arXiv:1706.02263).

A graph auto-encoder over the user-item graph with one edge type per rating level.

Encoder (paper eqs. 2-4), with one-hot node inputs ``x_j`` (no side information), so ``W_r x_j`` is row ``j`` of a
per-level table::

    mu_{i,r} = sum_{j in N_{i,r}} (1 / c_ij) W_r x_j              (eq. 2, one message per rating level r)
    h_i      = ReLU(accum(mu_{i,1}, ..., mu_{i,R}))                (eq. 3; accum: stack (concatenate) or sum)
    u_i      = W h_i                                               (eq. 4, the dense layer; users and items each
                                                                    have their own W, linear as in the authors' code)

``c_ij`` is ``|N_i|`` (left normalisation, the authors' ML-100K setting ``-nleft``) or ``sqrt(|N_i| |N_j|)``
(symmetric), with ``N_i`` every rated neighbour of ``i``. Ordinal weight sharing (sec. 2.6): ``W_r = sum_{s<=r}
T_s``, so a higher level's weights build on the lower levels'. Node dropout (sec. 2.5): during training a node's
messages are all dropped with probability ``dropout`` (and the rest rescaled); the same rate drops the dense layer's
inputs.

Decoder (eqs. 5-6), bilinear with basis-matrix weight sharing (sec. 2.6, ``Q_r = sum_s a_rs P_s``)::

    p(M_ij = r) = softmax_r(u_i^T Q_r v_j),        E[M_ij] = sum_r r p(M_ij = r)

Trained with the cross-entropy over the rating levels (eq. 7). The score of a pair is the expected rating, so the
model ranks the catalog (and publishes) by it. Its scorer is not an inner product: :class:`GCMCScorer` is a
:class:`models.base.PairScorer` that bounds every call by a budget of scores.
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
from gnnrec.models.base import DEFAULT_PAIR_BUDGET, GraphData, Input, Model, PairScorer, RatingBatch, Recipe

# Ratings finer than this many distinct values are rounded to halves (levels are edge types, not a continuum).
MAX_LEVELS = 10
# The most logits (cells x (levels + basis)) the loss computes densely over the whole rating matrix.
DENSE_LOSS_BUDGET = 1 << 25


@dataclass(frozen=True)
class GCMCConfig:
    """The paper's ML-100K settings (its Table 5 and the authors' ``-d ml_100k --accum stack -do 0.7 -nleft -nb 2``):
    ``hidden_dim`` 500 (the stacked width, split evenly over the levels), ``embedding_dim`` 75 (the dense layer's
    output), ``accumulation`` stack, ``dropout`` 0.7 (node dropout and the dense layer's input dropout),
    ``normalization`` left, ``ordinal_sharing`` on, ``num_basis`` 2 decoder basis matrices."""

    hidden_dim: int = 500
    embedding_dim: int = 75
    accumulation: Literal["stack", "sum"] = "stack"
    dropout: float = 0.7
    normalization: Literal["left", "symmetric"] = "left"
    ordinal_sharing: bool = True
    num_basis: int = 2

    def __post_init__(self) -> None:
        if self.hidden_dim < 1 or self.embedding_dim < 1 or self.num_basis < 1:
            raise ValueError("hidden_dim, embedding_dim and num_basis must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must lie in [0, 1)")
        if self.accumulation not in ("stack", "sum") or self.normalization not in ("left", "symmetric"):
            raise ValueError("accumulation must be stack or sum, normalization left or symmetric")


def rating_levels(ratings: np.ndarray) -> np.ndarray:
    """The distinct rating values (rounded to halves when there are more than ``MAX_LEVELS``), ascending."""
    ratings = np.asarray(ratings, np.float64)
    levels = np.unique(ratings)
    if len(levels) > MAX_LEVELS:
        levels = np.unique(np.round(ratings * 2) / 2)
    return levels


def nearest_level(ratings: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Index of the level nearest each rating."""
    return (ratings.unsqueeze(-1) - levels).abs().argmin(dim=-1)


class GCMCScorer(PairScorer):
    """Expected ratings from the encoder's user and item vectors and the decoder's basis. ``score`` computes a
    block of users against an item range with matrix products, a few rows at a time so that a call never holds more
    than ``pair_budget`` (user, item) logit sets; ``score_pairs`` gathers at most ``pair_budget // width`` pairs at a
    time."""

    def __init__(self, users: torch.Tensor, items: torch.Tensor, basis: torch.Tensor, coefficients: torch.Tensor,
                 levels: torch.Tensor, pair_budget: int = DEFAULT_PAIR_BUDGET) -> None:
        super().__init__(max(1, pair_budget // max(users.shape[1], 1)))
        self.user_vectors, self.item_vectors = users, items
        self.basis, self.coefficients, self.levels = basis, coefficients, levels
        self.grid_budget = pair_budget
        self._projected: torch.Tensor | None = None

    def projected_users(self) -> torch.Tensor:
        """``u^T P_s`` for every user and basis matrix (``U x S x d``), computed once per scorer: far cheaper than
        per pair when a batch holds more pairs than there are users."""
        if self._projected is None:
            self._projected = torch.einsum("nd,sde->nse", self.user_vectors, self.basis)
        return self._projected

    def logits(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``u^T Q_r v`` for the pairs ``(users[j], items[j])``: ``len x R``."""
        per_basis = (self.projected_users()[users] * self.item_vectors[items].unsqueeze(1)).sum(dim=-1)
        return per_basis @ self.coefficients.T

    def score_pair_chunk(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(users, items), dim=-1) @ self.levels

    def score(self, users: torch.Tensor, items: slice) -> torch.Tensor:
        item_vectors = self.item_vectors[items]
        width = max(len(item_vectors), 1) * (len(self.levels) + self.basis.shape[0])
        rows = max(1, self.grid_budget // width)
        parts = []
        for start in range(0, len(users), rows):
            projected = self.projected_users()[users[start : start + rows]]
            per_basis = torch.einsum("nse,ie->nis", projected, item_vectors)
            parts.append(torch.softmax(per_basis @ self.coefficients.T, dim=-1) @ self.levels)
        return torch.cat(parts) if parts else torch.empty(0, len(item_vectors), device=item_vectors.device)

    def detach(self) -> GCMCScorer:
        return GCMCScorer(self.user_vectors.detach(), self.item_vectors.detach(), self.basis.detach(),
                          self.coefficients.detach(), self.levels, self.grid_budget)


class GCMC(Model):
    """GC-MC: see the module docstring. Nodes are users ``0..U-1`` then items ``U..U+I-1``; each rating level's
    normalised adjacency is kept as CSR buffers (with the degrees), so a checkpoint rebuilds it without the graph."""

    name: ClassVar[str] = "gcmc"
    summary: ClassVar[str] = "GC-MC (van den Berg et al., 2017): graph auto-encoder over rating levels, expected rating"
    needs: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS, Input.RATINGS})
    output: ClassVar[str] = "rating"
    batches: ClassVar[tuple[type, ...]] = (RatingBatch,)
    Config: ClassVar[type] = GCMCConfig
    # The authors' schedule: full batch, Adam at 0.01, 1,000 epochs, every rating trains (their testing mode); dropout
    # 0.7 is what keeps it from overfitting. A batch of 2^17 ratings is the full batch on ML-100K and ML-1M-sized
    # data (a larger set makes a few steps an epoch). Early stopping on a held-out rating per user was tried and
    # lost: about 900 validation ratings judge RMSE too noisily, it stopped at epoch 340 with test RMSE 0.9207
    # against 0.90 for the full schedule (bench/README.md).
    recipe: ClassVar[Recipe] = Recipe(epochs=1000, batch_size=1 << 17, learning_rate=0.01, l2=0.0, validation_share=0.0)

    def __init__(self, num_users: int, num_items: int, num_levels: int, config: GCMCConfig = GCMCConfig(), *,
                 adjacencies: list[torch.Tensor], degree: torch.Tensor, levels: torch.Tensor) -> None:
        super().__init__()
        num_nodes = num_users + num_items
        if len(adjacencies) != num_levels or levels.shape != (num_levels,) or degree.shape != (num_nodes,):
            raise ValueError("one adjacency and one value per rating level, one degree per node")
        self.config = config
        self.num_users, self.num_items, self.num_levels = num_users, num_items, num_levels
        for r, adjacency in enumerate(adjacencies):
            self.register_buffer(f"adjacency{r}_crow", adjacency.crow_indices())
            self.register_buffer(f"adjacency{r}_col", adjacency.col_indices())
            self.register_buffer(f"adjacency{r}_values", adjacency.values())
        self.register_buffer("degree", degree.float())
        self.register_buffer("levels", levels.float())
        # Stacking splits hidden_dim over the levels (rounded down when it does not divide evenly).
        per_level = max(1, config.hidden_dim // num_levels) if config.accumulation == "stack" else config.hidden_dim
        hidden = per_level * num_levels if config.accumulation == "stack" else config.hidden_dim
        self.level_weights = nn.Parameter(torch.empty(num_levels, num_nodes, per_level))
        for r in range(num_levels):  # Glorot over a one-hot input of width U+I, as the authors initialise W_r
            nn.init.xavier_uniform_(self.level_weights.data[r])
        self.user_dense = nn.Linear(hidden, config.embedding_dim, bias=False)
        self.item_dense = nn.Linear(hidden, config.embedding_dim, bias=False)
        self.basis, self.coefficients = bilinear_decoder_parameters(num_levels, config.num_basis, config.embedding_dim)

    @classmethod
    def from_graph(cls, graph: GraphData, config: GCMCConfig, device: torch.device) -> GCMC:
        if graph.train_ratings is None:
            raise ValueError("GC-MC needs explicit ratings")
        rated = ~np.isnan(graph.train_ratings)
        users, items = graph.train_users[rated].astype(np.int64), graph.train_items[rated].astype(np.int64)
        ratings = graph.train_ratings[rated]
        levels = rating_levels(ratings)
        level_of = np.abs(ratings[:, None] - levels[None, :]).argmin(axis=1)
        # One rating per (user, item): the last one given.
        keys = users * graph.num_items + items
        _, last = np.unique(keys[::-1], return_index=True)
        keep = len(keys) - 1 - last
        users, items, level_of = users[keep], items[keep], level_of[keep]
        degree = node_degree(users, items, graph.num_users, graph.num_items)
        adjacencies = [
            level_adjacency(users[level_of == r], items[level_of == r], graph.num_users, degree) for r in range(len(levels))
        ]
        return cls(graph.num_users, graph.num_items, len(levels), config, adjacencies=adjacencies,
                   degree=torch.from_numpy(degree), levels=torch.from_numpy(levels)).to(device)

    @classmethod
    def from_state(cls, sizes, config, state, device) -> GCMC:
        num_nodes = sizes["num_users"] + sizes["num_items"]
        adjacencies = [
            csr_tensor(state[f"adjacency{r}_crow"], state[f"adjacency{r}_col"], state[f"adjacency{r}_values"], num_nodes)
            for r in range(sizes["num_levels"])
        ]
        model = cls(**sizes, config=config, adjacencies=adjacencies, degree=state["degree"], levels=state["levels"])
        model.load_state_dict(state)
        return model.to(device)

    def sizes(self) -> dict[str, int]:
        return {"num_users": self.num_users, "num_items": self.num_items, "num_levels": self.num_levels}

    def _adjacency(self, r: int) -> torch.Tensor:
        buffers = (getattr(self, f"adjacency{r}_{part}") for part in ("crow", "col", "values"))
        return csr_tensor(*buffers, self.num_users + self.num_items)

    def encode(self) -> GCMCScorer:
        config = self.config
        weights = self.level_weights.cumsum(dim=0) if config.ordinal_sharing else self.level_weights
        weights = node_dropout(weights, config.dropout, self.training)
        root = degree_root(self.degree)
        messages = [level_message(self._adjacency(r), weights[r], root, config.normalization) for r in range(self.num_levels)]
        hidden = torch.relu(torch.cat(messages, dim=1) if config.accumulation == "stack" else torch.stack(messages).sum(0))
        hidden = F.dropout(hidden, config.dropout, self.training)
        users = self.user_dense(hidden[: self.num_users])
        items = self.item_dense(hidden[self.num_users :])
        return GCMCScorer(users, items, self.basis, self.coefficients, self.levels)

    def loss(self, batch: RatingBatch, encoded: GCMCScorer, recipe: Recipe) -> torch.Tensor:
        targets = nearest_level(batch.ratings, self.levels)
        cells = self.num_users * self.num_items
        dense_cost = cells * (self.num_levels + self.config.num_basis)
        pair_cost = len(batch.users) * (self.config.num_basis + 1) * self.config.embedding_dim
        if dense_cost <= min(DENSE_LOSS_BUDGET, pair_cost):
            # A batch covering a good share of a small rating matrix: u^T P_s v for every cell by one matrix product,
            # then only the batch's cells. Cheaper than gathering d-wide vectors per pair.
            per_basis = torch.einsum("use,ie->sui", encoded.projected_users(), encoded.item_vectors)
            chosen = per_basis.reshape(per_basis.shape[0], cells)[:, batch.users * self.num_items + batch.items]
            loss = F.cross_entropy((encoded.coefficients @ chosen).T, targets)
        else:
            loss = F.cross_entropy(encoded.logits(batch.users, batch.items), targets)
        if recipe.l2:
            vectors = torch.cat([encoded.user_vectors[batch.users], encoded.item_vectors[batch.items]], dim=1)
            loss = loss + recipe.l2 * vectors.pow(2).sum(dim=1).mean() / 2
        return loss


def node_degree(users: np.ndarray, items: np.ndarray, num_users: int, num_items: int) -> np.ndarray:
    """``|N_i|`` for every node (users first) over the given edges, every level together."""
    return np.bincount(np.concatenate([users, items + num_users]), minlength=num_users + num_items).astype(np.float64)


def level_adjacency(users: np.ndarray, items: np.ndarray, num_users: int, degree: np.ndarray) -> torch.Tensor:
    """``D^-1/2 A_r D^-1/2`` for one level's edges (both directions), with ``D`` the degree over every level."""
    num_nodes = len(degree)
    rows = np.concatenate([users, items + num_users])
    cols = np.concatenate([items + num_users, users])
    values = (1.0 / np.sqrt(degree[rows] * degree[cols])).astype(np.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*support is in beta.*")
        coo = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])), torch.from_numpy(values),
                                      (num_nodes, num_nodes), check_invariants=False)
        return coo.coalesce().to_sparse_csr()


def degree_root(degree: torch.Tensor) -> torch.Tensor:
    """``sqrt(|N_i|)`` as a column (isolated nodes: 1), the rescaling :func:`level_message` takes."""
    return degree.clamp(min=1).sqrt().unsqueeze(1)


def node_dropout(weights: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Node dropout (sec. 2.5) on per-level tables ``levels x nodes x width``: while training, every message of a
    node, on every level, is dropped with probability ``rate`` and the survivors rescaled by ``1 / (1 - rate)``."""
    if not training or rate == 0:
        return weights
    keep = 1.0 - rate
    mask = torch.bernoulli(torch.full((weights.shape[-2], 1), keep, device=weights.device)) / keep
    return weights * mask


def level_message(adjacency: torch.Tensor, inputs: torch.Tensor, root: torch.Tensor, normalization: str) -> torch.Tensor:
    """``mu_{i,r} = sum_{j in N_{i,r}} (1 / c_ij) W_r x_j`` for every node (eq. 2), from one level's symmetric
    operator (:func:`level_adjacency`), the level's table ``inputs`` and :func:`degree_root`.

    Left normalisation ``1/|N_i| = D^-1/2 (D^-1/2 A_r D^-1/2) D^1/2``: the symmetric operator, rescaled on both
    sides, so the cheap symmetric backward still applies."""
    if normalization == "left":
        return symmetric_propagate(adjacency, inputs * root) / root
    return symmetric_propagate(adjacency, inputs)


def bilinear_decoder_parameters(num_levels: int, num_basis: int, dim: int) -> tuple[nn.Parameter, nn.Parameter]:
    """The decoder's basis matrices ``P_s`` (``S x d x d``, orthogonal) and coefficients ``a_rs`` (``R x S``,
    Glorot), so that ``Q_r = sum_s a_rs P_s`` (sec. 2.6)."""
    basis = nn.Parameter(torch.empty(num_basis, dim, dim))
    nn.init.orthogonal_(basis.view(num_basis * dim, dim))
    coefficients = nn.Parameter(torch.empty(num_levels, num_basis))
    nn.init.xavier_uniform_(coefficients)
    return basis, coefficients
