"""The poisoning attacks write exactly what they say: the counts, the targets, ID shapes, the rules of each kind,
byte-identical files for a seed, and one clear line with exit code 2 for a bad option."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from gnnrec.flows.cli import main
from gnnrec.tasks.data.demo import generate_demo_world
from gnnrec.tasks.security.attacks import Attack, AttackError, fake_ids, read_history, write_attack

START = date(2026, 3, 1)
DAYS = 4
DS = date(2026, 3, 5)  # the day after the world: only fake rows land on it


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("attacks") / "landing"
    generate_demo_world(root, start=START, days=DAYS, users=300, items=120, seed=5)
    return root


@pytest.fixture(scope="module")
def history(landing):
    return read_history(landing, DS)


def _cold_items(history, n: int) -> tuple[str, ...]:
    """``n`` items from the least popular quarter: what a push attack promotes."""
    popularity = history.interactions.group_by("item_id").agg(pl.col("user_id").n_unique()).sort("user_id", "item_id")
    return tuple(popularity.get_column("item_id")[: popularity.height // 4].to_list()[:n])


def _written(landing: Path, kind: str, seed: int, source: str = "interactions") -> pl.DataFrame:
    return pl.read_csv(landing / source / f"ds={DS.isoformat()}" / f"attack-{kind}-{seed}.csv", infer_schema=False)


@pytest.mark.parametrize("kind", ["random", "average", "bandwagon"])
def test_shilling_profiles_hold_the_targets_at_the_top_and_exactly_filler_other_items(landing, history, kind):
    targets = _cold_items(history, 2)
    summary = write_attack(landing, Attack(kind, DS, targets, fake_users=7, filler=5, seed=1))
    rows = _written(landing, kind, 1).with_columns(pl.col("rating").cast(pl.Float64))

    assert summary.rows == {"interactions": 7 * (2 + 5)} and rows.height == 7 * 7
    assert sorted(rows.get_column("user_id").unique()) == sorted(summary.fake_users) and len(summary.fake_users) == 7
    per_user = rows.group_by("user_id").agg(pl.col("item_id").n_unique().alias("items"), pl.col("item_id").is_in(targets).sum().alias("targets"))
    assert per_user.get_column("items").to_list() == [7] * 7 and per_user.get_column("targets").to_list() == [2] * 7
    assert rows.filter(pl.col("item_id").is_in(targets)).get_column("rating").unique().to_list() == [5.0]
    assert rows.get_column("event").unique().to_list() == ["rate"]  # the event the history carries ratings on
    assert set(rows.get_column("ts").str.slice(0, 10).unique()) == {DS.isoformat()}
    real = set(history.interactions.get_column("user_id"))
    assert not real & set(summary.fake_users)
    assert all(u.startswith("u-") and len(u) == len("u-0123abcd") for u in summary.fake_users)
    fillers = rows.filter(pl.col("item_id").is_in(targets).not_())
    if kind == "bandwagon":
        popular = history.interactions.group_by("item_id").agg(pl.col("user_id").n_unique().alias("n")).sort(
            ["n", "item_id"], descending=[True, False]).filter(pl.col("item_id").is_in(targets).not_()).get_column("item_id")
        assert set(fillers.get_column("item_id")) <= set(popular.head(20))  # the 20 most popular (3 x 5, at least 20)
        assert fillers.get_column("rating").unique().to_list() == [5.0]
    else:
        assert fillers.get_column("rating").is_between(1, 5).all() and fillers.get_column("rating").n_unique() > 1


def test_the_same_seed_writes_the_same_bytes_and_another_seed_other_users(landing, history, tmp_path):
    targets = _cold_items(history, 1)
    path = landing / "interactions" / f"ds={DS.isoformat()}" / "attack-average-2.csv"
    write_attack(landing, Attack("average", DS, targets, fake_users=4, seed=2))
    first = path.read_bytes()
    write_attack(landing, Attack("average", DS, targets, fake_users=4, seed=2))
    assert path.read_bytes() == first
    other = write_attack(landing, Attack("average", DS, targets, fake_users=4, seed=3))
    assert set(other.fake_users) != set(pl.read_csv(path).get_column("user_id"))


def test_social_fakes_take_the_targets_and_befriend_users_near_their_audience_both_ways(landing, history):
    targets = _cold_items(history, 1)
    summary = write_attack(landing, Attack("social", DS, targets, fake_users=3, filler=4, seed=4))
    edges, rows = _written(landing, "social", 4, "social"), _written(landing, "social", 4)

    assert summary.rows == {"interactions": 3, "social": 3 * 4 * 2}
    assert rows.get_column("item_id").to_list() == list(targets) * 3
    fakes = set(summary.fake_users)
    out = edges.filter(pl.col("src_user_id").is_in(fakes))
    assert out.group_by("src_user_id").len().get_column("len").to_list() == [4] * 3
    back = edges.filter(pl.col("dst_user_id").is_in(fakes)).select(pl.col("dst_user_id").alias("src_user_id"), pl.col("src_user_id").alias("dst_user_id"))
    assert out.select("src_user_id", "dst_user_id").sort(pl.all()).equals(back.sort(pl.all()))
    # every friend is a real user who shares an item with someone who took a target, and took none themselves
    audience = history.interactions.filter(pl.col("item_id").is_in(targets)).get_column("user_id").to_list()
    audience_items = history.interactions.filter(pl.col("user_id").is_in(audience)).get_column("item_id").to_list()
    near = set(history.interactions.filter(pl.col("item_id").is_in(audience_items)).get_column("user_id")) - set(audience)
    assert set(out.get_column("dst_user_id")) <= near


def test_kg_links_the_target_entity_to_entities_of_popular_items_through_known_relations(landing, history):
    (target,) = _cold_items(history, 1)
    summary = write_attack(landing, Attack("kg", DS, (target,), fake_users=6, seed=5))
    triples = _written(landing, "kg", 5, "kg")
    entity = dict(history.item_entities.iter_rows())[target]

    assert summary.rows == {"kg": 6} and summary.fake_users == ()
    assert triples.get_column("head").to_list() == [entity] * 6
    assert set(triples.get_column("relation")) <= set(history.kg.get_column("relation"))
    assert triples.select("relation", "tail").unique().height == 6
    existing = history.kg.filter(pl.col("head") == entity).select("relation", "tail")
    assert triples.select("relation", "tail").join(existing, on=["relation", "tail"]).is_empty()
    popular = history.interactions.group_by("item_id").agg(pl.col("user_id").n_unique().alias("n")).sort(
        ["n", "item_id"], descending=[True, False]).head(50).join(history.item_entities, on="item_id")
    reached = history.kg.filter(pl.col("head").is_in(popular.get_column("entity_id").to_list())).select("relation", "tail")
    assert triples.select("relation", "tail").join(reached.unique(), on=["relation", "tail"]).height == 6


def test_copy_fakes_replay_real_profiles_plus_the_targets(landing, history):
    targets = _cold_items(history, 1)
    summary = write_attack(landing, Attack("copy", DS, targets, fake_users=5, seed=6))
    rows = _written(landing, "copy", 6)
    profiles = history.interactions.group_by("user_id").agg(pl.col("item_id").unique().sort())

    copied = rows.filter(pl.col("item_id").is_in(targets).not_()).group_by("user_id").agg(pl.col("item_id").unique().sort())
    real_profiles = {tuple(items) for items in profiles.get_column("item_id").to_list()}
    assert copied.height == 5 and all(tuple(items) in real_profiles for items in copied.get_column("item_id").to_list())
    assert rows.filter(pl.col("item_id").is_in(targets)).get_column("user_id").sort().to_list() == sorted(summary.fake_users)
    cropped = write_attack(landing, Attack("copy", DS, targets, fake_users=5, filler=2, seed=6))
    assert cropped.rows == {"interactions": 5 * 3}


def test_fake_ids_follow_the_real_ids_shape():
    rng = np.random.default_rng(0)
    assert fake_ids(["1", "2", "943"], 3, rng) == ["944", "945", "946"]
    hexed = fake_ids(["u-00ab12cd", "u-ffee0011"], 2, rng)
    assert all(h.startswith("u-") and len(h) == 10 and int(h[2:], 16) >= 0 for h in hexed)


def test_a_bad_option_is_one_line_and_exit_code_2(landing, history, capsys):
    (target,) = _cold_items(history, 1)
    cases = {
        ("random", "--target", "sku-none", "--fake-users", "3"): "--target: sku-none not an item of the landed history",
        ("random", "--target", target, "--fake-users", "0"): "--fake-users must be at least 1, got 0",
        ("kg", "--target", target, "--fake-users", "3", "--filler", "2"): "--filler does not apply to kg",
        ("random", "--target", target, "--fake-users", "3", "--filler", "100000"): "--filler 100000: only",
        ("random", "--target", f"{target},{target}", "--fake-users", "3"): "named twice",
    }
    for args, message in cases.items():
        with pytest.raises(SystemExit) as exit_:
            main(["attack", *args, "--landing", str(landing), "--ds", DS.isoformat()])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and err.count("\n") == 1, err
    with pytest.raises(AttackError, match="unknown attack kind"):
        Attack("sybil", DS, (target,), 1)


def test_the_command_prints_what_it_wrote(landing, history, capsys):
    (target,) = _cold_items(history, 1)
    assert main(["attack", "random", "--landing", str(landing), "--ds", DS.isoformat(), "--target", target,
                 "--fake-users", "2", "--filler", "3", "--seed", "9"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.startswith(f"attack random on {DS} (seed 9) pushing {target}: 2 fake users (") and "8 interactions rows" in out
