"""Validate: split each raw partition into ``clean.<source>`` (typed rows that keep every contract) and
``quarantine.<source>`` (one row per broken rule, with file, line, column, rule and the offending value).

Nothing is lost: for every file, rows read = rows loaded + rows quarantined, recorded in ``ops.ingest_files``.

Validation runs inside ingest's transaction (:class:`SourceCheck`): a file just read is checked from memory while
its rows are stored in ``raw``; rows an earlier run left in ``raw`` are read back from it. Either way rows are
checked in chunks of about :data:`CHUNK_ROWS` rows (a file just read, or runs of small files read back, or a line
range of a large one), each checked and written before the next is taken, so memory stays flat beyond the one file
being read. Every rule is a rule of one row, so the outcome does not depend on the chunking, nor on whether a row
came from memory or from ``raw``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import pandera.errors
import polars as pl
import pyarrow as pa

from gnnrec.tasks.data.contracts import (
    FUTURE_RULE, SOURCES, SourceContract, after_the_day, keeps_every_rule, stripped,
)  # fmt: skip
from gnnrec.tasks.ops.db import ARROW_LEVEL, partition_sql, query_arrow

log = logging.getLogger(__name__)

DEFAULT_FUTURE_TOLERANCE = timedelta(days=1)
# Rows per chunk checked: large enough that per-chunk overheads vanish, small enough that a chunk's copies
# (raw text, stripped text, typed columns) stay a fraction of what DuckDB itself holds.
ROW_GROUP_ROWS = 122_880  # DuckDB's row group
CHUNK_ROWS = 8 * ROW_GROUP_ROWS

# Rows carry their file as its 1-based position in the day's file list, and their line.
PROVENANCE = ("file_number", "source_line")
# Raw columns that describe a landed line no reader could split into fields: the rule it broke and its text.
MALFORMED_COLUMNS = ("malformed_rule", "malformed_text")

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


class SourceCheck:
    """Checks one source's rows of a day into ``clean.<source>`` and ``quarantine.<source>`` inside the caller's
    transaction, file by file in the day's file order, and tallies what it wrote.

    A file read in this pass is checked from memory as its rows are stored in ``raw`` (:meth:`landed`), so a day
    read once is never scanned back. A file whose rows an earlier run left in ``raw`` (unchanged since, so not read
    again) is read back from ``raw`` (:meth:`ingested`): that is how a day an older run ingested but never validated
    gets validated. The caller empties the day's ``clean`` and ``quarantine`` partitions first.
    """

    def __init__(
        self, con: duckdb.DuckDBPyConnection, ds: date, source: str, files: list[str], latest: datetime | None
    ) -> None:
        self._con, self._ds, self._source, self._contract, self._latest = con, ds, source, SOURCES[source], latest
        self._files = files  # every file of the source that may hold rows, in order: rows name theirs by position
        self._number = {path: n for n, path in enumerate(files, start=1)}
        self._missing: dict[int, list[str]] = {}
        self._to_read_back: list[str] = []
        self._read = self._loaded = self._quarantined = 0
        self._rules: Counter[str] = Counter()

    def landed(
        self, path: str, chunks: deque[pl.DataFrame], missing: tuple[str, ...], store_raw: Callable[[pl.DataFrame], None]
    ) -> None:
        """Check a file just read (its raw rows in :func:`landed_chunks`; ``missing`` its absent required columns),
        handing each chunk to ``store_raw`` while the chunk is checked. Chunks are taken off ``chunks`` as they go,
        so that when nothing else holds the file's rows, each chunk's memory is freed once it is written."""
        self._read_back()  # earlier files first, so clean and quarantine keep the day's file order
        number = self._number[path]
        self._missing.update({number: list(missing)} if missing else {})
        contract, missing_by_file, latest = self._contract, dict(self._missing), self._latest

        def check(chunk: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
            return split_rows(_as_scanned(chunk, contract, number), contract, missing_by_file, latest)

        self._write((chunks.popleft() for _ in range(len(chunks))), check, store_raw)

    def ingested(self, path: str, missing: tuple[str, ...]) -> None:
        """Check a file whose rows are already in ``raw``; consecutive such files are read back together."""
        self._missing.update({self._number[path]: list(missing)} if missing else {})
        self._to_read_back.append(path)

    def finish(self) -> SourceValidation:
        """Check what is left to read back and return the source's tally."""
        self._read_back()
        rules = dict(sorted(self._rules.items()))
        if self._quarantined:
            log.warning("%s %s: %d of %d rows quarantined %s", self._source, self._ds, self._quarantined, self._read, rules)
        return SourceValidation(self._source, self._read, self._loaded, self._quarantined, rules)

    def _read_back(self) -> None:
        if not self._to_read_back:
            return
        paths, self._to_read_back = set(self._to_read_back), []
        table = f"raw.{self._source}"
        spans = self._con.execute(partition_sql("partition/file_lines", table), {"ds": self._ds}).fetchall()
        chunks = _raw_chunks(self._con, table, self._ds, self._files, [span for span in spans if span[0] in paths])
        contract, missing_by_file, latest = self._contract, dict(self._missing), self._latest
        self._write(chunks, lambda raw: split_rows(raw, contract, missing_by_file, latest))

    def _write(
        self, chunks: Iterator[pl.DataFrame], check: Callable[[pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]],
        store_raw: Callable[[pl.DataFrame], None] | None = None,
    ) -> None:
        """Check each chunk in a worker thread while this one stores it in raw (``store_raw``) and writes the previous
        chunk's clean and quarantine rows.

        Writing is DuckDB's work and checking is polars', and each runs mostly on one core with the GIL released, so
        on a machine with two cores they overlap instead of taking turns. Results are written in chunk order; at
        most two chunks' results are in memory at a time.
        """
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gnnrec-check") as checker:
            previous = None
            for chunk in chunks:
                checking = checker.submit(lambda rows=chunk: (rows.height, *check(rows)))
                if store_raw is not None:
                    store_raw(chunk)
                if previous is not None:
                    self._insert(*previous.result())
                previous = checking
            if previous is not None:
                self._insert(*previous.result())

    def _insert(self, rows_read: int, clean: pl.DataFrame, quarantine: pl.DataFrame) -> None:
        _insert_checked(self._con, f"clean.{self._source}", self._ds, self._files, clean)
        _insert_checked(self._con, f"quarantine.{self._source}", self._ds, self._files, quarantine)
        self._read, self._loaded = self._read + rows_read, self._loaded + clean.height
        self._quarantined += quarantine.select(PROVENANCE).unique().height
        self._rules.update(dict(quarantine.group_by("rule").len().iter_rows()))


