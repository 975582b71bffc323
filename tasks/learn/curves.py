"""Run reports as plain text: a training-curve picture (SVG, no plotting library) and a metrics comparison table."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH, HEIGHT, MARGIN = 480, 240, 40


def curve_svg(values: list[float], title: str) -> str:
    """A line chart of ``values`` against epochs 1..n, with the y range printed on the axis."""
    if not values:
        raise ValueError("a curve needs at least one value")
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    step = plot_w / max(len(values) - 1, 1)
    points = " ".join(
        f"{MARGIN + i * step:.1f},{MARGIN + plot_h - (v - low) / span * plot_h:.1f}" for i, v in enumerate(values)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="11">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>'
        f'<text x="{MARGIN}" y="20">{escape(title)}</text>'
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}" stroke="black"/>'
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="black"/>'
        f'<text x="2" y="{MARGIN + 4}">{_short(high)}</text>'
        f'<text x="2" y="{HEIGHT - MARGIN}">{_short(low)}</text>'
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - MARGIN + 16}" text-anchor="end">epoch {len(values)}</text>'
        f'<polyline points="{points}" fill="none" stroke="steelblue" stroke-width="2"/>'
        "</svg>"
    )


def _short(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


@dataclass(frozen=True)
class TrainingCurve:
    """Per-epoch figures of one training: its BPR loss and, when tracked, the holdout's Recall@20."""

    model: str
    losses: list[float]
    recalls: list[float]


def _image(svg: str, title: str) -> str:
    return f"![{title}](data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()})"


def training_curve_markdown(curve: TrainingCurve, title: str) -> str:
    """Markdown for a Prefect artifact: the curves as inline SVG images, then the per-epoch values."""
    images = [_image(curve_svg(curve.losses, f"{title}: BPR loss per epoch"), "loss")]
    if curve.recalls:
        images.append(_image(curve_svg(curve.recalls, f"{title}: holdout Recall@20 per epoch"), "recall@20"))
        header = "| epoch | BPR loss | holdout Recall@20 |\n|---:|---:|---:|"
        rows = [f"| {n} | {loss:.6f} | {recall:.4f} |" for n, (loss, recall) in enumerate(zip(curve.losses, curve.recalls), 1)]
    else:
        header = "| epoch | BPR loss |\n|---:|---:|"
        rows = [f"| {n} | {loss:.6f} |" for n, loss in enumerate(curve.losses, 1)]
    return "\n\n".join(images) + "\n\n" + header + "\n" + "\n".join(rows) + "\n"


def metrics_comparison(
    metrics: dict[tuple[str, int], float], previous: dict[tuple[str, int], float]
) -> list[dict[str, object]]:
    """One row per (metric, k): this run's value, the previous run's and the change (None where it had none)."""
    rows = []
    for (metric, k), value in sorted(metrics.items(), key=lambda item: (item[0][0], item[0][1] or 0)):
        before = previous.get((metric, k))
        rows.append({
            "metric": metric, "k": k, "value": round(value, 6),
            "previous": None if before is None else round(before, 6),
            "change": None if before is None else round(value - before, 6),
        })
    return rows
