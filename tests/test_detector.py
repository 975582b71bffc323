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
from gnnrec.tasks.security.detector import ENTITY_RULE, USER_RULE, EntitySignals, UserSignals, release, score_entities, score_users

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
    validation = steps.ingest(db, landing, ds).validation
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


# The detector's parts, each switched off on a hand-built day where it matters (bench/detector_ablation.py measures
# them at scale). Rows go straight into ``clean``: the scores read nothing else.
P = [f"p-{k:02d}" for k in range(30)]
TARGET = "t-00"
SIGNAL_FAKES = [f"f-{k}" for k in range(8)]


def _clean_rows(con, table: str, rows: list[tuple]) -> None:
    columns = {"interactions": "ds, source_file, source_line, user_id, item_id, event, ts",
               "kg": "ds, source_file, source_line, head, relation, tail",
               "item_entities": "ds, source_file, source_line, item_id, entity_id"}[table]  # fmt: skip
    values = [(ds, "hand", line, *rest) + ((datetime(ds.year, ds.month, ds.day, 10),) if table == "interactions" else ())
              for line, (ds, *rest) in enumerate(rows)]  # fmt: skip
    con.executemany(f"insert into clean.{table} ({columns}) values ({', '.join('?' * len(values[0]))})", values)


@pytest.fixture
def signal_day(tmp_path):
    # Day 1: 60 accounts debut with 3 of 30 items each (every item 6 times). Day 2: one returning account takes the
    # target, 19 take p-29; 8 fakes take the target and p-00; genuine newcomers: n-0 takes p-00 and p-01, n-1 and
    # n-2 take p-02.
    day1 = [(DAY1, f"o-{k:02d}", P[(k + step) % 30]) for k in range(60) for step in (0, 7, 13)]
    day2 = [(DAY2, "o-00", TARGET)] + [(DAY2, f"o-{k:02d}", P[29]) for k in range(1, 20)]
    day2 += [(DAY2, f, item) for f in SIGNAL_FAKES for item in (TARGET, P[0])]
    day2 += [(DAY2, "n-0", P[0]), (DAY2, "n-0", P[1]), (DAY2, "n-1", P[2]), (DAY2, "n-2", P[2])]
    with connect(tmp_path / "signals.duckdb") as con:
        _clean_rows(con, "interactions", [(ds, u, i, "click") for ds, u, i in day1 + day2])
        yield con


def _tail(k: int, expected: float) -> float:
    return round(-math.log10(poisson.sf(k - 1, expected)), 6)


def _scores(con, min_group: int = 5, **switches) -> dict[str, float]:
    scores = score_users(con, DAY2, min_group, 5.0, UserSignals(**switches))
    return {u: round(s, 6) for u, s in scores.iter_rows()}


