"""A poisoned demo day through the daily flow: the defence quarantines exactly the fake accounts and the target's
promotion in the published lists is cut; with the defence only warning, the same day promotes the target. A
clean world's days quarantine nobody."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import duckdb
import polars as pl
import pytest

from gnnrec.flows.daily import run_daily
from gnnrec.flows.params import DailyParams
from gnnrec.tasks.data.demo import generate_demo_world
from gnnrec.tasks.data.policy import ContractPolicy
from gnnrec.tasks.security.attacks import Attack, read_history, write_attack
from gnnrec.tasks.security.detector import USER_RULE
from gnnrec.tasks.security.measures import detection, target_hit_rate

START = date(2026, 6, 1)
DAYS = 5
DS = START + timedelta(days=DAYS - 1)
FAKES = 60  # 15% of the world's 400 users: enough to lift a cold item into the popularity top 20


@pytest.fixture(scope="module")
def worlds(prefect_harness, tmp_path_factory):
    """One clean demo world, and a copy whose last day also carries a random attack on a cold item."""
    root = tmp_path_factory.mktemp("poisoning")
    clean, poisoned = root / "clean", root / "poisoned"
    generate_demo_world(clean, start=START, days=DAYS, users=400, items=150, seed=21)
    shutil.copytree(clean, poisoned)
    popularity = read_history(poisoned, DS).interactions.group_by("item_id").agg(pl.col("user_id").n_unique().alias("n"))
    target = popularity.sort("n", "item_id").get_column("item_id")[popularity.height // 5]
    summary = write_attack(poisoned, Attack("random", DS, (target,), fake_users=FAKES, filler=10, seed=1))
    return root, clean, poisoned, target, list(summary.fake_users)


def _run(root, landing, name: str, action: str) -> duckdb.DuckDBPyConnection:
    db = root / name / "gnnrec.duckdb"
    params = DailyParams(ds=DS, model="pop", top_k=20, eval_days=0, landing=landing, db=db,
                         contracts=ContractPolicy(defence={"action": action}))  # fmt: skip
    run_daily(params)
    return duckdb.connect(str(db), read_only=True)


def test_the_defence_quarantines_the_fakes_and_cuts_the_targets_promotion(worlds):
    root, _, poisoned, target, fakes = worlds
    with _run(root, poisoned, "defended", "quarantine") as con:
        defended = target_hit_rate(con, DS, "pop", [target], fakes, 20)
        caught = detection(con, DS, fakes)
        quarantined = con.execute(
            "select count(*), count(distinct json_extract_string(record, '$.user_id')) from quarantine.interactions "
            "where ds = ? and rule = ?", [DS, USER_RULE],
        ).fetchone()  # fmt: skip
        published_fakes = con.execute("select count(*) from recs.topk where user_id in ?", [fakes]).fetchone()[0]
    with _run(root, poisoned, "warned", "warn") as con:
        undefended = target_hit_rate(con, DS, "pop", [target], fakes, 20)

    assert (caught.flagged, caught.true_positives) == (FAKES, FAKES)
    assert quarantined == (FAKES * 11, FAKES) and published_fakes == 0
    # Sixty fake accounts lift a cold item into everyone's top 20; caught, it stays where it was.
    assert undefended > 0.9 and defended < 0.05 and undefended - defended > 0.85


def test_a_clean_world_quarantines_nobody(worlds):
    root, clean, *_ = worlds
    with _run(root, clean, "clean", "quarantine") as con:
        flagged = con.execute("select count(*) filter (where flagged), count(*) from ops.suspects").fetchone()
        moved = con.execute("select count(*) from quarantine.interactions where rule = ?", [USER_RULE]).fetchone()[0]
    assert flagged[0] == 0 and flagged[1] > 0 and moved == 0
