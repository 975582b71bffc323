"""Human-readable summaries of a run, for the command line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gnnrec.flows.backfill import BackfillResult
from gnnrec.flows.daily import DailyResult


def _metric_lines(metrics: dict[tuple[str, int | None], float]) -> list[str]:
    """Ranking metrics as a table by cut-off; metrics without one (MAE, RMSE, AUC, F1) one per line."""
    ks = sorted({k for _, k in metrics if k is not None})
    lines = ["    holdout metrics   " + "  ".join(f"@{k:<8}" for k in ks)] if ks else []
    for metric in dict.fromkeys(name for name, k in metrics if k is not None):
        lines.append(f"      {metric:<15} " + "  ".join(f"{metrics.get((metric, k), float('nan')):.4f}   " for k in ks))
    lines += [f"    {name:<17} {value:.4f}" for (name, k), value in sorted(metrics.items(), key=str) if k is None]
    return lines


def describe_result(result: DailyResult) -> str:
    lines = [f"gnnrec run: {result.model} for {result.ds} completed"]
    caught_up = [d for d in result.days_ingested if d != result.ds]
    if caught_up:
        lines.append(f"  also ingested {len(caught_up)} earlier day(s) with new or changed files: {caught_up[0]} .. {caught_up[-1]}")
    lines.append(f"  validation of {result.ds}:")
    for v in result.validation:
        if v.rows_read:
            note = f", quarantined {v.rows_quarantined:,} {v.rule_counts}" if v.rows_quarantined else ""
            lines.append(f"  {v.source:<14} {v.rows_read:>9,} rows read, {v.rows_loaded:,} clean{note}")
    contracts = result.contracts
    failed = [r.expectation for r in contracts.expectations if not r.success]
    lines.append(f"  expectations: {len(contracts.expectations) - len(failed)} met" + (f", failed (warnings): {', '.join(failed)}" if failed else ""))
    if contracts.data_docs is not None:
        lines.append(f"  data docs: {contracts.data_docs}")
    for run in result.runs:
        lines.append(f"  {run.model}: run {run.run_id}")
        lines += _metric_lines(run.metrics)
        if run.published is not None:
            lines.append(f"    published {run.published.rows:,} recommendations for {run.published.users:,} users")
        if run.stage_seconds:
            lines.append("    stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in run.stage_seconds.items()))
    lines.append(f"  results: {result.db} -> table recs.topk (ds, model), view recs.latest_topk; metrics in ops.metrics")
    if result.analytics is not None:
        lines.append(f"  analysts: {result.analytics} (open read-only at any time, even while a run writes)")
    return "\n".join(lines)


def describe_backfill(result: BackfillResult, analytics: Path) -> str:
    lines = [f"gnnrec backfill {result.days[0]} .. {result.days[-1]}: {len(result.completed)} day(s) run, "
             f"{len(result.skipped)} skipped as already done"]
    for day in result.days:
        if day in result.skipped:
            lines.append(f"  {day}  skipped (run {result.skipped[day]})")
            continue
        done = next(r for r in result.completed if r.ds == day)
        stages = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in done.stage_seconds.items())
        published = f", published {done.published.rows:,} rows" if done.published else ""
        lines.append(f"  {day}  run {done.run_id}: {stages}{published}")
    lines.append(f"  analysts: {analytics}")
    return "\n".join(lines)


def describe_run(run: dict) -> str:
    lines = [f"run {run['run_id']}"]
    for name, value in run.items():
        if name in ("run_id", "metrics"):
            continue
        if isinstance(value, str) and value.startswith("{"):
            value = json.dumps(json.loads(value))
        lines.append(f"  {name:<17} {value}")
    if run["metrics"]:
        lines.append("  metrics")
        for (protocol, metric, k), value in sorted(run["metrics"].items(), key=str):
            name = metric if k is None else f"{metric}@{k}"
            lines.append(f"    {protocol:<12} {name:<14} {value:.4f}")
    return "\n".join(lines)


def show_progress() -> None:
    """Let the flow's and tasks' run-logger lines through to the console (Prefect's own handler prints them):
    days done and remaining, the stage, the loss of each epoch."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).setLevel(logging.INFO)
