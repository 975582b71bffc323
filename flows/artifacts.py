"""Prefect artifacts of a run: its metrics next to the previous run's, and its training curve."""

from __future__ import annotations

from datetime import date

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.learn.curves import TrainingCurve, metrics_comparison, training_curve_markdown


def report_run(
    model: str, ds: date, metrics: dict[tuple[str, int], float], previous_run: str | None,
    previous: dict[tuple[str, int], float], curve: TrainingCurve | None, protocol: str | None = None,
) -> None:
    if metrics:
        against = f"previous run {previous_run}" if previous_run else "no earlier run of this model"
        create_table_artifact(
            metrics_comparison(metrics, previous), key=f"metrics-{model}",
            description=f"{model} holdout metrics for {ds} ({protocol or 'full'} protocol), compared with {against}",
        )
    if curve is not None and curve.losses:
        create_markdown_artifact(
            training_curve_markdown(curve, f"{model} {ds}, {curve.model}"), key=f"training-curve-{model}",
            description=f"per-epoch training figures of the {model} {curve.model} for {ds}",
        )
