"""Ingest and validate on hand-written landing folders: exact raw, clean, quarantine and ops rows."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from gnnrec.tasks.data import validate
from gnnrec.tasks.data.progress import day_states, mark_day
from gnnrec.tasks.ops.db import PARTITIONED_TABLES, connect, transaction
from gnnrec.tasks.data.ingest import LandingError, days_to_ingest, ingest_partition
from gnnrec.tasks.data.policy import ContractPolicy
from gnnrec.tasks.data.quality import check_contracts

DAY = date(2026, 1, 3)
DAY_1, DAY_2, DAY_4 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 4)
INTERACTIONS_HEADER = "user_id,item_id,event,rating,ts\n"
LANDED = "* exclude (malformed_rule, malformed_text)"  # a raw row's landed columns


def _land(landing: Path, source: str, ds: date, name: str, content: str | bytes | pl.DataFrame) -> Path:
    """Write one landed file at ``<landing>/<source>/ds=<ds>/<name>``."""
    path = landing / source / f"ds={ds.isoformat()}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, pl.DataFrame):
        content.write_parquet(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _jsonl(*rows: dict) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def _events(*lines: str) -> str:
    """An interactions CSV: the header, then one line per argument."""
    return INTERACTIONS_HEADER + "".join(f"{line}\n" for line in lines)


def _rows(con, table: str, columns: str = "*", ds: date | None = None) -> list[tuple]:
    if ds is None:
        return con.execute(f"select {columns} from {table} order by all").fetchall()
    return con.execute(f"select {columns} from {table} where ds = ? order by all", [ds]).fetchall()


def _snapshot(con) -> dict[str, list[tuple]]:
    """Every partitioned table's full contents, sorted."""
    return {table: _rows(con, table) for table in sorted(PARTITIONED_TABLES)}


def _ingest_validate(con, landing: Path, ds: date) -> None:
    """A day through the recorded stages: ingested and validated, then its contracts decided."""
    check_contracts(con, ds, "test-run", ContractPolicy(), ingest_partition(con, landing, ds).validation)


def _assert_files_reconcile(con) -> None:
    """For every file that was read: rows read = rows loaded + rows quarantined; an ignored marker reads none."""
    for path, status, read, loaded, quarantined in _rows(
        con, "ops.ingest_files", "path, status, rows_read, rows_loaded, rows_quarantined"
    ):
        if status == "loaded":
            assert read == loaded + quarantined, path
        elif status == "ignored":
            assert (read, loaded, quarantined) == (0, 0, 0), path
        else:
            assert (status, read, loaded, quarantined) == ("failed", None, None, None), path


# ---------------------------------------------------------------------------------------------------------------
# A clean day: one file per format
# ---------------------------------------------------------------------------------------------------------------


def _land_clean_day(landing: Path, ds: date) -> None:
    """Good rows only, one file per format; ``ts`` values fall on 2026-01-03."""
    _land(landing, "interactions", ds, "events.csv", INTERACTIONS_HEADER + (
        " u1 ,i1,VIEW,,2026-01-03T14:05:09+02:00\n"
        "u2, i2 ,rate,4.5,1767398400\n"  # 1767398400 = 2026-01-03 00:00:00 UTC
    ))  # fmt: skip
    _land(landing, "interactions", ds, "events.parquet", pl.DataFrame({
        "user_id": ["u3"],
        "item_id": ["i1"],
        "event": ["rate"],
        "rating": [3.0],
        "ts": [datetime(2026, 1, 3, 8, 0, 0, tzinfo=UTC)],
    }))  # fmt: skip
    _land(landing, "social", ds, "edges.jsonl", _jsonl(
        {"src_user_id": "u1", "dst_user_id": "u3", "weight": 0.5, "ts": "2026-01-03T09:00:00Z"},
        {"src_user_id": "u3", "dst_user_id": "u1", "weight": None, "ts": None},
    ))  # fmt: skip
    _land(landing, "kg", ds, "triples.jsonl", _jsonl({"head": "ent:1", "relation": "has_genre", "tail": "genre:jazz"}))
    _land(landing, "item_entities", ds, "links.csv", "item_id,entity_id\ni1,ent:1\n")


@pytest.fixture
def clean_day(tmp_path: Path) -> Path:
    _land_clean_day(tmp_path / "landing", DAY)
    return tmp_path / "landing"


