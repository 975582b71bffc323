"""DuckDB access: opening the warehouse, reading gnnrec's SQL files, and replacing partitions atomically."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from gnnrec.tasks.ops.lock import WarehouseBusy

# Polars' newest Arrow layout (string views) reaches DuckDB without re-encoding every string on the way.
ARROW_LEVEL = pl.CompatLevel.newest()

# The only tables whose names are ever placed into a SQL template; anything else is refused.
PARTITIONED_TABLES = frozenset(
    f"{layer}.{source}"
    for layer in ("raw", "clean", "quarantine")
    for source in ("interactions", "social", "kg", "item_entities")
) | {"ops.ingest_files"}


@cache
def sql_text(name: str) -> str:
    """The text of ``sql/<name>.sql`` shipped with the package."""
    return resources.files("gnnrec.sql").joinpath(f"{name}.sql").read_text(encoding="utf-8")


def partition_sql(name: str, table: str) -> str:
    """A partition statement for one of :data:`PARTITIONED_TABLES` (identifiers cannot be bound as parameters)."""
    if table not in PARTITIONED_TABLES:
        raise ValueError(f"{table!r} is not a partitioned gnnrec table")
    return sql_text(name).replace("{table}", table)


# DuckDB 1.x/2.x: 'IO Error: Could not set lock on file "x": Conflicting lock is held in /usr/bin/python3 (PID 8849) ...'
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class WarehouseUnreadable(ValueError):
    """The file is not a DuckDB database DuckDB can open: garbage, truncated, corrupt, or not readable at all."""

    def __init__(self, db_path: Path, reason: str) -> None:
        super().__init__(f"{db_path} is not a usable DuckDB database: {reason}")
        self.db_path, self.reason = db_path, reason


class WarehouseHeld(WarehouseBusy, duckdb.IOException):
    """Another process has the DuckDB file open (DuckDB allows one writing process and no reader beside it).

    Still a ``duckdb.IOException``, so the flow's tasks keep retrying it as a transient error."""

    def __init__(self, db_path: Path, reason: str) -> None:
        holder = _LOCK_HOLDER.search(reason)
        if holder:
            who = f"process {holder['pid']} ({Path(holder['program']).name})"
        else:
            who = "another process"
        super().__init__(
            f"{db_path} is open in {who}; the warehouse belongs to the pipeline; analysts read its analytics store "
            f"(--analytics, default {db_path.with_name(db_path.stem + '.analytics')}/)"
        )
        self.db_path, self.pid = db_path, int(holder["pid"]) if holder else None


def open_database(db_path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` with its refusals made plain: :class:`WarehouseHeld` when another process holds the file,
    :class:`WarehouseUnreadable` (with DuckDB's reason) when the file is not a DuckDB database or is damaged."""
    try:
        return duckdb.connect(str(db_path), read_only=read_only)
    except duckdb.IOException as error:
        if "Could not set lock" in str(error):
            raise WarehouseHeld(db_path, str(error)) from error
        raise WarehouseUnreadable(db_path, str(error)) from error
    except duckdb.ConnectionException:
        raise  # the same file already open in this process with other settings: a programming error, not the file's
    except duckdb.Error as error:  # "Corrupt database file: computed checksum ...", serialization errors, ...
        raise WarehouseUnreadable(db_path, str(error)) from error


@contextlib.contextmanager
def connect(db_path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (creating its folder and schema when writing) and close it afterwards.

    Raises :class:`WarehouseHeld` (a :class:`~tasks.ops.lock.WarehouseBusy`) when another process has the file open,
    and :class:`WarehouseUnreadable` when it is not a usable DuckDB database."""
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    con = open_database(db_path, read_only=read_only)
    try:
        if not read_only:
            con.execute(sql_text("schema/create"))
            con.execute(sql_text("recs/latest_topk_view"))  # the same view the analysts' store defines
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All-or-nothing: readers see the state before or after the block, never in between."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def replace_partition(con: duckdb.DuckDBPyConnection, table: str, ds: date, rows: pa.Table) -> None:
    """Delete ``table``'s rows for ``ds`` and insert ``rows`` (columns matched by name); call inside a transaction."""
    con.execute(partition_sql("partition/delete", table), {"ds": ds})
    insert_rows(con, table, rows)


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
    """Append ``rows`` to one of :data:`PARTITIONED_TABLES` (columns matched by name)."""
    if rows.num_rows:
        con.register("staged", rows)
        try:
            con.execute(partition_sql("partition/insert", table))
        finally:
            con.unregister("staged")


def fetch_arrow(con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None) -> pa.Table:
    """Run ``sql/<name>.sql`` with bound parameters and return the result as an Arrow table."""
    return query_arrow(con, sql_text(name), params)


def query_arrow(con: duckdb.DuckDBPyConnection, query: str, params: Mapping[str, Any] | None = None) -> pa.Table:
    """Run a read-only statement with bound parameters straight into Arrow (no DB-API row copy)."""
    return con.sql(query, params=dict(params or {})).to_arrow_table()
