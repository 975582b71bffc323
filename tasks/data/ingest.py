"""Ingest: copy one day's landed files into ``raw.<source>``, exactly as landed, record every file, and validate
the rows on the way into ``clean`` and ``quarantine`` (:mod:`tasks.data.validate`).

Landing contract: ``<landing>/<source>/ds=YYYY-MM-DD/*.csv|*.parquet|*.jsonl`` (CSV and JSONL also gzipped,
``*.csv.gz``, ``*.jsonl.gz``). Every value is kept as text so that nothing can fail to load for being of the wrong
type; meaning is checked by the row contracts, in the same pass and the same transaction, so a file is read once
and a day is never left ingested but not validated. A line that cannot be parsed at all (too many fields, an
unclosed quote, bytes that are not UTF-8, broken JSON) is kept too, as its text and the rule it broke, and goes to
quarantine. Re-ingesting a day replaces that day's rows in one transaction, so a re-run leaves identical tables;
a file whose path and sha256 were already ingested for the day is not read again (its raw rows are checked again).
"""

from __future__ import annotations

import csv
import errno
import gzip
import hashlib
import io
import json
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from gnnrec.tasks.data.contracts import SOURCES, SourceContract, latest_event_time
from gnnrec.tasks.ops.db import ARROW_LEVEL, partition_sql, replace_partition, sql_text, transaction
from gnnrec.tasks.ops.failpoints import failpoint
from gnnrec.tasks.data.progress import day_states, mark_day
from gnnrec.tasks.data.validate import (
    DEFAULT_FUTURE_TOLERANCE, MALFORMED_COLUMNS, SourceCheck, SourceValidation, landed_chunks,
)  # fmt: skip

log = logging.getLogger(__name__)

READERS = (".csv", ".parquet", ".jsonl", ".csv.gz", ".jsonl.gz")


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

    skipped: list[str] = field(default_factory=list)  # paths already ingested with the same sha256, not re-read
    validation: list[SourceValidation] = field(default_factory=list)  # each source's rows checked, in SOURCES order

    def rows_read(self, source: str) -> int:
        return sum(f.rows_read or 0 for f in self.files if f.source == source)


def partition_dir(landing: Path, source: str, ds: date) -> Path:
    return landing / source / f"ds={ds.isoformat()}"


def _inside_landing(landing: Path, path: Path) -> Path:
    """``path`` itself, refused with a :class:`LandingError` when it resolves outside the landing root (a ``..`` in
    a symlink, or a symlink to another folder): gnnrec reads only what was landed under the root.

    A link whose target is missing is judged by where it points; a link loop cannot be resolved and is let through
    (it is recorded as unreadable, never read)."""
    try:
        resolved = path.resolve()
    except (RuntimeError, OSError):  # a symlink loop: it leads nowhere, so not outside either
        return path
    root = landing.resolve()
    if not resolved.is_relative_to(root):
        raise LandingError(
            f"{path} resolves to {resolved}, outside the landing root {root}; refusing to read it "
            "(remove the link or land the file itself)"
        )
    return path


# ``ops.ingest_files.status`` of a landed entry: read (``loaded``), not readable or not a file (``failed``), or a
# marker that the landing contract says is not read (``ignored``).
LOADED, FAILED, IGNORED = "loaded", "failed", "ignored"
MARKER_PREFIXES = (".", "_")
MARKER_REASON = "marker file: names starting with '.' or '_' are not read"
NO_DIGEST = ""  # ``sha256`` of an entry that is not read; empty rather than null so fingerprints compare as text


@dataclass(frozen=True)
class LandedEntry:
    """One entry landed for a day: a file to read (``reason`` None) or something recorded as not read, and why."""

    source: str
    path: Path
    relative: str  # as recorded in ``ops.ingest_files.path``: relative to the landing root, POSIX separators
    status: str = LOADED
    reason: str | None = None