def test_clean_day_lands_in_raw_as_text_with_provenance(tmp_path: Path, clean_day: Path):
    with connect(tmp_path / "w.duckdb") as con:
        _ingest_validate(con, clean_day, DAY)
        # CSV lines start at 2 (line 1 is the header); Parquet and JSONL rows start at 1.
        assert _rows(con, "raw.interactions", LANDED) == [
            (DAY, "interactions/ds=2026-01-03/events.csv", 2, " u1 ", "i1", "VIEW", None, "2026-01-03T14:05:09+02:00"),
            (DAY, "interactions/ds=2026-01-03/events.csv", 3, "u2", " i2 ", "rate", "4.5", "1767398400"),
            (DAY, "interactions/ds=2026-01-03/events.parquet", 1, "u3", "i1", "rate", "3.0",
             "2026-01-03 08:00:00.000000+00:00"),
        ]  # fmt: skip
        assert _rows(con, "raw.social", LANDED) == [
            (DAY, "social/ds=2026-01-03/edges.jsonl", 1, "u1", "u3", "0.5", "2026-01-03T09:00:00Z"),
            (DAY, "social/ds=2026-01-03/edges.jsonl", 2, "u3", "u1", None, None),
        ]
        assert _rows(con, "raw.kg", LANDED) == [(DAY, "kg/ds=2026-01-03/triples.jsonl", 1, "ent:1", "has_genre", "genre:jazz")]
        assert _rows(con, "raw.item_entities", LANDED) == [(DAY, "item_entities/ds=2026-01-03/links.csv", 2, "i1", "ent:1")]


def test_clean_day_is_typed_in_clean_and_nothing_is_quarantined(tmp_path: Path, clean_day: Path):
    with connect(tmp_path / "w.duckdb") as con:
        _ingest_validate(con, clean_day, DAY)
        assert _rows(con, "clean.interactions") == [
            # +02:00 -> naive UTC; IDs trimmed; event lower-cased
            (DAY, "interactions/ds=2026-01-03/events.csv", 2, "u1", "i1", "view", None, datetime(2026, 1, 3, 12, 5, 9)),
            # epoch seconds
            (DAY, "interactions/ds=2026-01-03/events.csv", 3, "u2", "i2", "rate", 4.5, datetime(2026, 1, 3, 0, 0, 0)),
            # a typed, UTC-aware Parquet timestamp
            (DAY, "interactions/ds=2026-01-03/events.parquet", 1, "u3", "i1", "rate", 3.0, datetime(2026, 1, 3, 8, 0, 0)),
        ]  # fmt: skip
        assert _rows(con, "clean.social") == [
            (DAY, "social/ds=2026-01-03/edges.jsonl", 1, "u1", "u3", 0.5, datetime(2026, 1, 3, 9, 0, 0)),
            (DAY, "social/ds=2026-01-03/edges.jsonl", 2, "u3", "u1", None, None),
        ]
        assert _rows(con, "clean.kg") == [(DAY, "kg/ds=2026-01-03/triples.jsonl", 1, "ent:1", "has_genre", "genre:jazz")]
        assert _rows(con, "clean.item_entities") == [(DAY, "item_entities/ds=2026-01-03/links.csv", 2, "i1", "ent:1")]
        for source in ("interactions", "social", "kg", "item_entities"):
            assert _rows(con, f"quarantine.{source}") == []
        columns = "source, path, rows_read, rows_loaded, rows_quarantined, status, error"
        assert _rows(con, "ops.ingest_files", columns) == [
            ("interactions", "interactions/ds=2026-01-03/events.csv", 2, 2, 0, "loaded", None),
            ("interactions", "interactions/ds=2026-01-03/events.parquet", 1, 1, 0, "loaded", None),
            ("item_entities", "item_entities/ds=2026-01-03/links.csv", 1, 1, 0, "loaded", None),
            ("kg", "kg/ds=2026-01-03/triples.jsonl", 1, 1, 0, "loaded", None),
            ("social", "social/ds=2026-01-03/edges.jsonl", 2, 2, 0, "loaded", None),
        ]


# ---------------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------------

GOOD_TS = "1767398400"


