"""The daily flow: ingest -> validate -> build graph -> train -> evaluate -> (retrain) -> publish -> analytics store.

A thin Prefect shell: each task wraps one plain step from :mod:`tasks.steps`, adding a name, retries for
transient I/O only, and a log line. Parameters are resolved once here and passed down explicitly.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import torch
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.artifacts import report_run
from flows.params import DailyParams
from tasks import steps
from tasks.analytics import StoreSummary, publish_store, remove_dead_temporaries
from tasks.curves import TrainingCurve
from tasks.db import connect
from tasks.graph import CatalogSizes, holdout_cutoff
from tasks.ingest import IngestReport
from tasks.lock import warehouse_lock
from tasks.policy import ContractPolicy
from tasks.publish import PublishSummary
from tasks.quality import DayContracts, contract_report, contract_summary
from tasks.failpoints import failpoint
from tasks.runs import (
    Provenance, abandon_dead_runs, code_version, complete_run, finish_run, ingested_inputs, library_versions,
    previous_metrics, record_provenance, record_stage_seconds, start_run,
)
from tasks.validate import SourceValidation
from tasks.validation_curve import holdout_recall

FLOW_NAME = "daily-recommendations"
PROJECT_DIR = Path(__file__).resolve().parents[1]


def retry_on_transient(task, task_run, state) -> bool:
    """Retry file-system and database-lock errors; a data or code error fails at once."""
    try:
        state.result()
    except (OSError, duckdb.IOException, duckdb.TransactionException):
        return True
    except Exception:  # noqa: BLE001 - anything else is not worth a retry
        return False
    return False


io_task = task(retries=2, retry_delay_seconds=2, retry_condition_fn=retry_on_transient, cache_policy=NO_CACHE)


@io_task(name="find_pending_days")
def find_pending_days(db: Path, landing: Path, ds: date) -> list[date]:
    days = steps.pending_days(db, landing, ds)
    if len(days) > 1:
        get_run_logger().info("catching up on %d earlier days with new or changed files", len(days) - 1)
    return days


@io_task(name="ingest_partition", timeout_seconds=3600)
def ingest_partition(db: Path, landing: Path, ds: date) -> IngestReport:
    report = steps.ingest(db, landing, ds)
    get_run_logger().info("ingested %d files for %s", len(report.files), ds)
    return report


@io_task(name="validate_partition")
def validate_partition(db: Path, ds: date) -> list[SourceValidation]:
    summaries = steps.validate(db, ds)
    for s in summaries:
        get_run_logger().info("%s: %d read, %d clean, %d quarantined", s.source, s.rows_read, s.rows_loaded, s.rows_quarantined)
    return summaries


@io_task(name="check_data_contracts")
def check_data_contracts(
    db: Path, ds: date, run_id: str, policy: ContractPolicy, validation: list[SourceValidation], docs_dir: Path | None
) -> DayContracts:
    """Dataset expectations and the policy; a broken contract fails here (a data error: never retried)."""
    day = steps.check_data_contracts(db, ds, run_id, policy, validation, docs_dir)
    report = contract_report(day)
    if docs_dir is not None or report:  # the run's own day always; a caught-up day when it has something to say
        create_table_artifact(key=f"data-contracts-{ds.isoformat()}", table=report, description=contract_summary(day))
    day.raise_if_broken()
    return day


@io_task(name="build_graph", timeout_seconds=3600)
def build_graph(db: Path, ds: date) -> CatalogSizes:
    steps.require_decided(db, ds)  # never a graph over a day whose contracts were not decided
    sizes = steps.build_graph(db, ds)
    get_run_logger().info("catalog as of %s: %s", ds, sizes)
    return sizes


@task(name="train_model", cache_policy=NO_CACHE, timeout_seconds=6 * 3600)
def train_model(
    db: Path, ds: date, as_of: date, recipe: steps.ModelRecipe, checkpoint: Path, device: str, curve_eval_days: int = 0
) -> tuple[steps.TrainedModel, list[float]]:
    """Train and save the weights; with ``curve_eval_days``, also the holdout's Recall@20 after every epoch."""
    logger = get_run_logger()
    recall_of = holdout_recall(db, ds, curve_eval_days, torch.device(device)) if curve_eval_days else None
    recalls: list[float] = []

    def on_epoch(epoch: int, loss: float, model) -> None:
        if recall_of is None:
            logger.info("epoch %d loss %.5f", epoch, loss)
            return
        recalls.append(recall_of(model))
        logger.info("epoch %d loss %.5f holdout recall@20 %.4f", epoch, loss, recalls[-1])

    trained = steps.train(db, ds, as_of, recipe, checkpoint, torch.device(device), on_epoch=on_epoch)
    logger.info("trained %s on data up to %s in %.1fs", recipe.name, as_of, trained.report.seconds)
    return trained, recalls