def landed_chunks(rows: pl.DataFrame) -> deque[pl.DataFrame]:
    """A file's rows in chunks for :meth:`SourceCheck.landed`: slices of whole row groups, so that raw fills row
    groups as it does from one insert. A slice holds only the reader's buffers it overlaps, so once the caller lets
    go of ``rows``, the file's memory goes back chunk by chunk while DuckDB's grows, rather than all at the end."""
    return deque(rows.slice(start, CHUNK_ROWS) for start in range(0, rows.height, CHUNK_ROWS))


def _as_scanned(rows: pl.DataFrame, contract: SourceContract, file_number: int) -> pl.DataFrame:
    """A just-read file's raw rows as a scan of ``raw`` returns them: a null column for each contract and malformed
    column the file lacks (the insert into raw adds the same nulls), and the file's number."""
    absent = [c for c in (*contract.columns, *MALFORMED_COLUMNS) if c not in rows.columns]
    return rows.with_columns(
        pl.lit(file_number, pl.Int32).alias("file_number"), *(pl.lit(None, pl.String).alias(c) for c in absent)
    )


def _raw_chunks(
    con: duckdb.DuckDBPyConnection, table: str, ds: date, files: list[str], spans: list[tuple[str, int, int, int]]
) -> Iterator[pl.DataFrame]:
    """The raw rows of the files in ``spans`` (``partition/file_lines``, consecutive in ``files``) in chunks
    (:func:`_chunk_plan`), each in file and line order (a raw row's key, so the order is total)."""
    # Whole row groups per chunk: a chunk's rows then fill row groups of their own, and DuckDB writes them as they
    # fill rather than leaving a part-filled one per chunk for the checkpoint to rewrite.
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
