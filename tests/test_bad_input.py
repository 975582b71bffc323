"""The bad-input suite: one tiny landed file per case, with the exact quarantine rule per row and the file's
reconciliation (rows read = rows loaded + rows quarantined), or ``status = 'failed'`` with the reason.

Cases decided over the whole day rather than row by row (volume, duplicates, unknown users, items and relations,
timestamps outside the day) are dataset expectations; they are in ``tests/test_expectations.py``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from gnnrec.tasks.ops.db import connect
from gnnrec.tasks.data.ingest import LandingError, ingest_partition, landed_days, landed_fingerprint, sha256_of

DAY = date(2026, 1, 3)
TS = "2026-01-03T10:00:00Z"
HEADER = "user_id,item_id,event,rating,ts\n"
GOOD = f"u1,i1,view,,{TS}\n"


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


GOOD_PARQUET = _parquet(pl.DataFrame({
    "user_id": ["u1", "u2"], "item_id": ["i1", "i2"], "event": ["view", "view"], "rating": [None, None],
    "ts": [datetime(2026, 1, 3, 10, tzinfo=UTC)] * 2,
}))  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One landed file and what must become of it."""

    name: str  # the file's name in the interactions (or ``source``) partition of DAY
    content: bytes
    read: int | None  # rows read; None for a file that cannot be read at all
    loaded: int | None
    quarantined: list[tuple[int | None, str | None, str, str | None]]  # (line, column, rule, value), sorted
    source: str = "interactions"
    error: str | None = None  # for a failed file: the start of its recorded reason
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


