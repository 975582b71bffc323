"""PinSage (Ying, He, Chen, Eksombatchai, Hamilton and Leskovec, "Graph Convolutional Neural Networks for
Web-Scale Recommender Systems", KDD 2018, arXiv:1806.01973).

The sampled, mini-batch member of the family: no step ever propagates over the whole graph.

- **Importance-based neighbourhoods** (sec. 3.2): on the item-item graph that users induce (two items are linked
  through a user who interacted with both), ``num_walks`` short random walks start at every item; each walk hop goes
  item -> a uniform user of it -> a uniform item of that user, for ``walk_length`` hops. An item's neighbours are the
  ``num_neighbors`` (T) items its walks visited most, and their importance ``alpha`` is the visit count normalised
  over those T. Walks are drawn once, when the model is built, from a seeded generator (``walk_seed``).
- **Convolution** (Algorithm 1, ``CONVOLVE``), ``num_layers`` times (2 in the paper)::

      n_u = gamma({ReLU(Q h_v + q) | v in N(u)}, alpha)      importance-weighted mean pooling
      z_u = ReLU(W [h_u || n_u] + w);   z_u = z_u / ||z_u||

  then a dense head ``G2 ReLU(G1 z_u + g)`` (Algorithm 2, line 15). ``h^(0)`` is a learned per-item vector (the
  interaction data has no visual or text features).
- **Mini-batches** (Algorithm 2): a batch computes only the items it needs (its positives and negatives), their
  T neighbours, and those neighbours' neighbours, deduplicated per layer, so a step's memory is bounded by the
  batch's sampled neighbourhoods (at most ``batch x (1 + K) x (1 + T)^layers`` rows), not by the graph.
- **Loss** (eq. 1): max-margin ``mean max(0, z_q . z_neg - z_q . z_pos + margin)`` over the sampled negatives (the
  recipe's ``negatives``; ``negative_sampling="dynamic"`` trains on the hardest of them, the paper's hard-negative
  idea applied per batch), plus L2 on the batch's user and item input vectors.
- **Queries** are users here (user-item recommendation, as in the NGCF paper's PinSage baseline): each user has a
  learned query vector ``z_q``, scored against item embeddings by inner product.
- **Inference** (sec. 3.4): after training every item's embedding is computed in chunks of ``inference_chunk``
  items, each chunk with its own neighbourhoods, and frozen into an inner-product scorer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gnnrec.models.adjacency import csr_from_pairs, sparse_matmul
from gnnrec.models.base import GraphData, InnerProductScorer, Input, Model, PairBatch, PairScorer, Recipe


@dataclass(frozen=True)
class PinSageConfig:
    """``embedding_dim`` 64 (input, hidden and output width, as the NGCF paper's baselines), ``num_layers`` 2
    convolutions (the paper's K), ``num_neighbors`` T = 10 (the paper's production T is 50; 10 keeps a two-layer
    neighbourhood at 121 rows per item), ``num_walks`` 50 walks of ``walk_length`` 2 item-user-item hops per item,
    ``margin`` 0.1 on the hinge (the paper's Delta; a hyperparameter it does not publish),
    ``inference_chunk`` items per chunk when embedding the catalog."""

    embedding_dim: int = 64
    num_layers: int = 2
    num_neighbors: int = 10
    num_walks: int = 50
    walk_length: int = 2
    margin: float = 0.1
    walk_seed: int = 0
    inference_chunk: int = 4096

    def __post_init__(self) -> None:
        if min(self.embedding_dim, self.num_neighbors, self.num_walks, self.walk_length, self.inference_chunk) < 1:
            raise ValueError("embedding_dim, num_neighbors, num_walks, walk_length and inference_chunk must be >= 1")
        if self.num_layers < 0 or self.margin < 0 or self.walk_seed < 0:
            raise ValueError("num_layers, margin and walk_seed must be >= 0")


def importance_neighbors(
    num_users: int, num_items: int, users: np.ndarray, items: np.ndarray, num_neighbors: int, num_walks: int,
    walk_length: int, seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each item's top-T items by visit count of seeded random walks through users, and their importance.

    Returns ``(neighbors, weights)``, both ``(num_items + 1) x T``: row ``i`` lists item ``i``'s neighbours, most
    visited first (ties by item index), padded with ``num_items`` (the padding item) at weight 0; weights sum to 1
    over a row's real neighbours. The last row is the padding item's own (all padding). All walks advance together,
    one vectorised hop at a time."""
    rng = np.random.default_rng(seed)
    pairs = np.unique(np.stack([np.asarray(users, np.int64), np.asarray(items, np.int64)]), axis=1)
    users, items = pairs[0], pairs[1]
    by_item = np.argsort(items, kind="stable")
    item_start = np.concatenate([[0], np.cumsum(np.bincount(items, minlength=num_items))])
    item_users = users[by_item]
    user_start = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=num_users))])
    user_items = items  # np.unique sorted the pairs by user
    starts = np.repeat(np.arange(num_items), num_walks)
    current = starts.copy()
    visits_from, visits_to = [], []
    for _ in range(walk_length):
        degree = item_start[current + 1] - item_start[current]
        alive = degree > 0
        starts, current, degree = starts[alive], current[alive], degree[alive]
        user = item_users[item_start[current] + (rng.random(len(current)) * degree).astype(np.int64)]
        user_degree = user_start[user + 1] - user_start[user]
        current = user_items[user_start[user] + (rng.random(len(user)) * user_degree).astype(np.int64)]
        moved = current != starts
        visits_from.append(starts[moved])
        visits_to.append(current[moved])
    neighbors = np.full((num_items + 1, num_neighbors), num_items, dtype=np.int64)
    weights = np.zeros((num_items + 1, num_neighbors), dtype=np.float32)
    if visits_from and sum(len(v) for v in visits_from):
        keys, counts = np.unique(np.concatenate(visits_from) * num_items + np.concatenate(visits_to), return_counts=True)
        source, target = keys // num_items, keys % num_items
        order = np.lexsort((target, -counts, source))  # by source, then most visited, then item index
        source, target, counts = source[order], target[order], counts[order]
        first = np.searchsorted(source, source)  # first row of each source
        rank = np.arange(len(source)) - first
        top = rank < num_neighbors
        neighbors[source[top], rank[top]] = target[top]
        weights[source[top], rank[top]] = counts[top]
        totals = weights.sum(axis=1, keepdims=True)
        weights = np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)
    return neighbors, weights


