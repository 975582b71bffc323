"""Most-popular baseline: every user gets the items with the most distinct training users."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from gnnrec.models.base import GraphData, InnerProductScorer, Input, Model, NoConfig, PairBatch, Recipe


class Popularity(Model):
    """Scores item ``i`` by ``|N_i|``, its number of distinct training users; the same list for everyone.

    It has no parameters, so the trainer has nothing to optimise (its recipe trains for 0 epochs).
    """

    name: ClassVar[str] = "pop"
    summary: ClassVar[str] = "most popular items (baseline)"
    needs: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS})
    output: ClassVar[str] = "ranking"
    batches: ClassVar[tuple[type, ...]] = (PairBatch,)
    Config: ClassVar[type] = NoConfig
    recipe: ClassVar[Recipe] = Recipe(epochs=0)

    def __init__(self, num_users: int, num_items: int, config: NoConfig = NoConfig(), *, item_counts: torch.Tensor) -> None:
        super().__init__()
        if item_counts.shape != (num_items,):
            raise ValueError(f"item_counts must have {num_items} entries")
        self.config = config
        self.num_users, self.num_items = num_users, num_items
        self.register_buffer("item_counts", item_counts.float())

    @classmethod
    def from_graph(cls, graph: GraphData, config: NoConfig, device: torch.device) -> Popularity:
        pairs = np.unique(np.stack([np.asarray(graph.train_users, np.int64), np.asarray(graph.train_items, np.int64)]), axis=1)
        counts = np.bincount(pairs[1], minlength=graph.num_items).astype(np.float32)
        return cls(graph.num_users, graph.num_items, config, item_counts=torch.from_numpy(counts)).to(device)

    @classmethod
    def from_state(cls, sizes, config, state, device) -> Popularity:
        return cls(**sizes, config=config, item_counts=state["item_counts"]).to(device)

    def sizes(self) -> dict[str, int]:
        return {"num_users": self.num_users, "num_items": self.num_items}

    def encode(self) -> InnerProductScorer:
        ones = torch.ones(self.num_users, 1, device=self.item_counts.device)
        return InnerProductScorer(ones, self.item_counts.unsqueeze(1))

    def loss(self, batch, encoded, recipe) -> torch.Tensor:
        raise NotImplementedError("Popularity has nothing to train")
