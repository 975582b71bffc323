"""The demo world: deterministic bytes, the landing layout, the invariants the pipeline relies on, planted signal."""

from __future__ import annotations

import hashlib
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from gnnrec.tasks.data.demo import DemoSummary, generate_demo_world

START = date(2026, 1, 1)
DAYS = 5
USERS = 300
ITEMS = 200
SEED = 11
SOURCES = ("interactions", "social", "kg", "item_entities")


def _generate(out: Path, *, seed: int = SEED) -> DemoSummary:
    return generate_demo_world(out, start=START, days=DAYS, users=USERS, items=ITEMS, seed=seed)


def _file_hashes(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _read(path: Path) -> pl.DataFrame:
    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.read_ndjson(path)


def _read_source(root: Path, source: str) -> pl.DataFrame:
    """Every partition of one source as strings, with its partition's day in ``ds``."""
    frames = [
        _read(path)
        .with_columns(pl.all().cast(pl.String))
        .with_columns(ds=pl.lit(date.fromisoformat(path.parent.name.removeprefix("ds="))))
        for path in sorted((root / source).glob("ds=*/*"))
    ]
    return pl.concat(frames)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoSummary]:
    out = tmp_path_factory.mktemp("landing")
    return out, _generate(out)


@pytest.fixture(scope="module")
def interactions(world: tuple[Path, DemoSummary]) -> pl.DataFrame:
    return _read_source(world[0], "interactions").with_columns(pl.col("rating").cast(pl.Int64))


def test_same_seed_writes_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    _generate(tmp_path / "a")
    _generate(tmp_path / "b")
    _generate(tmp_path / "c", seed=SEED + 1)
    first, again, other = (_file_hashes(tmp_path / name) for name in ("a", "b", "c"))

    assert first == again
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first)


def test_rerun_replaces_its_partitions_and_leaves_everything_else(tmp_path: Path) -> None:
    _generate(tmp_path)
    expected = _file_hashes(tmp_path)
    (tmp_path / "interactions" / "ds=2026-01-01" / "stale.csv").write_text("user_id\nu-stale\n")
    (tmp_path / "interactions" / "ds=2025-12-31").mkdir()
    (tmp_path / "interactions" / "ds=2025-12-31" / "events.csv").write_text("user_id\nu-older\n")
    (tmp_path / "notes.txt").write_text("keep me")

    _generate(tmp_path)

    rerun = _file_hashes(tmp_path)
    assert rerun.pop("notes.txt") == hashlib.sha256(b"keep me").hexdigest()
    assert "interactions/ds=2025-12-31/events.csv" in rerun
    del rerun["interactions/ds=2025-12-31/events.csv"]
    assert rerun == expected


def test_layout_has_one_file_per_source_and_day_in_the_agreed_format(world: tuple[Path, DemoSummary]) -> None:
    out, summary = world
    days = [START + timedelta(days=offset) for offset in range(DAYS)]
    expected = set()
    for offset, day in enumerate(days):
        events = "events.parquet" if offset % 3 == 2 else "events.csv"
        expected |= {
            f"interactions/ds={day}/{events}",
            f"social/ds={day}/edges.parquet",
            f"kg/ds={day}/triples.jsonl",
            f"item_entities/ds={day}/links.csv",
        }

    assert set(_file_hashes(out)) == expected
    assert summary.days == days


@pytest.mark.parametrize(
    ("pattern", "schema"),
    [
        (
            "interactions/*/events.csv",
            {"user_id": pl.String, "item_id": pl.String, "event": pl.String, "rating": pl.String, "ts": pl.String},
        ),
        (
            "interactions/*/events.parquet",
            {"user_id": pl.String, "item_id": pl.String, "event": pl.String, "rating": pl.Int64, "ts": pl.String},
        ),
        (
            "social/*/edges.parquet",
            {"src_user_id": pl.String, "dst_user_id": pl.String, "weight": pl.Float64, "ts": pl.String},
        ),
        ("kg/*/triples.jsonl", {"head": pl.String, "relation": pl.String, "tail": pl.String}),
        ("item_entities/*/links.csv", {"item_id": pl.String, "entity_id": pl.String}),
    ],
)
def test_every_file_has_the_agreed_columns_and_dtypes(
    world: tuple[Path, DemoSummary], pattern: str, schema: dict[str, pl.DataType]
) -> None:
    paths = sorted(world[0].glob(pattern))

    assert paths
    for path in paths:
        frame = _read(path)
        assert dict(frame.schema) == schema, path
        assert frame.height > 0, path


def test_summary_counts_match_the_files(world: tuple[Path, DemoSummary]) -> None:
    out, summary = world

    assert summary.rows == {source: _read_source(out, source).height for source in SOURCES}
    interacted = _read_source(out, "interactions")["item_id"].n_unique()
    assert summary.rows["item_entities"] == interacted <= ITEMS  # an item nobody interacts with is never linked
    assert (summary.num_users, summary.num_items, summary.num_communities) == (USERS, ITEMS, 4)
    assert len(summary.user_community) == USERS
    assert set(summary.user_community.values()) == set(range(summary.num_communities))


