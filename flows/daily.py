"""The daily flow: ingest -> validate -> build graph -> train -> evaluate -> (retrain) -> publish -> analytics store.

A thin Prefect shell: each task wraps one plain step from :mod:`tasks.steps`, adding a name, retries for
transient I/O only, and a log line. Parameters are resolved once here and passed down explicitly.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import torch
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from gnnrec.flows.artifacts import report_run
from gnnrec.flows.concurrency import writer_slot
from gnnrec.flows.console import TrainingProgress
from gnnrec.flows.params import DailyParams, flat_flow_parameters
from gnnrec.tasks import steps
from gnnrec.tasks.publish.analytics import StoreSummary, publish_store, remove_dead_temporaries
from gnnrec.tasks.ops.checkpoints import prune_checkpoints
from gnnrec.tasks.learn.curves import TrainingCurve
from gnnrec.tasks.ops.failpoints import failpoint
from gnnrec.tasks.ops.db import connect
from gnnrec.tasks.graph.ids import CatalogSizes
from gnnrec.tasks.data.ingest import IngestReport
from gnnrec.tasks.ops.lock import is_alive, run_alive
from gnnrec.tasks.data.policy import ContractPolicy
from gnnrec.tasks.publish.topk import PublishSummary
from gnnrec.tasks.data.quality import DayContracts, contract_markdown, contract_report
from gnnrec.tasks.ops.runs import (
    Provenance, abandon_dead_runs, code_version, complete_run, finish_run, ingested_inputs, library_versions,
    previous_metrics, record_metrics, record_provenance, record_stage_seconds, start_run,
)
from gnnrec.tasks.data.validate import SourceValidation
from gnnrec.tasks.learn.evaluate import Metric
from gnnrec.tasks.learn.ranking import TopK
from gnnrec.tasks.graph.snapshot import DaySnapshot, read_snapshot
from gnnrec.tasks.learn.train import EpochProgress, TrainingReport
from gnnrec.tasks.learn.validation_curve import HoldoutRecall

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


@io_task(name="ingest_partition", task_run_name="ingest-{ds}", timeout_seconds=3600)
def ingest_partition(db: Path, landing: Path, ds: date, future_tolerance: timedelta) -> IngestReport:
    """Ingest the day and check its rows in the same transaction (the report's ``validation``)."""
    report = steps.ingest(db, landing, ds, future_tolerance)
    logger = get_run_logger()
    logger.info("ingested %d files for %s", len(report.files), ds)
    for s in report.validation:
        logger.info("%s: %d read, %d clean, %d quarantined", s.source, s.rows_read, s.rows_loaded, s.rows_quarantined)
    return report


@io_task(name="check_data_contracts", task_run_name="contracts-{ds}")
def check_data_contracts(
    db: Path, ds: date, run_id: str, policy: ContractPolicy, validation: list[SourceValidation], docs_dir: Path | None
) -> DayContracts:
    """Dataset expectations and the policy; a broken contract fails here (a data error: never retried)."""
    day = steps.check_data_contracts(db, ds, run_id, policy, validation, docs_dir)
    findings = {row["source"] for row in contract_report(day)}
    for v in day.validation:
        # The run's own day always; a caught-up day where it has something to say. One key per source: its
        # versions are that source's contract history.
        if docs_dir is not None and v.rows_read or v.source in findings:
            create_markdown_artifact(
                contract_markdown(day, v.source), key=f"data-contracts-{v.source.replace('_', '-')}",
                description=f"data contracts of {v.source} for {ds.isoformat()}",
            )
    day.raise_if_broken()
    return day


@io_task(name="build_graph", timeout_seconds=3600)
def build_graph(db: Path, ds: date) -> CatalogSizes:
    steps.require_decided(db, ds)  # never a graph over a day whose contracts were not decided
    sizes = steps.build_graph(db, ds)
    get_run_logger().info("catalog as of %s: %s", ds, sizes)
    return sizes


@task(name="prepare_snapshot", cache_policy=NO_CACHE, timeout_seconds=3600)
def prepare_snapshot(db: Path, ds: date, eval_days: int) -> Path:
    return steps.prepare_snapshot(db, ds, eval_days)


@task(name="train_model", task_run_name="train-{recipe.name}-{stage}", cache_policy=NO_CACHE, timeout_seconds=6 * 3600)
def train_model(
    day: DaySnapshot, stage: str, recipe: steps.ModelRecipe, checkpoint: Path, device: str, curve_recall: bool = False
) -> tuple[steps.TrainedModel, list[float]]:
    """Train the ``holdout`` model (data up to the cut-off) or the ``final`` one (up to the day) and save its weights;
    with ``curve_recall``, also rank the holdout after every epoch for the training curve."""
    logger = get_run_logger()
    holdout = stage == "holdout"
    recall_of = (
        HoldoutRecall(day.train, day.holdout, day.unborn_at_cutoff, torch.device(device)) if curve_recall and holdout else None
    )
    recalls: list[float] = []
    progress = TrainingProgress(f"{recipe.name} {stage}", recipe.training.epochs)

    def on_epoch(epoch: EpochProgress) -> None:
        if recall_of is not None:
            recalls.append(recall_of(epoch.model))
        progress.advance(epoch.epoch, epoch.loss, recalls[-1] if recalls else None, epoch.epochs)
        watched = f" validation {epoch.monitor} {epoch.validation:.4f}" if epoch.validation is not None else ""
        logger.info("%s %s epoch %d/%d loss %.5f%s%s", recipe.name, stage, epoch.epoch, epoch.epochs, epoch.loss, watched,
                    f" holdout recall@20 {recalls[-1]:.4f}" if recalls else "")  # fmt: skip

    with progress:
        trained = steps.train(day, holdout, recipe, checkpoint, torch.device(device), on_epoch=on_epoch)
    report = trained.report
    stopped = f", stopped early at epoch {len(report.epoch_losses)} (best {report.best_epoch})" if report.stopped_early else ""
    logger.info("trained %s on data up to %s in %.1fs%s", recipe.name, trained.as_of, report.seconds, stopped)
    return trained, recalls


@task(name="evaluate_model", task_run_name="evaluate-{recipe.name}", cache_policy=NO_CACHE, timeout_seconds=3600)
def evaluate_model(
    day: DaySnapshot, trained: steps.TrainedModel, recipe: steps.ModelRecipe, device: str, protocol: str | None
) -> list[Metric]:
    metrics = steps.evaluate(day, trained, torch.device(device), protocol, recipe.training.seed)
    get_run_logger().info("%s holdout: %s", recipe.name, ", ".join(f"{m.protocol} {m.name}{'@' + str(m.k) if m.k else ''} {m.value:.4f}" for m in metrics if m.k in (None, 20)))
    return metrics


@task(name="rank_catalog", task_run_name="rank-{recipe.name}", cache_policy=NO_CACHE, timeout_seconds=3600)
def rank_catalog(day: DaySnapshot, trained: steps.TrainedModel, recipe: steps.ModelRecipe, top_k: int, device: str) -> TopK:
    return steps.rank_for_publishing(day, trained, top_k, torch.device(device))


@dataclass(frozen=True)
class ModelResult:
    """One model's run of a prepared day."""

    run_id: str
    model: str
    metrics: dict[tuple[str, int], float] = field(default_factory=dict)
    published: PublishSummary | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    analytics: Path | None = None


@dataclass(frozen=True)
class DailyResult:
    """A day prepared once and the run of every model on it (one run for a day that is only ingested)."""

    ds: date
    db: Path
    days_ingested: list[date]
    validation: list[SourceValidation]
    contracts: DayContracts
    runs: list[ModelResult]
    snapshot: Path | None = None

    # The first (often the only) model's run, for callers that ran one.
    @property
    def run_id(self) -> str:
        return self.runs[0].run_id

    @property
    def model(self) -> str:
        return self.runs[0].model

    @property
    def metrics(self) -> dict[tuple[str, int], float]:
        return self.runs[0].metrics

    @property
    def published(self) -> PublishSummary | None:
        return self.runs[0].published

    @property
    def stage_seconds(self) -> dict[str, float]:
        return self.runs[0].stage_seconds

    @property
    def analytics(self) -> Path | None:
        return self.runs[0].analytics


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


def run_parameters(params: DailyParams, train: bool, model: str | None = None) -> dict:
    """The parameters recorded with one model's run; a backfill skips a day whose completed run recorded the same."""
    return params.model_dump(mode="json", exclude={"lock_wait", "keep_checkpoints"}) | {"model": model or params.models[0], "train": train}


@io_task(name="publish_analytics", timeout_seconds=3600)
def publish_analytics(db: Path, analytics: Path, completing: str | None = None) -> StoreSummary | None:
    with connect(db) as con:
        summary = publish_store(con, analytics, completing=completing)
    if summary is not None:
        get_run_logger().info("analytics store %s: %d partitions (%d new)", analytics, summary.partitions, summary.exported)
    return summary


def daily_run_name() -> str:
    """``lightgcn-2026-01-14`` (``lightgcn,mf,pop-2026-01-14`` for several models): the models and the day, the
    scheduled day when the run names none."""
    parameters = flow_run.parameters
    models = parameters.get("model", DailyParams.model_fields["model"].default)
    label = models if isinstance(models, str) else ",".join(models)
    return f"{label}-{parameters.get('ds') or resolve_ds(None)}"


@flow(name=FLOW_NAME, flow_run_name=daily_run_name, log_prints=False)
@flat_flow_parameters(DailyParams)
def daily_recommendations(**options: object) -> DailyResult:
    """Process one day of landed data into published per-user top-K recommendations of each selected model."""
    params = DailyParams(**options)
    ds = resolve_ds(params.ds)
    params.check_before_run(ds)  # the option checks that need the file system, before any write
    holder = f"{FLOW_NAME} model={params.model_label} ds={ds}"
    return process_day(params.model_copy(update={"ds": ds}), FLOW_NAME, writer=lambda: writing(params, holder))


def run_daily(params: DailyParams) -> DailyResult:
    """The daily flow with the options of ``params`` (callers that already hold validated options)."""
    return daily_recommendations(**params.flow_parameters())


@contextlib.contextmanager
def writing(params: DailyParams, holder: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """One write phase: the writer lock, and the warehouse held open so no other process can open it meanwhile."""
    with writer_slot(params.db, holder, params.lock_wait), connect(params.db) as con:
        yield con


Writer = Callable[[], contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]]


def clear_dead_runs(con: duckdb.DuckDBPyConnection, found_by: str, params: DailyParams, found_at: datetime) -> None:
    """Mark the runs that died while ``running`` as abandoned and remove what they left half-written; called by
    a holder of the writer lock, before it registers its own runs."""
    abandoned = abandon_dead_runs(con, found_by, found_at, alive=lambda run_id: is_alive(params.db, run_id))
    for dead in abandoned:
        shutil.rmtree(params.db.parent / "checkpoints" / dead, ignore_errors=True)
    removed = remove_dead_temporaries(params.analytics)
    if abandoned or removed:
        get_run_logger().warning(
            "marked %d dead run(s) abandoned (%s); removed %d temporary file(s)", len(abandoned), ", ".join(abandoned), removed
        )


def process_day(params: DailyParams, flow_name: str, train: bool = True, writer: Writer | None = None) -> DailyResult:
    """Prepare one day once, then train, evaluate and publish each selected model on it.

    Preparing (one write phase): ingest, validate and decide the contracts of every pending day, assign IDs and
    write the day's snapshot. Each model then trains from the snapshot with no lock held, and takes the writer
    lock again only to record its metrics, and to publish, bring the analysts' store up to date and complete.
    Every model is its own run in ``ops.runs``, kept provably alive by its liveness lock while it trains.
    ``writer`` opens a write phase; a backfill, which holds the warehouse for all its days, passes its own.
    Every stage commits its data with its progress, and a run killed anywhere is resumed (tasks/ops/failpoints.py).
    """
    if params.ds is None:
        raise ValueError("process_day needs a resolved ds")
    ds = params.ds
    device = resolve_device(params.device)
    models = params.models if train else params.models[:1]
    run_ids = [uuid.uuid4().hex for _ in models]
    seconds: dict[str, float] = {}
    started_at = _now()
    writer = writer or (lambda: writing(params, f"{flow_name} model={params.model_label} ds={ds}"))
    with contextlib.ExitStack() as alive:
        for run_id in run_ids:
            alive.enter_context(run_alive(params.db, run_id))
        with writer() as held:
            clear_dead_runs(held, run_ids[0], params, started_at)
            # A run that died after publishing left the store behind the warehouse: catch it up before anything else.
            caught_up = time.perf_counter()
            if publish_analytics(params.db, params.analytics) is not None:
                seconds["analytics"] = time.perf_counter() - caught_up
            flow_run_id = flow_run.get_id()
            for model, run_id in zip(models, run_ids):
                start_run(held, run_id, flow_name, ds, model, run_parameters(params, train, model), started_at, flow_run_id)
            failpoint("run-registered")
            try:
                days_ingested, validation, contracts = _prepare(params, run_ids[0], seconds)
                digest, files = ingested_inputs(held, ds)
                for run_id in run_ids:
                    record_provenance(held, run_id, Provenance(digest, files, code_version(PROJECT_DIR), library_versions(), params.seed, device))
                snapshot_file = None
                if train:
                    with _timed(seconds, "build_graph"):
                        build_graph(params.db, ds)
                        failpoint("graph-committed")
                        snapshot_file = prepare_snapshot(params.db, ds, params.eval_days)
            except BaseException as error:
                _fail(held, run_ids, seconds, error)
                raise
            if not train:
                _finish(params, held, run_ids[0], seconds)
        results = [ModelResult(run_ids[0], models[0], stage_seconds=seconds)] if not train else []
        if train:
            day = read_snapshot(snapshot_file)
            for number, (model, run_id) in enumerate(zip(models, run_ids)):
                # The preparation's stages are the first model's; the others reused its snapshot.
                try:
                    results.append(_run_model(params, model, run_id, day, writer, device, dict(seconds) if number == 0 else {}))
                except BaseException as error:
                    with writer() as held:
                        _fail(held, run_ids[number:], {}, error)
                    raise
    return DailyResult(ds, params.db, days_ingested, validation, contracts, results, snapshot_file)


def _prepare(
    params: DailyParams, run_id: str, seconds: dict[str, float]
) -> tuple[list[date], list[SourceValidation], DayContracts]:
    """Ingest, validate and decide the contracts of every pending day up to the run's day, oldest first."""
    ds = params.ds
    with _timed(seconds, "ingest"):
        days = find_pending_days(params.db, params.landing, ds)
    for day in days:
        # The row contracts run inside ingest's transaction; the "validate" stage is the dataset contracts.
        with _timed(seconds, "ingest"):
            validation = ingest_partition(params.db, params.landing, day, params.future_tolerance).validation
        failpoint("ingest-committed")
        with _timed(seconds, "validate"):
            # Data docs for the run's own day; a caught-up day reports only what it quarantined or failed.
            docs_dir = params.db.parent / "data_docs" if day == ds else None
            contracts = check_data_contracts(params.db, day, run_id, params.contracts, validation, docs_dir)
        failpoint("contracts-committed")
    return days, validation, contracts


def _run_model(
    params: DailyParams, model: str, run_id: str, day: DaySnapshot, writer: Writer, device: str, seconds: dict[str, float]
) -> ModelResult:
    """Train, evaluate and publish one model from the day's snapshot; the warehouse is written only at the end of
    evaluation and publication, each time under the writer lock."""
    recipe = params.recipe(model)
    checkpoints = params.db.parent / "checkpoints" / run_id
    metrics: dict[tuple[str, int], float] = {}
    evaluated: list[Metric] = []
    trained, curve = None, None
    if day.holdout is not None:
        with _timed(seconds, "train"):
            trained, recalls = train_model(day, "holdout", recipe, checkpoints / "holdout.pt", device, params.curve_recall)
        curve = _curve("holdout model", trained.report, recalls)
        with _timed(seconds, "evaluate"):
            evaluated = evaluate_model(day, trained, recipe, device, params.protocol)
            with writer() as held:
                record_metrics(held, run_id, evaluated)
        # The headline figures are those of the first protocol (full ranking for a ranking model).
        metrics = {(m.name, m.k): m.value for m in evaluated if m.protocol == evaluated[0].protocol} if evaluated else {}
        failpoint("metrics-committed")
    if trained is None or params.retrain:
        with _timed(seconds, "train"):
            trained, _ = train_model(day, "final", recipe, checkpoints / "final.pt", device)
        curve = curve or _curve("published model", trained.report)
    with _timed(seconds, "publish"):
        top = rank_catalog(day, trained, recipe, params.top_k, device)
    with writer() as held:
        with _timed(seconds, "publish"):
            published = steps.publish(held, day.ds, model, run_id, top)
        get_run_logger().info("%s: published %d rows for %d users", model, published.rows, published.users)
        failpoint("publish-committed")
        store = _finish(params, held, run_id, seconds)
        previous_run, previous = previous_metrics(held, run_id, model, _now())
        prune_checkpoints(held, params.db, model, params.keep_checkpoints)
    report_run(
        model, day.ds, run_id, metrics, previous_run, previous, curve, checkpoints, evaluated[0].protocol if evaluated else None
    )
    return ModelResult(run_id, model, metrics, published, seconds, params.analytics if store is not None else None)


def _curve(which: str, report: TrainingReport, recalls: list[float] = ()) -> TrainingCurve:
    return TrainingCurve(which, report.epoch_losses, report.validation, report.monitor, report.best_epoch, list(recalls))


def _finish(params: DailyParams, held: duckdb.DuckDBPyConnection, run_id: str, seconds: dict[str, float]) -> StoreSummary | None:
    """Bring the analysts' store up to date showing the run completed, then mark it completed."""
    with _timed(seconds, "analytics"):
        store = publish_analytics(params.db, params.analytics, completing=run_id)
    failpoint("analytics-refreshed")
    complete_run(held, run_id, seconds, _now())
    return store


def _fail(held: duckdb.DuckDBPyConnection, run_ids: list[str], seconds: dict[str, float], error: BaseException) -> None:
    for number, run_id in enumerate(run_ids):
        record_stage_seconds(held, run_id, seconds if number == 0 else {})
        reason = f"{type(error).__name__}: {error}" if number == 0 else f"not run: run {run_ids[0]} failed first"
        finish_run(held, run_id, "failed", _now(), reason)
