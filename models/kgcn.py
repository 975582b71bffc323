"""KGCN (Wang et al., "Knowledge Graph Convolutional Networks for Recommender Systems", WWW 2019) and KGNN-LS
(Wang et al., "Knowledge-aware Graph Neural Networks with Label Smoothness Regularization for Recommender
Systems", KDD 2019).

An item's vector depends on the user: the KG around the item is re-weighted by how much the user cares about each
relation, ``pi_r^u = g(u, r)``, normalised over each entity's neighbours (paper eq. 1-2)::

    v_N(v)^u = sum_{e in N(v)} softmax_e(pi^u_{r(v,e)}) e_e

and aggregated with the entity's own vector (eq. 3-5: ``sum``: act(W (v + v_N) + b), ``concat``: act(W [v; v_N] +
b), ``neighbor``: act(W v_N + b)) over ``hops`` hops of a fixed-size neighbour table (``neighbours`` per entity).
The score is the logit ``u . v^u``. As in the authors' code, ``g`` is the mean of ``u * r`` over the width (the
inner product divided by the width), the activation is ReLU except in the last iteration (tanh), embeddings are
Xavier-initialised, and the L2 penalty is on the whole embedding matrices and the aggregator weights.

The KG is undirected (each triple links both ways under its relation). The neighbour table is drawn once when the
model is built (K without replacement where an entity has at least K neighbours, with replacement otherwise), from
a seed drawn from torch's generator (which :func:`tasks.learn.train.fit` seeds with the recipe's seed), and kept as a
buffer: a checkpoint holds it, so a restored model scores exactly as the trained one. An item without an entity
link gets an entity of its own; an entity without neighbours (such an item, or an isolated entity) has itself as
its K neighbours, under a padding relation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gnnrec.models.base import DEFAULT_PAIR_BUDGET, GraphData, Input, Model, PairBatch, PairScorer, Recipe

Aggregator = Literal["sum", "concat", "neighbor"]


@dataclass(frozen=True)
class KGCNConfig:
    """The authors' music (Last.FM) setting: ``embedding_dim`` 16, ``neighbours`` 8 per entity, ``hops`` 1, the
    ``sum`` aggregator."""

    embedding_dim: int = 16
    neighbours: int = 8
    hops: int = 1
    aggregator: Aggregator = "sum"

    def __post_init__(self) -> None:
        if self.embedding_dim < 1 or self.neighbours < 1 or self.hops < 1:
            raise ValueError("embedding_dim, neighbours and hops must be >= 1")
        if self.aggregator not in ("sum", "concat", "neighbor"):
            raise ValueError("aggregator must be 'sum', 'concat' or 'neighbor'")


@dataclass(frozen=True)
class KGNNLSConfig(KGCNConfig):
    """KGCN's options plus ``ls_weight``, the weight of the label-smoothness loss (0.1, the authors' music
    setting)."""

    ls_weight: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ls_weight < 0:
            raise ValueError("ls_weight must be >= 0")


def item_nodes(graph: GraphData) -> tuple[np.ndarray, int]:
    """Each item's node in the KG (its entity, or a fresh node after the entities when unlinked), and the number
    of nodes."""
    links = np.full(graph.num_items, -1, np.int64) if graph.item_entity is None else np.asarray(graph.item_entity, np.int64)
    entities = max(graph.num_entities, int(max(graph.kg_head.max(initial=-1), graph.kg_tail.max(initial=-1), links.max(initial=-1))) + 1)
    unlinked = np.flatnonzero(links < 0)
    nodes = links.copy()
    nodes[unlinked] = entities + np.arange(len(unlinked))
    return nodes, entities + len(unlinked)


def sample_neighbours(
    num_nodes: int, heads: np.ndarray, relations: np.ndarray, tails: np.ndarray, k: int, pad_relation: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """A ``num_nodes x k`` table of neighbour nodes and the relations that link them, over the undirected KG: k
    distinct neighbours where a node has at least k, k draws with replacement where it has fewer, the node itself
    under ``pad_relation`` where it has none."""
    source = np.concatenate([heads, tails]).astype(np.int64)
    target = np.concatenate([tails, heads]).astype(np.int64)
    relation = np.concatenate([relations, relations]).astype(np.int64)
    order = np.lexsort((rng.random(len(source)), source))  # by node, in random order within a node
    source, target, relation = source[order], target[order], relation[order]
    degree = np.bincount(source, minlength=num_nodes)
    start = np.concatenate([[0], np.cumsum(degree)[:-1]])
    draws = (rng.random((num_nodes, k)) * degree[:, None]).astype(np.int64)
    offsets = np.where(degree[:, None] >= k, np.arange(k)[None, :], draws)
    index = np.minimum(start[:, None] + offsets, max(len(source) - 1, 0))
    isolated = degree == 0
    table_nodes = np.where(isolated[:, None], np.arange(num_nodes)[:, None], target[index] if len(source) else 0)
    table_relations = np.where(isolated[:, None], pad_relation, relation[index] if len(source) else 0)
    return table_nodes.astype(np.int64), table_relations.astype(np.int64)


class KGCN(Model):
    """KGCN: user-specific relation weights over a sampled KG neighbourhood; see the module docstring."""

    name: ClassVar[str] = "kgcn"
    summary: ClassVar[str] = "KGCN (Wang et al., WWW 2019): user-specific relation weights over the item's KG neighbourhood"
    needs: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS, Input.KG})
    output: ClassVar[str] = "logit"
    batches: ClassVar[tuple[type, ...]] = (PairBatch,)
    Config: ClassVar[type] = KGCNConfig
    # The authors' music recipe (10 epochs of 128 labelled pairs: here 64 positives, each with one uniform
    # negative; L2 1e-4 on the embedding matrices and aggregator weights) at Adam 2e-3 instead of their 5e-4: on
    # Last.FM both reach the same ctr AUC (0.837, an in-memory check on a random 80/20 split), and 2e-3 gets
    # there in 3 epochs instead of 7, which smaller data (fewer steps an epoch) needs.
    recipe: ClassVar[Recipe] = Recipe(
        epochs=10, batch_size=64, learning_rate=2e-3, sampling="pair", negatives=1, negative_sampling="uniform",
        l2=1e-4, validation_share=0.0,
    )

    def __init__(
        self, num_users: int, num_items: int, num_nodes: int, num_relations: int, config: KGCNConfig = KGCNConfig(), *,
        item_node: torch.Tensor, neighbour_nodes: torch.Tensor, neighbour_relations: torch.Tensor,
    ) -> None:
        super().__init__()
        k = config.neighbours
        if item_node.shape != (num_items,) or neighbour_nodes.shape != (num_nodes, k) or neighbour_relations.shape != (num_nodes, k):
            raise ValueError("item_node must be (items,), the neighbour tables (nodes, neighbours)")
        self.config = config
        self.num_users, self.num_items, self.num_nodes, self.num_relations = num_users, num_items, num_nodes, num_relations
        self.register_buffer("item_node", item_node.long())
        self.register_buffer("neighbour_nodes", neighbour_nodes.long())
        self.register_buffer("neighbour_relations", neighbour_relations.long())
        d = config.embedding_dim
        self.user_embedding = nn.Embedding(num_users, d)
        self.entity_embedding = nn.Embedding(num_nodes, d)
        self.relation_embedding = nn.Embedding(num_relations + 1, d)  # the last: the padding relation
        for table in (self.user_embedding, self.entity_embedding, self.relation_embedding):
            nn.init.xavier_uniform_(table.weight)
        width = 2 * d if config.aggregator == "concat" else d
        self.aggregators = nn.ModuleList(nn.Linear(width, d) for _ in range(config.hops))
        for layer in self.aggregators:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    @classmethod
    def from_graph(cls, graph: GraphData, config: KGCNConfig, device: torch.device) -> KGCN:
        nodes, num_nodes = item_nodes(graph)
        num_relations = max(graph.num_relations, int(graph.kg_relation.max(initial=-1)) + 1)
        seed = int(torch.randint(0, 2**62, (1,)).item())  # torch's generator is seeded by the recipe
        table_nodes, table_relations = sample_neighbours(
            num_nodes, graph.kg_head, graph.kg_relation, graph.kg_tail, config.neighbours, num_relations,
            np.random.default_rng(seed),
        )
        model = cls(
            graph.num_users, graph.num_items, num_nodes, num_relations, config, item_node=torch.from_numpy(nodes),
            neighbour_nodes=torch.from_numpy(table_nodes), neighbour_relations=torch.from_numpy(table_relations),
        )
        model.remember_training_pairs(graph)
        return model.to(device)

    @classmethod
    def from_state(cls, sizes, config, state, device) -> KGCN:
        model = cls(
            **sizes, config=config, item_node=state["item_node"], neighbour_nodes=state["neighbour_nodes"],
            neighbour_relations=state["neighbour_relations"],
        )
        model.load_state_dict(state)
        return model.to(device)

    def remember_training_pairs(self, graph: GraphData) -> None:
        """KGCN learns from batches alone; KGNN-LS keeps the training labels for label propagation."""

    def sizes(self) -> dict[str, int]:
        return {"num_users": self.num_users, "num_items": self.num_items, "num_nodes": self.num_nodes,
                "num_relations": self.num_relations}

    # --- the forward pass ------------------------------------------------------------------------------------

    def relation_scores(self, users: torch.Tensor) -> torch.Tensor:
        """``pi_r^u`` for every relation (padding included): ``len(users) x (R + 1)``."""
        return self.user_embedding(users) @ self.relation_embedding.weight.T / self.config.embedding_dim

    def neighbourhood(self, items: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The nodes at hops ``0..H`` of ``items`` (shape ``S``): ``S x K^h`` each, and the relations that reach
        hops ``1..H`` (``S x K^h``)."""
        k = self.config.neighbours
        nodes = [self.item_node[items].unsqueeze(-1)]
        relations = []
        for _ in range(self.config.hops):
            relations.append(self.neighbour_relations[nodes[-1]].reshape(*items.shape, -1))
            nodes.append(self.neighbour_nodes[nodes[-1]].reshape(*items.shape, -1))
        assert nodes[-1].shape[-1] == k ** self.config.hops
        return nodes, relations

    def aggregate(
        self, user_vectors: torch.Tensor, items: torch.Tensor, weights_of: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """Logits of users against items. ``items`` has shape ``S_i`` and ``user_vectors`` ``S_u x d`` with
        ``S_u`` broadcastable to ``S_i`` (pairs: both ``P``; a grid: ``B x 1`` against ``1 x C``); ``weights_of``
        maps a relation-id tensor ``S_i x n`` to the users' relation scores ``S x n`` (``S``: the broadcast
        shape)."""
        k = self.config.neighbours
        nodes, relations = self.neighbourhood(items)
        vectors = [self.entity_embedding(n) for n in nodes]  # S_i x K^h x d
        # Normalised weights of each hop's neighbours, per user: S x K^(h-1) x K.
        weights = []
        for hop, relation in enumerate(relations):
            scores = weights_of(relation)
            weights.append(torch.softmax(scores.reshape(*scores.shape[:-1], k**hop, k), dim=-1))
        for iteration, layer in enumerate(self.aggregators):
            activation = torch.tanh if iteration == self.config.hops - 1 else F.relu
            following = []
            for hop in range(self.config.hops - iteration):
                own = vectors[hop]
                neighbours = vectors[hop + 1].reshape(*vectors[hop + 1].shape[:-2], k**hop, k, -1)
                mixed = (weights[hop].unsqueeze(-1) * neighbours).sum(dim=-2)
                following.append(activation(self._combine(layer, own, mixed)))
            vectors = following
        item_vectors = vectors[0].squeeze(-2)
        return (user_vectors * item_vectors).sum(dim=-1)

    def _combine(self, layer: nn.Linear, own: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
        if self.config.aggregator == "sum":
            return layer(own + mixed)
        if self.config.aggregator == "concat":
            own, mixed = torch.broadcast_tensors(own, mixed)
            return layer(torch.cat([own, mixed], dim=-1))
        return layer(mixed)

    def pair_logits(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits of the pairs ``(users[j], items[j])`` (1-d)."""
        table = self.relation_scores(users)
        return self.aggregate(
            self.user_embedding(users), items,
            lambda relation: table.gather(1, relation.reshape(len(users), -1)).reshape(relation.shape),
        )

    # --- training ------------------------------------------------------------------------------------------------

    def encode(self) -> KGCNScorer:
        return KGCNScorer(self, grad=True)

    def scorer(self) -> KGCNScorer:
        return KGCNScorer(self, grad=False)

    def loss(self, batch: PairBatch, encoded: KGCNScorer, recipe: Recipe) -> torch.Tensor:
        users, negatives = batch.users, batch.negatives
        if negatives.dim() == 2:
            users, negatives = users.repeat_interleave(negatives.shape[1]), negatives.reshape(-1)
        positive = encoded.score_pairs(batch.users, batch.positives)
        negative = encoded.score_pairs(users, negatives)
        # Binary cross-entropy over the batch's labelled pairs (positives 1, negatives 0), as one mean.
        logits = torch.cat([positive, negative])
        labels = torch.cat([torch.ones_like(positive), torch.zeros_like(negative)])
        base = F.binary_cross_entropy_with_logits(logits, labels)
        return base + recipe.l2 * self.l2_penalty() + self.extra_loss(batch, users, negatives)

    def l2_penalty(self) -> float | torch.Tensor:
        """``sum ||M||^2 / 2`` over the embedding matrices and the aggregator weights (TF's ``l2_loss``)."""
        matrices = [self.user_embedding.weight, self.entity_embedding.weight, self.relation_embedding.weight]
        matrices += [layer.weight for layer in self.aggregators]
        return sum(m.pow(2).sum() for m in matrices) / 2

    def extra_loss(self, batch: PairBatch, users: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor | float:
        return 0.0


class KGNNLS(KGCN):
    """KGNN-LS: KGCN plus label smoothness (paper section 4.3): each training pair's label is predicted from the
    labels of its KG neighbourhood, propagated over the same user-specific weighted graph, with the item's own
    label held out; the cross-entropy of that prediction, weighted by ``ls_weight``, joins the loss, so the edge
    weights are trained to make labels smooth over the KG.

    Labels: 1 for an item node the user trained on, 0.5 for every other node (unlabelled), as in the authors'
    code where unknown entities start at 0.5; a labelled node keeps its label through the propagation (it is
    "reset"), the held-out item (anywhere in its own neighbourhood) starts at 0.5 and is not reset. Two
    departures from the authors' code, which averages the weighted labels over the K neighbours (instead of
    summing them) and then reads the result as a logit: here the prediction is the convex combination itself
    and its cross-entropy is that of a probability. Their sampled negatives (label 0) are not in our data: the
    unlabelled rest is 0.5.

    The training pairs are kept (as a non-persistent buffer) for the regulariser only; a restored model scores
    exactly like KGCN and does not need them.
    """

    name: ClassVar[str] = "kgnn-ls"
    summary: ClassVar[str] = "KGNN-LS (Wang et al., KDD 2019): KGCN plus label-smoothness regularisation"
    Config: ClassVar[type] = KGNNLSConfig
    # KGCN's recipe with 15 epochs: the label-smoothness term keeps falling after KGCN's 10 (on the planted
    # world, where items link to items).
    recipe: ClassVar[Recipe] = dataclasses.replace(KGCN.recipe, epochs=15)

    def remember_training_pairs(self, graph: GraphData) -> None:
        keys = np.unique(np.asarray(graph.train_users, np.int64) * self.num_nodes + self.item_node.numpy()[graph.train_items])
        self.register_buffer("labelled_keys", torch.from_numpy(keys), persistent=False)

    def labels(self, users: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        """1.0 where ``(users[j], nodes[j, ...])`` is a training pair, else 0.0 (``users`` broadcast)."""
        keys = getattr(self, "labelled_keys", None)
        if keys is None or len(keys) == 0:
            return torch.zeros(nodes.shape, device=nodes.device)
        wanted = users.reshape(-1, *([1] * (nodes.dim() - 1))) * self.num_nodes + nodes
        position = torch.searchsorted(keys, wanted).clamp(max=len(keys) - 1)
        return (keys[position] == wanted).float()

    def propagated_labels(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The label of each pair ``(users[j], items[j])`` predicted from its neighbourhood, in ``[0, 1]``."""
        k = self.config.neighbours
        nodes, relations = self.neighbourhood(items)
        table = self.relation_scores(users)
        held_out = nodes[0]
        labels, keep = [], []
        for hop_nodes in nodes:
            labelled = (self.labels(users, hop_nodes) > 0) & (hop_nodes != held_out)
            labels.append(torch.where(labelled, 1.0, 0.5))
            keep.append(labelled)
        weights = []
        for hop, relation in enumerate(relations):
            scores = table.gather(1, relation.reshape(len(users), -1)).reshape(relation.shape)
            weights.append(torch.softmax(scores.reshape(len(users), k**hop, k), dim=-1))
        for iteration in range(self.config.hops):
            following = []
            for hop in range(self.config.hops - iteration):
                neighbours = labels[hop + 1].reshape(len(users), k**hop, k)
                mixed = (weights[hop] * neighbours).sum(dim=-1)
                following.append(torch.where(keep[hop], labels[hop], mixed))
            labels = following
        return labels[0].squeeze(-1)

    def extra_loss(self, batch: PairBatch, users: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor | float:
        if self.config.ls_weight == 0:
            return 0.0
        predicted = torch.cat([self.propagated_labels(batch.users, batch.positives), self.propagated_labels(users, negatives)])
        targets = torch.cat([torch.ones(len(batch.users)), torch.zeros(len(users))]).to(predicted.device)
        return self.config.ls_weight * F.binary_cross_entropy(predicted.clamp(1e-6, 1 - 1e-6), targets)


class KGCNScorer(PairScorer):
    """KGCN's scores, exact and bounded: at most ``pair_budget`` pairs per call, each over its ``K^H`` neighbours,
    so memory stays near ``budget x d`` floats whatever the catalog. :meth:`score` computes each user's relation
    weights once per user batch and reuses them for every item chunk. ``grad=False`` (the frozen scorer) runs
    without autograd."""

    def __init__(self, model: KGCN, pair_budget: int = DEFAULT_PAIR_BUDGET, grad: bool = True) -> None:
        super().__init__(max(1, pair_budget // model.config.neighbours**model.config.hops))
        self.model = model
        self.grad = grad

    def _context(self):
        return torch.enable_grad() if self.grad else torch.no_grad()

    def detach(self) -> KGCNScorer:
        return KGCNScorer(self.model, grad=False)

    def score_pair_chunk(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        with self._context():
            return self.model.pair_logits(users, items)

    def score(self, users: torch.Tensor, items: slice) -> torch.Tensor:
        with self._context():
            model = self.model
            columns = torch.arange(items.start, items.stop, device=users.device)
            out = torch.empty(len(users), len(columns), device=users.device)
            width = max(1, min(len(columns), self.pair_budget))
            rows = max(1, self.pair_budget // width)
            for start in range(0, len(users), rows):
                block = users[start : start + rows]
                table = model.relation_scores(block)  # once per user batch
                user_vectors = model.user_embedding(block).unsqueeze(1)  # B x 1 x d
                for first in range(0, len(columns), width):
                    chunk = columns[first : first + width].unsqueeze(0)  # 1 x C
                    out[start : start + len(block), first : first + chunk.shape[1]] = model.aggregate(
                        user_vectors, chunk, lambda relation, t=table: t[:, relation[0]]
                    )
            return out