CASES = {
    "empty file": Case("a.csv", b"", 0, 0, [], missing=["user_id", "item_id", "event", "ts"]),
    "header only": Case("a.csv", HEADER.encode(), 0, 0, []),
    "missing required column": Case(
        "a.csv", f"user_id,event,ts\nu1,view,{TS}\nu2,view,{TS}\n".encode(), 2, 0,
        [(2, "item_id", "missing_required_column", None), (3, "item_id", "missing_required_column", None)],
        missing=["item_id"],
    ),
    "unknown extra column is recorded and ignored": Case(
        "a.csv", f"user_id,item_id,event,ts,campaign\nu1,i1,view,{TS},spring\n".encode(), 1, 1, [], extra=["campaign"]
    ),
    "column of the wrong type": Case(
        "a.parquet",
        _parquet(pl.DataFrame({"user_id": ["u1", "u2"], "item_id": ["i1", "i2"], "event": ["rate", "rate"],
                               "rating": ["4", "high"], "ts": [1767434400, 1767434400]})),
        2, 1, [(2, "rating", "rating_number_in_0_5", "high")],
    ),  # fmt: skip
    "non-UTF-8 bytes": Case(
        "a.csv", HEADER.encode() + b"u1,i\xff1,view,," + TS.encode() + b"\n" + GOOD.encode(), 2, 1,
        [(2, None, "valid_utf8", f"u1,i\ufffd1,view,,{TS}")],
    ),
    "UTF-8 BOM": Case("a.csv", ("\ufeff" + HEADER + GOOD).encode(), 1, 1, []),
    "CRLF line endings": Case("a.csv", (HEADER + GOOD + f"u2,i2,rate,4,{TS}\n").replace("\n", "\r\n").encode(), 2, 2, []),
    "quote left open": Case(
        "a.csv", (HEADER + GOOD + f'u2,"i2,view,,{TS}\n' + GOOD).encode(), 2, 1,
        [(3, None, "unclosed_quote", f'u2,"i2,view,,{TS}\n{GOOD}')],
    ),
    "row with too many fields": Case(
        "a.csv", (HEADER + f"u1,i1,view,,{TS},surplus\n" + GOOD).encode(), 2, 1,
        [(2, None, "field_count_matches_header", f"u1,i1,view,,{TS},surplus")],
    ),
    "text after a closing quote": Case(
        "a.csv", (HEADER + f'u1,"i1"x,view,,{TS}\n' + GOOD).encode(), 2, 1,
        [(2, None, "well_formed_csv", f'u1,"i1"x,view,,{TS}')],
    ),
    "null or empty IDs": Case(
        "a.csv", (HEADER + f",i1,view,,{TS}\n\"\",i1,view,,{TS}\nu1,,view,,{TS}\n" + GOOD).encode(), 4, 1,
        [(2, "user_id", "not_nullable", None), (3, "user_id", "not_blank", ""), (4, "item_id", "not_nullable", None)],
    ),
    "whitespace-padded IDs are trimmed": Case("a.csv", (HEADER + f"  u1 ,\ti1 ,view,,{TS}\n").encode(), 1, 1, []),
    "rating out of range or NaN": Case(
        "a.csv", (HEADER + f"u1,i1,rate,5.5,{TS}\nu1,i2,rate,NaN,{TS}\nu1,i3,rate,-1,{TS}\nu1,i4,rate,5,{TS}\n").encode(),
        4, 1,
        [(2, "rating", "rating_number_in_0_5", "5.5"), (3, "rating", "rating_number_in_0_5", "NaN"),
         (4, "rating", "rating_number_in_0_5", "-1")],
    ),  # fmt: skip
    "unparsable timestamp": Case(
        "a.csv", (HEADER + "u1,i1,view,,03/01/2026 10:00\n" + GOOD).encode(), 2, 1,
        [(2, "ts", "timestamp_parses", "03/01/2026 10:00")],
    ),
    "social self-loop": Case(
        "a.csv", b"src_user_id,dst_user_id\nu1,u2\nu3, u3\n", 2, 1, [(3, "dst_user_id", "not_self_loop", " u3")],
        source="social",
    ),
    "Parquet file with a different schema": Case(
        "a.parquet", _parquet(pl.DataFrame({"uid": ["u1"], "iid": ["i1"], "event": ["view"], "ts": [TS]})), 1, 0,
        [(1, "item_id", "missing_required_column", None), (1, "user_id", "missing_required_column", None)],
        missing=["user_id", "item_id"], extra=["uid", "iid"],
    ),
    "JSONL file with one broken line": Case(
        "a.jsonl",
        (json.dumps({"user_id": "u1", "item_id": "i1", "event": "view", "ts": TS}) + "\n"
         + '{"user_id": "u2", "item_id": "i2", "event": "view", "ts": \n'
         + json.dumps({"user_id": "u3", "item_id": "i3", "event": "view", "ts": TS}) + "\n").encode(),
        3, 2, [(2, None, "valid_json_object", '{"user_id": "u2", "item_id": "i2", "event": "view", "ts": ')],
    ),  # fmt: skip
    "JSONL lines that are JSON but not objects": Case(
        "a.jsonl",
        (json.dumps({"user_id": "u1", "item_id": "i1", "event": "view", "ts": TS}) + "\n"
         + '[1, 2]\n"x"\n3\nnull\ntrue\n[{"user_id": "u2"}]\n'
         + json.dumps({"user_id": "u3", "item_id": "i3", "event": "view", "ts": TS}) + "\n").encode(),
        8, 2,
        [(2, None, "valid_json_object", "[1, 2]"), (3, None, "valid_json_object", '"x"'),
         (4, None, "valid_json_object", "3"), (5, None, "valid_json_object", "null"),
         (6, None, "valid_json_object", "true"), (7, None, "valid_json_object", '[{"user_id": "u2"}]')],
    ),  # fmt: skip
    "gzipped JSONL whose first line is an array": Case(
        "a.jsonl.gz",
        gzip.compress(('[1]\n' + json.dumps({"user_id": "u1", "item_id": "i1", "event": "view", "ts": TS}) + "\n").encode()),
        2, 1, [(1, None, "valid_json_object", "[1]")],
    ),
    "JSONL file with no object at all": Case(
        "a.jsonl", b'3\n["u1", "i1"]\n', 2, 0,
        [(1, None, "valid_json_object", "3"), (2, None, "valid_json_object", '["u1", "i1"]')],
        missing=["user_id", "item_id", "event", "ts"],
    ),
    "event time after the partition day by more than the tolerance": Case(
        "a.csv",
        (HEADER
         + "u1,i1,view,,2026-01-05T00:00:00Z\n"            # line 2: exactly end of day + 1 day: valid
         + "u1,i2,view,,2026-01-05T00:00:00.000001Z\n"     # line 3: just after: quarantined
         + "u1,i3,view,,2026-01-05T01:00:00+02:00\n"       # line 4: 2026-01-04 23:00 UTC: valid
         + "u1,i4,view,, 2030-01-01T00:00:00Z\n"           # line 5: years ahead; the value is the landed text
         + "u1,i5,view,,1893456000\n"                      # line 6: 2030-01-01 as epoch seconds
         + "u1,i6,view,,2025-06-01T00:00:00Z\n"            # line 7: late-arriving: valid
         + "u1,i7,rate,9,2031-01-01T00:00:00Z\n").encode(),  # line 8: two rules broken, one row quarantined
        7, 3,
        [(3, "ts", "ts_not_after_partition_day", "2026-01-05T00:00:00.000001Z"),
         (5, "ts", "ts_not_after_partition_day", " 2030-01-01T00:00:00Z"),
         (6, "ts", "ts_not_after_partition_day", "1893456000"),
         (8, "rating", "rating_number_in_0_5", "9"), (8, "ts", "ts_not_after_partition_day", "2031-01-01T00:00:00Z")],
    ),  # fmt: skip
    "social edge dated after the partition day": Case(
        "a.csv", b"src_user_id,dst_user_id,weight,ts\nu1,u2,,2026-01-09T00:00:00Z\nu1,u3,,\nu1,u4,,2026-01-04T12:00:00Z\n",
        3, 2, [(2, "ts", "ts_not_after_partition_day", "2026-01-09T00:00:00Z")], source="social",
    ),
    "gzipped CSV": Case("a.csv.gz", gzip.compress((HEADER + GOOD).encode()), 1, 1, []),
    "truncated gzip file": Case(
        "a.csv.gz", gzip.compress((HEADER + GOOD * 2000).encode())[:60], None, None, [], error="EOFError: "
    ),
    "truncated Parquet file": Case("a.parquet", GOOD_PARQUET[: len(GOOD_PARQUET) // 2], None, None, [], error="ComputeError: "),
    "file name outside the landing pattern": Case(
        "a.txt", (HEADER + GOOD).encode(), None, None, [], error="ValueError: unsupported file name 'a.txt'"
    ),
}


def _land(landing: Path, source: str, name: str, content: bytes) -> Path:
    path = landing / source / f"ds={DAY.isoformat()}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_case(tmp_path: Path, case: Case):
    landing = tmp_path / "landing"
    # A good file next to the bad one: an unreadable file must not stop the rest of the day.
    _land(landing, "interactions", "good.csv", (HEADER + f"u9,i9,view,,{TS}\n").encode())
    _land(landing, case.source, case.name, case.content)
    path = f"{case.source}/ds={DAY.isoformat()}/{case.name}"
    with connect(tmp_path / "w.duckdb") as con:
        ingest_partition(con, landing, DAY)
        (record,) = con.execute(
            "select status, error, rows_read, rows_loaded, rows_quarantined, missing_columns, extra_columns "
            "from ops.ingest_files where path = ?", [path],
        ).fetchall()  # fmt: skip
        status, error, read, loaded, quarantined, missing, extra = record
        rows = con.execute(
            f"select source_line, column_name, rule, value from quarantine.{case.source} where source_file = ? order by all",
            [path],
        ).fetchall()
        clean = con.execute(f"select count(*) from clean.{case.source} where source_file = ?", [path]).fetchone()[0]
        good = con.execute("select rows_read, rows_loaded from ops.ingest_files where path like '%good.csv'").fetchone()
    assert good == (1, 1)
    if case.error is not None:
        assert (status, read, loaded, quarantined) == ("failed", None, None, None)
        assert error.startswith(case.error) and "\n" not in error
        assert rows == [] and clean == 0
        return
    assert (status, error) == ("loaded", None)
    assert rows == case.quarantined
    assert (read, loaded) == (case.read, case.loaded)
    assert read == loaded + quarantined  # nothing lost
    assert quarantined == len({line for line, *_ in rows})
    assert clean == loaded
    assert (missing, extra) == (case.missing, case.extra)


def test_padded_ids_crlf_and_bom_reach_clean_as_plain_values(tmp_path: Path):
    landing = tmp_path / "landing"
    _land(landing, "interactions", "a.csv", ("\ufeff" + HEADER + f"  u1 ,\ti1 ,VIEW,,{TS}\r\nu2,i2,rate,4,{TS}\r\n").encode())
    with connect(tmp_path / "w.duckdb") as con:
        ingest_partition(con, landing, DAY)
        assert con.execute("select source_line, user_id, item_id, event, rating, ts from clean.interactions order by 1").fetchall() == [
            (2, "u1", "i1", "view", None, datetime(2026, 1, 3, 10)),
            (3, "u2", "i2", "rate", 4.0, datetime(2026, 1, 3, 10)),
        ]


def test_a_quarantined_malformed_line_keeps_the_fields_it_had(tmp_path: Path):
    landing = tmp_path / "landing"
    _land(landing, "interactions", "a.csv", (HEADER + f"u1,i1,view,,{TS},surplus\n").encode())
    with connect(tmp_path / "w.duckdb") as con:
        ingest_partition(con, landing, DAY)
        (record,) = con.execute("select record from quarantine.interactions").fetchone()
    assert json.loads(record) == {"user_id": "u1", "item_id": "i1", "event": "view", "ts": TS, "rating": None}


# ---------------------------------------------------------------------------------------------------------------
# Where files are looked for
# ---------------------------------------------------------------------------------------------------------------


def test_a_symlinked_file_outside_the_landing_root_is_refused(tmp_path: Path):
    landing = tmp_path / "landing"
    secret = tmp_path / "elsewhere" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text(HEADER + GOOD, encoding="utf-8")
    link = landing / "interactions" / f"ds={DAY.isoformat()}" / "events.csv"
    link.parent.mkdir(parents=True)
    link.symlink_to(Path("..") / ".." / ".." / "elsewhere" / "secret.csv")
    with connect(tmp_path / "w.duckdb") as con:
        with pytest.raises(LandingError, match=r"events\.csv resolves to .*elsewhere/secret\.csv, outside the landing root"):
            ingest_partition(con, landing, DAY)
        assert con.execute("select count(*) from ops.ingest_files").fetchone() == (0,)


def test_a_partition_folder_linked_outside_the_landing_root_is_refused(tmp_path: Path):
    landing = tmp_path / "landing"
    outside = tmp_path / "outside"
    _land(outside, "interactions", "events.csv", (HEADER + GOOD).encode())
    (landing / "interactions").mkdir(parents=True)
    (landing / "interactions" / f"ds={DAY.isoformat()}").symlink_to(outside / "interactions" / f"ds={DAY.isoformat()}")
    with connect(tmp_path / "w.duckdb") as con, pytest.raises(LandingError, match="outside the landing root"):
        ingest_partition(con, landing, DAY)


def test_a_link_that_stays_inside_the_landing_root_is_read(tmp_path: Path):
    landing = tmp_path / "landing"
    shared = _land(landing, "interactions", "_shared.csv", (HEADER + GOOD).encode())  # `_` files are not read
    (shared.parent / "events.csv").symlink_to("_shared.csv")
    with connect(tmp_path / "w.duckdb") as con:
        ingest_partition(con, landing, DAY)
        assert con.execute("select path, status, rows_read from ops.ingest_files order by path").fetchall() == [
            ("interactions/ds=2026-01-03/_shared.csv", "ignored", 0),
            ("interactions/ds=2026-01-03/events.csv", "loaded", 1),
        ]


def test_a_dangling_link_out_of_the_landing_root_is_refused(tmp_path: Path):
    landing = tmp_path / "landing"
    _land(landing, "interactions", "good.csv", (HEADER + GOOD).encode())
    (landing / "interactions" / f"ds={DAY.isoformat()}" / "gone.csv").symlink_to(tmp_path / "elsewhere" / "gone.csv")
    with connect(tmp_path / "w.duckdb") as con:
        with pytest.raises(LandingError, match=r"gone\.csv resolves to .*elsewhere/gone\.csv, outside the landing root"):
            ingest_partition(con, landing, DAY)
        assert con.execute("select count(*) from ops.ingest_files").fetchone() == (0,)


NOT_READ = "select path, status, sha256, size_bytes, rows_read, rows_loaded, rows_quarantined, error from ops.ingest_files order by path"


def test_every_entry_of_a_day_folder_that_is_not_read_is_recorded_with_its_reason(tmp_path: Path):
    landing = tmp_path / "l"  # short: a socket's path has a length limit
    good = _land(landing, "interactions", "good.csv", (HEADER + GOOD).encode())
    folder = good.parent
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / ".good.csv.crc").write_bytes(b"\x00\x01")
    (folder / "_temporary").mkdir()  # a marker folder, e.g. a Spark job's scratch
    (folder / "part-1").mkdir()
    (folder / "part-1" / "events.csv").write_text(HEADER + GOOD, encoding="utf-8")
    (folder / "dangling.csv").symlink_to("missing.csv")
    (folder / "loop.csv").symlink_to("loop.csv")
    os.mkfifo(folder / "pipe.csv")  # opening it would block: it must not be opened
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(folder / "sock"))
    (landing / "social").mkdir()
    (landing / "social" / f"ds={DAY.isoformat()}").write_text("not a folder", encoding="utf-8")
    day = f"ds={DAY.isoformat()}"
    expected = [
        (f"interactions/{day}/.good.csv.crc", "ignored", "", None, 0, 0, 0, "marker file: names starting with '.' or '_' are not read"),
        (f"interactions/{day}/_SUCCESS", "ignored", "", None, 0, 0, 0, "marker file: names starting with '.' or '_' are not read"),
        (f"interactions/{day}/_temporary", "ignored", "", None, 0, 0, 0, "marker file: names starting with '.' or '_' are not read"),
        (f"interactions/{day}/dangling.csv", "failed", "", None, None, None, None, "a symbolic link to a missing target 'missing.csv'; not read"),
        (f"interactions/{day}/good.csv", "loaded", sha256_of(good), good.stat().st_size, 1, 1, 0, None),
        (f"interactions/{day}/loop.csv", "failed", "", None, None, None, None, "a symbolic link loop; not read"),
        (f"interactions/{day}/part-1", "failed", "", None, None, None, None, "a folder inside a day folder; files in sub-folders are not read"),
        (f"interactions/{day}/pipe.csv", "failed", "", None, None, None, None, "a named pipe (fifo), not a regular file; not read"),
        (f"interactions/{day}/sock", "failed", "", None, None, None, None, "a socket, not a regular file; not read"),
        (f"social/{day}", "failed", "", None, None, None, None, "day folder is a file, not a folder; not read"),
    ]  # fmt: skip
    try:
        with connect(tmp_path / "w.duckdb") as con:
            first = ingest_partition(con, landing, DAY)
            assert con.execute(NOT_READ).fetchall() == expected
            assert first.rows_read("interactions") == 1 and first.rows_read("social") == 0
            # what is landed fingerprints as what was recorded, so the day is not ingested again for nothing
            recorded = set(con.execute("select source, path, sha256 from ops.ingest_files").fetchall())
            assert landed_fingerprint(landing, DAY) == recorded
            # a re-run with the same entries records the same rows
            again = ingest_partition(con, landing, DAY)
            assert again.skipped == [f"interactions/{day}/good.csv"]
            assert con.execute(NOT_READ).fetchall() == expected
            assert con.execute("select count(*) from clean.interactions").fetchone() == (1,)
    finally:
        listener.close()