@task(name="evaluate_model", cache_policy=NO_CACHE, timeout_seconds=3600)
def evaluate_model(
    db: Path, ds: date, eval_days: int, trained: steps.TrainedModel, recipe: steps.ModelRecipe, run_id: str, device: str
) -> dict[tuple[str, int], float]:
    metrics = steps.evaluate(db, ds, eval_days, trained, recipe, run_id, torch.device(device))
    get_run_logger().info("holdout recall@20 %.4f ndcg@20 %.4f", metrics.get(("recall", 20), 0.0), metrics.get(("ndcg", 20), 0.0))
    return metrics


@io_task(name="publish_topk", timeout_seconds=3600)
def publish_topk(
    db: Path, ds: date, trained: steps.TrainedModel, recipe: steps.ModelRecipe, top_k: int, run_id: str, device: str
) -> PublishSummary:
    summary = steps.publish(db, ds, trained, recipe, top_k, run_id, torch.device(device))
    get_run_logger().info("published %d rows for %d users", summary.rows, summary.users)
    return summary


@dataclass(frozen=True)
class DailyResult:
    run_id: str
    ds: date
    model: str
    db: Path
    days_ingested: list[date]
    validation: list[SourceValidation]
    contracts: DayContracts
    metrics: dict[tuple[str, int], float] = field(default_factory=dict)
    published: PublishSummary | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    analytics: Path | None = None


