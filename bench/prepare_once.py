"""One prepared day, many models: a three-model daily run next to three one-model runs on the same demo day.

    python bench/prepare_once.py [--days 14] [--users 2000] [--items 1000] [--epochs 5] [--models lightgcn,mf,pop]

Each configuration starts from a fresh warehouse (so each one-model run ingests, validates and checks the whole
history, as three separate deployments on three warehouses would) and counts how many times the interaction
history is read from the warehouse. Prints each run's stage seconds and writes ``bench/results/prepare_once.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DIR, print_table, write_results  # noqa: E402
from gnnrec.flows.settings import configure_prefect_environment  # noqa: E402

START = date(2026, 1, 1)


def _stage_seconds(db: Path) -> list[tuple[str, dict[str, float]]]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("select model, stage_seconds from ops.runs order by started_at, model").fetchall()
    return [(model, json.loads(seconds)) for model, seconds in rows]


def _run(params, reads: list) -> dict:
    from gnnrec.flows.daily import run_daily

    before = len(reads)
    started = time.perf_counter()
    run_daily(params)
    return {
        "models": params.model, "wall_seconds": round(time.perf_counter() - started, 1),
        "history_reads": len(reads) - before, "runs": _stage_seconds(params.db),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--models", default="lightgcn,mf,pop")
    args = parser.parse_args()
    configure_prefect_environment(BENCH_DIR.parent)

    from gnnrec.flows.params import DailyParams
    from gnnrec.tasks.graph import snapshot
    from gnnrec.tasks.data.demo import generate_demo_world

    reads: list[date] = []
    read_history = snapshot.load_interaction_pairs
    snapshot.load_interaction_pairs = lambda con, ds: reads.append(ds) or read_history(con, ds)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        days = generate_demo_world(root / "landing", start=START, days=args.days, users=args.users, items=args.items, seed=7).days

        def params(name: str, models: str) -> DailyParams:
            return DailyParams(ds=days[-1], model=models, epochs=args.epochs, landing=root / "landing",
                               db=root / name / "gnnrec.duckdb", analytics=root / name / "analytics.duckdb")  # fmt: skip

        combined = _run(params("combined", args.models), reads)
        separate = [_run(params(model, model), reads) for model in args.models.split(",")]

    rows = [("three-model run", f"{combined['wall_seconds']} s wall, history read {combined['history_reads']}x")]
    for model, seconds in combined["runs"]:
        rows.append((f"  {model}", ", ".join(f"{stage} {value:.1f}" for stage, value in seconds.items())))
    total = sum(run["wall_seconds"] for run in separate)
    reads_total = sum(run["history_reads"] for run in separate)
    rows.append(("three one-model runs", f"{total:.1f} s wall, history read {reads_total}x"))
    for run in separate:
        for model, seconds in run["runs"]:
            rows.append((f"  {model}", f"{run['wall_seconds']} s: " + ", ".join(f"{stage} {value:.1f}" for stage, value in seconds.items())))
    print_table(f"prepare once: {args.days} demo days, {args.users} users, {args.items} items, {args.epochs} epochs", rows)
    write_results("prepare_once", {"args": vars(args), "combined": combined, "separate": separate})


if __name__ == "__main__":
    main()