def _not_a_file(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file or a link to one (``a folder``, ``a symbolic link loop``,
    ``a named pipe (fifo)``...), else None. Never opens the entry, so a named pipe cannot block the run."""
    try:
        mode = path.stat().st_mode  # follows links
    except OSError as error:
        if path.is_symlink() and error.errno == errno.ELOOP:
            return "a symbolic link loop"
        if path.is_symlink() and error.errno == errno.ENOENT:
            return f"a symbolic link to a missing target {os.readlink(path)!r}"
        return f"an entry that cannot be opened ({error.strerror or error})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (fifo)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


_EXACT_DAY = re.compile(r"ds=(\d{4}-\d{2}-\d{2})")
# A day folder spelled another way: any case, padding, a prefix other than ``ds``, other separators or none
# (``DS=2026-01-03``, ``ds=2026-1-3``, ``ds=20260103``, ``date=2026_01_03``, ``2026-01-03 ``).
_SPELLED_DAY = re.compile(r"(?i)\s*(?:[a-z_]+\s*[=:_-]?\s*)?(\d{4})[-_./ ]?(\d{1,2})[-_./ ]?(\d{1,2})\s*")
# The year part of a day written as nested folders, ``ds=2026/01/03``.
_SPELLED_YEAR = re.compile(r"(?i)\s*(?:[a-z_]+\s*[=:_-]?\s*)?(\d{4})\s*")
_NUMBER_FOLDER = re.compile(r"\s*(\d{1,2})\s*")


def _parsed_date(*parts: str) -> date | None:
    try:
        return date(*(int(part) for part in parts))
    except ValueError:
        return None


def _day_folders(landing: Path, source: str) -> list[tuple[date, Path, bool]]:
    """Every folder under ``<landing>/<source>`` whose name is a day: ``(day, folder, spelled exactly)``.

    ``ds=YYYY-MM-DD`` is a day folder (whatever it turns out to be: a file or a broken link there is recorded as
    such). A folder whose name parses to a date in another spelling is returned as not exact, to be reported; a
    name with no date in it (``tmp``) is not a day.
    """
    root = landing / source
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir()):
        name = entry.name
        if (exact := _EXACT_DAY.fullmatch(name)) is not None and (day := _parsed_date(*name[3:].split("-"))):
            found.append((day, entry, True))
        elif (spelled := _SPELLED_DAY.fullmatch(name)) is not None:
            if (day := _parsed_date(*spelled.groups())) is not None:
                found.append((day, entry, False))
        elif _SPELLED_YEAR.fullmatch(name) is not None and entry.is_dir():  # ``ds=2026/01/03``: nested folders
            year = _SPELLED_YEAR.fullmatch(name).group(1)
            for month in sorted(p for p in entry.iterdir() if _NUMBER_FOLDER.fullmatch(p.name) and p.is_dir()):
                for dom in sorted(p for p in month.iterdir() if _NUMBER_FOLDER.fullmatch(p.name)):
                    if (day := _parsed_date(year, month.name.strip(), dom.name.strip())) is not None:
                        found.append((day, dom, False))
    return found


def landed_entries(landing: Path, ds: date) -> list[LandedEntry]:
    """Everything landed for ``ds``, by source then name: each entry of each source's ``ds=YYYY-MM-DD`` folder,
    plus each folder whose name spells that day another way. Only entries without a ``reason`` are read; the
    others are recorded with it, so nothing under a day folder goes unnoticed.

    A partition folder or entry that resolves outside the landing root stops the run with a :class:`LandingError`;
    markers (names starting with ``.`` or ``_``) are not looked into, wherever they point.
    """
    entries: list[LandedEntry] = []
    for source in SOURCES:
        for day, folder, exact in _day_folders(landing, source):
            if day != ds:
                continue
            relative = folder.relative_to(landing).as_posix()
            if not exact:
                spelled = folder.relative_to(landing / source).as_posix()
                reason = f"day folder {spelled!r} is not spelled ds={ds.isoformat()} exactly; not read"
                entries.append(LandedEntry(source, folder, relative, FAILED, reason))
                continue
            _inside_landing(landing, folder)
            if not folder.is_dir():
                reason = f"day folder is {_not_a_file(folder) or 'a file'}, not a folder; not read"
                entries.append(LandedEntry(source, folder, relative, FAILED, reason))
                continue
            for path in sorted(folder.iterdir()):
                relative = path.relative_to(landing).as_posix()
                if path.name.startswith(MARKER_PREFIXES):
                    entries.append(LandedEntry(source, path, relative, IGNORED, MARKER_REASON))
                    continue
                if path.is_symlink():
                    _inside_landing(landing, path)
                if (what := _not_a_file(path)) is None:
                    entries.append(LandedEntry(source, path, relative))
                elif what == "a folder":
                    reason = "a folder inside a day folder; files in sub-folders are not read"
                    entries.append(LandedEntry(source, path, relative, FAILED, reason))
                else:
                    kind = what if what.startswith(("a symbolic link", "an entry")) else f"{what}, not a regular file"
                    entries.append(LandedEntry(source, path, relative, FAILED, f"{kind}; not read"))
    return entries


def discover_files(landing: Path, source: str, ds: date) -> list[Path]:
    """The day's files of one source that are read, in name order (see :func:`landed_entries`)."""
    return [e.path for e in landed_entries(landing, ds) if e.source == source and e.reason is None]


def landed_days(landing: Path, until: date) -> list[date]:
    """Every day up to ``until`` with a day folder in any source, oldest first, including a day whose folder is
    spelled another way (``ds=2026-1-3``), so that ingesting it reports the folder."""
    return sorted({day for source in SOURCES for day, _, _ in _day_folders(landing, source) if day <= until})


def landed_fingerprint(landing: Path, ds: date) -> set[tuple[str, str, str]]:
    """``(source, path, sha256)`` of every entry landed for ``ds``, as :func:`ingest_partition` records them (an
    entry that is not read has an empty digest): equal fingerprints mean nothing to re-ingest."""
    return {
        (e.source, e.relative, sha256_of(e.path) if e.reason is None else NO_DIGEST)
        for e in landed_entries(landing, ds)
    }


def days_to_ingest(con: duckdb.DuckDBPyConnection, landing: Path, ds: date) -> list[date]:
    """``ds`` itself plus every earlier landed day that is not finished: its files differ from what was last
    ingested for it, or its recorded progress (:mod:`tasks.data.progress`) stops short of ``accepted`` — never
    validated, never decided (a run died in between), or refused (so a later run checks it again).

    This is how a daily run catches up on a fresh warehouse, a missed day, a late-arriving file or a crash.
    """
    recorded: dict[date, set[tuple[str, str, str]]] = {}
    for day, source, path, digest in con.execute(sql_text("ops/ingested_fingerprints"), {"ds": ds}).fetchall():
        recorded.setdefault(day, set()).add((source, path, digest))
    states = day_states(con, ds)
    stale = [
        day for day in landed_days(landing, ds)
        if day < ds and (states.get(day) != "accepted" or landed_fingerprint(landing, day) != recorded.get(day, set()))
    ]  # fmt: skip
    return [*stale, ds]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _landed_format(path: Path) -> tuple[str, bool]:
    """The file's format (``.csv``, ``.parquet``, ``.jsonl``) and whether it is gzipped, from its name."""
    name = path.name.lower()
    for suffix in READERS:
        if name.endswith(suffix):
            return suffix.removesuffix(".gz"), suffix.endswith(".gz")
    raise ValueError(f"unsupported file name {path.name!r}; expected one of *{', *'.join(READERS)}")


def _digest_and_quote(path: Path) -> tuple[str, bool]:
    """The file's sha256 and whether it holds a ``"`` (:func:`_csv_lines` needs to know), in one pass over it."""
    digest, quoted = hashlib.sha256(), False
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            quoted = quoted or b'"' in block
    return digest.hexdigest(), quoted


def _csv_lines(frame: pl.DataFrame, has_quote: bool) -> pl.Series:
    # Line 1 is the header; a quoted value spanning lines pushes every later row down by its line breaks.
    lines = pl.int_range(pl.len(), dtype=pl.Int64) + 2
    if has_quote:  # only a quoted value can hold a line break
        breaks = pl.sum_horizontal(pl.col(c).str.count_matches("\n", literal=True).fill_null(0) for c in frame.columns)
        lines = lines + breaks.cum_sum().shift(1, fill_value=0)
    return frame.select(lines).to_series()


def _jsonl_lines(data: bytes, rows: int) -> pl.Series:
    """The 1-based line of each of the ``rows`` records the JSONL reader found in ``data``: it skips blank lines
    (empty or only whitespace), so after one, a record's line is not its position."""
    physical = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    if physical == rows:
        return pl.int_range(1, rows + 1, dtype=pl.Int64, eager=True)
    return pl.Series([n for n, line in enumerate(data.splitlines(), start=1) if line.strip()], dtype=pl.Int64)


def _decoded_lines(data: bytes) -> tuple[list[str], set[int]]:
    """The text's physical lines (line ends kept) and the 1-based numbers of those that are not valid UTF-8.

    A line that is not UTF-8 is decoded with U+FFFD for its bad bytes, so its other fields still read.
    """
    lines, invalid = [], set()
    for number, raw in enumerate(data.splitlines(keepends=True), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(raw.decode("utf-8", errors="replace"))
            invalid.add(number)
    if lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    return lines, invalid


def _read_csv_line_by_line(data: bytes) -> tuple[pl.DataFrame, pl.Series, pl.DataFrame]:
    """The slow, lenient CSV reader, for a file the fast one refuses: every record becomes a row; one that is not
    valid UTF-8, has more fields than the header, or opens a quote that never closes keeps its text and that rule.

    Unlike the fast reader it cannot tell an empty quoted value from a missing one: both read as null.
    """
    text_lines, invalid = _decoded_lines(data)
    reader = csv.reader(text_lines, strict=True)
    header = [name.strip() for name in next(reader)]
    records, lines, rules, texts = [], [], [], []
    first_line = reader.line_num + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            if "end of data" in str(error):  # a quote opened and never closed: the rest of the file is its field
                records.append([None] * len(header))
                lines.append(first_line)
                rules.append("unclosed_quote")
                texts.append("".join(text_lines[first_line - 1 :]))
                break
            fields, rule = [], "well_formed_csv"  # e.g. text after a closing quote; the reader resumes on the next line
        else:
            rule = None
        if any(number in invalid for number in range(first_line, reader.line_num + 1)):
            rule = "valid_utf8"
        elif rule is None and len(fields) > len(header):
            rule = "field_count_matches_header"
        if fields or rule:  # a blank line is no record, as for the fast reader
            records.append([value if value != "" else None for value in fields[: len(header)]] + [None] * (len(header) - len(fields)))
            lines.append(first_line)
            rules.append(rule)
            texts.append("".join(text_lines[first_line - 1 : reader.line_num]).rstrip("\r\n") if rule else None)
        first_line = reader.line_num + 1
    frame = pl.DataFrame(records, schema={name: pl.String for name in header}, orient="row")
    malformed = pl.DataFrame({MALFORMED_COLUMNS[0]: rules, MALFORMED_COLUMNS[1]: texts}, schema={c: pl.String for c in MALFORMED_COLUMNS})
    return frame, pl.Series(lines, dtype=pl.Int64), malformed


def _read_jsonl_line_by_line(data: bytes) -> tuple[pl.DataFrame, pl.Series, pl.DataFrame]:
    """The lenient JSONL reader: a line that is not one JSON object (or not UTF-8) keeps its text and that rule."""
    text_lines, invalid = _decoded_lines(data)
    records, lines, rules, texts = [], [], [], []
    for number, line in enumerate(text_lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line) if number not in invalid else None
        except json.JSONDecodeError:
            record = None
        rule = "valid_utf8" if number in invalid else None if isinstance(record, dict) else "valid_json_object"
        values = {} if rule else {k: v if v is None or isinstance(v, str) else json.dumps(v) for k, v in record.items()}
        records.append(values)
        lines.append(number)
        rules.append(rule)
        texts.append(line.rstrip("\r\n") if rule else None)
    names = list(dict.fromkeys(name for record in records for name in record))
    frame = pl.DataFrame([[r.get(n) for n in names] for r in records], schema={n: pl.String for n in names}, orient="row")
    malformed = pl.DataFrame({MALFORMED_COLUMNS[0]: rules, MALFORMED_COLUMNS[1]: texts}, schema={c: pl.String for c in MALFORMED_COLUMNS})
    return frame, pl.Series(lines, dtype=pl.Int64), malformed


def read_landed_file(path: Path, has_quote: bool | None = None) -> tuple[pl.DataFrame, pl.Series, pl.DataFrame | None]:
    """Read a landed file with every column as text; return it with each row's line (CSV, JSONL) or row number
    (Parquet), 1-based, as an operator would find it in the file, and for a file that needed the lenient reader,
    each row's :data:`MALFORMED_COLUMNS` (None when every line parsed).

    ``has_quote`` says whether a plain (not gzipped) file holds a ``"``, when the caller already knows
    (:func:`_digest_and_quote`); otherwise the file is scanned for one. An empty file is a file of no rows. A
    truncated gzip or Parquet file raises, and is recorded as failed.
    """
    fmt, gzipped = _landed_format(path)
    if fmt == ".parquet":
        frame = pl.read_parquet(path).with_columns(pl.all().cast(pl.String))
        return frame, pl.int_range(1, frame.height + 1, dtype=pl.Int64, eager=True), None
    # gzip is opened here rather than by polars, which reads a truncated stream as far as it goes without a word.
    # A plain file is handed to polars by path, so a large one is mapped rather than copied.
    data = gzip.decompress(path.read_bytes()) if gzipped else None
    source = io.BytesIO(data) if data is not None else path
    try:
        if fmt == ".csv":
            frame = pl.read_csv(source, infer_schema=False)
            if data is not None:
                has_quote = b'"' in data
            elif has_quote is None:
                has_quote = _digest_and_quote(path)[1]
            return frame, _csv_lines(frame, has_quote), None
        frame = pl.read_ndjson(source, infer_schema_length=None).with_columns(pl.all().cast(pl.String))
        return frame, _jsonl_lines(data if data is not None else path.read_bytes(), frame.height), None
    except pl.exceptions.NoDataError:  # an empty file is a file of no rows
        return pl.DataFrame(), pl.Series([], dtype=pl.Int64), None
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
        # A line the fast reader cannot split, or (JSONL) a line that is JSON but not an object, which polars reports
        # as a ComputeError or a SchemaError depending on the value: read line by line, keeping every such line.
        data = data if data is not None else path.read_bytes()
        if not data.strip():
            return pl.DataFrame(), pl.Series([], dtype=pl.Int64), None
        return _read_csv_line_by_line(data) if fmt == ".csv" else _read_jsonl_line_by_line(data)


def to_raw_rows(
    frame: pl.DataFrame, contract: SourceContract, lines: pl.Series, malformed: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, tuple[str, ...], tuple[str, ...]]:
    """Shape a landed frame into the raw table's columns; return it with the missing and extra column names.

    The frame holds ``source_line``, the contract's columns the file has, and :data:`MALFORMED_COLUMNS` when a line
    needed the lenient reader: the day and the file are added when it is inserted (``partition/insert_landed``), and
    so are nulls for the columns it lacks. Nothing is copied. The rows of a file without a *required* column are
    quarantined whole by validation. Extra columns are recorded and left out (the contract names every column
    gnnrec uses).
    """
    names = [c.replace("\ufeff", "").strip() for c in frame.columns]
    frame = frame.rename(dict(zip(frame.columns, names)))
    missing = tuple(c for c in contract.columns if c not in names)
    extra = tuple(c for c in names if c not in contract.columns)
    rows = frame.select(
        lines.cast(pl.Int64).alias("source_line"),
        *(c for c in contract.columns if c in names),
        *(malformed.get_columns() if malformed is not None else ()),
    )
    return rows, tuple(c for c in missing if c in contract.required), extra


_FILES_SCHEMA = {
    "ds": pl.Date, "source": pl.String, "path": pl.String, "sha256": pl.String, "size_bytes": pl.Int64,
    "rows_read": pl.Int64, "missing_columns": pl.List(pl.String), "extra_columns": pl.List(pl.String),
    "status": pl.String, "error": pl.String,
}


def _ingested_files(con: duckdb.DuckDBPyConnection, ds: date) -> dict[str, FileRecord]:
    """What ``ops.ingest_files`` holds for ``ds``, by path."""
    rows = con.execute(sql_text("ops/ingested_files"), {"ds": ds}).fetchall()
    return {
        path: FileRecord(day, source, path, digest, size, read, tuple(missing or ()), tuple(extra or ()), status, error)
        for day, source, path, digest, size, read, missing, extra, status, error in rows
    }


def _failure_reason(error: Exception) -> str:
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0] if message else 'unreadable'}"


