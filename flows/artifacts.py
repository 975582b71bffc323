"""Prefect artifacts of a run: its metrics next to the previous run's, and its training curve."""

from __future__ import annotations

import base64
from datetime import date
from pathlib import Path

from prefect.artifacts import create_image_artifact, create_markdown_artifact, create_table_artifact

from gnnrec.tasks.learn.curves import TrainingCurve, metrics_comparison, training_curve_png, training_curve_table

CURVE_FILE = "training_curve.png"


def report_run(
    model: str, ds: date, run_id: str, metrics: dict[tuple[str, int], float], previous_run: str | None,
    previous: dict[tuple[str, int], float], curve: TrainingCurve | None, run_dir: Path, protocol: str | None = None,
) -> None:
    """The run's artifacts, under keys per model so their versions are the model's history, each naming the gnnrec
    run (``ops.runs.run_id``, which records this Prefect flow run's id); the curve is also written to
    ``run_dir/training_curve.png``, beside the run's checkpoints."""
    if metrics:
        against = f"previous run {previous_run}" if previous_run else "no earlier run of this model"
        create_table_artifact(
            metrics_comparison(metrics, previous), key=f"metrics-{model}",
            description=f"{model} holdout metrics for {ds} ({protocol or 'full'} protocol), run {run_id}, compared with {against}",
        )
    if curve is not None and curve.losses:
        png = training_curve_png(curve, f"{model} {ds}, {curve.model} (run {run_id[:8]})")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / CURVE_FILE).write_bytes(png)
        create_image_artifact(
            f"data:image/png;base64,{base64.b64encode(png).decode()}", key=f"training-curve-{model}",
            description=f"training curve of the {model} {curve.model} for {ds}, run {run_id}",
        )
        create_markdown_artifact(
            training_curve_table(curve), key=f"training-epochs-{model}",
            description=f"per-epoch figures of the {model} {curve.model} for {ds}, run {run_id}",
        )
