"""KGAT (Wang et al., "KGAT: Knowledge Graph Attention Network for Recommendation", KDD 2019).

The collaborative knowledge graph (CKG) holds the KG's entities and the users as nodes (entities first, an item
without an entity link getting a node of its own, then the users), and as edges every user-item interaction (the
``interact`` relation) and every KG triple, each with its inverse relation. Per layer (paper eq. 3-6)::

    e_N_h = sum_{(h,r,t)} pi(h,r,t) e_t                      (sparse, over the whole graph)
    pi(h,r,t) = (W_r e_t)^T tanh(W_r e_h + e_r), softmax over each head's edges, refreshed once per epoch
    e_h' = LeakyReLU(W1 (e_h + e_N_h)) + LeakyReLU(W2 (e_h * e_N_h))       (Bi-Interaction)

the layer outputs (L2-normalised, after message dropout) concatenated with the ego embeddings, and the score the
inner product of the user's and the item's concatenations. An epoch (its own ``train_epoch``) is a BPR pass over
the interactions, a TransR pass over the KG triples, ``g(h,r,t) = ||W_r e_h + e_r - W_r e_t||^2`` against a
corrupted tail, ``-ln sigma(g(h,r,t') - g(h,r,t))`` (each triple and its inverse), and an attention refresh. As in
the authors' PyTorch code, the attention starts as ``1 / out-degree``, the L2 penalties are on the batch's final
(BPR) and transformed (TransR) vectors, and the TransR pass covers the KG's triples (here not the interaction
edges). The attention is a buffer, so a checkpoint scores exactly as the trained model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gnnrec.models.adjacency import csr_from_pairs, sparse_matmul
from gnnrec.models.base import GraphData, InnerProductScorer, Input, Model, PairBatch, Recipe, TripleBatch
from gnnrec.models.bpr import bpr_loss
from gnnrec.models.kgcn import item_nodes


@dataclass(frozen=True)
class KGATConfig:
    """The paper's setting: ``embedding_dim`` and ``relation_dim`` 64, three layers of 64, 32 and 16
    (``layer_sizes``), message dropout 0.1, TransR's L2 weight ``kg_l2`` 1e-5."""

    embedding_dim: int = 64
    relation_dim: int = 64
    layer_sizes: str = "64,32,16"
    message_dropout: float = 0.1
    kg_l2: float = 1e-5

    def __post_init__(self) -> None:
        if self.embedding_dim < 1 or self.relation_dim < 1:
            raise ValueError("embedding_dim and relation_dim must be >= 1")
        try:
            sizes = self.sizes
        except ValueError:
            raise ValueError(f"layer_sizes must be comma-separated positive integers, got {self.layer_sizes!r}") from None
        if any(size < 1 for size in sizes):
            raise ValueError("layer_sizes must be positive")
        if not 0 <= self.message_dropout < 1 or self.kg_l2 < 0:
            raise ValueError("message_dropout must lie in [0, 1) and kg_l2 >= 0")

    @property
    def sizes(self) -> list[int]:
        return [int(part) for part in self.layer_sizes.split(",") if part.strip()]


def collaborative_edges(graph: GraphData, nodes: np.ndarray, num_entity_nodes: int, num_relations: int):
    """The CKG's edges (head, relation, tail) over nodes (entities, then users at ``num_entity_nodes + u``):
    relation 0 is ``interact`` (user -> item), ``1 + r`` the KG's relation r, and ``j + num_relations + 1`` the
    inverse of relation j. Sorted by head, then tail."""
    users = num_entity_nodes + np.asarray(graph.train_users, np.int64)
    items = nodes[np.asarray(graph.train_items, np.int64)]
    kg_head, kg_tail = np.asarray(graph.kg_head, np.int64), np.asarray(graph.kg_tail, np.int64)
    kg_relation = 1 + np.asarray(graph.kg_relation, np.int64)
    inverse = num_relations + 1
    head = np.concatenate([users, items, kg_head, kg_tail])
    tail = np.concatenate([items, users, kg_tail, kg_head])
    relation = np.concatenate([np.zeros(len(users), np.int64), np.full(len(users), inverse), kg_relation, kg_relation + inverse])
    order = np.lexsort((relation, tail, head))
    return head[order], relation[order], tail[order]