def test_ids_are_unique_hex_strings_not_indices(world: tuple[Path, DemoSummary]) -> None:
    out, summary = world
    links = _read_source(out, "item_entities")

    assert all(pl.Series(list(summary.user_community)).str.contains(r"^u-[0-9a-f]{8}$"))
    assert links["item_id"].str.contains(r"^sku-[0-9a-f]{8}$").all()
    assert links["entity_id"].str.contains(r"^ent:[0-9a-f]{8}$").all()
    assert links["item_id"].n_unique() == links["entity_id"].n_unique() == links.height


def test_every_timestamp_lies_inside_its_partition_day(world: tuple[Path, DemoSummary]) -> None:
    for source in ("interactions", "social"):
        rows = _read_source(world[0], source).with_columns(
            ts=pl.col("ts").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ", strict=True)
        )

        assert rows["ts"].null_count() == 0
        assert (rows["ts"].dt.date() == rows["ds"]).all(), source


def test_ratings_only_on_rate_events_and_within_one_to_five(interactions: pl.DataFrame) -> None:
    rated = interactions.filter(pl.col("event") == "rate")
    unrated = interactions.filter(pl.col("event") != "rate")

    assert set(interactions["event"].unique()) == {"view", "click", "purchase", "rate"}
    assert rated.height > 0
    assert rated["rating"].null_count() == 0
    assert rated["rating"].is_between(1, 5).all()
    assert unrated["rating"].null_count() == unrated.height
    # Views dominate, purchases are rare.
    shares = interactions["event"].value_counts(normalize=True)
    share = dict(zip(shares["event"], shares["proportion"], strict=True))
    assert share["view"] > share["click"] > share["purchase"]


def test_users_rarely_see_the_same_item_twice(interactions: pl.DataFrame) -> None:
    assert interactions.select("user_id", "item_id").is_duplicated().sum() == 0


def test_social_edges_have_no_self_loops_duplicates_or_unjoined_users(
    world: tuple[Path, DemoSummary], interactions: pl.DataFrame
) -> None:
    edges = _read_source(world[0], "social").with_columns(pl.col("weight").cast(pl.Float64))
    # Every user is active on the day they join, so their first interaction day is their join day.
    joined = interactions.group_by("user_id").agg(joined=pl.col("ds").min())
    with_join_days = edges.join(
        joined.rename({"user_id": "src_user_id", "joined": "src_joined"}), on="src_user_id"
    ).join(joined.rename({"user_id": "dst_user_id", "joined": "dst_joined"}), on="dst_user_id")

    assert (edges["src_user_id"] != edges["dst_user_id"]).all()
    assert edges.select("src_user_id", "dst_user_id").is_duplicated().sum() == 0
    assert edges["weight"].is_between(0.0, 1.0, closed="right").all()
    assert with_join_days.height == edges.height
    assert (with_join_days["src_joined"] <= with_join_days["ds"]).all()
    assert (with_join_days["dst_joined"] <= with_join_days["ds"]).all()
    assert 4.0 < edges.height / USERS < 6.0


def test_items_are_linked_on_the_day_of_their_first_interaction(
    world: tuple[Path, DemoSummary], interactions: pl.DataFrame
) -> None:
    links = _read_source(world[0], "item_entities").rename({"ds": "linked"})
    first_seen = interactions.group_by("item_id").agg(first_seen=pl.col("ds").min())
    checked = first_seen.join(links, on="item_id", how="full")

    # every interacted item, and only those, is linked, on its first day: links_to_known_items holds every day
    assert checked["linked"].null_count() == checked["first_seen"].null_count() == 0
    assert (checked["linked"] == checked["first_seen"]).all()


def test_kg_describes_every_item_and_every_creator_before_it_is_used(world: tuple[Path, DemoSummary]) -> None:
    out, _ = world
    triples = _read_source(out, "kg")
    links = _read_source(out, "item_entities")
    by_relation = {relation: rows for (relation,), rows in triples.partition_by("relation", as_dict=True).items()}

    assert set(by_relation) == {"has_genre", "created_by", "works_in"}
    for relation in ("has_genre", "created_by"):
        described = links.join(by_relation[relation], left_on="entity_id", right_on="head", how="left")
        assert described.height == links.height, relation
        assert (described["ds_right"] <= described["ds"]).all(), relation  # described by the day it is linked
    creators = by_relation["created_by"].join(by_relation["works_in"], left_on="tail", right_on="head", how="left")
    assert (creators["ds_right"] <= creators["ds"]).all()
    assert by_relation["works_in"]["head"].is_unique().all()
    assert triples.is_duplicated().sum() == 0


