"""Validation Recall@20 after every epoch, for the training-curve picture: the holdout ranked exactly as the
final evaluation ranks it, on the weights as they stand after the epoch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch

from gnnrec.models.base import GraphData, Model
from gnnrec.tasks.ops.db import connect
from gnnrec.tasks.learn.evaluate import evaluate_holdout
from gnnrec.tasks.graph.ids import Holdout, catalog_sizes, load_graph, load_holdout, unavailable_items

CURVE_K = 20


@dataclass(frozen=True)
class HoldoutRecall:
    """Call with a model to get its Recall@20 on the holdout (0.0 when the holdout is empty)."""

    graph: GraphData
    holdout: Holdout
    unavailable: np.ndarray
    device: torch.device

    def __call__(self, model: Model) -> float:
        with torch.no_grad():
            scorer = model.scorer()
        metrics = evaluate_holdout(scorer, self.graph, self.holdout, self.unavailable, self.device, ks=(CURVE_K,))
        return metrics.get(("recall", CURVE_K), 0.0)


def holdout_recall(db: Path, ds: date, eval_days: int, device: torch.device) -> HoldoutRecall:
    """The holdout of ``ds`` and the training graph up to its cut-off, loaded once for every epoch."""
    with connect(db) as con:
        holdout = load_holdout(con, ds, eval_days)
        graph = load_graph(con, catalog_sizes(con, ds), holdout.cutoff)
        unavailable = unavailable_items(con, holdout.cutoff, ds)
    return HoldoutRecall(graph, holdout, unavailable, device)