def _insert_landed(con: duckdb.DuckDBPyConnection, table: str, ds: date, source_file: str, rows: pl.DataFrame) -> None:
    """Append rows of one landed file (:func:`to_raw_rows`) to ``table``, adding its day and path in SQL."""
    if rows.height:
        con.register("staged", rows.to_arrow(compat_level=ARROW_LEVEL))
        try:
            con.execute(partition_sql("partition/insert_landed", table), {"ds": ds, "source_file": source_file})
        finally:
            con.unregister("staged")


def ingest_partition(
    con: duckdb.DuckDBPyConnection, landing: Path, ds: date, future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE
) -> IngestReport:
    """Bring ``raw.<source>``, ``clean.<source>``, ``quarantine.<source>`` and ``ops.ingest_files`` for ``ds`` up
    to what is landed now, atomically, and record the day as ``validated``.

    A file ingested before with the same sha256 keeps its raw rows and is not read again; a changed file's rows are
    replaced, and a file no longer landed loses its rows. Every entry that is not read (see :func:`landed_entries`)
    is recorded with its status and reason: ``ignored`` (a marker, 0 rows read) or ``failed``.

    Every row is checked by the row contracts in the same pass (:class:`validate.SourceCheck`): a file read now
    straight from memory, a file kept from before by reading it back from ``raw``. A row whose event time is after
    the end of ``ds`` (UTC) by more than ``future_tolerance`` is quarantined as :data:`contracts.FUTURE_RULE`; one
    exactly at that limit is not.
    """
    if future_tolerance < timedelta(0):
        raise ValueError(f"future_tolerance must not be negative, got {future_tolerance}")
    latest = latest_event_time(ds, future_tolerance)
    if not landing.is_dir():
        raise LandingError(f"landing folder {landing} does not exist")
    entries = landed_entries(landing, ds)  # a LandingError stops the day here, before anything is written
    ingested = _ingested_files(con, ds)
    # Records in entry order; a file to read holds its place with None until it is read.
    records: list[FileRecord | None] = []
    skipped: list[str] = []
    readable: list[tuple[int, LandedEntry, str, int, bool]] = []  # every file kept from before or to read, in order
    for entry in entries:
        if entry.reason is not None:
            read = 0 if entry.status == IGNORED else None
            records.append(FileRecord(ds, entry.source, entry.relative, NO_DIGEST, None, read, status=entry.status, error=entry.reason))
            if entry.status == FAILED:
                log.warning("not read: %s: %s", entry.relative, entry.reason)
            continue
        size, (digest, has_quote) = entry.path.stat().st_size, _digest_and_quote(entry.path)
        before = ingested.get(entry.relative)
        kept = before is not None and before.source == entry.source and before.sha256 == digest
        if kept:
            skipped.append(entry.relative)
        readable.append((len(records), entry, digest, size, has_quote))
        records.append(before if kept else None)

    with transaction(con):
        for source in SOURCES:
            con.execute(partition_sql("partition/delete_except_files", f"raw.{source}"), {"ds": ds, "keep": skipped})
            for layer in ("clean", "quarantine"):
                con.execute(partition_sql("partition/delete", f"{layer}.{source}"), {"ds": ds})
        checks = {
            source: SourceCheck(con, ds, source, [e.relative for _, e, *_ in readable if e.source == source], latest)
            for source in SOURCES
        }
        # One file at a time, into raw and checked on the way: a day's files are never all in memory at once.
        for position, entry, digest, size, has_quote in readable:
            source, relative = entry.source, entry.relative
            if (kept := records[position]) is not None:
                checks[source].ingested(relative, kept.missing_columns)
                continue
            try:
                frame, lines, malformed = read_landed_file(entry.path, has_quote)
                rows, missing, extra = to_raw_rows(frame, SOURCES[source], lines, malformed)
                del frame, lines, malformed
            except Exception as error:  # noqa: BLE001 - any unreadable file is recorded with its reason, not raised
                reason = _failure_reason(error)
                log.warning("cannot read %s: %s", relative, reason)
                records[position] = FileRecord(ds, source, relative, digest, size, None, status=FAILED, error=reason)
                continue
            records[position] = FileRecord(ds, source, relative, digest, size, rows.height, missing, extra)
            log.info("read %s: %d rows", relative, rows.height)
            chunks = landed_chunks(rows)
            del rows  # the chunks alone hold the file's rows now, and free them as they are written
            table = f"raw.{source}"
            checks[source].landed(relative, chunks, missing, lambda chunk: _insert_landed(con, table, ds, relative, chunk))
        validation = [check.finish() for check in checks.values()]
        files = pl.DataFrame(
            [vars(r) | {"missing_columns": list(r.missing_columns), "extra_columns": list(r.extra_columns)} for r in records],
            schema=_FILES_SCHEMA,
        )
        replace_partition(con, "ops.ingest_files", ds, files.to_arrow(compat_level=ARROW_LEVEL))
        con.execute(sql_text("ops/reconcile_ingest_files"), {"ds": ds})
        mark_day(con, ds, "validated")
        failpoint("ingest-before-commit")
    return IngestReport(ds, records, skipped, validation)