def test_a_day_folder_linked_in_a_loop_is_recorded_not_read(tmp_path: Path):
    landing = tmp_path / "landing"
    _land(landing, "interactions", "good.csv", (HEADER + GOOD).encode())
    (landing / "social").mkdir()
    (landing / "social" / f"ds={DAY.isoformat()}").symlink_to(f"ds={DAY.isoformat()}")
    with connect(tmp_path / "w.duckdb") as con:
        ingest_partition(con, landing, DAY)
        assert con.execute("select path, status, error from ops.ingest_files where source = 'social'").fetchall() == [
            (f"social/ds={DAY.isoformat()}", "failed", "day folder is a symbolic link loop, not a folder; not read")
        ]


BEFORE = date(2026, 1, 2)


@pytest.mark.parametrize(
    "spelling", ["ds=2026-1-2", "ds=20260102", "ds=2026-01-02 ", " ds=2026-01-02", "DS=2026-01-02", "ds=2026_01_02",
                 "date=2026-01-02", "2026-01-02", "ds=2026/01/02", "ds=2026/1/2"],
)  # fmt: skip
def test_a_day_folder_spelled_another_way_is_reported_under_its_day(tmp_path: Path, spelling: str):
    landing = tmp_path / "landing"
    _land(landing, "interactions", "good.csv", (HEADER + GOOD).encode())
    stray = landing / "interactions" / spelling / "a.csv"
    stray.parent.mkdir(parents=True)
    stray.write_text(HEADER + GOOD, encoding="utf-8")
    assert landed_days(landing, DAY) == [BEFORE, DAY]  # noticed, not skipped
    assert landed_days(landing, BEFORE) == [BEFORE]
    with connect(tmp_path / "w.duckdb") as con:
        ingest_partition(con, landing, BEFORE)
        assert con.execute("select ds, source, path, sha256, status, rows_read, error from ops.ingest_files").fetchall() == [
            (BEFORE, "interactions", f"interactions/{spelling}", "", "failed", None,
             f"day folder {spelling!r} is not spelled ds=2026-01-02 exactly; not read"),
        ]  # fmt: skip
        assert con.execute("select count(*) from raw.interactions").fetchone() == (0,)
        # the exact folder of another day is unaffected
        ingest_partition(con, landing, DAY)
        assert con.execute("select path, status from ops.ingest_files where ds = ?", [DAY]).fetchall() == [
            ("interactions/ds=2026-01-03/good.csv", "loaded")
        ]


