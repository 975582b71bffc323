"""Run reports: the training curve drawn with matplotlib, and the metrics table a run is judged by."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

# The figures a reader looks for first, in this order; every other metric follows by name and k.
HEADLINE_METRICS = (("recall", 20), ("ndcg", 20), ("rmse", None), ("mae", None), ("auc", None), ("f1", None))


@dataclass(frozen=True)
class TrainingCurve:
    """Per-epoch figures of one training: its loss; the validation metric early stopping watched (``monitor``,
    measured every few epochs on the part carved from the training data), and the epoch it kept; and, when
    tracked (``--curve-recall``), the holdout's Recall@20 after every epoch."""

    model: str
    losses: list[float]
    validation: list[tuple[int, float]] = field(default_factory=list)
    monitor: str | None = None
    best_epoch: int | None = None
    recalls: list[float] = field(default_factory=list)


def training_curve_png(curve: TrainingCurve, title: str) -> bytes:
    """The curve as a PNG: the training loss per epoch on the left, the validation metric (and the holdout's
    Recall@20 when tracked) on the right, the kept epoch marked on both."""
    from matplotlib.figure import Figure  # imported here: only a run that trains draws, and it is slow to import

    figure = Figure(figsize=(9, 3.4), dpi=100, layout="constrained")
    loss_axes, metric_axes = figure.subplots(1, 2, sharex=True)
    epochs = range(1, len(curve.losses) + 1)
    loss_axes.plot(epochs, curve.losses, marker="o", markersize=3, color="tab:blue")
    loss_axes.set(title="training loss", xlabel="epoch", ylabel="loss")
    if curve.validation:
        at, values = zip(*curve.validation)
        metric_axes.plot(at, values, marker="o", markersize=3, color="tab:green", label=f"validation {curve.monitor}")
    if curve.recalls:
        metric_axes.plot(epochs, curve.recalls, marker=".", color="tab:orange", label="holdout recall@20")
    if curve.validation or curve.recalls:
        metric_axes.legend(loc="lower right")
        metric_axes.set(title="validation", xlabel="epoch", ylabel=curve.monitor or "recall@20")
    else:
        metric_axes.set_axis_off()
        metric_axes.text(0.5, 0.5, "no validation part\n(the recipe trains all epochs)", ha="center", va="center")
    if curve.best_epoch is not None:
        for axes in (loss_axes, metric_axes):
            axes.axvline(curve.best_epoch, color="grey", linestyle="--", linewidth=1)
    for axes in (loss_axes, metric_axes):
        axes.grid(alpha=0.3)
        axes.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(title)
    image = io.BytesIO()
    figure.savefig(image, format="png")
    return image.getvalue()


def training_curve_table(curve: TrainingCurve) -> str:
    """The per-epoch values as a markdown table (the validation metric where it was measured)."""
    validated = dict(curve.validation)
    header = ["epoch", "loss"] + ([f"validation {curve.monitor}"] if validated else []) + (["holdout recall@20"] if curve.recalls else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for epoch, loss in enumerate(curve.losses, start=1):
        row = [str(epoch), f"{loss:.6f}"]
        if validated:
            row.append(f"{validated[epoch]:.4f}" if epoch in validated else "")
        if curve.recalls:
            row.append(f"{curve.recalls[epoch - 1]:.4f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _headline_order(key: tuple[str, int | None]) -> tuple[int, str, int]:
    metric, k = key
    position = HEADLINE_METRICS.index(key) if key in HEADLINE_METRICS else len(HEADLINE_METRICS)
    return position, metric, k or 0


def metrics_comparison(
    metrics: dict[tuple[str, int], float], previous: dict[tuple[str, int], float]
) -> list[dict[str, object]]:
    """One row per (metric, k), the headline first (Recall@20, NDCG@20; RMSE, MAE; AUC, F1), then by name and k:
    this run's value, the previous run's and the change (None where it had none), rounded for reading."""
    rows = []
    for (metric, k), value in sorted(metrics.items(), key=lambda item: _headline_order(item[0])):
        before = previous.get((metric, k))
        rows.append({
            "metric": metric, "k": k, "value": round(value, 4),
            "previous": None if before is None else round(before, 4),
            "change": None if before is None else round(value - before, 4),
        })
    return rows