def _land_bad_day(landing: Path, ds: date) -> None:
    """Every kind of bad input ingest and validate meet, next to a few good rows."""
    _land(landing, "interactions", ds, "a.csv", INTERACTIONS_HEADER + (
        f"u1,i1,view,,{GOOD_TS}\n"           # line 2: fine
        f",i1,view,,{GOOD_TS}\n"             # line 3: null user_id (an empty CSV field is null)
        f"\"\",i2,view,,{GOOD_TS}\n"         # line 4: empty-string user_id
        f"   ,i2,view,,{GOOD_TS}\n"          # line 5: blank user_id
        f"u2,i2,rate,7,{GOOD_TS}\n"          # line 6: rating out of range
        "u2,i3,rate,NaN,yesterday\n"         # line 7: NaN rating and an unparsable timestamp
        f"u3,i4,rate,-0.5,{GOOD_TS}\n"       # line 8: negative rating
        "u3,i5,view,,2030-01-01T00:00:00Z\n"  # line 9: years after the partition day
    ))  # fmt: skip
    _land(landing, "interactions", ds, "b.jsonl", _jsonl(
        {"user_id": "u9", "item_id": "i9", "event": "view", "ts": GOOD_TS, "color": "red"},  # extra column
        {"user_id": None, "item_id": "i9", "event": "view", "ts": GOOD_TS, "color": "blue"},
        "valid JSON, but not an object",
    ))  # fmt: skip
    _land(landing, "interactions", ds, "_SUCCESS", "")  # a marker: recorded as ignored
    (landing / "social" / f"ds={ds.isoformat()}" / "retry").mkdir(parents=True)  # a sub-folder: recorded, not read
    _land(landing, "interactions", ds, "c.parquet", b"this is not a parquet file")
    _land(landing, "interactions", ds, "d.csv", f"user_id,event,ts\nu1,view,{GOOD_TS}\nu2,view,{GOOD_TS}\n")
    _land(landing, "social", ds, "edges.csv", (
        "src_user_id,dst_user_id,weight,ts\n"
        "u1,u2,0,\n"                          # line 2: weight must be positive
        "u2,u1,1,2026-13-01T00:00:00Z\n"      # line 3: month 13
    ))  # fmt: skip
    _land(landing, "kg", ds, "triples.jsonl", _jsonl({"head": "ent:1", "relation": " ", "tail": "genre:jazz"}))
    _land(landing, "item_entities", ds, "links.csv", "item_id,entity_id\ni1,\n")


@pytest.fixture
def bad_day(tmp_path: Path) -> Path:
    _land_bad_day(tmp_path / "landing", DAY)
    return tmp_path / "landing"


def test_bad_rows_are_quarantined_with_file_line_column_rule_and_value(tmp_path: Path, bad_day: Path):
    a, b, d = (f"interactions/ds=2026-01-03/{name}" for name in ("a.csv", "b.jsonl", "d.csv"))
    with connect(tmp_path / "w.duckdb") as con:
        _ingest_validate(con, bad_day, DAY)
        assert _rows(con, "quarantine.interactions", "source_file, source_line, column_name, rule, value") == [
            (a, 3, "user_id", "not_nullable", None),
            (a, 4, "user_id", "not_blank", ""),
            (a, 5, "user_id", "not_blank", "   "),
            (a, 6, "rating", "rating_number_in_0_5", "7"),
            (a, 7, "rating", "rating_number_in_0_5", "NaN"),
            (a, 7, "ts", "timestamp_parses", "yesterday"),
            (a, 8, "rating", "rating_number_in_0_5", "-0.5"),
            (a, 9, "ts", "ts_not_after_partition_day", "2030-01-01T00:00:00Z"),
            (b, 2, "user_id", "not_nullable", None),
            (b, 3, None, "valid_json_object", '"valid JSON, but not an object"'),
            # a file without a required column: every row, once per missing column
            (d, 2, "item_id", "missing_required_column", None),
            (d, 3, "item_id", "missing_required_column", None),
        ]
        assert _rows(con, "quarantine.social", "source_file, source_line, column_name, rule, value") == [
            ("social/ds=2026-01-03/edges.csv", 2, "weight", "weight_positive_number", "0"),
            ("social/ds=2026-01-03/edges.csv", 3, "ts", "timestamp_parses", "2026-13-01T00:00:00Z"),
        ]
        # the whole landed row travels with each quarantine row
        (record,) = con.execute("select record from quarantine.interactions where source_line = 3").fetchone()
        assert json.loads(record) == {"user_id": None, "item_id": "i1", "event": "view", "ts": GOOD_TS, "rating": None}
        assert _rows(con, "quarantine.kg", "source_file, source_line, column_name, rule, value") == [
            ("kg/ds=2026-01-03/triples.jsonl", 1, "relation", "not_blank", " "),
        ]
        assert _rows(con, "quarantine.item_entities", "source_file, source_line, column_name, rule, value") == [
            ("item_entities/ds=2026-01-03/links.csv", 2, "entity_id", "not_nullable", None),
        ]
        assert _rows(con, "clean.interactions", "source_file, source_line, user_id, item_id") == [
            (a, 2, "u1", "i1"),
            (b, 1, "u9", "i9"),
        ]
        assert _rows(con, "clean.social") == []


