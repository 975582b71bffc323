"""The defence on a hand-built two-day world: one planted group of fake accounts on a cold item is flagged exactly
(its score is the hand-computed Poisson tail), its rows move to quarantine and the counts reconcile; releases,
``warn`` and ``stop`` do what they say; a planted KG entity is flagged; the first day scores nobody."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from scipy.stats import poisson

from gnnrec.tasks import steps
from gnnrec.tasks.data.policy import ContractPolicy
from gnnrec.tasks.ops.db import connect, transaction
from gnnrec.tasks.security.detector import ENTITY_RULE, USER_RULE, release

DAY1, DAY2 = date(2026, 2, 1), date(2026, 2, 2)
ITEMS = [f"i-{k:03d}" for k in range(200)]
COLD = "i-199"  # nobody takes it on day 1
OLD = [f"u-{k:03d}" for k in range(100)]
GENUINE_NEW = [f"u-{k:03d}" for k in range(100, 110)]
FAKES = [f"u-{k:03d}" for k in range(110, 118)]


def _interactions() -> dict[date, list[tuple[str, str]]]:
    # Day 1: 100 accounts, 4 items each, never the cold item. Day 2: 50 of them come back with 2 items each, 10
    # genuine newcomers take 3 items each, 8 fakes take the cold item and 2 fillers each, all distinct items.
    day1 = [(u, ITEMS[(3 * k + j * 7) % 190]) for k, u in enumerate(OLD) for j in range(4)]
    day2 = [(u, ITEMS[(5 * k + j * 11) % 190]) for k, u in enumerate(OLD[:50]) for j in range(2)]
    day2 += [(u, ITEMS[(2 * k + j) % 190]) for k, u in enumerate(GENUINE_NEW) for j in range(3)]
    day2 += [(u, item) for k, u in enumerate(FAKES) for item in (COLD, ITEMS[150 + 2 * k], ITEMS[151 + 2 * k])]
    return {DAY1: day1, DAY2: day2}


def _land(landing: Path, source: str, ds: date, header: str, lines: list[str]) -> None:
    folder = landing / source / f"ds={ds.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rows.csv").write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def world(tmp_path) -> tuple[Path, Path]:
    landing, db = tmp_path / "landing", tmp_path / "gnnrec.duckdb"
    for ds, pairs in _interactions().items():
        _land(landing, "interactions", ds, "user_id,item_id,event,ts", [f"{u},{i},click,{ds}T10:00:00Z" for u, i in pairs])
    # The fakes befriend two old accounts each (both ways); two old accounts befriend each other.
    edges = [(f, OLD[k]) for f in FAKES for k in (0, 1)]
    edges = edges + [(b, a) for a, b in edges] + [(OLD[2], OLD[3])]
    _land(landing, "social", DAY2, "src_user_id,dst_user_id", [f"{a},{b}" for a, b in edges])
    return landing, db


def _check(db: Path, landing: Path, ds: date, policy: ContractPolicy = ContractPolicy()):
    steps.ingest(db, landing, ds)
    validation = steps.validate(db, ds)
    return steps.check_data_contracts(db, ds, "test-run", policy, validation, None)


def test_the_planted_group_is_flagged_exactly_and_its_rows_move_to_quarantine(world):
    landing, db = world
    first = _check(db, landing, DAY1)
    day = _check(db, landing, DAY2)

    assert first.screening.scored_users == 0 and first.screening.flagged_users == ()  # nothing to compare with
    assert set(day.screening.flagged_users) == set(FAKES) and day.screening.scored_users == 18
    assert day.screening.quarantined_rows == {"interactions": 8 * 3, "social": 8 * 2 * 2}
    assert not day.breaches
    # The cold item's expected count of new accounts: 18 newcomers at the larger of two smoothed rates, the
    # debut profiles' (0 of 100, plus 10 pseudo-observations at the catalog-wide rate of 4 items per debut) and
    # the day's established users' (0 of 50, plus 10 pseudo-observations at the debut rate).
    catalog = len({item for pairs in _interactions().values() for _, item in pairs})
    debut = (10 * 4 / catalog) / (100 + 10)
    expected = 18 * max(debut, 10 * debut / (50 + 10))
    score = -math.log10(poisson.sf(8 - 1, expected))
    with duckdb.connect(str(db), read_only=True) as con:
        scores = dict(con.execute("select id, score from ops.suspects where ds = ? and kind = 'user'", [DAY2]).fetchall())
        quarantined = con.execute(
            "select distinct json_extract_string(record, '$.user_id'), rule, value from quarantine.interactions where ds = ?", [DAY2]
        ).fetchall()
        in_clean = con.execute("select count(*) from clean.interactions where ds = ? and user_id in ?", [DAY2, FAKES]).fetchone()[0]
        social_left = con.execute("select src_user_id, dst_user_id from clean.social where ds = ?", [DAY2]).fetchall()
        files = con.execute("select rows_read, rows_loaded, rows_quarantined from ops.ingest_files where ds = ? order by path", [DAY2]).fetchall()
        share = con.execute("select observed_value from ops.validation_results where ds = ? and expectation = 'suspected_fake_user_share'", [DAY2]).fetchone()
    assert {u: round(scores[u], 6) for u in FAKES} == {u: round(score, 6) for u in FAKES}
    assert max(scores[u] for u in GENUINE_NEW) < ContractPolicy().defence.threshold
    assert sorted(quarantined) == sorted((u, USER_RULE, f"{score:.2f}") for u in FAKES)
    assert in_clean == 0 and social_left == [(OLD[2], OLD[3])]
    assert files == [(100 + 30 + 24, 100 + 30, 24), (33, 1, 32)]  # interactions, social: read = loaded + quarantined
    assert float(share[0]) == pytest.approx(8 / 18, abs=1e-4)


def test_a_released_account_keeps_its_rows_on_every_later_check(world):
    landing, db = world
    _check(db, landing, DAY1)
    _check(db, landing, DAY2)
    with connect(db) as con, transaction(con):
        assert release(con, DAY2, "user", [FAKES[0]], datetime(2026, 2, 3)) == 1
        assert release(con, DAY2, "user", [FAKES[0]], datetime(2026, 2, 4)) == 0  # once is enough
        assert con.execute("select state from ops.day_progress where ds = ?", [DAY2]).fetchone() == ("ingested",)

    for _ in range(2):  # checking the day again, twice, gives the same day
        day = _check(db, landing, DAY2)
        assert set(day.screening.flagged_users) == set(FAKES[1:]) and day.screening.released == (FAKES[0],)
        with duckdb.connect(str(db), read_only=True) as con:
            kept = con.execute("select count(*) from clean.interactions where ds = ? and user_id = ?", [DAY2, FAKES[0]]).fetchone()[0]
            suspect = con.execute("select flagged, released from ops.suspects where ds = ? and id = ?", [DAY2, FAKES[0]]).fetchone()
            moved = con.execute("select count(*) from quarantine.interactions where ds = ? and rule = ?", [DAY2, USER_RULE]).fetchone()[0]
        assert kept == 3 and suspect == (False, True) and moved == 7 * 3


@pytest.mark.parametrize("action", ["warn", "stop", "off"])
def test_the_policy_warns_stops_or_switches_the_defence_off(world, action):
    landing, db = world
    policy = ContractPolicy(defence={"action": action})
    _check(db, landing, DAY1, policy)
    day = _check(db, landing, DAY2, policy)
    with duckdb.connect(str(db), read_only=True) as con:
        in_clean = con.execute("select count(*) from clean.interactions where ds = ? and user_id in ?", [DAY2, FAKES]).fetchone()[0]
        state = con.execute("select state from ops.day_progress where ds = ?", [DAY2]).fetchone()[0]
    if action == "off":
        assert day.screening.scored_users == 0 and in_clean == 24 and state == "accepted"
    elif action == "warn":
        assert set(day.screening.flagged_users) == set(FAKES) and in_clean == 24 and state == "accepted"
        assert not next(r for r in day.expectations if r.expectation == "suspected_fake_user_share").success
    else:
        assert in_clean == 0 and state == "refused"
        (breach,) = day.breaches
        assert breach.rule == USER_RULE and breach.reason.startswith("8 of 18 new accounts and 0 entities flagged")


def test_new_triples_that_copy_popular_items_onto_a_cold_item_are_flagged(world):
    landing, db = world
    # The ten most popular items of day 1 have entities, each with a genre and a maker. The cold item's entity gets
    # five of the popular items' links on day 2; a new entity gets its own two.
    taken = Counter(item for _, item in _interactions()[DAY1])
    popular, cold_entity = sorted(taken, key=lambda item: (-taken[item], item))[:10], "e-199"
    links = [f"{i},e-{i[2:]}" for i in popular + [COLD]]
    triples = [f"e-{i[2:]},has_genre,g-{k % 3}" for k, i in enumerate(popular)] + [f"e-{i[2:]},made_by,m-{k}" for k, i in enumerate(popular)]
    triples += [f"{cold_entity},has_genre,g-9", f"{cold_entity},made_by,m-99"]
    _land(landing, "item_entities", DAY1, "item_id,entity_id", links)
    _land(landing, "kg", DAY1, "head,relation,tail", triples)
    day2 = [f"{cold_entity},has_genre,g-0", f"{cold_entity},has_genre,g-1", f"{cold_entity},has_genre,g-2"]
    day2 += [f"{cold_entity},made_by,m-{k}" for k in range(2)] + ["e-new,has_genre,g-0", "e-new,made_by,m-0"]
    _land(landing, "kg", DAY2, "head,relation,tail", day2)
    _check(db, landing, DAY1)
    day = _check(db, landing, DAY2)
    assert day.screening.flagged_entities == (cold_entity,)
    with duckdb.connect(str(db), read_only=True) as con:
        moved = con.execute("select count(*), min(value) from quarantine.kg where ds = ? and rule = ?", [DAY2, ENTITY_RULE]).fetchone()
        left = con.execute("select head from clean.kg where ds = ? order by all", [DAY2]).fetchall()
    assert moved == (5, "5") and left == [("e-new",), ("e-new",)]
