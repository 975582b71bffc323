"""Human-readable summaries of a run, for the command line."""

from __future__ import annotations

from flows.daily import DailyResult


def describe_result(result: DailyResult) -> str:
    lines = [f"gnnrec run {result.run_id}: {result.model} for {result.ds} completed"]
    caught_up = [d for d in result.days_ingested if d != result.ds]
    if caught_up:
        lines.append(f"  also ingested {len(caught_up)} earlier day(s) with new or changed files: {caught_up[0]} .. {caught_up[-1]}")
    lines.append(f"  validation of {result.ds}:")
    for v in result.validation:
        if v.rows_read:
            note = f", quarantined {v.rows_quarantined:,} {v.rule_counts}" if v.rows_quarantined else ""
            lines.append(f"  {v.source:<14} {v.rows_read:>9,} rows read, {v.rows_loaded:,} clean{note}")
    if result.metrics:
        ks = sorted({k for _, k in result.metrics})
        lines.append("  holdout metrics   " + "  ".join(f"@{k:<8}" for k in ks))
        for metric in ("recall", "ndcg", "precision", "hit_rate", "mrr"):
            lines.append(f"    {metric:<15} " + "  ".join(f"{result.metrics[(metric, k)]:.4f}   " for k in ks))
    if result.published is not None:
        p = result.published
        lines.append(f"  published {p.rows:,} recommendations for {p.users:,} users")
    lines.append(f"  results: {result.db} -> table recs.topk (ds, model), view recs.latest_topk; metrics in ops.metrics")
    if result.analytics is not None:
        lines.append(f"  analysts: {result.analytics} (open read-only at any time, even while a run writes)")
    if result.stage_seconds:
        lines.append("  stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result.stage_seconds.items()))
    return "\n".join(lines)
