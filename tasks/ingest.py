"""Ingest: copy one day's landed files into ``raw.<source>``, exactly as landed, and record every file.

Landing contract: ``<landing>/<source>/ds=YYYY-MM-DD/*.csv|*.parquet|*.jsonl``. Every value is kept as text so
that nothing can fail to load for being of the wrong type; meaning is checked by the row contracts afterwards.
Re-ingesting a day replaces that day's rows in one transaction, so a re-run leaves identical tables.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from tasks.contracts import SOURCES, SourceContract
from tasks.db import replace_partition, sql_text, transaction

log = logging.getLogger(__name__)

READERS = {".csv", ".parquet", ".jsonl"}
# Polars' newest Arrow layout (string views) reaches DuckDB without re-encoding every string on the way.
ARROW_LEVEL = pl.CompatLevel.newest()


class LandingError(ValueError):
    """The landing folder itself is unusable (as opposed to one bad file, which is recorded and skipped)."""


@dataclass(frozen=True)
class FileRecord:
    """One landed file as recorded in ``ops.ingest_files``."""

    ds: date
    source: str
    path: str
    sha256: str | None
    size_bytes: int | None
    rows_read: int | None
    missing_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    status: str = "loaded"
    error: str | None = None


@dataclass(frozen=True)
class IngestReport:
    ds: date
    files: list[FileRecord] = field(default_factory=list)

    def rows_read(self, source: str) -> int:
        return sum(f.rows_read or 0 for f in self.files if f.source == source)


def partition_dir(landing: Path, source: str, ds: date) -> Path:
    return landing / source / f"ds={ds.isoformat()}"


def discover_files(landing: Path, source: str, ds: date) -> list[Path]:
    """The day's files of one source, in name order; hidden and ``_``-prefixed markers (``_SUCCESS``) are ignored."""
    folder = partition_dir(landing, source, ds)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_")))


def landed_days(landing: Path, until: date) -> list[date]:
    """Every day up to ``until`` with a partition folder in any source, oldest first."""
    days = set()
    for source in SOURCES:
        for folder in (landing / source).glob("ds=*"):
            try:
                day = date.fromisoformat(folder.name.removeprefix("ds="))
            except ValueError:
                continue
            if folder.is_dir() and day <= until:
                days.add(day)
    return sorted(days)


def landed_fingerprint(landing: Path, ds: date) -> set[tuple[str, str, str]]:
    """``(source, path, sha256)`` of every file landed for ``ds``: equal fingerprints mean nothing to re-ingest."""
    return {
        (source, path.relative_to(landing).as_posix(), sha256_of(path))
        for source in SOURCES
        for path in discover_files(landing, source, ds)
    }


def days_to_ingest(con: duckdb.DuckDBPyConnection, landing: Path, ds: date) -> list[date]:
    """``ds`` itself plus every earlier landed day whose files differ from what was last ingested for it.

    This is how a daily run catches up on a fresh warehouse, a missed day or a late-arriving file.
    """
    recorded: dict[date, set[tuple[str, str, str]]] = {}
    for day, source, path, digest in con.execute(sql_text("ops/ingested_fingerprints"), {"ds": ds}).fetchall():
        recorded.setdefault(day, set()).add((source, path, digest))
    stale = [day for day in landed_days(landing, ds) if day < ds and landed_fingerprint(landing, day) != recorded.get(day, set())]
    return [*stale, ds]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _has_byte(path: Path, byte: bytes) -> bool:
    with path.open("rb") as handle:
        return any(byte in block for block in iter(lambda: handle.read(1 << 20), b""))