def resolve_ds(requested: date | None) -> date:
    """The day to process: as asked, else the day the run was scheduled for (a late run keeps its day)."""
    if requested is not None:
        return requested
    scheduled = flow_run.scheduled_start_time
    return scheduled.date() if scheduled is not None else datetime.now(timezone.utc).date()


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA device")
    return requested


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@contextlib.contextmanager
def _timed(stage_seconds: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        stage_seconds[stage] = stage_seconds.get(stage, 0.0) + time.perf_counter() - started


def run_parameters(params: DailyParams, train: bool) -> dict:
    """The parameters recorded with a run; a backfill skips a day whose completed run recorded the same."""
    return params.model_dump(mode="json", exclude={"lock_wait"}) | {"train": train}


@io_task(name="publish_analytics", timeout_seconds=3600)
def publish_analytics(db: Path, analytics: Path, completing: str | None = None) -> StoreSummary | None:
    with connect(db) as con:
        summary = publish_store(con, analytics, completing=completing)
    if summary is not None:
        get_run_logger().info("analytics store %s: %d partitions (%d new)", analytics, summary.partitions, summary.exported)
    return summary


@flow(name=FLOW_NAME, log_prints=False)
def daily_recommendations(params: DailyParams = DailyParams()) -> DailyResult:
    """Process one day of landed data into published per-user top-K recommendations."""
    ds = resolve_ds(params.ds)
    params.check_before_run(ds)  # the option checks that need the file system, before any write
    with warehouse_lock(params.db, f"{FLOW_NAME} model={params.model} ds={ds}", params.lock_wait):
        return process_day(params.model_copy(update={"ds": ds}), FLOW_NAME)


def clear_dead_runs(con: duckdb.DuckDBPyConnection, run_id: str, params: DailyParams, found_at: datetime) -> None:
    """Mark the runs that died while ``running`` as abandoned and remove what they left half-written; called by
    the holder of the writer lock, before it registers its own run."""
    abandoned = abandon_dead_runs(con, run_id, found_at)
    for dead in abandoned:
        shutil.rmtree(params.db.parent / "checkpoints" / dead, ignore_errors=True)
    removed = remove_dead_temporaries(params.analytics)
    if abandoned or removed:
        get_run_logger().warning(
            "marked %d dead run(s) abandoned (%s); removed %d temporary file(s)", len(abandoned), ", ".join(abandoned), removed
        )


def process_day(params: DailyParams, flow_name: str, train: bool = True) -> DailyResult:
    """One day, run inside a flow by the holder of the warehouse lock: ingest, validate and decide the contracts of
    every pending day, then (when ``train``) build the graph, train, evaluate and publish; then bring the analysts'
    store up to date, and only then mark the run completed in ``ops.runs``.

    The warehouse stays open for the whole run, so no other process can open it between two steps. Every stage
    commits its data with its progress, and a run killed anywhere is resumed by the next (see tasks/failpoints.py).
    """
    if params.ds is None:
        raise ValueError("process_day needs a resolved ds")
    ds = params.ds
    device = resolve_device(params.device)
    run_id = uuid.uuid4().hex
    recipe = params.recipe()
    checkpoints = params.db.parent / "checkpoints" / run_id
    seconds: dict[str, float] = {}
    started_at = _now()
    metrics: dict[tuple[str, int], float] = {}
    published = None
    with connect(params.db) as held:
        clear_dead_runs(held, run_id, params, started_at)
        # A run that died after publishing left the store behind the warehouse: catch it up before anything else.
        caught_up = time.perf_counter()
        if publish_analytics(params.db, params.analytics) is not None:
            seconds["analytics"] = time.perf_counter() - caught_up
        start_run(held, run_id, flow_name, ds, params.model, run_parameters(params, train), started_at)
        failpoint("run-registered")
        try:
            with _timed(seconds, "ingest"):
                days_ingested = find_pending_days(params.db, params.landing, ds)
            for day in days_ingested:
                with _timed(seconds, "ingest"):
                    ingest_partition(params.db, params.landing, day)
                failpoint("ingest-committed")
                with _timed(seconds, "validate"):
                    validation = validate_partition(params.db, day)
                    failpoint("validate-committed")
                    # Data docs for the run's own day; a caught-up day reports only what it quarantined or failed.
                    docs_dir = params.db.parent / "data_docs" if day == ds else None
                    contracts = check_data_contracts(params.db, day, run_id, params.contracts, validation, docs_dir)
                failpoint("contracts-committed")
            digest, files = ingested_inputs(held, ds)
            provenance = Provenance(digest, files, code_version(PROJECT_DIR), library_versions(), params.seed, device)
            record_provenance(held, run_id, provenance)
            curve = None
            if train:
                with _timed(seconds, "build_graph"):
                    build_graph(params.db, ds)
                failpoint("graph-committed")
                trained = None
                if params.eval_days > 0:
                    cutoff = holdout_cutoff(ds, params.eval_days)
                    with _timed(seconds, "train"):
                        trained, recalls = train_model(
                            params.db, ds, cutoff, recipe, checkpoints / "holdout.pt", device,
                            params.eval_days if params.curve_recall else 0,
                        )
                    curve = TrainingCurve("holdout model", trained.report.epoch_losses, recalls)
                    with _timed(seconds, "evaluate"):
                        metrics = evaluate_model(params.db, ds, params.eval_days, trained, recipe, run_id, device)
                    failpoint("metrics-committed")
                if trained is None or params.retrain:
                    with _timed(seconds, "train"):
                        trained, _ = train_model(params.db, ds, ds, recipe, checkpoints / "final.pt", device)
                    curve = curve or TrainingCurve("published model", trained.report.epoch_losses, [])
                with _timed(seconds, "publish"):
                    published = publish_topk(params.db, ds, trained, recipe, params.top_k, run_id, device)
                failpoint("publish-committed")
            with _timed(seconds, "analytics"):
                store = publish_analytics(params.db, params.analytics, completing=run_id)
            failpoint("analytics-refreshed")
            complete_run(held, run_id, seconds, _now())
        except BaseException as error:
            record_stage_seconds(held, run_id, seconds)
            finish_run(held, run_id, "failed", _now(), f"{type(error).__name__}: {error}")
            raise
        previous_run, previous = previous_metrics(held, run_id, params.model, started_at)
    if published is not None:
        report_run(params.model, ds, metrics, previous_run, previous, curve)
    return DailyResult(
        run_id, ds, params.model, params.db, days_ingested, validation, contracts, metrics, published, seconds,
        params.analytics if store is not None else None,
    )
