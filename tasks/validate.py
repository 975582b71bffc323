"""Validate: split each raw partition into ``clean.<source>`` (typed rows that keep every contract) and
``quarantine.<source>`` (one row per broken rule, with file, line, column, rule and the offending value).

Nothing is lost: for every file, rows read = rows loaded + rows quarantined, recorded in ``ops.ingest_files``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import pandera.errors
import polars as pl

from tasks.contracts import (
    FUTURE_RULE, SOURCES, SourceContract, after_the_day, keeps_every_rule, latest_event_time, parse_timestamp, stripped,
)
from tasks.db import partition_sql, query_arrow, replace_partition, sql_text, transaction
from tasks.failpoints import failpoint
from tasks.ingest import ARROW_LEVEL
from tasks.progress import mark_day

log = logging.getLogger(__name__)

DEFAULT_FUTURE_TOLERANCE = timedelta(days=1)

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


def _rule_failures(rows: pl.DataFrame, text: pl.DataFrame, contract: SourceContract) -> pl.DataFrame:
    """One row per (row, broken rule) of ``rows``: its position ``index``, the column, the rule and the value.

    pandera names the broken rules, but only for the rows that fail the same rules evaluated in one pass over
    ``text`` (the rows' stripped text): on a clean day that is none of them, and pandera's per-check passes and
    failure bookkeeping are skipped.
    """
    no_failures = pl.DataFrame(schema={"index": pl.Int64, "column_name": pl.String, "rule": pl.String, "value": pl.String})
    keeps = keeps_every_rule(contract.row_model)
    suspects = None if keeps is None else text.select(keeps.not_()).to_series().arg_true()
    if suspects is not None and suspects.is_empty():
        return no_failures
    try:
        contract.row_model.validate(rows if suspects is None else rows.select(pl.all().gather(suspects)), lazy=True)
        return no_failures
    except pandera.errors.SchemaErrors as errors:
        failures = errors.failure_cases.select(
            pl.col("index").cast(pl.Int64),
            pl.col("column").alias("column_name"),
            pl.col("check").alias("rule"),
            pl.col("failure_case").cast(pl.String).alias("value"),
        ).filter(pl.col("index").is_not_null())
    if suspects is not None:
        failures = failures.with_columns(suspects.cast(pl.Int64).gather(failures["index"]).alias("index"))
    return failures


def _future_failures(checked: pl.DataFrame, text: pl.DataFrame, contract: SourceContract, latest: datetime | None) -> pl.DataFrame:
    """One row per row of ``checked`` whose event time breaks :data:`FUTURE_RULE`, shaped as :func:`_rule_failures`'s,
    with the landed (unstripped) text as the value."""
    column = contract.event_time
    if column is None or latest is None:
        return pl.DataFrame(schema={"index": pl.Int64, "column_name": pl.String, "rule": pl.String, "value": pl.String})
    future = text.select(after_the_day(parse_timestamp(pl.col(column)), latest)).to_series().arg_true().cast(pl.Int64)
    return pl.DataFrame({
        "index": future, "column_name": pl.repeat(column, len(future), eager=True, dtype=pl.String),
        "rule": pl.repeat(FUTURE_RULE, len(future), eager=True, dtype=pl.String), "value": checked[column].gather(future),
    })  # fmt: skip


def split_rows(
    raw: pl.DataFrame, contract: SourceContract, missing_by_file: dict[str, list[str]], latest: datetime | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return ``(clean, quarantine)`` for one source's raw rows of one day (a pure function of its inputs).

    ``latest`` is the latest event time the day's rows may carry (:func:`latest_event_time`); None checks none.
    """
    record = pl.struct(contract.columns).struct.json_encode().alias("record")
    provenance = [pl.col("ds"), pl.col("source_file"), pl.col("source_line")]

    # A line no reader could split into fields breaks the rule it was read with; its text is the value. That is
    # the line's fault whatever the rest of its file holds (a JSONL file of such lines has no columns at all).
    is_malformed = pl.col("malformed_rule").is_not_null()
    malformed = raw.filter(is_malformed).select(
        *provenance, pl.lit(None, pl.String).alias("column_name"), pl.col("malformed_rule").alias("rule"),
        pl.col("malformed_text").alias("value"), record,
    )
    parsed = raw.filter(is_malformed.not_()) if malformed.height else raw

    # A file without a required column cannot yield a single valid row: quarantine all of it, once per column.
    broken_files = pl.DataFrame(
        [(f, c) for f, cols in missing_by_file.items() for c in cols],
        schema={"source_file": pl.String, "column_name": pl.String},
        orient="row",
    )
    if broken_files.height:
        in_broken_file = pl.col("source_file").is_in(broken_files["source_file"].unique().to_list())
        of_broken_files, checked = parsed.filter(in_broken_file), parsed.filter(in_broken_file.not_())
    else:
        of_broken_files, checked = parsed.clear(), parsed
    whole_file = of_broken_files.join(broken_files, on="source_file").select(
        *provenance, "column_name", pl.lit("missing_required_column").alias("rule"), pl.lit(None, pl.String).alias("value"), record
    )

    # Every rule and type reads the stripped text, so each column is stripped once for all of them.
    text = checked.select(*provenance, *(stripped(c).alias(c) for c in contract.columns))
    failures = _rule_failures(checked.select(contract.columns), text, contract)
    if (future := _future_failures(checked, text, contract, latest)).height:
        failures = pl.concat([failures, future])
    # ``index`` is a row's position in ``checked``; only the failing rows are looked up and JSON-encoded.
    failing = checked.select(pl.all().gather(failures["index"])).select(*provenance, record)
    row_failures = pl.concat([failing, failures.drop("index")], how="horizontal").select(
        *provenance, "column_name", "rule", "value", "record"
    )
    quarantine = pl.concat([whole_file, malformed, row_failures]).sort("source_file", "source_line", "column_name", "rule")
    if failures.height:
        failed = pl.repeat(False, text.height, eager=True).scatter(failures["index"], True)
        text = text.filter(failed.not_())
    clean = text.select(*provenance, *contract.typed_columns)
    return clean, quarantine.cast(QUARANTINE_SCHEMA)


def _raw_rows(con: duckdb.DuckDBPyConnection, source: str, ds: date) -> pl.DataFrame:
    """One source's raw rows of ``ds`` in file and line order (a raw row's key, so the order is total)."""
    table = f"raw.{source}"
    files = [path for (path,) in con.execute(partition_sql("partition/files", table), {"ds": ds}).fetchall()]
    rows = pl.from_arrow(query_arrow(con, partition_sql("partition/scan", table), {"ds": ds, "files": files}))
    # Ingest inserts rows in this order and a scan keeps it, so checking is cheaper than sorting. Each key sorted on
    # its own settles a day of one file per source; a day of several files needs the pair compared.
    each_sorted = rows.select(pl.col("file_number").is_sorted() & pl.col("source_line").is_sorted()).item()
    if not (each_sorted or rows.select(pl.struct("file_number", "source_line").is_sorted()).item()):
        rows = rows.sort("file_number", "source_line")
    return rows.select(
        pl.lit(ds, pl.Date).alias("ds"),
        pl.lit(pl.Series(files, dtype=pl.String)).gather(pl.col("file_number") - 1).alias("source_file"),
        pl.exclude("file_number"),
    )


def validate_partition(
    con: duckdb.DuckDBPyConnection, ds: date, future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE
) -> list[SourceValidation]:
    """Replace ``clean.*`` and ``quarantine.*`` for ``ds`` from ``raw.*``, and reconcile ``ops.ingest_files``.

    A row whose event time is after the end of ``ds`` (UTC) by more than ``future_tolerance`` is quarantined as
    :data:`FUTURE_RULE`; one exactly at that limit is not.
    """
    if future_tolerance < timedelta(0):
        raise ValueError(f"future_tolerance must not be negative, got {future_tolerance}")
    latest = latest_event_time(ds, future_tolerance)
    missing_rows = con.execute(sql_text("ops/files_missing_columns"), {"ds": ds}).fetchall()
    summaries = []
    with transaction(con):
        for source, contract in SOURCES.items():
            raw = _raw_rows(con, source, ds)
            missing = {path: list(cols) for src, path, cols in missing_rows if src == source}
            clean, quarantine = split_rows(raw, contract, missing, latest)
            replace_partition(con, f"clean.{source}", ds, clean.to_arrow(compat_level=ARROW_LEVEL))
            replace_partition(con, f"quarantine.{source}", ds, quarantine.to_arrow(compat_level=ARROW_LEVEL))
            rule_counts = dict(quarantine.group_by("rule").len().sort("rule").iter_rows())
            quarantined = quarantine.select("source_file", "source_line").unique().height
            summaries.append(SourceValidation(source, raw.height, clean.height, quarantined, rule_counts))
            if quarantined:
                log.warning("%s %s: %d of %d rows quarantined %s", source, ds, quarantined, raw.height, rule_counts)
        con.execute(sql_text("ops/reconcile_ingest_files"), {"ds": ds})
        mark_day(con, ds, "validated")
        failpoint("validate-before-commit")
    return summaries
