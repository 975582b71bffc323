"""A day's progress through the pipeline, recorded in the warehouse in the same transaction as the data each stage
writes: ``validated`` (ingested and row-checked in one transaction) -> ``accepted`` or ``refused`` (its data
contracts decided). A day is ``ingested`` (its raw rows to be checked again) when the poisoning detector sends it
back (``security/reopen_day``), or when a version that ingested and validated in two transactions died in between;
such a day is validated from its raw rows, its files not read again, when it is resumed.

Because the state commits with the data, a run killed anywhere leaves every day either at its last committed state
or before it; the next run resumes every landed day that is not ``accepted`` with the files it was accepted with,
and no model trains on a day whose contracts were never decided.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import duckdb

from gnnrec.tasks.ops.db import sql_text
from gnnrec.tasks.ops.runs import inputs_digest

DayState = Literal["ingested", "validated", "accepted", "refused"]


class UndecidedDayError(RuntimeError):
    """A day up to the one to train on has data whose contracts were never decided (a bug if ever raised: every
    run decides each pending day before it builds a graph)."""


def mark_day(con: duckdb.DuckDBPyConnection, ds: date, state: DayState, run_id: str | None = None) -> None:
    """Record that ``ds`` reached ``state``, keyed by the digest of the files ``ops.ingest_files`` holds for it now.
    Call it inside the transaction that writes the stage's data."""
    files = con.execute(sql_text("ops/day_files"), {"ds": ds}).fetchall()
    digest = inputs_digest((source, path, sha or "") for source, path, sha in files)
    con.execute(sql_text("ops/mark_day"), {"ds": ds, "state": state, "inputs_digest": digest, "run_id": run_id})


def day_states(con: duckdb.DuckDBPyConnection, until: date) -> dict[date, DayState]:
    """The recorded state of every day up to ``until`` that has one."""
    return dict(con.execute(sql_text("ops/day_states"), {"ds": until}).fetchall())


def require_decided(con: duckdb.DuckDBPyConnection, until: date) -> None:
    """Raise :class:`UndecidedDayError` unless every day with ingested data up to ``until`` is ``accepted``."""
    undecided = con.execute(sql_text("ops/undecided_days"), {"ds": until}).fetchall()
    if undecided:
        listed = ", ".join(f"{day} ({state or 'no state'})" for day, state in undecided)
        raise UndecidedDayError(f"refusing to train on data up to {until}: contracts not decided for {listed}")