def test_every_file_is_recorded_and_reconciled(tmp_path: Path, bad_day: Path):
    with connect(tmp_path / "w.duckdb") as con:
        _ingest_validate(con, bad_day, DAY)
        columns = "path, status, rows_read, rows_loaded, rows_quarantined, missing_columns, extra_columns"
        assert _rows(con, "ops.ingest_files", columns) == [
            ("interactions/ds=2026-01-03/_SUCCESS", "ignored", 0, 0, 0, [], []),
            ("interactions/ds=2026-01-03/a.csv", "loaded", 8, 1, 7, [], []),
            ("interactions/ds=2026-01-03/b.jsonl", "loaded", 3, 1, 2, [], ["color"]),
            ("interactions/ds=2026-01-03/c.parquet", "failed", None, None, None, [], []),
            ("interactions/ds=2026-01-03/d.csv", "loaded", 2, 0, 2, ["item_id"], []),
            ("item_entities/ds=2026-01-03/links.csv", "loaded", 1, 0, 1, [], []),
            ("kg/ds=2026-01-03/triples.jsonl", "loaded", 1, 0, 1, [], []),
            ("social/ds=2026-01-03/edges.csv", "loaded", 2, 0, 2, [], []),
            ("social/ds=2026-01-03/retry", "failed", None, None, None, [], []),
        ]
        _assert_files_reconcile(con)
        errors = dict(_rows(con, "ops.ingest_files", "path, error"))
        failure = errors.pop("interactions/ds=2026-01-03/c.parquet")
        assert failure and "\n" not in failure  # one line, with the reader's reason
        assert errors.pop("interactions/ds=2026-01-03/_SUCCESS") == "marker file: names starting with '.' or '_' are not read"
        assert errors.pop("social/ds=2026-01-03/retry") == "a folder inside a day folder; files in sub-folders are not read"
        assert set(errors.values()) == {None}


def test_ingest_and_validate_twice_leaves_identical_tables(tmp_path: Path):
    landing = tmp_path / "landing"
    _land_clean_day(landing, DAY_2)
    _land_bad_day(landing, DAY)
    with connect(tmp_path / "w.duckdb") as con:
        _ingest_validate(con, landing, DAY_2)
        _ingest_validate(con, landing, DAY)
        first = _snapshot(con)
        assert all(rows for rows in first.values())  # every table has rows to compare
        _ingest_validate(con, landing, DAY)
        _ingest_validate(con, landing, DAY_2)
        assert _snapshot(con) == first


def test_a_day_left_ingested_but_not_validated_is_validated_from_raw_as_one_pass_would(tmp_path: Path):
    """What a run of the two-transaction ingest left when it died between ingesting a day and validating it (or what
    an older version left): raw rows and ops.ingest_files committed, the day ``ingested``, nothing in clean or
    quarantine. Resuming reads none of its files again, checks their raw rows, and ends exactly where one pass over
    the same landing ends, with a late file read in between the kept ones."""
    landing = tmp_path / "landing"
    _land_bad_day(landing, DAY)
    with connect(tmp_path / "resumed.duckdb") as con:
        ingest_partition(con, landing, DAY)
        with transaction(con):
            for table in sorted(PARTITIONED_TABLES):
                if table.startswith(("clean.", "quarantine.")):
                    con.execute(f"delete from {table}")
            con.execute("update ops.ingest_files set rows_loaded = null, rows_quarantined = null")
            mark_day(con, DAY, "ingested")
        late = "interactions/ds=2026-01-03/b2.csv"  # between b.jsonl and c.parquet, both kept
        _land(landing, "interactions", DAY, "b2.csv", _events(f"u7,i7,view,,{GOOD_TS}", "u7,,view,,"))
        assert days_to_ingest(con, landing, DAY_4) == [DAY, DAY_4]
        resumed = ingest_partition(con, landing, DAY)
        assert day_states(con, DAY) == {DAY: "validated"}
        assert late not in resumed.skipped
        assert resumed.skipped == [f.path for f in resumed.files if f.sha256 and f.path != late]
        got = _snapshot(con)
    with connect(tmp_path / "one-pass.duckdb") as con:
        one_pass = ingest_partition(con, landing, DAY)
        assert one_pass.skipped == []
        assert _snapshot(con) == got
    assert resumed.validation == one_pass.validation
    assert [v.rows_read for v in one_pass.validation] == [15, 2, 1, 1]


