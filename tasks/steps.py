"""The daily pipeline's steps as plain functions over paths: each opens the warehouse, does one thing, and
returns a small summary. The Prefect flow wraps each in a task; tests and benchmarks call them directly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.base import Model, Recipe
from tasks import progress
from tasks.db import connect
from tasks.evaluate import evaluate as evaluate_protocols, exclusion_sets
from tasks.failpoints import failpoint
from tasks.graph import CatalogSizes, assign_ids, catalog_sizes, load_graph, load_holdout, unavailable_items
from tasks.ingest import IngestReport, days_to_ingest, ingest_partition
from tasks.policy import ContractPolicy
from tasks.publish import PublishSummary, publish_topk
from tasks.quality import DayContracts, check_contracts
from tasks.ranking import rank_top_k
from tasks.runs import record_metrics
from tasks.train import EpochProgress, TrainingReport, fit, load_checkpoint, save_checkpoint
from tasks.validate import SourceValidation, validate_partition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRecipe:
    """Which model to train and how: everything that decides the weights besides the data."""

    name: str
    config: Any  # the model's own Config (models.registry.resolve_config)
    training: Recipe  # its training recipe (models.registry.resolve_recipe)


@dataclass(frozen=True)
class TrainedModel:
    """A reference to trained weights: the checkpoint file and the cut-off of the data they saw."""

    checkpoint: Path
    as_of: date
    report: TrainingReport


def pending_days(db: Path, landing: Path, ds: date) -> list[date]:
    with connect(db) as con:
        return days_to_ingest(con, landing, ds)


def ingest(db: Path, landing: Path, ds: date) -> IngestReport:
    with connect(db) as con:
        return ingest_partition(con, landing, ds)


def validate(db: Path, ds: date) -> list[SourceValidation]:
    with connect(db) as con:
        return validate_partition(con, ds)


def check_data_contracts(
    db: Path, ds: date, run_id: str, policy: ContractPolicy, validation: list[SourceValidation], docs_dir: Path | None
) -> DayContracts:
    with connect(db) as con:
        return check_contracts(con, ds, run_id, policy, validation, docs_dir)


def require_decided(db: Path, ds: date) -> None:
    with connect(db) as con:
        progress.require_decided(con, ds)


def build_graph(db: Path, ds: date) -> CatalogSizes:
    with connect(db) as con:
        return assign_ids(con, ds)


def train(
    db: Path, ds: date, as_of: date, recipe: ModelRecipe, checkpoint: Path, device: torch.device,
    on_epoch: Callable[[int, float, Model], None] | None = None,
) -> TrainedModel:
    """Train ``recipe`` on the graph as of ``as_of`` (indexed in ``ds``'s catalog) and save a checkpoint that
    describes itself. ``on_epoch(epoch, loss, model)`` is called after every epoch, the model in eval mode."""
    with connect(db) as con:
        graph = load_graph(con, catalog_sizes(con, ds), as_of)

    def progress(epoch: EpochProgress) -> None:
        if on_epoch is not None:
            on_epoch(epoch.epoch, epoch.loss, epoch.model)

    model, report = fit(recipe.name, graph, recipe.config, recipe.training, device, progress)
    save_checkpoint(checkpoint, model, {"as_of": as_of.isoformat(), "ds": ds.isoformat()})
    failpoint("trained")
    return TrainedModel(checkpoint, as_of, report)


def evaluate(
    db: Path, ds: date, eval_days: int, trained: TrainedModel, recipe: ModelRecipe, run_id: str, device: torch.device,
    protocol: str | None = None,
) -> dict[tuple[str, int | None], float]:
    """Score the model trained up to the holdout cut-off on the held-out days by the protocols of its output kind
    (plus ``protocol``, default ``full``); record the metrics for ``run_id``, keyed ``(metric, k)``."""
    model, _ = load_checkpoint(trained.checkpoint, device)
    with connect(db) as con:
        holdout = load_holdout(con, ds, eval_days)
        graph = load_graph(con, catalog_sizes(con, ds), trained.as_of)
        metrics = evaluate_protocols(
            model.scorer(), model.output, graph, holdout.users, holdout.items,
            test_ratings=getattr(holdout, "ratings", None), unavailable_items=unavailable_items(con, holdout.cutoff, ds),
            protocol=protocol, seed=recipe.training.seed, device=device,
        )
        figures = {(metric.name, metric.k): metric.value for metric in metrics}
        record_metrics(con, run_id, figures)
    return figures


def publish(
    db: Path, ds: date, trained: TrainedModel, recipe: ModelRecipe, top_k: int, run_id: str, device: torch.device
) -> PublishSummary:
    """Rank the catalog for every user with an interaction up to ``ds`` and publish their top ``top_k``."""
    model, _ = load_checkpoint(trained.checkpoint, device)
    with connect(db) as con:
        # Users and seen items come from everything up to ds, even when the weights stopped at an earlier cut-off.
        seen = load_graph(con, catalog_sizes(con, ds), ds)
        users = np.unique(seen.train_users)
        exclude = exclusion_sets(seen, users, unavailable_items(con, trained.as_of, ds))
        top = rank_top_k(model.scorer(), users, seen.num_items, top_k, exclude, device=device)
        return publish_topk(con, ds, recipe.name, run_id, top, datetime.now(timezone.utc).replace(tzinfo=None))
