"""GraphRec (Fan et al., "Graph Neural Networks for Social Recommendation", WWW 2019) and GraphRec+ (Fan et al.,
"A Graph Neural Network Framework for Social Recommendations", TKDE 2020: GraphRec plus an item-item graph).

Notation as in the paper: ``p_i`` user embeddings, ``q_j`` item embeddings, ``e_r`` opinion (rating) embeddings.

User modelling (section 2.3):

- item aggregation: ``x_ia = g_v([q_a (+) e_r])`` (an MLP), attention ``a_ia = softmax_a(w2 . relu(W1 [x_ia (+)
  p_i] + b1) + b2)`` over the items ``C(i)`` user ``i`` rated, ``h_i^I = relu(W [sum_a a_ia x_ia] + b)``;
- social aggregation: ``h_i^S = relu(W [sum_o b_io h_o^I] + b)`` over the users ``N(i)`` that ``i`` follows, with
  attention ``b_io`` on ``[h_o^I (+) p_i]`` (the neighbours' *item-space* factors, as the paper and the tutorial
  write it; the released code takes their raw embeddings instead, for speed);
- ``h_i = MLP([h_i^I (+) h_i^S])`` (``combine_layers`` ReLU layers).

Item modelling (section 2.4): ``f_jt = g_u([p_t (+) e_r])``, attention ``m_jt`` on ``[f_jt (+) q_j]`` over the users
``B(j)`` who rated ``j``, ``z_j = relu(W [sum_t m_jt f_jt] + b)``. GraphRec+ also aggregates item ``j``'s item-item
neighbours' user-space factors ``z_k`` with attention on ``[z_k (+) q_j]`` (the item-side mirror of the social
aggregation) and combines the two as the user side does.

Rating prediction (section 2.5): ``g_1 = [h_i (+) z_j]``, ReLU layers of widths ``d`` and ``d/4`` (at least 8) with
dropout, then ``r'_ij = w . g + b``. Squared error; dropout ``dropout`` (default 0, see the config) after the hidden
layers of the attention networks and of the rating MLP.

Neighbourhoods are CSR index tensors; a batch gathers its nodes' neighbour rows at once and normalises attention
with a segment softmax (``scatter_reduce`` max, ``index_add`` sum): no Python loop over users or items. By
default every rated item, rater and followee counts (the paper's behaviour); ``history_cap`` keeps a seeded random
sample of at most that many per node, drawn once when the model is built (a public re-implementation truncated
histories to 30 items silently and never reached the paper).

A rating is an opinion level ``round(r)`` in 0..5 (the landing contract's scale), embedded as level ``r + 1``;
interactions without a rating (a view, a click) take level 0, so they still shape the neighbourhoods.

Publishing: the scorer computes every ``h_i`` and ``z_j`` once, splits the first rating layer into its user and
item halves (``W1 [h (+) z] = W1u h + W1v z``, two tables), and evaluates only the remaining small layers per pair,
under the pair budget of :class:`models.base.PairScorer`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from gnnrec.models.base import DEFAULT_PAIR_BUDGET, GraphData, Input, Model, PairScorer, RatingBatch, Recipe
from gnnrec.models.biased_mf import rating_mean

NUM_LEVELS = 7  # 0: no rating; 1..6: the ratings 0..5
HISTORY_SEED = 13  # the seed of the history_cap sample
# Pairs per block when a scorer ranks a grid: 16,384 pairs x 64 floats (4 MiB) stay in cache across the rating
# layers' elementwise passes. Ranking 1,024 Ciao users against 16,384 items took 3.8 s in such blocks, 12.7 s in
# blocks of 2^20 pairs (one thread).
GRID_BLOCK_PAIRS = 1 << 14


@dataclass(frozen=True)
class GraphRecConfig:
    """``embedding_dim`` 64 (the paper's best); ``dropout`` 0; ``combine_layers`` 2 (the MLP over [h^I, h^S]);
    ``history_cap`` 0 = every neighbour (the paper). GraphRec+ only: the item-item graph keeps for each item its
    ``item_neighbours`` (10) most co-interacted items with at least ``co_interactions`` (2) common users.

    As the authors' released code, and beyond the paper's equations (each is an option; on the contract test's
    planted world GraphRec learns no more than user and item biases without the last three, RMSE 0.926 vs 0.62):

    - ``self_connection``: ``h^I`` and ``z`` see the node's own embedding (``relu(W [pooled (+) p_i] + b)``);
    - ``towers``: two layers on each side (linear, batch norm, ReLU, dropout, linear) before the rating MLP;
    - ``batch_norm`` after the rating MLP's hidden layers and in the towers;
    - ``init_std`` 1.0: ``nn.Embedding``'s own N(0, 1), which the released code keeps. With 0.1 the embeddings
      reach the rating MLP through five layers too faintly to learn a user-item interaction before overfitting.

    ``hide_batch_pairs``: a training batch's own (user, item) pairs are left out of the neighbourhoods the batch is
    encoded from, as the test pairs are absent from the graph at test time (the released code leaves them in, so a
    pair's own opinion vector is among what predicts it). ``dropout`` 0: the released code's 0.5 (everywhere)
    keeps the planted world at bias level within early stopping's patience (RMSE 0.93); 0.2 reaches 0.74 after 32
    epochs, 0.1 0.60 after 45, 0 0.61 after 43 in half the time (GraphRec+ 0.56); early stopping regularises.
    """

    embedding_dim: int = 64
    dropout: float = 0.0
    combine_layers: int = 2
    history_cap: int = 0
    item_neighbours: int = 10
    co_interactions: int = 2
    init_std: float = 1.0
    self_connection: bool = True
    hide_batch_pairs: bool = True
    towers: bool = True
    batch_norm: bool = True

    def __post_init__(self) -> None:
        if self.embedding_dim < 1 or not 0 <= self.dropout < 1 or self.combine_layers < 1 or self.init_std <= 0:
            raise ValueError("embedding_dim and combine_layers must be >= 1, dropout in [0, 1), init_std > 0")
        if self.history_cap < 0 or self.item_neighbours < 1 or self.co_interactions < 1:
            raise ValueError("history_cap must be >= 0 (0: no cap), item_neighbours and co_interactions >= 1")


# --- Neighbourhoods as CSR index arrays -------------------------------------------------------------------------


def csr_lists(rows: np.ndarray, cols: np.ndarray, num_rows: int, extra: np.ndarray | None = None,
              cap: int = 0, seed: int = HISTORY_SEED) -> tuple[np.ndarray, ...]:
    """``(ptr, cols[, extra])`` of the neighbour lists ``rows -> cols`` sorted by row then column; with ``cap``, a
    seeded random sample of at most ``cap`` entries per row."""
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    order = np.lexsort((cols, rows))
    if cap:
        keys = np.random.default_rng(seed).random(len(rows))
        order = np.lexsort((keys, rows))
        start = np.searchsorted(rows[order], rows[order], side="left")
        order = order[np.arange(len(order)) - start < cap]
        order = order[np.lexsort((cols[order], rows[order]))]
    degree = np.bincount(rows[order], minlength=num_rows)
    ptr = np.concatenate([[0], np.cumsum(degree)]).astype(np.int64)
    out = (ptr, cols[order])
    return out + ((np.asarray(extra)[order],) if extra is not None else ())


def gather_rows(ptr: torch.Tensor, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``nodes`` (``B``), the positions of their CSR entries and, for each entry, its node's place in ``nodes``."""
    starts, counts = ptr[nodes], ptr[nodes + 1] - ptr[nodes]
    segment = torch.repeat_interleave(torch.arange(len(nodes), device=ptr.device), counts)
    first = torch.cumsum(counts, 0) - counts
    positions = starts[segment] + torch.arange(len(segment), device=ptr.device) - first[segment]
    return positions, segment


def segment_softmax(scores: torch.Tensor, segment: torch.Tensor, num_segments: int) -> torch.Tensor:
    """Softmax of ``scores`` within each segment (``segment[e]`` names the segment of entry ``e``)."""
    top = torch.full((num_segments,), float("-inf"), device=scores.device, dtype=scores.dtype)
    top = top.scatter_reduce(0, segment, scores, reduce="amax", include_self=True)
    weights = torch.exp(scores - top[segment])
    total = torch.zeros(num_segments, device=scores.device, dtype=scores.dtype).index_add(0, segment, weights)
    return weights / total[segment]


def segment_sum(values: torch.Tensor, segment: torch.Tensor, num_segments: int) -> torch.Tensor:
    return torch.zeros(num_segments, values.shape[1], device=values.device, dtype=values.dtype).index_add(0, segment, values)


def item_item_graph(users: np.ndarray, items: np.ndarray, num_users: int, num_items: int, top_n: int,
                    threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """``(src, dst)``: each item's ``top_n`` items by number of common users (ties by index), counts >= threshold."""
    pairs = np.unique(np.stack([np.asarray(users, np.int64), np.asarray(items, np.int64)]), axis=1)
    r = sp.csr_matrix((np.ones(pairs.shape[1], np.float32), (pairs[0], pairs[1])), shape=(num_users, num_items))
    co = (r.T @ r).tocoo()
    keep = (co.row != co.col) & (co.data >= threshold)
    src, dst, count = co.row[keep].astype(np.int64), co.col[keep].astype(np.int64), co.data[keep]
    order = np.lexsort((dst, -count, src))
    src, dst = src[order], dst[order]
    rank = np.arange(len(src)) - np.searchsorted(src, src, side="left")
    return src[rank < top_n], dst[rank < top_n]


# --- Building blocks --------------------------------------------------------------------------------------------


def split_linear(layer: nn.Linear, left: torch.Tensor, right: torch.Tensor, right_at: torch.Tensor) -> torch.Tensor:
    """``layer([left (+) right[right_at]])`` without building the concatenation: ``W_l left + (W_r right + b)[right_at]``.

    Each entry of a neighbourhood pairs its own message with a vector shared by many entries (its node's embedding,
    its opinion level's): the shared half is multiplied once per distinct vector, not once per entry."""
    width = left.shape[1]
    return F.linear(left, layer.weight[:, :width]) + F.embedding(right_at, F.linear(right, layer.weight[:, width:], layer.bias))


def gathered_linear(weight: torch.Tensor, table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``table[rows] @ weight.T``, multiplying whichever is smaller: the gathered rows or the table.

    A training step on Ciao gathers the histories of most users (150,000 entries over 90,000 items): there
    projecting the item table once and gathering the products is cheaper than projecting every entry."""
    if len(rows) < len(table):
        return F.linear(F.embedding(rows, table), weight)
    return F.embedding(rows, F.linear(table, weight))


def opinion_vectors(network: nn.Sequential, nodes: torch.Tensor, node_rows: torch.Tensor, opinions: torch.Tensor,
                    levels: torch.Tensor) -> torch.Tensor:
    """``network([nodes[node_rows] (+) opinions[levels]])`` (the paper's ``g_v`` / ``g_u``) with the first layer
    split: the node half through :func:`gathered_linear`, the opinion half once per opinion level (7 of them)."""
    first, width = network[0], nodes.shape[1]
    hidden = (gathered_linear(first.weight[:, :width], nodes, node_rows)
              + F.embedding(levels, F.linear(opinions, first.weight[:, width:], first.bias)))
    return network[2:](torch.relu(hidden))


class Attention(nn.Module):
    """The paper's two-layer attention network: ``w2 . dropout(relu(W1 [x (+) target] + b1)) + b2``."""

    def __init__(self, d: int, dropout: float) -> None:
        super().__init__()
        self.hidden, self.out, self.dropout = nn.Linear(2 * d, d), nn.Linear(d, 1), dropout

    def forward(self, messages: torch.Tensor, targets: torch.Tensor, segment: torch.Tensor) -> torch.Tensor:
        """The score of each message ``e`` against its node's target ``targets[segment[e]]``."""
        hidden = F.dropout(torch.relu(split_linear(self.hidden, messages, targets, segment)), self.dropout, self.training)
        return self.out(hidden).squeeze(1)


class Aggregator(nn.Module):
    """``relu(W [sum_e softmax_e(att(m_e, target)) m_e] + b)`` over each node's neighbour messages ``m_e``; with
    ``self_connection``, ``relu(W [pooled (+) target] + b)``: the node's own embedding joins what it pooled."""

    def __init__(self, d: int, dropout: float, self_connection: bool = False) -> None:
        super().__init__()
        self.self_connection = self_connection
        self.attention, self.linear = Attention(d, dropout), nn.Linear(2 * d if self_connection else d, d)

    def forward(self, messages, segment, targets, num_nodes) -> torch.Tensor:
        if len(messages):
            alpha = segment_softmax(self.attention(messages, targets, segment), segment, num_nodes)
            pooled = segment_sum(alpha.unsqueeze(1) * messages, segment, num_nodes)
        else:
            pooled = targets.new_zeros(num_nodes, targets.shape[1])
        if self.self_connection:
            pooled = torch.cat([pooled, targets], dim=1)
        return torch.relu(self.linear(pooled))


def tower(d: int, dropout: float, batch_norm: bool) -> nn.Sequential:
    """The released code's per-side layers before the rating MLP: linear, [batch norm], ReLU, dropout, linear."""
    layers = [nn.Linear(d, d)] + ([BatchNorm(d)] if batch_norm else [])
    return nn.Sequential(*layers, nn.ReLU(), nn.Dropout(dropout), nn.Linear(d, d))


class BatchNorm(nn.BatchNorm1d):
    """Batch norm (momentum 0.5, the released code's) that normalises a training batch of one row by its running
    statistics instead of failing: a batch's distinct users or items can be a single one."""

    def __init__(self, d: int) -> None:
        super().__init__(d, momentum=0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and len(x) < 2:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


def mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class GraphRecScorer(PairScorer):
    """Scores pairs from per-user and per-item factor functions (each maps node indices to factors); the first
    rating layer's halves are applied per node, the remaining layers per pair, in chunks of the pair budget."""

    def __init__(self, model: GraphRec, user_part, item_part, pair_budget: int = DEFAULT_PAIR_BUDGET) -> None:
        super().__init__(pair_budget)
        self.model, self.user_part, self.item_part = model, user_part, item_part

    def score_pair_chunk(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        unique_users, user_at = torch.unique(users, return_inverse=True)
        unique_items, item_at = torch.unique(items, return_inverse=True)
        first = self.user_part(unique_users)[user_at] + self.item_part(unique_items)[item_at]
        return self.model.predict_from_first_layer(first)

    def score(self, users: torch.Tensor, items: slice) -> torch.Tensor:
        """Full-catalog ranking's path: a block of users against a contiguous range of items is a grid, so each
        user's and each item's first-layer half is looked up once and broadcast, not gathered (and deduplicated)
        per pair. The small layers see at most ``GRID_BLOCK_PAIRS`` pairs (and ``pair_budget``) at a time."""
        columns = torch.arange(items.start, items.stop, device=users.device)
        item_first = self.item_part(columns)
        out = torch.empty(len(users), len(columns), device=users.device)
        rows_per_call = max(1, min(self.pair_budget, GRID_BLOCK_PAIRS) // max(len(columns), 1))
        for start in range(0, len(users), rows_per_call):
            block = users[start : start + rows_per_call]
            first = self.user_part(block).unsqueeze(1) + item_first.unsqueeze(0)
            out[start : start + len(block)] = self.model.predict_from_first_layer(first.reshape(-1, first.shape[2])).reshape(len(block), -1)
        return out


class GraphRec(Model):
    """GraphRec: attention over rated items, social neighbours and raters; rating by an MLP; squared error."""

    name: ClassVar[str] = "graphrec"
    summary: ClassVar[str] = "GraphRec (Fan et al., WWW 2019): attentive social and opinion aggregation, ratings"
    needs: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS, Input.RATINGS, Input.SOCIAL})
    output: ClassVar[str] = "rating"
    batches: ClassVar[tuple[type, ...]] = (RatingBatch,)
    Config: ClassVar[type] = GraphRecConfig
    item_graph: ClassVar[bool] = False
    # The released code's epoch budget 100 and patience ("endure" 5 more judgements), no L2 (dropout regularises);
    # Adam at 0.002 (the released code: RMSprop at 0.001; at 0.001 the planted world stays at bias level within the
    # patience). Model selection on the RMSE of 5% of the training ratings (at most 5000), never on the test day (the
    # released code stops on test RMSE). Validation RMSE sits on a plateau for a few epochs before the user-item
    # interaction is learnt, hence a patience of 6 judgements.
    # Batch 1024, not the released code's 128: a step encodes its users and all their followees from their whole
    # histories, and on Ciao a batch of 128 ratings already reaches 151,000 of the 226,000 history entries (1,024:
    # 203,000), so a step of 1,024 costs about 1.35 steps of 128 and an epoch about a sixth. Data too small for 50
    # steps of 1,024 trains at the batch that makes 50 steps (the planted world's 6,450 ratings: 129, as at 128).
    recipe: ClassVar[Recipe] = Recipe(
        epochs=100, batch_size=1024, learning_rate=0.002, l2=0.0, min_steps_per_epoch=50,
        validation_share=0.05, validation_max_pairs=5000, patience=6, eval_every=1,
    )

    def __init__(self, num_users: int, num_items: int, config: GraphRecConfig = GraphRecConfig(), *,
                 graph: dict[str, torch.Tensor], mean: float = 0.0) -> None:
        super().__init__()
        self.config = config
        self.num_users, self.num_items = num_users, num_items
        for key, value in graph.items():
            self.register_buffer(key, value)
        d, p = config.embedding_dim, config.dropout
        self.user_embedding = nn.Embedding(num_users, d)
        self.item_embedding = nn.Embedding(num_items, d)
        self.opinion_embedding = nn.Embedding(NUM_LEVELS, d)
        for table in (self.user_embedding, self.item_embedding, self.opinion_embedding):
            nn.init.normal_(table.weight, std=config.init_std)
        self.g_v, self.g_u = mlp([2 * d, d, d]), mlp([2 * d, d, d])  # opinion-aware interaction vectors
        own = config.self_connection
        self.item_aggregation, self.social_aggregation = Aggregator(d, p, own), Aggregator(d, p)
        self.user_combine = mlp([2 * d] + [d] * config.combine_layers)
        self.user_aggregation = Aggregator(d, p, own)
        if self.item_graph:
            self.item_item_aggregation = Aggregator(d, p)
            self.item_combine = mlp([2 * d] + [d] * config.combine_layers)
        hidden = max(8, d // 4)
        if config.towers:
            self.user_tower, self.item_tower = tower(d, p, config.batch_norm), tower(d, p, config.batch_norm)
        self.rating_first = nn.Linear(2 * d, d)
        self.rating_hidden = nn.Linear(d, hidden)
        self.rating_out = nn.Linear(hidden, 1)
        if config.batch_norm:
            self.first_norm, self.hidden_norm = BatchNorm(d), BatchNorm(hidden)
        nn.init.constant_(self.rating_out.bias, float(mean))

    # -- construction --

    @classmethod
    def from_graph(cls, graph: GraphData, config: GraphRecConfig, device: torch.device) -> GraphRec:
        return cls(graph.num_users, graph.num_items, config, graph=cls.neighbourhoods(graph, config),
                   mean=rating_mean(graph)).to(device)

    @classmethod
    def neighbourhoods(cls, graph: GraphData, config: GraphRecConfig) -> dict[str, torch.Tensor]:
        ratings = graph.train_ratings if graph.train_ratings is not None else np.full(len(graph.train_users), np.nan)
        levels = np.where(np.isnan(ratings), 0, np.clip(np.rint(np.nan_to_num(ratings)), 0, 5) + 1).astype(np.int64)
        cap = config.history_cap
        arrays = {}
        arrays["user_ptr"], arrays["user_items"], arrays["user_levels"] = csr_lists(
            graph.train_users, graph.train_items, graph.num_users, levels, cap)
        arrays["item_ptr"], arrays["item_users"], arrays["item_levels"] = csr_lists(
            graph.train_items, graph.train_users, graph.num_items, levels, cap)
        arrays["social_ptr"], arrays["social_users"] = csr_lists(graph.social_src, graph.social_dst, graph.num_users, cap=cap)
        if cls.item_graph:
            src, dst = item_item_graph(graph.train_users, graph.train_items, graph.num_users, graph.num_items,
                                       config.item_neighbours, config.co_interactions)
            arrays["related_ptr"], arrays["related_items"] = csr_lists(src, dst, graph.num_items)
        return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in arrays.items()}

    @classmethod
    def from_state(cls, sizes, config, state, device) -> GraphRec:
        keys = ("user_ptr", "user_items", "user_levels", "item_ptr", "item_users", "item_levels", "social_ptr",
                "social_users") + (("related_ptr", "related_items") if cls.item_graph else ())
        model = cls(**sizes, config=config, graph={key: state[key] for key in keys})
        model.load_state_dict(state)
        return model.to(device)

    def sizes(self) -> dict[str, int]:
        return {"num_users": self.num_users, "num_items": self.num_items}

    # -- user modelling --

    def item_space(self, users: torch.Tensor, hide: torch.Tensor | None = None) -> torch.Tensor:
        """``h^I`` of ``users``: attention over their rated items' opinion-aware vectors. ``hide``: sorted pair keys
        ``user * num_items + item`` left out of the histories (a training batch's own pairs)."""
        positions, segment = gather_rows(self.user_ptr, users)
        items = self.user_items[positions]
        if hide is not None:
            keep = ~torch.isin(users[segment] * self.num_items + items, hide)
            positions, segment, items = positions[keep], segment[keep], items[keep]
        x = opinion_vectors(self.g_v, self.item_embedding.weight, items, self.opinion_embedding.weight,
                            self.user_levels[positions])
        return self.item_aggregation(x, segment, self.user_embedding(users), len(users))

    def user_factors(self, users: torch.Tensor, item_space=None, hide: torch.Tensor | None = None) -> torch.Tensor:
        """``h`` of ``users``; ``item_space`` (a function of user indices) supplies ``h^I`` when precomputed."""
        item_space = item_space or (lambda nodes: self.item_space(nodes, hide))
        positions, segment = gather_rows(self.social_ptr, users)
        friends = self.social_users[positions]
        needed, at = torch.unique(torch.cat([users, friends]), return_inverse=True)
        h_item = item_space(needed)
        own, theirs = h_item[at[: len(users)]], h_item[at[len(users) :]]
        h_social = self.social_aggregation(theirs, segment, self.user_embedding(users), len(users))
        return self.user_combine(torch.cat([own, h_social], dim=1))

    # -- item modelling --

    def user_space(self, items: torch.Tensor, hide: torch.Tensor | None = None) -> torch.Tensor:
        """``z`` (GraphRec+: ``z^U``) of ``items``: attention over their raters' opinion-aware vectors."""
        positions, segment = gather_rows(self.item_ptr, items)
        users = self.item_users[positions]
        if hide is not None:
            keep = ~torch.isin(users * self.num_items + items[segment], hide)
            positions, segment, users = positions[keep], segment[keep], users[keep]
        f = opinion_vectors(self.g_u, self.user_embedding.weight, users, self.opinion_embedding.weight,
                            self.item_levels[positions])
        return self.user_aggregation(f, segment, self.item_embedding(items), len(items))

    def item_factors(self, items: torch.Tensor, user_space=None, hide: torch.Tensor | None = None) -> torch.Tensor:
        user_space = user_space or (lambda nodes: self.user_space(nodes, hide))
        if not self.item_graph:
            return user_space(items)
        positions, segment = gather_rows(self.related_ptr, items)
        related = self.related_items[positions]
        needed, at = torch.unique(torch.cat([items, related]), return_inverse=True)
        z_user = user_space(needed)
        own, theirs = z_user[at[: len(items)]], z_user[at[len(items) :]]
        z_items = self.item_item_aggregation(theirs, segment, self.item_embedding(items), len(items))
        return self.item_combine(torch.cat([own, z_items], dim=1))

    # -- rating prediction --

    def user_half(self, h: torch.Tensor) -> torch.Tensor:
        d = self.config.embedding_dim
        if self.config.towers:
            h = self.user_tower(h)
        return h @ self.rating_first.weight[:, :d].T

    def item_half(self, z: torch.Tensor) -> torch.Tensor:
        d = self.config.embedding_dim
        if self.config.towers:
            z = self.item_tower(z)
        return z @ self.rating_first.weight[:, d:].T + self.rating_first.bias

    def predict_from_first_layer(self, first: torch.Tensor) -> torch.Tensor:
        """The rating from ``W1u h + W1v z + b1`` (the first layer before its ReLU)."""
        p, norm = self.config.dropout, self.config.batch_norm
        hidden = F.dropout(torch.relu(self.first_norm(first) if norm else first), p, self.training)
        hidden = self.rating_hidden(hidden)
        hidden = F.dropout(torch.relu(self.hidden_norm(hidden) if norm else hidden), p, self.training)
        return self.rating_out(hidden).squeeze(-1)

    def encode(self) -> GraphRecScorer:
        """A scorer that computes the factors of each chunk's users and items on demand (training: a batch's)."""
        return GraphRecScorer(self, lambda users: self.user_half(self.user_factors(users)),
                              lambda items: self.item_half(self.item_factors(items)))

    def scorer(self) -> GraphRecScorer:
        """Every user's and item's first-layer half, computed once in chunks; pairs then cost the small layers."""
        with torch.no_grad():
            item_space = _table(self.item_space, self.num_users, self.user_ptr.device)
            user_space = _table(self.user_space, self.num_items, self.user_ptr.device)
            users = _table(lambda u: self.user_half(self.user_factors(u, lambda v: item_space[v])), self.num_users,
                           self.user_ptr.device)
            items = _table(lambda i: self.item_half(self.item_factors(i, lambda v: user_space[v])), self.num_items,
                           self.user_ptr.device)
        return GraphRecScorer(self, lambda u: users[u], lambda i: items[i])

    def loss(self, batch: RatingBatch, encoded: GraphRecScorer, recipe: Recipe) -> torch.Tensor:
        if self.config.hide_batch_pairs:
            # The pair being predicted is never in its own neighbourhoods at test time (the test day is not in the
            # graph); in training it would be, and its opinion vector hands the model the very rating it predicts.
            hide = torch.sort(batch.users * self.num_items + batch.items).values
            users, user_at = torch.unique(batch.users, return_inverse=True)
            items, item_at = torch.unique(batch.items, return_inverse=True)
            first = (self.user_half(self.user_factors(users, hide=hide))[user_at]
                     + self.item_half(self.item_factors(items, hide=hide))[item_at])
            predicted = self.predict_from_first_layer(first)
        else:
            predicted = encoded.score_pair_chunk(batch.users, batch.items)
        error = (predicted - batch.ratings).pow(2).mean()
        if recipe.l2:
            error = error + recipe.l2 * (
                self.user_embedding(batch.users).pow(2).sum(-1) + self.item_embedding(batch.items).pow(2).sum(-1)
            ).mean()
        return error


def _table(function, count: int, device: torch.device, chunk: int = 4096) -> torch.Tensor:
    """``function`` over the node indices ``0..count-1``, in chunks, as one table."""
    nodes = torch.arange(count, device=device)
    return torch.cat([function(nodes[start : start + chunk]) for start in range(0, count, chunk)])


class GraphRecPlus(GraphRec):
    """GraphRec+: GraphRec whose item factor also aggregates, with attention, the user-space factors of the item's
    top co-interacted items (an item-item graph built from the day's interactions)."""

    name: ClassVar[str] = "graphrec-plus"
    summary: ClassVar[str] = "GraphRec+ (Fan et al., TKDE 2020): GraphRec plus an item-item co-interaction graph"
    item_graph: ClassVar[bool] = True