def test_relanding_a_changed_day_replaces_only_that_day(tmp_path: Path):
    landing = tmp_path / "landing"
    old = _land(landing, "interactions", DAY_1, "events.csv", _events(f"u1,i1,view,,{GOOD_TS}", f"u1,,view,,{GOOD_TS}"))
    _land(landing, "interactions", DAY_2, "events.csv", _events(f"u2,i2,view,,{GOOD_TS}", f",i2,view,,{GOOD_TS}"))
    with connect(tmp_path / "w.duckdb") as con:
        _ingest_validate(con, landing, DAY_1)
        _ingest_validate(con, landing, DAY_2)
        day_2 = {table: _rows(con, table, ds=DAY_2) for table in sorted(PARTITIONED_TABLES)}

        # day 1 arrives again, corrected and under a new name
        old.unlink()
        _land(landing, "interactions", DAY_1, "events-v2.csv", _events(f"u1,i1,view,,{GOOD_TS}", f"u1,i3,view,,{GOOD_TS}"))
        _ingest_validate(con, landing, DAY_1)

        assert _rows(con, "clean.interactions", "ds, source_file, source_line, user_id, item_id") == [
            (DAY_1, "interactions/ds=2026-01-01/events-v2.csv", 2, "u1", "i1"),
            (DAY_1, "interactions/ds=2026-01-01/events-v2.csv", 3, "u1", "i3"),
            (DAY_2, "interactions/ds=2026-01-02/events.csv", 2, "u2", "i2"),
        ]
        assert _rows(con, "raw.interactions", "source_file, source_line", ds=DAY_1) == [
            ("interactions/ds=2026-01-01/events-v2.csv", 2),
            ("interactions/ds=2026-01-01/events-v2.csv", 3),
        ]
        assert _rows(con, "quarantine.interactions", "ds, source_file", ds=DAY_1) == []
        assert _rows(con, "ops.ingest_files", "path", ds=DAY_1) == [("interactions/ds=2026-01-01/events-v2.csv",)]
        assert {table: _rows(con, table, ds=DAY_2) for table in sorted(PARTITIONED_TABLES)} == day_2


# ---------------------------------------------------------------------------------------------------------------
# Which days to ingest
# ---------------------------------------------------------------------------------------------------------------


def test_days_to_ingest_catches_up_then_only_today_then_a_changed_day(tmp_path: Path):
    landing = tmp_path / "landing"
    day_1_file = _land(landing, "interactions", DAY_1, "events.csv", _events(f"u1,i1,view,,{GOOD_TS}"))
    _land(landing, "kg", DAY_2, "triples.jsonl", _jsonl({"head": "a", "relation": "r", "tail": "b"}))
    _land(landing, "interactions", DAY, "events.csv", _events(f"u1,i2,view,,{GOOD_TS}"))
    _land(landing, "interactions", DAY_4, "events.csv", _events(f"u1,i3,view,,{GOOD_TS}"))  # after ds
    with connect(tmp_path / "w.duckdb") as con:
        assert days_to_ingest(con, landing, DAY) == [DAY_1, DAY_2, DAY]
        for day in days_to_ingest(con, landing, DAY):
            _ingest_validate(con, landing, day)
        assert days_to_ingest(con, landing, DAY) == [DAY]

        day_1_file.write_text(_events(f"u1,i1,click,,{GOOD_TS}"), encoding="utf-8")
        assert days_to_ingest(con, landing, DAY) == [DAY_1, DAY]
        _land(landing, "social", DAY_2, "late.csv", "src_user_id,dst_user_id\nu1,u2\n")  # a late-arriving file
        assert days_to_ingest(con, landing, DAY) == [DAY_1, DAY_2, DAY]