def read_landed_file(path: Path) -> tuple[pl.DataFrame, pl.Series]:
    """Read a landed file with every column as text; return it with each row's line (CSV, JSONL) or row number
    (Parquet), 1-based, as an operator would find it in the file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = pl.read_csv(path, infer_schema=False)
        # Line 1 is the header; a quoted value spanning lines pushes every later row down by its line breaks.
        lines = pl.int_range(pl.len(), dtype=pl.Int64) + 2
        if _has_byte(path, b'"'):  # only a quoted value can hold a line break
            breaks = pl.sum_horizontal(
                pl.col(c).str.count_matches("\n", literal=True).fill_null(0) for c in frame.columns
            )
            lines = lines + breaks.cum_sum().shift(1, fill_value=0)
        return frame, frame.select(lines).to_series()
    if suffix == ".parquet":
        frame = pl.read_parquet(path).with_columns(pl.all().cast(pl.String))
    elif suffix == ".jsonl":
        frame = pl.read_ndjson(path, infer_schema_length=None).with_columns(pl.all().cast(pl.String))
    else:
        raise ValueError(f"unsupported file type {suffix!r}; expected one of {', '.join(sorted(READERS))}")
    return frame, pl.int_range(1, frame.height + 1, dtype=pl.Int64, eager=True)


def to_raw_rows(
    frame: pl.DataFrame, contract: SourceContract, ds: date, source_file: str, lines: pl.Series
) -> tuple[pl.DataFrame, tuple[str, ...], tuple[str, ...]]:
    """Shape a landed frame into the raw table's columns; return it with the missing and extra column names.

    Missing columns become nulls here; the rows of a file without a *required* column are quarantined whole by
    validation. Extra columns are recorded and left out (the contract names every column gnnrec uses).
    """
    names = [c.strip() for c in frame.columns]
    frame = frame.rename(dict(zip(frame.columns, names)))
    missing = tuple(c for c in contract.columns if c not in names)
    extra = tuple(c for c in names if c not in contract.columns)
    rows = frame.with_columns(pl.lit(None, pl.String).alias(c) for c in missing).select(
        pl.lit(ds, pl.Date).alias("ds"),
        pl.lit(source_file).alias("source_file"),
        pl.lit(lines.cast(pl.Int64)).alias("source_line"),
        *contract.columns,
    )
    return rows, tuple(c for c in missing if c in contract.required), extra


def ingest_partition(con: duckdb.DuckDBPyConnection, landing: Path, ds: date) -> IngestReport:
    """Replace ``raw.<source>`` and ``ops.ingest_files`` for ``ds`` with what is landed now, atomically."""
    if not landing.is_dir():
        raise LandingError(f"landing folder {landing} does not exist")
    records: list[FileRecord] = []
    raw_by_source: dict[str, list[pl.DataFrame]] = {source: [] for source in SOURCES}
    for source, contract in SOURCES.items():
        for path in discover_files(landing, source, ds):
            relative = path.relative_to(landing).as_posix()
            size, digest = path.stat().st_size, sha256_of(path)
            try:
                frame, lines = read_landed_file(path)
                rows, missing, extra = to_raw_rows(frame, contract, ds, relative, lines)
            except Exception as error:  # noqa: BLE001 - any unreadable file is recorded with its reason, not raised
                reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                log.warning("cannot read %s: %s", relative, reason)
                records.append(FileRecord(ds, source, relative, digest, size, None, status="failed", error=reason))
                continue
            raw_by_source[source].append(rows)
            records.append(FileRecord(ds, source, relative, digest, size, rows.height, missing, extra))
            log.info("read %s: %d rows", relative, rows.height)

    files = pl.DataFrame(
        [vars(r) | {"missing_columns": list(r.missing_columns), "extra_columns": list(r.extra_columns)} for r in records],
        schema={
            "ds": pl.Date, "source": pl.String, "path": pl.String, "sha256": pl.String, "size_bytes": pl.Int64,
            "rows_read": pl.Int64, "missing_columns": pl.List(pl.String), "extra_columns": pl.List(pl.String),
            "status": pl.String, "error": pl.String,
        },
    )
    with transaction(con):
        for source, frames in raw_by_source.items():
            rows = pl.concat(frames) if frames else pl.DataFrame()
            replace_partition(con, f"raw.{source}", ds, rows.to_arrow(compat_level=ARROW_LEVEL))
        replace_partition(con, "ops.ingest_files", ds, files.to_arrow(compat_level=ARROW_LEVEL))
    return IngestReport(ds, records)
