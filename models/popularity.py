"""Most-popular baseline: every user gets the items with the most distinct training users."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from models.base import InnerProductScorer, Input, TrainingBatch


class Popularity(nn.Module):
    """Scores item ``i`` by ``|N_i|``, its number of distinct training users; the same list for everyone.

    It has no parameters: the trainer sees an empty parameter list and skips optimisation.
    """

    requires: ClassVar[frozenset[Input]] = frozenset({Input.INTERACTIONS})

    def __init__(self, num_users: int, num_items: int, users: np.ndarray, items: np.ndarray) -> None:
        super().__init__()
        pairs = np.unique(np.stack([np.asarray(users, np.int64), np.asarray(items, np.int64)]), axis=1)
        counts = np.bincount(pairs[1], minlength=num_items).astype(np.float32)
        self.num_users = num_users
        self.register_buffer("item_counts", torch.from_numpy(counts))

    def training_loss(self, batch: TrainingBatch) -> torch.Tensor:
        raise NotImplementedError("Popularity has nothing to train")

    def scorer(self) -> InnerProductScorer:
        ones = torch.ones(self.num_users, 1, device=self.item_counts.device)
        return InnerProductScorer(ones, self.item_counts.unsqueeze(1))