class SampledItemScorer(PairScorer):
    """The scorer of one training step: item embeddings are computed on demand, for the items asked about only,
    with gradients (users' query vectors against them by inner product)."""

    def __init__(self, model: PinSage) -> None:
        super().__init__(model.config.inference_chunk)
        self.model = model

    def score_pair_chunk(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        unique, position = torch.unique(items, return_inverse=True)
        return (self.model.user_embedding.weight[users] * self.model.embed_items(unique)[position]).sum(dim=-1)

    def score(self, users: torch.Tensor, items: slice) -> torch.Tensor:
        columns = torch.arange(items.start, items.stop, device=users.device)
        return self.model.user_embedding.weight[users] @ self.model.embed_items(columns).T


class PinSage(Model):
    """PinSage: see the module docstring. The neighbour table (items ``0..I-1`` plus the padding item ``I``) is a
    buffer, so a checkpoint rebuilds the model without the graph and without walking again."""

    name: ClassVar[str] = "pinsage"
    summary: ClassVar[str] = "PinSage (Ying et al., KDD 2018): random-walk neighbourhoods, sampled convolutions, max-margin"
    needs: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS})
    output: ClassVar[str] = "ranking"
    batches: ClassVar[tuple[type, ...]] = (PairBatch,)
    Config: ClassVar[type] = PinSageConfig
    # Mini-batches of 4,096 pairs (the top of the paper's 512-4,096), 8 uniform negatives each (hinge averaged over
    # them), Adam at 0.005 decayed by 0.97 an epoch from epoch 10, L2 1e-5; at least 50 steps an epoch on small data.
    # Early stopping on Recall@20 of 1% of the pairs, every 5 epochs. The large batch because a step's two-hop
    # neighbourhood soon covers most of a catalog (88% of Gowalla's items at 1,024 pairs), so a step costs nearly the
    # same whatever its batch: 4x the pairs cost 1.5x the time (Gowalla, one thread: 161 s an epoch at 1,024, 60 s at
    # 4,096). Not tuned on Gowalla.
    recipe: ClassVar[Recipe] = Recipe(
        epochs=60, batch_size=4096, learning_rate=0.005, lr_decay=0.97, lr_decay_start=10, sampling="pair",
        negatives=8, negative_sampling="uniform", l2=1e-5, min_steps_per_epoch=50,
        validation_share=0.01, validation_max_pairs=2000, patience=3, eval_every=5,
    )

    def __init__(self, num_users: int, num_items: int, config: PinSageConfig = PinSageConfig(), *,
                 neighbors: torch.Tensor, weights: torch.Tensor) -> None:
        super().__init__()
        shape = (num_items + 1, config.num_neighbors)
        if neighbors.shape != shape or weights.shape != shape:
            raise ValueError(f"neighbors and weights must be {shape}")
        self.config = config
        self.num_users, self.num_items = num_users, num_items
        self.register_buffer("neighbors", neighbors.long())
        self.register_buffer("weights", weights.float())
        d = config.embedding_dim
        self.user_embedding = nn.Embedding(num_users, d)
        self.item_features = nn.Embedding(num_items + 1, d)  # row num_items: the padding item
        nn.init.normal_(self.user_embedding.weight, std=0.1)
        nn.init.normal_(self.item_features.weight, std=0.1)
        self.pool = nn.ModuleList(nn.Linear(d, d) for _ in range(config.num_layers))  # Q, q
        self.combine = nn.ModuleList(nn.Linear(2 * d, d) for _ in range(config.num_layers))  # W, w
        self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))  # G1, g, G2

    @classmethod
    def from_graph(cls, graph: GraphData, config: PinSageConfig, device: torch.device) -> PinSage:
        neighbors, weights = importance_neighbors(
            graph.num_users, graph.num_items, graph.train_users, graph.train_items, config.num_neighbors,
            config.num_walks, config.walk_length, config.walk_seed,
        )
        return cls(graph.num_users, graph.num_items, config, neighbors=torch.from_numpy(neighbors),
                   weights=torch.from_numpy(weights)).to(device)

    @classmethod
    def from_state(cls, sizes, config, state, device) -> PinSage:
        model = cls(**sizes, config=config, neighbors=state["neighbors"], weights=state["weights"])
        model.load_state_dict(state)
        return model.to(device)

    def sizes(self) -> dict[str, int]:
        return {"num_users": self.num_users, "num_items": self.num_items}

    def embed_items(self, items: torch.Tensor) -> torch.Tensor:
        """Embeddings of ``items`` (distinct, 1-d), computed over their sampled neighbourhoods only (Algorithm 2)."""
        layers = [items]  # layers[l]: the sorted distinct items whose layer-(K-l) vector is needed
        for _ in range(self.config.num_layers):
            needed = layers[-1]
            layers.append(torch.unique(torch.cat([needed, self.neighbors[needed].reshape(-1)])))
        nodes = layers[-1]
        hidden = self.item_features(nodes)
        for k in range(self.config.num_layers):
            targets = layers[self.config.num_layers - 1 - k]
            own = hidden[torch.searchsorted(nodes, targets)]
            # ReLU(Q h_v + q) depends on the neighbour alone: each node is transformed once and pooled by a sparse
            # product, never spelt out per (target, neighbour) pair.
            pooling, pooling_t = self._pooling_matrices(targets, nodes)
            pooled = sparse_matmul(pooling, pooling_t, torch.relu(self.pool[k](hidden)))
            hidden = F.normalize(torch.relu(self.combine[k](torch.cat([own, pooled], dim=1))), dim=1)
            nodes = targets
        return self.head(hidden[torch.searchsorted(nodes, items)])

    def _pooling_matrices(self, targets: torch.Tensor, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``gamma`` as a sparse ``|targets| x |nodes|`` matrix of normalised importances (the padding neighbours,
        of importance 0, left out) and its transpose, for :func:`sparse_matmul`."""
        importance = self.weights[targets]
        normalised = importance / importance.sum(dim=1, keepdim=True).clamp(min=1e-12)
        rows, slot = torch.nonzero(importance > 0, as_tuple=True)
        cols = torch.searchsorted(nodes, self.neighbors[targets][rows, slot])
        values = normalised[rows, slot]
        shape = (len(targets), len(nodes))
        return csr_from_pairs(rows, cols, values, shape), csr_from_pairs(cols, rows, values, shape[::-1])

    def encode(self) -> SampledItemScorer:
        return SampledItemScorer(self)

    def scorer(self) -> InnerProductScorer:
        """Every item's embedding, ``inference_chunk`` items at a time, frozen with the users' query vectors."""
        chunk = self.config.inference_chunk
        device = self.user_embedding.weight.device
        with torch.no_grad():
            parts = [self.embed_items(torch.arange(s, min(s + chunk, self.num_items), device=device))
                     for s in range(0, self.num_items, chunk)]
            items = torch.cat(parts) if parts else torch.empty(0, self.config.embedding_dim, device=device)
            return InnerProductScorer(self.user_embedding.weight.detach().clone(), items)

    def loss(self, batch: PairBatch, encoded: SampledItemScorer, recipe: Recipe) -> torch.Tensor:
        size = len(batch.users)
        wanted = torch.cat([batch.positives, batch.negatives.reshape(-1)])
        unique, position = torch.unique(wanted, return_inverse=True)
        vectors = self.embed_items(unique)[position]
        users = self.user_embedding.weight[batch.users]
        positive = (users * vectors[:size]).sum(dim=-1)
        negative = (users.unsqueeze(1) * vectors[size:].reshape(size, -1, users.shape[1])).sum(dim=-1)
        hinge = torch.relu(negative - positive.unsqueeze(1) + self.config.margin).mean()
        # L2 on the batch's input vectors: a user's query, its positive's features, its negatives' mean (as BPR).
        features = self.item_features.weight
        penalty = (users.pow(2).sum() + features[batch.positives].pow(2).sum()
                   + features[batch.negatives].pow(2).sum(dim=-1).reshape(size, -1).mean(dim=1).sum()) / size
        return hinge + recipe.l2 * penalty / 2