def test_a_misspelled_folder_next_to_the_exact_one_is_reported_and_the_exact_one_read(tmp_path: Path):
    landing = tmp_path / "landing"
    _land(landing, "interactions", "good.csv", (HEADER + GOOD).encode())
    (landing / "interactions" / "ds=2026-1-3").mkdir()
    with connect(tmp_path / "w.duckdb") as con:
        ingest_partition(con, landing, DAY)
        assert con.execute("select path, status, rows_read from ops.ingest_files order by path").fetchall() == [
            ("interactions/ds=2026-01-03/good.csv", "loaded", 1),
            ("interactions/ds=2026-1-3", "failed", None),
        ]


@pytest.mark.parametrize("name", ["tmp", "ds=", "ds=latest", "ds=2026-13-45", "ds=2026-02-30", "backfill_2026"])
def test_a_folder_that_is_not_a_day_is_not_looked_at(tmp_path: Path, name: str):
    landing = tmp_path / "landing"
    _land(landing, "interactions", "a.csv", (HEADER + GOOD).encode())
    stray = landing / "interactions" / name / "a.csv"
    stray.parent.mkdir()
    stray.write_text(HEADER + GOOD, encoding="utf-8")
    assert landed_days(landing, DAY) == [DAY]
    with connect(tmp_path / "w.duckdb") as con:
        ingest_partition(con, landing, DAY)
        assert con.execute("select path from ops.ingest_files").fetchall() == [("interactions/ds=2026-01-03/a.csv",)]


