"""Validate: split each raw partition into ``clean.<source>`` (typed rows that keep every contract) and
``quarantine.<source>`` (one row per broken rule, with file, line, column, rule and the offending value).

Nothing is lost: for every file, rows read = rows loaded + rows quarantined, recorded in ``ops.ingest_files``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import duckdb
import pandera.errors
import polars as pl

from tasks.contracts import SOURCES, SourceContract
from tasks.db import partition_sql, query_arrow, replace_partition, sql_text, transaction

log = logging.getLogger(__name__)

QUARANTINE_SCHEMA = {
    "ds": pl.Date,
    "source_file": pl.String,
    "source_line": pl.Int64,
    "column_name": pl.String,
    "rule": pl.String,
    "value": pl.String,
    "record": pl.String,
}


@dataclass(frozen=True)
class SourceValidation:
    source: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rule_counts: dict[str, int]


def split_rows(raw: pl.DataFrame, contract: SourceContract, missing_by_file: dict[str, list[str]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return ``(clean, quarantine)`` for one source's raw rows of one day (a pure function of its inputs)."""
    raw = raw.with_row_index("_row")
    record = pl.struct(contract.columns).struct.json_encode().alias("record")
    provenance = [pl.col("ds"), pl.col("source_file"), pl.col("source_line")]

    # A file without a required column cannot yield a single valid row: quarantine all of it, once per column.
    broken_files = pl.DataFrame(
        [(f, c) for f, cols in missing_by_file.items() for c in cols],
        schema={"source_file": pl.String, "column_name": pl.String},
        orient="row",
    )
    whole_file = raw.join(broken_files, on="source_file").select(
        *provenance, "column_name", pl.lit("missing_required_column").alias("rule"), pl.lit(None, pl.String).alias("value"), record
    )
    checked = raw.join(broken_files.select("source_file").unique(), on="source_file", how="anti")

    try:
        contract.row_model.validate(checked.select(contract.columns), lazy=True)
        failures = pl.DataFrame(schema={"index": pl.Int64, "column_name": pl.String, "rule": pl.String, "value": pl.String})
    except pandera.errors.SchemaErrors as errors:
        failures = errors.failure_cases.select(
            pl.col("index").cast(pl.Int64),
            pl.col("column").alias("column_name"),
            pl.col("check").alias("rule"),
            pl.col("failure_case").cast(pl.String).alias("value"),
        ).filter(pl.col("index").is_not_null())
    checked = checked.with_row_index("_checked")
    row_failures = checked.join(failures, left_on="_checked", right_on="index").select(
        *provenance, "column_name", "rule", "value", record
    )
    quarantine = pl.concat([whole_file, row_failures]).sort("source_file", "source_line", "column_name", "rule")
    clean = checked.join(failures.select("index").unique(), left_on="_checked", right_on="index", how="anti")
    clean = clean.select(*provenance, *contract.typed_columns)
    return clean, quarantine.cast(QUARANTINE_SCHEMA)


def validate_partition(con: duckdb.DuckDBPyConnection, ds: date) -> list[SourceValidation]:
    """Replace ``clean.*`` and ``quarantine.*`` for ``ds`` from ``raw.*``, and reconcile ``ops.ingest_files``."""
    missing_rows = con.execute(sql_text("ops/files_missing_columns"), {"ds": ds}).fetchall()
    summaries = []
    with transaction(con):
        for source, contract in SOURCES.items():
            raw = pl.from_arrow(query_arrow(con, partition_sql("partition/select", f"raw.{source}"), {"ds": ds}))
            missing = {path: list(cols) for src, path, cols in missing_rows if src == source}
            clean, quarantine = split_rows(raw, contract, missing)
            replace_partition(con, f"clean.{source}", ds, clean.to_arrow())
            replace_partition(con, f"quarantine.{source}", ds, quarantine.to_arrow())
            rule_counts = dict(quarantine.group_by("rule").len().sort("rule").iter_rows())
            quarantined = quarantine.select("source_file", "source_line").unique().height
            summaries.append(SourceValidation(source, raw.height, clean.height, quarantined, rule_counts))
            if quarantined:
                log.warning("%s %s: %d of %d rows quarantined %s", source, ds, quarantined, raw.height, rule_counts)
        con.execute(sql_text("ops/reconcile_ingest_files"), {"ds": ds})
    return summaries
