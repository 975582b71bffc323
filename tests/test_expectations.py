"""Dataset-level contracts (Great Expectations suites over DuckDB measures) and the policy, on hand-built days:
the exact outcome of each expectation, what ``ops.validation_results`` holds, and when a day is refused."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pydantic
import pytest

from gnnrec.tasks.ops.db import connect
from gnnrec.tasks.data.ingest import days_to_ingest, ingest_partition
from gnnrec.tasks.data.policy import ContractPolicy, DataContractError, SourcePolicy
from gnnrec.tasks.data.quality import check_contracts, contract_report
from gnnrec.tasks.ops.runs import start_run

DAY_1, DAY_2 = date(2026, 1, 2), date(2026, 1, 3)
HEADER = "user_id,item_id,event,rating,ts\n"


def _land(landing: Path, source: str, ds: date, name: str, text: str) -> None:
    path = landing / source / f"ds={ds.isoformat()}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _events(ds: date, *rows: str) -> str:
    """An interactions CSV whose rows are ``user,item,event,rating`` at 10:00 on ``ds`` unless they give a time."""
    return HEADER + "".join(row + ("" if row.count(",") == 4 else f",{ds.isoformat()}T10:00:00Z") + "\n" for row in rows)


def _history(landing: Path) -> None:
    """Day 1: ten users and items, a KG with one relation, links for two of its items."""
    _land(landing, "interactions", DAY_1, "events.csv", _events(DAY_1, *(f"u{n},i{n},view," for n in range(10))))
    _land(landing, "kg", DAY_1, "kg.csv", "head,relation,tail\ne1,has_genre,g1\ne2,has_genre,g1\n")
    _land(landing, "item_entities", DAY_1, "links.csv", "item_id,entity_id\ni1,e1\ni2,e2\n")


def _check(tmp_path: Path, landing: Path, policy: ContractPolicy = ContractPolicy(), run_id: str = "run-1", docs: bool = False):
    """Ingest, validate and check every landed day; return the check of the last one."""
    with connect(tmp_path / "w.duckdb") as con:
        start_run(con, run_id, "test", DAY_2, "pop", {}, datetime(2026, 1, 3, 12))
        for day in (DAY_1, DAY_2):
            validation = ingest_partition(con, landing, day).validation
            docs_dir = tmp_path / "docs" if docs and day == DAY_2 else None
            result = check_contracts(con, day, run_id, policy, validation, docs_dir)
        return result


def _outcomes(day) -> dict[str, tuple[bool, str]]:
    return {r.expectation: (r.success, r.observed_value) for r in day.expectations}


def _failed(day) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {r.expectation: (r.observed_value, r.sample) for r in day.expectations if not r.success}


A = "interactions/ds=2026-01-03/events.csv"


def test_a_clean_day_meets_every_expectation_and_records_them(tmp_path: Path):
    landing = tmp_path / "landing"
    _history(landing)
    _land(landing, "interactions", DAY_2, "events.csv", _events(DAY_2, *(f"u{n},i{n},view," for n in range(8)), "u9,i1,rate,4"))
    day = _check(tmp_path, landing)
    assert _outcomes(day) == {
        "volume_vs_trailing_days": (True, "0.9"),
        "no_duplicate_events": (True, "0"),
        "ratings_agree_per_event": (True, "0"),
        "rating_matches_event_type": (True, "0"),
        "timestamps_inside_the_day": (True, "0"),
        "new_user_share": (True, "0"),
        "new_item_share": (True, "0"),
        "suspected_fake_user_share": (True, "0"),
    }  # social, kg and item_entities landed nothing on day 2: nothing to check
    assert day.breaches == [] and contract_report(day) == []
    with connect(tmp_path / "w.duckdb") as con:
        rows = con.execute(
            "select run_id, ds, source, suite, expectation, success, observed_value, critical "
            "from ops.validation_results where ds = ? order by expectation", [DAY_2],
        ).fetchall()  # fmt: skip
    assert ("run-1", DAY_2, "interactions", "interactions_day", "ratings_agree_per_event", True, "0", True) in rows
    assert ("run-1", DAY_2, "interactions", "row_contracts", "rejection_budget", True, "0", True) in rows
    assert ("run-1", DAY_2, "interactions", "interactions_day", "no_duplicate_events", True, "0", False) in rows
    assert len(rows) == 9


def test_exact_duplicates_and_events_outside_the_day_warn_but_do_not_stop(tmp_path: Path):
    landing = tmp_path / "landing"
    _history(landing)
    _land(landing, "interactions", DAY_2, "events.csv", _events(
        DAY_2, *(f"u{n},i{n},view," for n in range(8)),
        "u1,i1,view,",                             # line 10: an exact copy of line 3
        "u2,i3,view,,2026-01-02T23:59:59Z",        # line 11: the day before
        "u2,i4,view,,2026-01-04T12:00:00Z",        # line 12: the next day (within the future tolerance)
        "u3,i5,rate,",                             # line 13: a rating event without its rating
    ))  # fmt: skip
    day = _check(tmp_path, landing)
    assert _failed(day) == {
        "no_duplicate_events": ("1", (f"{A}:10 u1 i1 view 2026-01-03 10:00:00",)),
        "timestamps_inside_the_day": ("2", (f"{A}:11 2026-01-02 23:59:59", f"{A}:12 2026-01-04 12:00:00")),
        "rating_matches_event_type": ("1", (f"{A}:13 rate rating null",)),
    }
    assert day.breaches == []
    day.raise_if_broken()  # warnings only
    with connect(tmp_path / "w.duckdb") as con:  # nothing lost: every copy is in clean
        assert con.execute("select rows_read, rows_loaded, rows_quarantined from ops.ingest_files where path = ?", [A]).fetchone() == (12, 12, 0)
    assert {(r["name"], r["observed"], r["outcome"]) for r in contract_report(day)} == {
        ("no_duplicate_events", "1", "failed (warning)"),
        ("timestamps_inside_the_day", "2", "failed (warning)"),
        ("rating_matches_event_type", "1", "failed (warning)"),
    }


def test_duplicate_events_with_different_ratings_are_a_critical_failure(tmp_path: Path):
    landing = tmp_path / "landing"
    _history(landing)
    _land(landing, "interactions", DAY_2, "events.csv", _events(DAY_2, *(f"u{n},i{n},view," for n in range(8)), "u1,i2,rate,4", "u1,i2,rate,2"))
    day = _check(tmp_path, landing)
    assert _failed(day) == {
        "ratings_agree_per_event": ("2", (f"{A}:10 u1 i2 rate 2026-01-03 10:00:00 rating 4.0", f"{A}:11 u1 i2 rate 2026-01-03 10:00:00 rating 2.0")),
    }
    with pytest.raises(DataContractError) as raised:
        day.raise_if_broken()
    assert str(raised.value) == (
        "data contract broken on 2026-01-03; nothing was trained or published:\n"
        "  interactions: ratings_agree_per_event: critical expectation failed, observed 2; sample:\n"
        f"      {A}:10 u1 i2 rate 2026-01-03 10:00:00 rating 4.0\n"
        f"      {A}:11 u1 i2 rate 2026-01-03 10:00:00 rating 2.0"
    )


def test_the_policy_decides_what_is_critical(tmp_path: Path):
    landing = tmp_path / "landing"
    _history(landing)
    _land(landing, "interactions", DAY_2, "events.csv", _events(DAY_2, *(f"u{n},i{n},view," for n in range(8)), "u1,i2,rate,4", "u1,i2,rate,2"))
    lenient = ContractPolicy(interactions=SourcePolicy(critical=()))
    assert _check(tmp_path, landing, lenient).breaches == []
    strict = ContractPolicy(interactions=SourcePolicy(critical=("volume_vs_trailing_days",)))
    assert _check(tmp_path, landing, strict, run_id="run-2").breaches == []  # volume is fine that day
    with pytest.raises(pydantic.ValidationError, match="interactions: unknown expectation.s. volume_drop"):
        ContractPolicy(interactions=SourcePolicy(critical=("volume_drop",)))


def test_a_volume_drop_and_a_day_of_new_users_and_items_warn(tmp_path: Path):
    landing = tmp_path / "landing"
    _history(landing)
    _land(landing, "interactions", DAY_1, "more.csv", _events(DAY_1, *(f"u{n},i{n},click," for n in range(10))))
    _land(landing, "interactions", DAY_2, "events.csv", _events(DAY_2, "new-user,new-item,view,"))
    day = _check(tmp_path, landing)
    assert _failed(day) == {"volume_vs_trailing_days": ("0.05", ()), "new_user_share": ("1", ()), "new_item_share": ("1", ())}
    assert day.breaches == []


def test_social_kg_and_links_are_checked_against_what_is_known(tmp_path: Path):
    landing = tmp_path / "landing"
    _history(landing)
    _land(landing, "interactions", DAY_2, "events.csv", _events(DAY_2, *(f"u{n},i{n},view," for n in range(9))))
    _land(landing, "social", DAY_2, "edges.csv", "src_user_id,dst_user_id\nu1,u2\nu1,stranger\n")
    _land(landing, "kg", DAY_2, "kg.csv", "head,relation,tail\ne1,has_genre,g2\ne2,has_genr,g2\n")
    _land(landing, "item_entities", DAY_2, "links.csv", "item_id,entity_id\ni3,e1\nnot-an-item,e2\ni4,e404\n")
    day = _check(tmp_path, landing)
    assert _failed(day) == {
        "edges_between_known_users": ("1", ("social/ds=2026-01-03/edges.csv:3 u1 -> stranger",)),
        "relations_in_known_vocabulary": ("1", ("kg/ds=2026-01-03/kg.csv:3 has_genr",)),
        "links_to_known_items": ("1", ("item_entities/ds=2026-01-03/links.csv:3 not-an-item",)),
        "no_dangling_entities": ("1", ("item_entities/ds=2026-01-03/links.csv:4 e404",)),
    }
    assert day.breaches == []
    assert _outcomes(day)["no_self_loops"] == (True, "0")


def test_over_the_rejection_budget_the_day_is_refused_with_file_line_and_rule(tmp_path: Path):
    landing = tmp_path / "landing"
    _history(landing)
    bad = [f"u{n},i{n},rate,9" for n in range(2)]  # 2 of 20 rows: 10% > 5%
    _land(landing, "interactions", DAY_2, "events.csv", _events(DAY_2, *(f"u{n % 10},i{n},view," for n in range(18)), *bad))
    day = _check(tmp_path, landing)
    assert str(day.error_message()) == (
        "data contract broken on 2026-01-03; nothing was trained or published:\n"
        "  interactions: rating_number_in_0_5 (2): 2 of 20 rows quarantined (10.0%), over the rejection budget of 5.0%; sample:\n"
        f"      {A}:20 rating rating_number_in_0_5 '9'\n"
        f"      {A}:21 rating rating_number_in_0_5 '9'"
    )
    with pytest.raises(DataContractError):
        day.raise_if_broken()
    assert {(r["name"], r["observed"], r["outcome"]) for r in contract_report(day)} == {
        ("rating_number_in_0_5", "2 rows", "quarantined")
    }
    # a wider budget lets the same day through
    wide = ContractPolicy(interactions=SourcePolicy(rejection_budget=0.1, critical=("ratings_agree_per_event",)))
    assert _check(tmp_path, landing, wide, run_id="run-2").breaches == []


def test_an_unreadable_file_stops_the_day_only_when_the_policy_says_so(tmp_path: Path):
    landing = tmp_path / "landing"
    _history(landing)
    _land(landing, "interactions", DAY_2, "events.csv", _events(DAY_2, *(f"u{n},i{n},view," for n in range(9))))
    _land(landing, "social", DAY_2, "edges.parquet", "not parquet")
    assert _check(tmp_path, landing).breaches == []
    strict = ContractPolicy(social=SourcePolicy(fail_on_unreadable_file=True))
    (breach,) = _check(tmp_path, landing, strict, run_id="run-2").breaches
    assert (breach.source, breach.rule) == ("social", "file_readable")
    assert breach.reason.startswith("social/ds=2026-01-03/edges.parquet cannot be read: ComputeError")


def test_a_refused_day_is_checked_again_by_the_next_run(tmp_path: Path):
    landing = tmp_path / "landing"
    _history(landing)
    _land(landing, "interactions", DAY_2, "events.csv", _events(DAY_2, *(f"u{n},i{n},view," for n in range(8)), "u1,i2,rate,4", "u1,i2,rate,2"))
    assert _check(tmp_path, landing).breaches
    day_3 = date(2026, 1, 4)
    with connect(tmp_path / "w.duckdb") as con:
        assert days_to_ingest(con, landing, day_3) == [DAY_2, day_3]
    lenient = ContractPolicy(interactions=SourcePolicy(critical=()))
    _check(tmp_path, landing, lenient, run_id="run-2")  # the operator accepts the day
    with connect(tmp_path / "w.duckdb") as con:
        assert days_to_ingest(con, landing, day_3) == [day_3]


def test_data_docs_keep_and_list_every_day_in_words_and_offline(tmp_path: Path):
    """Each day's check writes its pages into one folder, as the daily runs do: the index lists every day's runs
    by source and day, each page says what its expectations mean, and nothing is loaded from the network."""
    import re

    from gnnrec.tasks.data.expectations import SUITES, description

    landing, docs = tmp_path / "landing", tmp_path / "docs"
    _history(landing)
    _land(landing, "interactions", DAY_2, "events.csv", _events(DAY_2, *(f"u{n},i{n},view," for n in range(9)), "u1,i1,view,"))
    with connect(tmp_path / "w.duckdb") as con:
        start_run(con, "run-1", "test", DAY_2, "pop", {}, datetime(2026, 1, 3, 12))
        for day in (DAY_1, DAY_2):  # two runs, one per day, into the same docs folder
            result = check_contracts(con, day, "run-1", ContractPolicy(), ingest_partition(con, landing, day).validation, docs)
    assert result.data_docs == docs / "index.html"

    pages = {p.relative_to(docs / "validations").parts[:2]: p for p in (docs / "validations").rglob("*.html")}
    assert sorted(pages) == [
        ("interactions_day", "interactions-2026-01-02"), ("interactions_day", "interactions-2026-01-03"),
        ("item_entities_day", "item_entities-2026-01-02"), ("kg_day", "kg-2026-01-02"),
    ]  # fmt: skip
    index = (docs / "index.html").read_text(encoding="utf-8")
    for (_suite, run_name), page in pages.items():
        link = page.relative_to(docs).as_posix()
        assert f'<a href="{link}">{run_name}</a>' in index
    assert index.index("interactions-2026-01-03") < index.index("interactions-2026-01-02")  # newest first
    assert all(f"expectations/{suite.name}.html" in index for suite in SUITES.values())

    page = pages[("interactions_day", "interactions-2026-01-03")].read_text(encoding="utf-8")
    assert "interactions-2026-01-03" in page and "__none__" not in page
    for expectation in SUITES["interactions"].expectations:
        assert description(expectation) in page.replace("&#39;", "'")
    assert description(SUITES["interactions"].expectations[1]) == (
        "No exact duplicate events (same user, item, event, time and rating): the rows that break it are counted, "
        "and the count must be 0 (no_duplicate_events)."
    )
    assert "maximum value must be" not in page

    # Offline: no stylesheet, script, image or font from the network, and the index table is HTML, not a script.
    remote = re.compile(r'<(?:link|script|img)\b[^>]*\b(?:href|src)="(?:https?:)?//|url\([\'"]?(?:https?:)?//')
    for html in (docs / "index.html", docs / "expectations" / "interactions_day.html", *pages.values()):
        text = html.read_text(encoding="utf-8")
        assert not remote.search(text), (html, remote.search(text))
        assert "bootstrapTable(" not in text and "<table" in text
    assert (docs / "static" / "images" / "logo-long.png").is_file()