# ---------------------------------------------------------------------------------------------------------------
# Event times after the partition day
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tolerance", "quarantined"),
    [(timedelta(0), [3, 4]), (timedelta(hours=36), [4]), (timedelta(days=1), [4])],
)
def test_the_future_tolerance_is_a_parameter_of_validation_and_its_limit_is_inclusive(
    tmp_path: Path, tolerance: timedelta, quarantined: list[int]
):
    landing = tmp_path / "landing"
    _land(landing, "interactions", "a.csv", (HEADER
        + "u1,i1,view,,2026-01-04T00:00:00Z\n"    # line 2: the end of the day itself
        + "u1,i2,view,,2026-01-04T00:00:01Z\n"    # line 3
        + "u1,i3,view,,2026-01-05T12:00:01Z\n"    # line 4: one second after end of day + 36 hours
        + "u1,i4,view,,2026-01-02T23:00:00Z\n"    # line 5: the day before: late-arriving, valid
    ).encode())  # fmt: skip
    with connect(tmp_path / "w.duckdb") as con:
        (summary, *_) = ingest_partition(con, landing, DAY, future_tolerance=tolerance).validation
        rows = con.execute("select source_line, column_name, rule from quarantine.interactions order by all").fetchall()
        files = con.execute("select rows_read, rows_loaded, rows_quarantined from ops.ingest_files").fetchall()
    assert rows == [(line, "ts", "ts_not_after_partition_day") for line in quarantined]
    assert (summary.rows_read, summary.rows_loaded, summary.rows_quarantined) == (4, 4 - len(quarantined), len(quarantined))
    assert summary.rule_counts == {"ts_not_after_partition_day": len(quarantined)}
    assert files == [(4, 4 - len(quarantined), len(quarantined))]


