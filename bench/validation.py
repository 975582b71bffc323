"""Validation benchmark: the time the data contracts add to a day of 1 M interaction rows.

    python bench/validation.py [--rows 1000000] [--bad-share 0.01]

Two days of ``--rows`` synthetic interactions each land as CSV (the first is the history the second's volume,
new-user and new-item expectations compare with); ``--bad-share`` of the second day's rows carry an out-of-range
rating. After both days are ingested and validated, the second day is measured stage by stage:

- ingest: ``ingest_partition`` of the changed file: read it, write ``raw`` and check its rows into ``clean`` and
  ``quarantine`` in one pass;
- row contracts (pandera): ``ingest_partition`` of the unchanged file, which reads nothing and re-checks the day's
  raw rows (``clean``, ``quarantine``, reconciliation): what the row contracts cost on their own;
- dataset contracts (Great Expectations): ``check_contracts`` (DuckDB measures, the GX suites, the policy,
  ``ops.validation_results``), without and with writing the data docs;
- the one-off import of ``great_expectations`` in a fresh process.

Each stage is the best of ``--repeats`` runs over the same warehouse (every stage replaces what it writes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import print_table, write_results  # noqa: E402
from bench.ingest import DAY, synthetic_interactions  # noqa: E402
from gnnrec.tasks.ops.db import connect  # noqa: E402
from gnnrec.tasks.data.ingest import ingest_partition, partition_dir  # noqa: E402
from gnnrec.tasks.data.policy import ContractPolicy  # noqa: E402
from gnnrec.tasks.data.quality import check_contracts  # noqa: E402

NEXT_DAY = DAY + timedelta(days=1)


def land(landing: Path, rows: int, bad_share: float) -> None:
    """The history day as generated, and the measured day with its times moved onto it and some bad ratings."""
    history = synthetic_interactions(rows, seed=0)
    day = synthetic_interactions(rows, seed=1).with_columns(
        pl.col("ts").str.replace(DAY.isoformat(), NEXT_DAY.isoformat(), literal=True),
    )
    bad = int(rows * bad_share)
    day = day.with_columns(pl.when(pl.int_range(pl.len()) % (rows // max(bad, 1)) == 0).then(pl.lit("9"))
                           .otherwise(pl.col("rating").cast(pl.String)).alias("rating"))  # fmt: skip
    for ds, frame in ((DAY, history), (NEXT_DAY, day)):
        folder = partition_dir(landing, "interactions", ds)
        folder.mkdir(parents=True)
        frame.write_csv(folder / "events.csv")


def gx_import_seconds() -> float:
    """Seconds to import great_expectations in a fresh interpreter (paid once per flow run that checks a day)."""
    code = "import time; t = time.perf_counter(); import great_expectations; print(time.perf_counter() - t)"
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)


def best(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bad-share", type=float, default=0.01)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    policy = ContractPolicy()
    with tempfile.TemporaryDirectory(prefix="gnnrec-bench-validation-") as tmp:
        landing, db, docs = Path(tmp) / "landing", Path(tmp) / "w.duckdb", Path(tmp) / "data_docs"
        land(landing, args.rows, args.bad_share)
        with connect(db) as con:
            con.execute("set enable_progress_bar = false")
            check_contracts(con, DAY, "bench", policy, ingest_partition(con, landing, DAY).validation)  # warms the GX import too

            def ingest():
                # a changed file is re-read: forget what was ingested so each repeat reads the file again
                con.execute("delete from ops.ingest_files where ds = ?", [NEXT_DAY])
                return ingest_partition(con, landing, NEXT_DAY)

            ingest_s, _ = best(ingest, args.repeats)
            pandera_s, validation = best(lambda: ingest_partition(con, landing, NEXT_DAY).validation, args.repeats)
            gx_s, day = best(lambda: check_contracts(con, NEXT_DAY, "bench", policy, validation), args.repeats)
            gx_docs_s, _ = best(lambda: check_contracts(con, NEXT_DAY, "bench", policy, validation, docs), args.repeats)
    (interactions,) = [v for v in validation if v.source == "interactions"]
    import_s = gx_import_seconds()
    added = pandera_s + gx_docs_s
    figures = {
        "rows": args.rows,
        "rows_quarantined": interactions.rows_quarantined,
        "ingest_seconds": round(ingest_s, 3),
        "pandera_validate_seconds": round(pandera_s, 3),
        "gx_check_seconds": round(gx_s, 3),
        "gx_check_with_data_docs_seconds": round(gx_docs_s, 3),
        "gx_import_seconds": round(import_s, 3),
        "validation_added_seconds": round(added, 3),
        "validation_added_with_gx_import_seconds": round(added + import_s, 3),
        "validation_over_ingest": round(added / ingest_s, 3),
        "expectations_failed": sorted(r.expectation for r in day.expectations if not r.success),
    }
    print_table(f"validation: a day of {args.rows:,} interaction rows, CSV, {interactions.rows_quarantined:,} bad (best of {args.repeats})", [
        ("ingest (read + raw + row contracts in one pass)", f"{ingest_s:6.2f} s"),
        ("row contracts alone: re-checking the raw rows", f"{pandera_s:6.2f} s"),
        ("dataset contracts: GX suites + policy", f"{gx_s:6.2f} s"),
        ("  ... and writing data docs", f"{gx_docs_s:6.2f} s"),
        ("validation added (pandera + GX with docs)", f"{added:6.2f} s  = {added / ingest_s:.2f} x ingest"),
        ("import great_expectations, once per process", f"{import_s:6.2f} s"),
    ])  # fmt: skip
    write_results("validation", figures)


if __name__ == "__main__":
    main()
