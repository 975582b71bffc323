"""The backfill flow: every day of ``[start, end]`` in order through the daily flow's own steps, under one
warehouse lock, skipping days already completed with the same inputs and parameters."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated

from cyclopts import Parameter
from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import Field, field_validator, model_validator

from gnnrec.flows.concurrency import writer_slot
from gnnrec.flows.daily import (
    DailyResult, Writer, check_data_contracts, find_pending_days, ingest_partition, process_day, run_parameters,
)
from gnnrec.flows.params import (
    DailyParams, check_day_range, check_holdout_reach, flat_flow_parameters, iso_day, options_only,
)
from gnnrec.tasks.ops.backfill import PublishMode, backfill_plan, landed_inputs_digest
from gnnrec.tasks.ops.db import connect
from gnnrec.tasks.ops.runs import completed_run_matching

BACKFILL_FLOW = "backfill-recommendations"


@options_only
class BackfillParams(DailyParams):
    """A backfill's parameters: the daily ones (without ``ds``) plus the range and what to redo."""

    # The range's days come from start and end: no --ds on the command line (a value given is refused below).
    ds: Annotated[date | None, Parameter(parse=False)] = None
    start: date = Field(description="first day to process (YYYY-MM-DD)")
    end: date = Field(description="last day to process (YYYY-MM-DD), inclusive")
    publish: PublishMode = Field("last", description="train and publish every day, or only the last")
    force: bool = Field(False, description="redo days already completed with the same inputs and parameters")

    @field_validator("start", "end", mode="before")
    @classmethod
    def day_as_iso_text(cls, value: object) -> object:
        return iso_day(value)

    @field_validator("start", "end")
    @classmethod
    def day_gnnrec_can_hold(cls, value: date) -> date:
        check_day_range(value)
        return value

    @model_validator(mode="after")
    def range_without_ds(self) -> BackfillParams:
        if self.ds is not None:
            raise ValueError("a backfill takes start and end, not ds")
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        check_holdout_reach(self.start, self.eval_days, "--start")
        return self

    def check_before_run(self, ds: date | None = None) -> None:
        """:meth:`DailyParams.check_before_run` for the range's first day that trains (its history is shortest)."""
        super().check_before_run(ds or (self.start if self.publish == "every" else self.end))

    def for_day(self, ds: date) -> DailyParams:
        return DailyParams(**self.model_dump(include=set(DailyParams.model_fields)) | {"ds": ds})

    def flow_parameters(self) -> dict:
        """The backfill flow's keyword parameters (a backfill has no ``ds``)."""
        return {name: value for name, value in super().flow_parameters().items() if name != "ds"}


def backfill_run_name() -> str:
    """``backfill-lightgcn-2026-01-01-2026-01-14``: the models and the range."""
    parameters = flow_run.parameters
    models = parameters.get("model", BackfillParams.model_fields["model"].default)
    label = models if isinstance(models, str) else ",".join(models)
    return f"backfill-{label}-{parameters.get('start')}-{parameters.get('end')}"


def backfill_day_run_name() -> str:
    """``lightgcn-2026-01-03`` for a day that trains, ``ingest-2026-01-03`` for one only ingested and validated."""
    parameters = flow_run.parameters
    return f"{parameters['label'] if parameters.get('train') else 'ingest'}-{parameters['ds']}"


@flow(name="backfill-day", flow_run_name=backfill_day_run_name, validate_parameters=False, log_prints=False)
def backfill_day(params: DailyParams, ds: date, label: str, train: bool, writer: Writer) -> DailyResult:
    """One day of a backfill, as its own run under the backfill's, so the days can be told apart in the UI."""
    return process_day(params, BACKFILL_FLOW, train, writer)


@dataclass(frozen=True)
class BackfillResult:
    days: list[date]
    completed: list[DailyResult] = field(default_factory=list)
    skipped: dict[date, str] = field(default_factory=dict)


@flow(name=BACKFILL_FLOW, flow_run_name=backfill_run_name, log_prints=False)
@flat_flow_parameters(BackfillParams, exclude=("ds",))
def backfill_recommendations(**options: object) -> BackfillResult:
    """Ingest and validate every day of the range; train and publish every day or only the last."""
    params = BackfillParams(**options)
    params.check_before_run()
    logger = get_run_logger()
    plan = backfill_plan(params.start, params.end, params.publish)
    completed, skipped = [], {}
    holder = f"{BACKFILL_FLOW} model={params.model_label} {params.start}..{params.end}"
    # Holding the warehouse open too keeps any other process out between the days, not only other runs.
    with writer_slot(params.db, holder, params.lock_wait), connect(params.db) as held:
        writer = lambda: contextlib.nullcontext(held)  # noqa: E731 - every day writes under the backfill's own lock
        # Earlier days whose files changed since they were ingested come first, as a daily run would do, and they
        # pass the same data contracts; their expectation results are recorded under this flow run's id.
        for day in [d for d in find_pending_days(params.db, params.landing, params.start) if d < params.start]:
            validation = ingest_partition(params.db, params.landing, day, params.future_tolerance).validation
            check_data_contracts(params.db, day, str(flow_run.get_id()), params.contracts, validation, None)
        for number, (day, train) in enumerate(plan, start=1):
            day_params = params.for_day(day)
            position = f"day {number}/{len(plan)} {day}"
            if not params.force:
                digest = landed_inputs_digest(held, params.landing, day)
                models = day_params.models if train else day_params.models[:1]
                done_by = [completed_run_matching(held, day, run_parameters(day_params, train, m), digest) for m in models]
                if all(done_by):
                    skipped[day] = ", ".join(done_by)
                    logger.info("%s: skipped, already completed by run %s with the same inputs and parameters", position, skipped[day])
                    continue
            logger.info("%s: %s (%d remaining after it)", position, "ingest, validate, train, publish" if train else "ingest, validate", len(plan) - number)
            result = backfill_day(day_params, day, day_params.model_label, train, writer)
            completed.append(result)
            timings = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in result.stage_seconds.items())
            logger.info("%s: done (run %s): %s", position, result.run_id, timings)
    return BackfillResult([day for day, _ in plan], completed, skipped)


def run_backfill(params: BackfillParams) -> BackfillResult:
    """The backfill flow with the options of ``params``."""
    return backfill_recommendations(**params.flow_parameters())