class KGAT(Model):
    """KGAT on the collaborative knowledge graph; see the module docstring."""

    name: ClassVar[str] = "kgat"
    summary: ClassVar[str] = "KGAT (Wang et al., KDD 2019): attentive propagation over the collaborative knowledge graph"
    needs: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS, Input.KG})
    output: ClassVar[str] = "ranking"
    batches: ClassVar[tuple[type, ...]] = (PairBatch, TripleBatch)
    Config: ClassVar[type] = KGATConfig
    # Ours (the authors train 1000 epochs at 1e-4): batches of 1024 interactions (and of as many triples), Adam at
    # 5e-3, BPR's L2 1e-5; at least 20 steps an epoch on small data; early stopping on Recall@20 every 5 epochs.
    recipe: ClassVar[Recipe] = Recipe(
        epochs=40, batch_size=1024, learning_rate=5e-3, sampling="pair", negatives=1, negative_sampling="uniform",
        l2=1e-5, min_steps_per_epoch=20, validation_share=0.01, validation_max_pairs=2000, patience=2, eval_every=5,
    )

    def __init__(
        self, num_users: int, num_items: int, num_entity_nodes: int, num_relations: int, config: KGATConfig = KGATConfig(), *,
        item_node: torch.Tensor, edge_head: torch.Tensor, edge_relation: torch.Tensor, edge_tail: torch.Tensor,
    ) -> None:
        super().__init__()
        self.config = config
        self.num_users, self.num_items = num_users, num_items
        self.num_entity_nodes, self.num_relations = num_entity_nodes, num_relations
        self.num_nodes = num_entity_nodes + num_users
        self.register_buffer("item_node", item_node.long())
        self.register_buffer("edge_head", edge_head.long())
        self.register_buffer("edge_relation", edge_relation.long())
        self.register_buffer("edge_tail", edge_tail.long())
        degree = torch.bincount(self.edge_head, minlength=self.num_nodes).clamp(min=1).float()
        self.register_buffer("attention", 1.0 / degree[self.edge_head])
        all_relations = 2 * (num_relations + 1)
        d, dr = config.embedding_dim, config.relation_dim
        self.embedding = nn.Embedding(self.num_nodes, d)
        self.relation_embedding = nn.Embedding(all_relations, dr)
        self.transfer = nn.Parameter(torch.empty(all_relations, d, dr))  # W_r, applied as e @ W_r
        nn.init.xavier_uniform_(self.embedding.weight)
        nn.init.xavier_uniform_(self.relation_embedding.weight)
        nn.init.xavier_uniform_(self.transfer)
        widths = [d, *config.sizes]
        self.sum_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.product_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        for layer in [*self.sum_layers, *self.product_layers]:
            nn.init.xavier_uniform_(layer.weight)
        self._adjacency: tuple[torch.Tensor, torch.Tensor, int] | None = None

    @classmethod
    def from_graph(cls, graph: GraphData, config: KGATConfig, device: torch.device) -> KGAT:
        nodes, num_entity_nodes = item_nodes(graph)
        num_relations = max(graph.num_relations, int(graph.kg_relation.max(initial=-1)) + 1)
        head, relation, tail = collaborative_edges(graph, nodes, num_entity_nodes, num_relations)
        model = cls(
            graph.num_users, graph.num_items, num_entity_nodes, num_relations, config, item_node=torch.from_numpy(nodes),
            edge_head=torch.from_numpy(head), edge_relation=torch.from_numpy(relation), edge_tail=torch.from_numpy(tail),
        )
        return model.to(device)

    @classmethod
    def from_state(cls, sizes, config, state, device) -> KGAT:
        model = cls(
            **sizes, config=config, item_node=state["item_node"], edge_head=state["edge_head"],
            edge_relation=state["edge_relation"], edge_tail=state["edge_tail"],
        )
        model.load_state_dict(state)
        return model.to(device)

    def sizes(self) -> dict[str, int]:
        return {"num_users": self.num_users, "num_items": self.num_items, "num_entity_nodes": self.num_entity_nodes,
                "num_relations": self.num_relations}

    # --- attention ---------------------------------------------------------------------------------------------

    def attention_logits(self, heads: torch.Tensor, relations: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
        """``pi(h,r,t) = (W_r e_t)^T tanh(W_r e_h + e_r)`` for each given edge, one batched product per relation."""
        logits = torch.empty(len(heads), device=heads.device)
        for relation in torch.unique(relations).tolist():
            chosen = torch.nonzero(relations == relation).squeeze(1)
            transfer = self.transfer[relation]
            h = self.embedding.weight[heads[chosen]] @ transfer
            t = self.embedding.weight[tails[chosen]] @ transfer
            logits[chosen] = (t * torch.tanh(h + self.relation_embedding.weight[relation])).sum(dim=1)
        return logits

    @torch.no_grad()
    def refresh_attention(self) -> None:
        """Recompute every edge's attention from the current embeddings, softmax-normalised over its head's edges."""
        logits = self.attention_logits(self.edge_head, self.edge_relation, self.edge_tail)
        top = torch.full((self.num_nodes,), -torch.inf, device=logits.device)
        top = top.scatter_reduce(0, self.edge_head, logits, reduce="amax")
        weights = torch.exp(logits - top[self.edge_head])
        totals = torch.zeros(self.num_nodes, device=logits.device).index_add_(0, self.edge_head, weights)
        self.attention.copy_(weights / totals[self.edge_head])
        self._adjacency = None

    def adjacency(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention matrix ``A[h, t] = pi(h, r, t)`` (summed over parallel edges) and its transpose, as CSR."""
        version = self.attention._version
        if self._adjacency is None or self._adjacency[2] != version or self._adjacency[0].device != self.attention.device:
            matrix = csr_from_pairs(self.edge_head, self.edge_tail, self.attention, (self.num_nodes, self.num_nodes))
            transposed = csr_from_pairs(self.edge_tail, self.edge_head, self.attention, (self.num_nodes, self.num_nodes))
            self._adjacency = (matrix, transposed, version)
        return self._adjacency[0], self._adjacency[1]

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        self._adjacency = None
        return super().load_state_dict(state, strict=strict, assign=assign)

    # --- propagation and losses --------------------------------------------------------------------------------

    def propagate(self) -> torch.Tensor:
        """Every node's concatenated representation, ``N x (d + sum(layer_sizes))``."""
        matrix, transposed = self.adjacency()
        layer = self.embedding.weight
        outputs = [layer]
        for sum_layer, product_layer in zip(self.sum_layers, self.product_layers):
            neighbours = sparse_matmul(matrix, transposed, layer)
            layer = F.leaky_relu(sum_layer(layer + neighbours)) + F.leaky_relu(product_layer(layer * neighbours))
            layer = F.dropout(layer, self.config.message_dropout, self.training)
            outputs.append(F.normalize(layer, dim=1))
        return torch.cat(outputs, dim=1)

    def encode(self) -> InnerProductScorer:
        final = self.propagate()
        return InnerProductScorer(final[self.num_entity_nodes :], final[self.item_node])

    def loss(self, batch, encoded: InnerProductScorer | None, recipe: Recipe) -> torch.Tensor:
        if isinstance(batch, TripleBatch):
            return self.transr_loss(batch)
        users = encoded.user_vectors[batch.users]
        pos = encoded.item_vectors[batch.positives]
        neg = encoded.item_vectors[batch.negatives]
        return bpr_loss(users, pos, neg, (users, pos, neg), recipe.l2)

    def transr_score(self, heads: torch.Tensor, relations: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
        """``g(h, r, t) = ||W_r e_h + e_r - W_r e_t||^2`` over CKG relation ids (lower is more plausible)."""
        transfer = self.transfer[relations]
        h = torch.bmm(self.embedding(heads).unsqueeze(1), transfer).squeeze(1)
        t = torch.bmm(self.embedding(tails).unsqueeze(1), transfer).squeeze(1)
        return (h + self.relation_embedding(relations) - t).pow(2).sum(dim=1)

    def transr_loss(self, batch: TripleBatch) -> torch.Tensor:
        """``mean(-ln sigma(g(h,r,t') - g(h,r,t)))`` over the batch's triples and their inverses, plus ``kg_l2``
        on the transformed vectors and relation embeddings."""
        forward = 1 + batch.relations
        heads = torch.cat([batch.heads, batch.tails])
        tails = torch.cat([batch.tails, batch.heads])
        corrupted = torch.cat([batch.corrupted_tails, batch.corrupted_tails])
        relations = torch.cat([forward, forward + self.num_relations + 1])
        positive = self.transr_score(heads, relations, tails)
        negative = self.transr_score(heads, relations, corrupted)
        transfer = self.transfer[relations]
        vectors = [torch.bmm(self.embedding(n).unsqueeze(1), transfer).squeeze(1) for n in (heads, tails, corrupted)]
        vectors.append(self.relation_embedding(relations))
        penalty = sum(v.pow(2).sum(dim=1).div(2).mean() for v in vectors)
        return F.softplus(positive - negative).mean() + self.config.kg_l2 * penalty


def kgat_epoch(model: KGAT, context) -> float:
    """One KGAT epoch: a BPR pass over the interactions, a TransR pass over the KG, then the attention refresh;
    the mean loss over both passes' steps."""
    losses = [context.step(batch) for batch in context.batches(PairBatch)]
    losses += [context.step_loss(model.transr_loss(batch)) for batch in context.batches(TripleBatch)]
    model.refresh_attention()
    return float(np.mean(losses)) if losses else 0.0


KGAT.train_epoch = kgat_epoch
