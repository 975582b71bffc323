"""The data contracts inside the daily flow: a day with ~3% bad rows publishes and its Prefect artifact says what
was quarantined and why; a day with a critical failure stops before training and leaves the published lists alone."""

from __future__ import annotations

import json
from datetime import date, timedelta

import duckdb
import pytest

from gnnrec.flows.daily import run_daily
from gnnrec.flows.params import DailyParams
from gnnrec.tasks.data.demo import generate_demo_world
from gnnrec.tasks.data.policy import DataContractError

START = date(2026, 5, 1)
DAYS = 4
DS = START + timedelta(days=DAYS - 1)


def _artifact(key: str) -> tuple[str, str]:
    """The newest artifact with ``key``, read back through the Prefect API: (its markdown, its description)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    newest = max(artifacts, key=lambda a: a.created)
    return newest.data, newest.description


@pytest.fixture(scope="module")
def contract_runs(prefect_harness, tmp_path_factory):
    """A small demo world and the parameters of a quick run over its last day (the tests run in order: the first
    publishes, the second is refused and must leave that publication alone)."""
    root = tmp_path_factory.mktemp("contracts")
    landing, db = root / "landing", root / "data" / "gnnrec.duckdb"
    generate_demo_world(landing, start=START, days=DAYS, users=200, items=100, seed=3)
    params = DailyParams(ds=DS, model="mf", top_k=10, epochs=2, embedding_dim=8, landing=landing, db=db)
    return landing, db, params


def test_a_day_with_three_percent_bad_rows_publishes_and_its_artifact_lists_the_reasons(contract_runs):
    landing, db, params = contract_runs
    from gnnrec.tasks.data.ingest import read_landed_file

    day_dir = landing / "interactions" / f"ds={DS.isoformat()}"
    (generated,) = list(day_dir.iterdir())
    # ~3% of the day's rows, bad in two ways, in a file of their own next to the generated one
    rows = read_landed_file(generated)[0].height
    bad = max(2, round(rows * 0.03 / 0.97))
    out_of_range = bad // 2
    lines = [f"u-bad{n},sku-bad{n},rate,11,{DS.isoformat()}T08:00:00Z" for n in range(out_of_range)]
    lines += [f",sku-bad{n},view,,{DS.isoformat()}T08:00:00Z" for n in range(bad - out_of_range)]
    (day_dir / "late.csv").write_text("user_id,item_id,event,rating,ts\n" + "\n".join(lines) + "\n", encoding="utf-8")

    result = run_daily(params)

    assert result.published is not None and result.published.rows > 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from recs.latest_topk where ds = ? and model = 'mf'", [DS]).fetchone()[0] == result.published.rows
        assert con.execute("select status from ops.runs where run_id = ?", [result.run_id]).fetchone() == ("completed",)
        share = con.execute(
            "select sum(rows_quarantined) / sum(rows_read) from ops.ingest_files where ds = ? and source = 'interactions'", [DS]
        ).fetchone()[0]
        recorded = con.execute(
            "select count(*), count(*) filter (where critical) from ops.validation_results where run_id = ? and ds = ?",
            [result.run_id, DS],
        ).fetchone()
    assert 0.02 < share < 0.05
    assert recorded[0] > 0 and recorded[1] >= 1

    # one artifact per source under a stable key, its findings readable in the UI itself
    markdown, description = _artifact("data-contracts-interactions")
    assert description == f"data contracts of interactions for {DS.isoformat()}"
    quarantined = [line for line in markdown.splitlines() if line.endswith("| quarantined |")]
    assert sorted(quarantined) == [
        f"| row rule | not_nullable | {bad - out_of_range} rows | quarantined |",
        f"| row rule | rating_number_in_0_5 | {out_of_range} rows | quarantined |",
    ]
    assert f"{bad:,} quarantined." in markdown and "All rules met" not in markdown
    assert "data_docs/index.html`" in markdown and "file://" not in markdown
    assert (db.parent / "data_docs" / "index.html").is_file()
    social, _ = _artifact("data-contracts-social")  # a clean source says so rather than showing an empty table
    assert "**All rules met.**" in social and " 0 quarantined." in social


def test_a_day_with_a_critical_failure_stops_before_training_and_leaves_the_published_lists(contract_runs):
    landing, db, params = contract_runs
    with duckdb.connect(str(db), read_only=True) as con:
        before = con.execute("select * from recs.latest_topk order by all").fetchall()
        publications = con.execute("select * from recs.publications order by all").fetchall()
    assert before  # the first test published

    next_day = DS + timedelta(days=1)
    day_dir = landing / "interactions" / f"ds={next_day.isoformat()}"
    day_dir.mkdir(parents=True)
    with duckdb.connect(str(db), read_only=True) as con:
        events = con.execute("select user_id, item_id from clean.interactions where ds = ? limit 40", [DS]).fetchall()
    lines = [f"{user},{item},view,,{next_day.isoformat()}T09:00:00Z" for user, item in events]
    lines += [f"{events[0][0]},{events[1][1]},rate,5,{next_day.isoformat()}T10:00:00Z",
              f"{events[0][0]},{events[1][1]},rate,1,{next_day.isoformat()}T10:00:00Z"]  # fmt: skip
    (day_dir / "events.csv").write_text("user_id,item_id,event,rating,ts\n" + "\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(DataContractError, match="ratings_agree_per_event") as raised:
        run_daily(params.model_copy(update={"ds": next_day}))

    message = str(raised.value)
    assert message.startswith(f"data contract broken on {next_day.isoformat()}; nothing was trained or published:")
    assert f"interactions/ds={next_day.isoformat()}/events.csv:42 " in message
    assert f"interactions/ds={next_day.isoformat()}/events.csv:43 " in message
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select * from recs.latest_topk order by all").fetchall() == before
        assert con.execute("select * from recs.publications order by all").fetchall() == publications
        status, run_message = con.execute("select status, message from ops.runs order by started_at desc limit 1").fetchone()
        # the graph step never ran for the refused day
        assert con.execute("select count(*) from graph.user_ids where first_ds = ?", [next_day]).fetchone() == (0,)
    assert status == "failed" and run_message.startswith("DataContractError: data contract broken on")
    markdown, description = _artifact("data-contracts-interactions")
    assert description == f"data contracts of interactions for {next_day.isoformat()}"
    assert "| expectation | ratings_agree_per_event | " in markdown and markdown.count("| failed (critical) |") == 1
    assert "**The run stopped before training:**" in markdown


def test_a_broken_contract_is_never_retried_but_a_transient_io_error_is():
    from prefect.states import Failed

    from gnnrec.flows.daily import retry_on_transient
    from gnnrec.tasks.data.ingest import LandingError

    assert retry_on_transient(None, None, Failed(data=DataContractError("over budget"))) is False
    assert retry_on_transient(None, None, Failed(data=LandingError("outside the landing root"))) is False
    assert retry_on_transient(None, None, Failed(data=OSError("disk busy"))) is True