def test_new_users_and_items_arrive_every_day(world: tuple[Path, DemoSummary], interactions: pl.DataFrame) -> None:
    first_days = interactions.group_by("user_id").agg(joined=pl.col("ds").min())["joined"].value_counts()
    newcomers = dict(zip(first_days["joined"], first_days["count"], strict=True))
    # an item's genre triple lands on its release day
    triples = _read_source(world[0], "kg")
    releases = triples.filter(pl.col("relation") == "has_genre")["ds"].value_counts()
    released = dict(zip(releases["ds"], releases["count"], strict=True))

    assert all(newcomers.get(START + timedelta(days=offset), 0) > 0 for offset in range(DAYS))
    assert all(released.get(START + timedelta(days=offset), 0) > 0 for offset in range(DAYS))
    # Most users and items are there from the start.
    assert 0.6 < newcomers[START] / USERS < 0.8
    assert 0.7 < released[START] / ITEMS < 0.9


def test_social_edges_are_homophilous(world: tuple[Path, DemoSummary]) -> None:
    out, summary = world
    edges = _read_source(out, "social")
    community = summary.user_community
    pairs = edges.select("src_user_id", "dst_user_id").iter_rows()
    inside = sum(community[src] == community[dst] for src, dst in pairs)
    sizes = pl.Series(list(community.values())).value_counts()["count"]
    chance = float(((sizes / USERS) ** 2).sum())

    assert chance < 0.3
    assert inside / edges.height > 0.75


def test_ratings_are_higher_on_genres_the_community_favours(
    world: tuple[Path, DemoSummary], interactions: pl.DataFrame
) -> None:
    out, summary = world
    genre = (
        _read_source(out, "kg")
        .filter(pl.col("relation") == "has_genre")
        .join(_read_source(out, "item_entities"), left_on="head", right_on="entity_id")
        .select("item_id", genre="tail")
    )
    communities = pl.DataFrame(
        {"user_id": list(summary.user_community), "community": list(summary.user_community.values())}
    )
    events = interactions.join(genre, on="item_id").join(communities, on="user_id")
    # The three genres each community interacts with most stand in for its planted favourites.
    favourites = (
        events.group_by("community", "genre")
        .len()
        .sort("len", "genre", descending=[True, False])
        .group_by("community", maintain_order=True)
        .head(3)
        .with_columns(favoured=pl.lit(True))
        .drop("len")
    )
    rated = (
        events.filter(pl.col("event") == "rate")
        .join(favourites, on=["community", "genre"], how="left")
        .with_columns(pl.col("favoured").fill_null(False))
    )
    mean_rating = dict(rated.group_by("favoured").agg(pl.col("rating").mean()).iter_rows())

    assert mean_rating[True] > mean_rating[False] + 1.0


def _recall_at_k(
    ranked: dict[object, list[str]], history: pl.DataFrame, held_out: pl.DataFrame, key: str, k: int
) -> float:
    """Mean recall@k over held-out users, ranking each user's unseen items by their ``key`` group's list."""
    seen = {user: set(items) for user, items in history.group_by("user_id").agg("item_id").iter_rows()}
    recalls = []
    for user, group, truth in held_out.group_by("user_id", key).agg("item_id").iter_rows():
        recommended = [item for item in ranked[group] if item not in seen.get(user, set())][:k]
        recalls.append(len(set(recommended) & set(truth)) / len(set(truth)))
    return sum(recalls) / len(recalls)


def _popularity_ranking(history: pl.DataFrame, key: str) -> dict[object, list[str]]:
    counts = history.group_by(key, "item_id").len().sort(key, "len", "item_id", descending=[False, True, False])
    return {group: items for group, items in counts.group_by(key, maintain_order=True).agg("item_id").iter_rows()}


def test_community_popularity_beats_global_popularity_on_the_held_out_last_day(
    world: tuple[Path, DemoSummary], interactions: pl.DataFrame
) -> None:
    _, summary = world
    last_day = summary.days[-1]
    events = interactions.with_columns(
        community=pl.col("user_id").replace_strict(summary.user_community, return_dtype=pl.Int64), everyone=pl.lit(0)
    )
    history = events.filter(pl.col("ds") < last_day)
    returning = pl.col("user_id").is_in(history["user_id"].unique().implode())
    held_out = events.filter((pl.col("ds") == last_day) & returning)

    global_recall = _recall_at_k(_popularity_ranking(history, "everyone"), history, held_out, "everyone", k=20)
    community_recall = _recall_at_k(_popularity_ranking(history, "community"), history, held_out, "community", k=20)

    assert held_out["user_id"].n_unique() > 50
    assert community_recall > 1.3 * global_recall
    assert community_recall - global_recall > 0.1


def test_generation_stays_fast_at_demo_scale(tmp_path: Path) -> None:
    started = time.perf_counter()
    summary = generate_demo_world(tmp_path, start=START, days=14, users=2000, items=1000, seed=7)
    elapsed = time.perf_counter() - started

    assert summary.num_communities == 8
    assert elapsed < 5.0


@pytest.mark.parametrize(("days", "users", "items"), [(0, USERS, ITEMS), (DAYS, 1, ITEMS), (DAYS, USERS, 0)])
def test_rejects_a_world_too_small_to_build(tmp_path: Path, days: int, users: int, items: int) -> None:
    with pytest.raises(ValueError):
        generate_demo_world(tmp_path, start=START, days=days, users=users, items=items, seed=SEED)
    assert not any(tmp_path.iterdir())
