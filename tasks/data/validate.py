"""Validate: split each raw partition into ``clean.<source>`` (typed rows that keep every contract) and
``quarantine.<source>`` (one row per broken rule, with file, line, column, rule and the offending value).

Nothing is lost: for every file, rows read = rows loaded + rows quarantined, recorded in ``ops.ingest_files``.

A day is read from ``raw`` in chunks of about :data:`CHUNK_ROWS` rows (whole small files, or a line range of a
large one) and each chunk is checked and written before the next is read, so memory stays flat however large the
day. Every rule is a rule of one row, so the outcome does not depend on the chunking.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import pandera.errors
import polars as pl
import pyarrow as pa

from gnnrec.tasks.data.contracts import (
    FUTURE_RULE, SOURCES, SourceContract, after_the_day, keeps_every_rule, latest_event_time, stripped,
)  # fmt: skip
from gnnrec.tasks.ops.db import ARROW_LEVEL, partition_sql, query_arrow, sql_text, transaction
from gnnrec.tasks.ops.failpoints import failpoint
from gnnrec.tasks.data.progress import mark_day

log = logging.getLogger(__name__)

DEFAULT_FUTURE_TOLERANCE = timedelta(days=1)
# Rows per chunk read from raw: large enough that per-chunk overheads vanish, small enough that a chunk's copies
# (raw text, stripped text, typed columns) stay a fraction of what DuckDB itself holds.
ROW_GROUP_ROWS = 122_880  # DuckDB's row group
CHUNK_ROWS = 8 * ROW_GROUP_ROWS

# Rows carry their file as its 1-based position in the day's file list, and their line.
PROVENANCE = ("file_number", "source_line")

QUARANTINE_SCHEMA = {
    "file_number": pl.Int32,
    "source_line": pl.Int64,
    "column_name": pl.String,
    "rule": pl.String,
    "value": pl.String,
    "record": pl.String,
}
_FAILURES_SCHEMA = {"index": pl.Int64, "column_name": pl.String, "rule": pl.String, "value": pl.String}
_PARSED = "__parsed_{}"  # the name of a typed timestamp column next to its text, for :func:`keeps_every_rule`


@dataclass(frozen=True)
class SourceValidation:
    source: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rule_counts: dict[str, int]


def _timestamp_columns(contract: SourceContract, typed: pl.DataFrame) -> list[str]:
    """The contract's columns whose clean type is a timestamp: they are parsed once, for the type and the rules."""
    return [c for c in contract.columns if c in typed.columns and typed.schema[c] == pl.Datetime("us")]


def _rule_failures(rows: pl.DataFrame, text: pl.DataFrame, typed: pl.DataFrame, contract: SourceContract) -> pl.DataFrame:
    """One row per (row, broken rule) of ``rows``: its position ``index``, the column, the rule and the value.

    pandera names the broken rules, but only for the rows that fail the same rules evaluated in one pass over
    ``text`` (the rows' stripped text, with ``typed``'s parsed timestamps): on a clean day that is none of them,
    and pandera's per-check passes and failure bookkeeping are skipped.
    """
    stamps = _timestamp_columns(contract, typed)
    keeps = keeps_every_rule(contract.row_model, {c: pl.col(_PARSED.format(c)) for c in stamps})
    if keeps is None:
        suspects = None
    else:
        with_parsed = text.with_columns(typed.get_column(c).alias(_PARSED.format(c)) for c in stamps)
        suspects = with_parsed.select(keeps.not_()).to_series().arg_true()
        if suspects.is_empty():
            return pl.DataFrame(schema=_FAILURES_SCHEMA)
    try:
        contract.row_model.validate(rows if suspects is None else rows.select(pl.all().gather(suspects)), lazy=True)
        return pl.DataFrame(schema=_FAILURES_SCHEMA)
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


def _future_failures(checked: pl.DataFrame, typed: pl.DataFrame, contract: SourceContract, latest: datetime | None) -> pl.DataFrame:
    """One row per row of ``checked`` whose event time breaks :data:`FUTURE_RULE`, shaped as :func:`_rule_failures`'s,
    with the landed (unstripped) text as the value. ``typed`` holds the rows' parsed times."""
    column = contract.event_time
    if column is None or latest is None:
        return pl.DataFrame(schema=_FAILURES_SCHEMA)
    future = typed.select(after_the_day(pl.col(column), latest)).to_series().arg_true().cast(pl.Int64)
    return pl.DataFrame({
        "index": future, "column_name": pl.repeat(column, len(future), eager=True, dtype=pl.String),
        "rule": pl.repeat(FUTURE_RULE, len(future), eager=True, dtype=pl.String), "value": checked[column].gather(future),
    })  # fmt: skip