def test_days_to_ingest_settles_after_ingesting_a_day_without_data_files(tmp_path: Path):
    landing = tmp_path / "landing"
    _land(landing, "interactions", DAY_1, "events.csv", _events(f"u1,i1,view,,{GOOD_TS}"))
    _land(landing, "interactions", DAY_2, "_SUCCESS", "")
    with connect(tmp_path / "w.duckdb") as con:
        for day in days_to_ingest(con, landing, DAY):
            _ingest_validate(con, landing, day)
        assert days_to_ingest(con, landing, DAY) == [DAY]


def test_missing_landing_root_is_a_landing_error_naming_the_path(tmp_path: Path):
    missing = tmp_path / "no-such-landing"
    with connect(tmp_path / "w.duckdb") as con, pytest.raises(LandingError, match=str(missing)):
        ingest_partition(con, missing, DAY)


def test_csv_source_line_is_the_physical_line_after_a_multiline_field(tmp_path: Path):
    landing = tmp_path / "landing"
    _land(landing, "interactions", DAY, "events.csv", INTERACTIONS_HEADER + (
        f"u1,\"item\none\",view,,{GOOD_TS}\n"   # lines 2-3: a quoted item_id with a newline in it
        f"u2,i2,view,,yesterday\n"              # line 4
    ))  # fmt: skip
    with connect(tmp_path / "w.duckdb") as con:
        _ingest_validate(con, landing, DAY)
        assert _rows(con, "quarantine.interactions", "source_line, rule") == [(4, "timestamp_parses")]


# ---------------------------------------------------------------------------------------------------------------
# A day is validated in chunks
# ---------------------------------------------------------------------------------------------------------------


def test_the_chunk_plan_covers_every_row_once():
    # (file, rows, first line, last line): two small files share a chunk, a large one is split by lines
    spans = [("a.csv", 3, 2, 4), ("b.csv", 2, 2, 3), ("c.csv", 10, 2, 13), ("d.csv", 1, 2, 2)]
    assert validate._chunk_plan(spans, 5) == [
        ("a.csv", "b.csv", 2, 4), ("c.csv", "c.csv", 2, 7), ("c.csv", "c.csv", 8, 13), ("d.csv", "d.csv", 2, 2),
    ]  # fmt: skip
    assert validate._chunk_plan([("a.csv", 7, 2, 20)], 5) == [("a.csv", "a.csv", 2, 11), ("a.csv", "a.csv", 12, 20)]
    assert validate._chunk_plan([], 5) == []
    # aligned: each range a multiple of 4 lines but the last
    assert validate._chunk_plan([("a.csv", 11, 2, 12)], 5, align=4) == [
        ("a.csv", "a.csv", 2, 5), ("a.csv", "a.csv", 6, 9), ("a.csv", "a.csv", 10, 12),
    ]  # fmt: skip


def test_validating_in_chunks_of_two_rows_gives_the_same_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    landing = tmp_path / "landing"
    _land_clean_day(landing, DAY_2)
    _land_bad_day(landing, DAY)
    _land(landing, "interactions", DAY, "e.csv", _events(*(f"u{n},i{n},view,,{GOOD_TS}" for n in range(7)), "u1,,view,,"))
    results = {}
    for chunk_rows in (validate.CHUNK_ROWS, 2):
        monkeypatch.setattr(validate, "CHUNK_ROWS", chunk_rows)
        with connect(tmp_path / f"w{chunk_rows}.duckdb") as con:
            summaries = [*ingest_partition(con, landing, DAY_2).validation, *ingest_partition(con, landing, DAY).validation]
            results[chunk_rows] = (summaries, _snapshot(con))
    assert results[2] == results[validate.CHUNK_ROWS]
    assert results[2][1]["quarantine.interactions"]  # the comparison covers quarantined rows too


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_a_jsonl_record_after_blank_lines_keeps_its_own_line_number(tmp_path, gzipped):
    import gzip

    from gnnrec.tasks.data.ingest import read_landed_file

    text = b'{"head": "ent:1"}\n\n{"head": "ent:2"}\n   \n\n{"head": "ent:3"}'
    path = tmp_path / ("triples.jsonl.gz" if gzipped else "triples.jsonl")
    path.write_bytes(gzip.compress(text) if gzipped else text)
    frame, lines, malformed = read_landed_file(path)
    assert frame["head"].to_list() == ["ent:1", "ent:2", "ent:3"] and malformed is None
    assert lines.to_list() == [1, 3, 6]  # as an operator counts them in an editor