def test_a_negative_future_tolerance_is_refused(tmp_path: Path):
    with connect(tmp_path / "w.duckdb") as con, pytest.raises(ValueError, match="future_tolerance must not be negative"):
        ingest_partition(con, tmp_path, DAY, future_tolerance=timedelta(hours=-1))


# ---------------------------------------------------------------------------------------------------------------
# Files already ingested
# ---------------------------------------------------------------------------------------------------------------


def test_a_file_with_the_same_hash_is_skipped_and_a_changed_one_replaces_its_rows(tmp_path: Path):
    landing = tmp_path / "landing"
    _land(landing, "interactions", "a.csv", (HEADER + GOOD).encode())
    changing = _land(landing, "interactions", "b.csv", (HEADER + f"u2,i2,view,,{TS}\nu3,i3,view,,{TS}\n").encode())
    with connect(tmp_path / "w.duckdb") as con:
        first = ingest_partition(con, landing, DAY)
        assert first.skipped == []

        changing.write_bytes((HEADER + f"u4,i4,view,,{TS}\n").encode())
        second = ingest_partition(con, landing, DAY)
        assert second.skipped == ["interactions/ds=2026-01-03/a.csv"]
        assert con.execute("select source_file, source_line, user_id from raw.interactions order by all").fetchall() == [
            ("interactions/ds=2026-01-03/a.csv", 2, "u1"),
            ("interactions/ds=2026-01-03/b.csv", 2, "u4"),
        ]
        assert con.execute("select path, rows_read, rows_loaded, rows_quarantined from ops.ingest_files order by 1").fetchall() == [
            ("interactions/ds=2026-01-03/a.csv", 1, 1, 0),
            ("interactions/ds=2026-01-03/b.csv", 1, 1, 0),
        ]
        third = ingest_partition(con, landing, DAY)
        assert third.skipped == ["interactions/ds=2026-01-03/a.csv", "interactions/ds=2026-01-03/b.csv"]