def split_rows(
    raw: pl.DataFrame, contract: SourceContract, missing_by_file: dict[int, list[str]], latest: datetime | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return ``(clean, quarantine)`` for raw rows of one source and day (a pure function of its inputs).

    ``raw`` holds :data:`PROVENANCE`, the contract's columns as text and the ``malformed_*`` columns;
    ``missing_by_file`` names the required columns each file (by number) lacks; ``latest`` is the latest event time
    the day's rows may carry (:func:`latest_event_time`; None checks none). Both outputs keep :data:`PROVENANCE`.
    """
    record = pl.struct(contract.columns).struct.json_encode().alias("record")
    provenance = [pl.col(c) for c in PROVENANCE]

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
        schema={"file_number": raw.schema["file_number"], "column_name": pl.String},
        orient="row",
    )
    if broken_files.height:
        in_broken_file = pl.col("file_number").is_in(broken_files["file_number"].unique().to_list())
        of_broken_files, checked = parsed.filter(in_broken_file), parsed.filter(in_broken_file.not_())
    else:
        of_broken_files, checked = parsed.clear(), parsed
    whole_file = of_broken_files.join(broken_files, on="file_number").select(
        *provenance, "column_name", pl.lit("missing_required_column").alias("rule"), pl.lit(None, pl.String).alias("value"), record
    )

    # Every rule and type reads the stripped text, so each column is stripped once for all of them, and each value
    # is parsed once: the typed columns are what clean keeps and what the rules on times read.
    text = checked.select(*provenance, *(stripped(c).alias(c) for c in contract.columns))
    typed = text.select(*provenance, *contract.typed_columns)
    failures = _rule_failures(checked.select(contract.columns), text, typed, contract)
    if (future := _future_failures(checked, typed, contract, latest)).height:
        failures = pl.concat([failures, future])
    # ``index`` is a row's position in ``checked``; only the failing rows are looked up and JSON-encoded.
    failing = checked.select(pl.all().gather(failures["index"])).select(*provenance, record)
    row_failures = pl.concat([failing, failures.drop("index")], how="horizontal").select(
        *provenance, "column_name", "rule", "value", "record"
    )
    quarantine = pl.concat([whole_file, malformed, row_failures]).sort(*PROVENANCE, "column_name", "rule")
    if failures.height:
        failed = pl.repeat(False, typed.height, eager=True).scatter(failures["index"], True)
        typed = typed.filter(failed.not_())
    return typed, quarantine.cast(QUARANTINE_SCHEMA)


def _chunk_plan(spans: list[tuple[str, int, int, int]], limit: int, align: int = 1) -> list[tuple[str, str, int, int]]:
    """Chunks of about ``limit`` rows over ``(file, rows, first line, last line)`` in file order, as
    ``(first file, last file, first line, last line)``: runs of whole small files, or line ranges of a file larger
    than ``limit``, each a multiple of ``align`` lines but the last. Together they cover every row once."""
    plan: list[tuple[str, str, int, int]] = []
    batch: list = []  # [first file, last file, first line, last line, rows]
    for file, rows, first, last in spans:
        if rows > limit:
            if batch:
                plan.append(tuple(batch[:4]))
                batch = []
            step = math.ceil(math.ceil((last - first + 1) / math.ceil(rows / limit)) / align) * align
            plan.extend((file, file, start, min(start + step - 1, last)) for start in range(first, last + 1, step))
        elif batch and batch[4] + rows <= limit:
            batch = [batch[0], file, min(batch[2], first), max(batch[3], last), batch[4] + rows]
        else:
            if batch:
                plan.append(tuple(batch[:4]))
            batch = [file, file, first, last, rows]
    if batch:
        plan.append(tuple(batch[:4]))
    return plan


def _raw_chunks(con: duckdb.DuckDBPyConnection, source: str, ds: date) -> tuple[list[str], Iterator[pl.DataFrame]]:
    """The day's files of one source, in order, and its raw rows in chunks (:func:`_chunk_plan`), each in file
    and line order (a raw row's key, so the order is total)."""
    table = f"raw.{source}"
    spans = con.execute(partition_sql("partition/file_lines", table), {"ds": ds}).fetchall()
    files = [file for file, *_ in spans]

    def chunks() -> Iterator[pl.DataFrame]:
        # Whole row groups per chunk: a chunk's rows then fill row groups of their own, and DuckDB writes them
        # as they fill rather than leaving a part-filled one per chunk for the checkpoint to rewrite.
        for first_file, last_file, first_line, last_line in _chunk_plan(spans, CHUNK_ROWS, ROW_GROUP_ROWS):
            params = {"ds": ds, "files": files, "first_file": first_file, "last_file": last_file,
                      "first_line": first_line, "last_line": last_line}  # fmt: skip
            # Left in DuckDB's record batches: gathering them into one buffer would copy every string.
            rows = pl.from_arrow(query_arrow(con, partition_sql("partition/scan", table), params), rechunk=False)
            # Ingest inserts rows in this order and a scan keeps it, so checking is cheaper than sorting. Each key
            # sorted on its own settles a chunk of one file; a chunk of several files needs the pair compared.
            each_sorted = rows.select(pl.col("file_number").is_sorted() & pl.col("source_line").is_sorted()).item()
            if not (each_sorted or rows.select(pl.struct(*PROVENANCE).is_sorted()).item()):
                rows = rows.sort(*PROVENANCE)
            yield rows

    return files, chunks()


def _checked_ahead(
    chunks: Iterator[pl.DataFrame], check: Callable[[pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]
) -> Iterator[tuple[int, pl.DataFrame, pl.DataFrame]]:
    """``(rows read, clean, quarantine)`` of each chunk in order, checking the next chunk while the caller writes
    this one.

    Writing a chunk is DuckDB's work and checking one is polars', and each runs mostly on one core with the GIL
    released, so on a machine with two cores they overlap instead of taking turns. Chunks are still read, and
    their results written, in order by the caller's thread; at most two chunks are in memory at a time.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gnnrec-check") as checker:
        ahead = None
        for raw in chunks:
            checking = checker.submit(lambda rows=raw: (rows.height, *check(rows)))
            if ahead is not None:
                yield ahead.result()
            ahead = checking
        if ahead is not None:
            yield ahead.result()


def _insert_checked(con: duckdb.DuckDBPyConnection, table: str, ds: date, files: list[str], rows: pl.DataFrame) -> None:
    """Append checked rows (keyed by :data:`PROVENANCE`) to ``table``; the day and the file's path are added in SQL.

    The rows go in as record batches of one DuckDB row group each, which DuckDB's threads scan and compress side by
    side (one large batch is read by one thread)."""
    if rows.height:
        batches = rows.to_arrow(compat_level=ARROW_LEVEL).to_batches(max_chunksize=ROW_GROUP_ROWS)
        con.register("staged", pa.Table.from_batches(batches))
        try:
            con.execute(partition_sql("partition/insert_checked", table), {"ds": ds, "files": files})
        finally:
            con.unregister("staged")


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
            for layer in ("clean", "quarantine"):
                con.execute(partition_sql("partition/delete", f"{layer}.{source}"), {"ds": ds})
            files, chunks = _raw_chunks(con, source, ds)
            number = {path: n for n, path in enumerate(files, start=1)}
            missing = {number[path]: list(cols) for src, path, cols in missing_rows if src == source and path in number}
            read = loaded = quarantined = 0
            rule_counts: Counter[str] = Counter()
            checked = _checked_ahead(chunks, lambda raw: split_rows(raw, contract, missing, latest))
            for rows_read, clean, quarantine in checked:
                _insert_checked(con, f"clean.{source}", ds, files, clean)
                _insert_checked(con, f"quarantine.{source}", ds, files, quarantine)
                read, loaded = read + rows_read, loaded + clean.height
                quarantined += quarantine.select(PROVENANCE).unique().height
                rule_counts.update(dict(quarantine.group_by("rule").len().iter_rows()))
            summaries.append(SourceValidation(source, read, loaded, quarantined, dict(sorted(rule_counts.items()))))
            if quarantined:
                log.warning("%s %s: %d of %d rows quarantined %s", source, ds, quarantined, read, dict(sorted(rule_counts.items())))
        con.execute(sql_text("ops/reconcile_ingest_files"), {"ds": ds})
        mark_day(con, ds, "validated")
        failpoint("validate-before-commit")
    return summaries