def test_each_account_signal_switched_off_changes_the_scores_as_computed_by_hand(signal_day):
    # 11 new accounts, 20 returning, 60 debut profiles of 3 items, 31 items: the prior is 3/31 per item. Every item
    # of day 1 was in 6 debut profiles; the target in none, and one returning account took it.
    new, prior = 11, 3 / 31
    debut = {"target": 10 * prior / 70, "p": (6 + 10 * prior) / 70}
    day = {"target": (1 + 10 * debut["target"]) / 30, "p00": 10 * debut["p"] / 30}
    fake_burst, filler_burst = _tail(8, new * day["target"]), _tail(9, new * debut["p"])
    assert fake_burst > filler_burst > 5.0  # the target bursts first; p-00 (8 fakes and n-0) would burst too

    # Production: the fakes score the target's burst and are set aside, so p-00 no longer bursts and n-0 scores 0.
    assert _scores(signal_day) == {**dict.fromkeys(SIGNAL_FAKES, fake_burst), "n-0": 0.0, "n-1": 0.0, "n-2": 0.0}
    # One round: n-0 takes p-00's burst with the fakes and crosses the threshold with them.
    assert _scores(signal_day, set_aside=False) == {**dict.fromkeys(SIGNAL_FAKES, fake_burst), "n-0": filler_burst, "n-1": 0.0, "n-2": 0.0}
    # Without the day's rate the returning account's interest in the target no longer counts.
    assert _scores(signal_day, day_rate=False)[SIGNAL_FAKES[0]] == _tail(8, new * debut["target"])
    # Without the debut rate p-00, in 6 debut profiles but taken by no returning account today, looks rare and
    # bursts first: n-0 is flagged with the fakes, all with p-00's surprise.
    p00_alone = _tail(9, new * 10 * prior / 30)
    assert _scores(signal_day, debut_rate=False) == {**dict.fromkeys([*SIGNAL_FAKES, "n-0"], p00_alone), "n-1": 0.0, "n-2": 0.0}
    # Raw shares: the target's rate is the returning accounts' 1 in 20 alone.
    assert _scores(signal_day, prior=False)[SIGNAL_FAKES[0]] == _tail(8, new * 1 / 20)
    # min_group 1: items taken by fewer than 5 new accounts score their takers too.
    assert _scores(signal_day, min_group=1) == {
        **dict.fromkeys(SIGNAL_FAKES, fake_burst), "n-0": _tail(1, new * debut["p"]), "n-1": _tail(2, new * debut["p"]),
        "n-2": _tail(2, new * debut["p"]),
    }  # fmt: skip


def test_an_item_no_earlier_account_took_is_infinitely_surprising_without_the_prior(signal_day):
    _clean_rows(signal_day, "interactions", [(DAY2, f"z-{k}", "brand-new", "click") for k in range(5)])
    assert _scores(signal_day, prior=False)["z-0"] == math.inf
    assert 0 < _scores(signal_day)["z-0"] < math.inf


def test_each_entity_signal_switched_off_changes_the_scores(tmp_path):
    # Day 1: p-00 taken by 4 accounts, p-01 by 3, p-02 by 2, the cold c-00 by 1 (c-00 and p-02 are the less popular
    # half). Entities: e-p00 (genre g-1, maker m-1), e-p01 (genre g-2), e-c00 (genre g-9). Day 2: e-c00 copies
    # g-1 and m-1 and adds its own tag; e-p01, a popular item's entity, copies m-1; e-new (the new item n-00's)
    # copies g-1.
    day1 = [(DAY1, f"o-{k}", item, "click") for item, takers in (("p-00", 4), ("p-01", 3), ("p-02", 2), ("c-00", 1)) for k in range(takers)]
    links = [(DAY1, "p-00", "e-p00"), (DAY1, "p-01", "e-p01"), (DAY1, "c-00", "e-c00"), (DAY2, "n-00", "e-new")]
    kg = [(DAY1, "e-p00", "has_genre", "g-1"), (DAY1, "e-p00", "made_by", "m-1"), (DAY1, "e-p01", "has_genre", "g-2"), (DAY1, "e-c00", "has_genre", "g-9")]
    kg += [(DAY2, "e-c00", "has_genre", "g-1"), (DAY2, "e-c00", "made_by", "m-1"), (DAY2, "e-c00", "has_tag", "t-5")]
    kg += [(DAY2, "e-p01", "made_by", "m-1"), (DAY2, "e-new", "has_genre", "g-1")]
    with connect(tmp_path / "entities.duckdb") as con:
        _clean_rows(con, "interactions", day1)
        _clean_rows(con, "item_entities", links)
        _clean_rows(con, "kg", kg)

        def scores(**switches) -> dict[str, float]:
            return dict(score_entities(con, DAY2, EntitySignals(**switches)).iter_rows())

        assert scores() == {"e-c00": 2.0}
        assert scores(copied_links=False) == {"e-c00": 3.0}
        assert scores(described_before=False) == {"e-c00": 2.0, "e-new": 1.0}
        assert scores(cold_only=False) == {"e-c00": 2.0, "e-p01": 1.0}


def test_the_account_score_needs_a_rate():
    with pytest.raises(ValueError, match="at least one rate estimate"):
        UserSignals(debut_rate=False, day_rate=False)
