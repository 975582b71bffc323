"""Backfill benchmark: the demo world's days through ``gnnrec backfill``, then the same command again.

    python bench/backfill.py [--days 14] [--publish last|every] [--epochs 40] [--model lightgcn]

Runs the real command line in a fresh folder (so the wall time includes start-up and Prefect's ephemeral API),
reads each day's stage timings back from ``ops.runs``, and checks that the second, identical backfill skips every
day and records no run. Prints the figures and writes ``bench/results/backfill.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import print_table, write_results  # noqa: E402

GNNREC = Path(sys.executable).with_name("gnnrec")
START = date(2026, 1, 1)


def _timed(argv: list[str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([str(GNNREC), *argv], cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"gnnrec {' '.join(argv)} failed with {done.returncode}:\n{done.stderr[-4000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--publish", choices=["last", "every"], default="last")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--model", default="lightgcn")
    args = parser.parse_args()
    end = START + timedelta(days=args.days - 1)
    backfill = ["backfill", "--start", str(START), "--end", str(end), "--model", args.model,
                "--publish", args.publish, "--epochs", str(args.epochs)]

    with tempfile.TemporaryDirectory(prefix="gnnrec-bench-backfill-") as folder:
        root = Path(folder)
        _timed(["demo-data", "--days", str(args.days)], root)
        first_seconds, _ = _timed(backfill, root)
        with duckdb.connect(str(root / "data" / "gnnrec.duckdb"), read_only=True) as con:
            days = con.execute(
                "select ds, run_id, stage_seconds, date_diff('millisecond', started_at, finished_at) / 1000.0 "
                "from ops.runs order by ds"
            ).fetchall()
        second_seconds, second_out = _timed(backfill, root)
        with duckdb.connect(str(root / "data" / "gnnrec.duckdb"), read_only=True) as con:
            runs_after_second = con.execute("select count(*) from ops.runs").fetchone()[0]

    per_day = [
        {"ds": str(ds), "run_id": run_id, "run_seconds": seconds, "stage_seconds": json.loads(stages)}
        for ds, run_id, stages, seconds in days
    ]
    skipped = second_out.count(" skipped (run ")
    figures = {
        "days": args.days, "publish": args.publish, "epochs": args.epochs, "model": args.model,
        "first_backfill_wall_seconds": round(first_seconds, 1),
        "rerun_wall_seconds": round(second_seconds, 1),
        "rerun_days_skipped": skipped, "runs_recorded_by_rerun": runs_after_second - len(days),
        "per_day": per_day,
    }
    path = write_results("backfill", figures)
    rows = [("first backfill, wall", f"{first_seconds:.1f} s"), ("re-run, wall", f"{second_seconds:.1f} s"),
            ("re-run", f"{skipped} of {args.days} days skipped, {runs_after_second - len(days)} runs recorded")]
    rows += [(f"  {d['ds']}", ", ".join(f"{k} {v:.1f}s" for k, v in d["stage_seconds"].items())) for d in per_day]
    print_table(f"backfill of {args.days} demo days ({args.model}, publish {args.publish}, {args.epochs} epochs)", rows)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
