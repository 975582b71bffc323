"""A deterministic synthetic "demo world" with planted structure, written as a landing folder.

The world is built so that a graph recommender has something to find and a popularity baseline does not:

* **Communities and taste.** Users fall into ``C`` communities (``max(4, users // 250)``, at most 12). Each
  community favours 2-3 of the 12 genres; a user's taste over genres is mostly their community's profile plus a
  little individual noise.
* **Items.** Every item has a creator, and every creator works in one genre (about one creator per 8 items), so an
  item's genre is its creator's. Popularity is Zipf-like, but a user picks item ``i`` with probability proportional
  to ``popularity(i) ** 0.5 * taste(user, genre(i))``, so taste dominates.
* **Time.** About 70% of users exist from the first day and 80% of items are released on it; the rest arrive
  spread over the later days, so every day brings new users and new items. An item is only interacted with from
  its release day on.
* **Interactions.** Each day about 40% of the users who have joined are active (every user is active on the day
  they join) and do a handful of events (Poisson, mean 4) on items they have not seen before: mostly ``view``,
  fewer ``click``, few ``purchase``, some ``rate``. A rating is higher when the item's genre suits the user.
* **Social edges.** Directed and homophilous: 85% of a user's edges (mean out-degree 5) point inside their own
  community. An edge lands on the day the later of its two users joins; there are no self-loops or duplicates.
* **Knowledge graph.** ``(entity, has_genre, genre:<g>)`` and ``(entity, created_by, creator:<c>)`` for every
  item, ``(creator:<c>, works_in, genre:<g>)`` for every creator; each lands on the first day it is needed, and
  ``item_entities`` links each item to its entity on the day of its first interaction (never, for an item nobody
  interacts with).

External IDs are random hex strings (``u-…``, ``sku-…``, ``ent:…``, ``creator:…``), never dense indices, so the
pipeline has to build its own index mappings. Files are laid out as ``<out>/<source>/ds=YYYY-MM-DD/<file>``:

================  ==================================================================  ==============================
source            columns                                                             file
================  ==================================================================  ==============================
interactions      user_id, item_id, event, rating (Int64, null unless ``rate``), ts   ``events.csv``; every third day
                                                                                      ``events.parquet``
social            src_user_id, dst_user_id, weight (Float64 in (0, 1]), ts            ``edges.parquet``
kg                head, relation, tail                                                ``triples.jsonl``
item_entities     item_id, entity_id                                                  ``links.csv``
================  ==================================================================  ==============================

``ts`` is an ISO-8601 UTC string (``2026-01-03T14:05:09Z``) inside its partition's day. A partition without rows
has no file. The same arguments always produce byte-identical files.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

GENRES = (
    "action", "comedy", "documentary", "drama", "fantasy", "horror",
    "jazz", "mystery", "romance", "scifi", "thriller", "western",
)  # fmt: skip
EVENTS = ("view", "click", "purchase", "rate")
EVENT_SHARES = (0.60, 0.20, 0.07, 0.13)

USERS_PER_COMMUNITY = 250
MIN_COMMUNITIES = 4
MAX_COMMUNITIES = 12
ITEMS_PER_CREATOR = 8
FIRST_DAY_USER_SHARE = 0.7
FIRST_DAY_ITEM_SHARE = 0.8
COMMUNITY_TASTE_WEIGHT = 0.8
INDIVIDUAL_TASTE_WEIGHT = 0.15
ZIPF_EXPONENT = 1.0
POPULARITY_EXPONENT = 0.5
ACTIVE_SHARE = 0.4
MEAN_EVENTS_PER_ACTIVE_USER = 4.0
RATING_NOISE = 0.6
MEAN_SOCIAL_OUT_DEGREE = 5.0
HOMOPHILY = 0.85

SECONDS_PER_DAY = 86_400
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DAY_COLUMN = "day"  # internal column: the day index a row lands on; dropped before writing


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`generate_demo_world` wrote, plus the planted truth tests and demos may check against.

    ``rows`` counts rows per source over all days; ``user_community`` maps every user ID to its planted community.
    """

    days: list[date]
    rows: dict[str, int]
    num_users: int
    num_items: int
    num_communities: int
    num_genres: int
    num_creators: int
    user_community: dict[str, int]


@dataclass(frozen=True)
class _World:
    """The planted world as dense arrays; index ``k`` of a user array describes user ``user_ids[k]``."""

    user_ids: list[str]
    user_community: np.ndarray
    user_join_day: np.ndarray
    taste: np.ndarray  # (users, genres), rows sum to 1
    item_ids: list[str]
    item_entities: list[str]
    item_creator: np.ndarray
    item_genre: np.ndarray
    item_release_day: np.ndarray
    item_popularity: np.ndarray
    creator_ids: list[str]
    creator_genre: np.ndarray
    num_communities: int


def generate_demo_world(out: Path, *, start: date, days: int, users: int, items: int, seed: int) -> DemoSummary:
    """Write ``days`` daily partitions of the demo world from ``start`` under ``out`` and summarise them.

    Only the partitions of those days are replaced; anything else under ``out`` is left alone.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if users < 2 or items < 1:
        raise ValueError(f"the world needs at least 2 users and 1 item, got users={users}, items={items}")
    # Independent streams, so that changing how one part is drawn does not reshuffle the others.
    world_rng, interaction_rng, social_rng = np.random.default_rng(seed).spawn(3)
    world = _plant_world(world_rng, days=days, users=users, items=items)
    day_list = [start + timedelta(days=offset) for offset in range(days)]
    interactions = _interactions(world, interaction_rng, day_list)
    frames = {
        "interactions": interactions,
        "social": _social_edges(world, social_rng, day_list),
        "kg": _kg_triples(world),
        "item_entities": _item_links(world, interactions),
    }
    for source, frame in frames.items():
        _write_partitions(out, source, frame, day_list)
    return DemoSummary(
        days=day_list,
        rows={source: frame.height for source, frame in frames.items()},
        num_users=users,
        num_items=items,
        num_communities=world.num_communities,
        num_genres=len(GENRES),
        num_creators=len(world.creator_ids),
        user_community=dict(zip(world.user_ids, world.user_community.tolist(), strict=True)),
    )


def _plant_world(rng: np.random.Generator, *, days: int, users: int, items: int) -> _World:
    num_genres = len(GENRES)
    # Capped by the number of users so that no community is empty.
    num_communities = min(MAX_COMMUNITIES, max(MIN_COMMUNITIES, users // USERS_PER_COMMUNITY), users)
    num_creators = max(1, items // ITEMS_PER_CREATOR)

    # Drawn together and without replacement, so no two users, items, entities or creators share a hex suffix.
    suffixes = [f"{value:08x}" for value in rng.choice(2**32, size=users + 2 * items + num_creators, replace=False)]
    user_ids = [f"u-{suffix}" for suffix in suffixes[:users]]
    item_ids = [f"sku-{suffix}" for suffix in suffixes[users : users + items]]
    item_entities = [f"ent:{suffix}" for suffix in suffixes[users + items : users + 2 * items]]
    creator_ids = [f"creator:{suffix}" for suffix in suffixes[users + 2 * items :]]

    community_profile = np.zeros((num_communities, num_genres))
    for community in range(num_communities):
        home_genres = rng.choice(num_genres, size=rng.integers(2, 4), replace=False)
        community_profile[community, home_genres] = rng.dirichlet(np.full(len(home_genres), 4.0))
    # Balanced communities: a permutation of round-robin labels rather than independent draws.
    user_community = rng.permutation(np.arange(users) % num_communities)
    individual_taste = rng.dirichlet(np.full(num_genres, 0.5), size=users)
    background = 1.0 - COMMUNITY_TASTE_WEIGHT - INDIVIDUAL_TASTE_WEIGHT
    taste = (
        COMMUNITY_TASTE_WEIGHT * community_profile[user_community]
        + INDIVIDUAL_TASTE_WEIGHT * individual_taste
        + background / num_genres
    )

    creator_genre = rng.permutation(np.arange(num_creators) % num_genres)
    item_creator = rng.integers(num_creators, size=items)
    zipf_rank = rng.permutation(items) + 1
    return _World(
        user_ids=user_ids,
        user_community=user_community,
        user_join_day=_arrival_days(rng, users, days, FIRST_DAY_USER_SHARE),
        taste=taste,
        item_ids=item_ids,
        item_entities=item_entities,
        item_creator=item_creator,
        item_genre=creator_genre[item_creator],
        item_release_day=_arrival_days(rng, items, days, FIRST_DAY_ITEM_SHARE),
        item_popularity=zipf_rank.astype(float) ** -ZIPF_EXPONENT,
        creator_ids=creator_ids,
        creator_genre=creator_genre,
        num_communities=num_communities,
    )


def _arrival_days(rng: np.random.Generator, count: int, days: int, first_day_share: float) -> np.ndarray:
    """Day index each of ``count`` entities appears; latecomers are dealt round-robin so every later day gets some."""
    num_late = 0 if days == 1 else round(count * (1.0 - first_day_share))
    arrival = np.zeros(count, dtype=np.int64)
    arrival[:num_late] = 1 + np.arange(num_late) % (days - 1)
    return rng.permutation(arrival)


def _interactions(world: _World, rng: np.random.Generator, day_list: list[date]) -> pl.DataFrame:
    seen = np.zeros((len(world.user_ids), len(world.item_ids)), dtype=bool)
    users, items, day_index = [], [], []
    for day in range(len(day_list)):
        day_users, day_items = _daily_picks(world, rng, day, seen)
        seen[day_users, day_items] = True
        users.append(day_users)
        items.append(day_items)
        day_index.append(np.full(len(day_users), day))
    user = np.concatenate(users)
    item = np.concatenate(items)
    day_of_row = np.concatenate(day_index)

    event = rng.choice(len(EVENTS), size=len(user), p=EVENT_SHARES)
    # How well the item's genre suits the user, relative to their favourite genre: 1.0 means a perfect fit.
    fit = world.taste[user, world.item_genre[item]] / world.taste[user].max(axis=1)
    rating = np.clip(np.rint(1.5 + 3.5 * fit + rng.normal(0.0, RATING_NOISE, len(user))), 1, 5).astype(np.int64)
    seconds = _epoch_seconds(day_list, day_of_row) + rng.integers(0, SECONDS_PER_DAY, len(user))

    order = np.lexsort((item, user, seconds))
    return pl.DataFrame(
        {
            "user_id": np.asarray(world.user_ids)[user[order]],
            "item_id": np.asarray(world.item_ids)[item[order]],
            "event": np.asarray(EVENTS)[event[order]],
            "rating": rating[order],
            "ts": _format_ts(seconds[order]),
            DAY_COLUMN: day_of_row[order],
        }
    ).with_columns(pl.when(pl.col("event") == "rate").then(pl.col("rating")).alias("rating"))


def _daily_picks(world: _World, rng: np.random.Generator, day: int, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) index pairs of one day's events, each user's items distinct and unseen by them before."""
    joined = np.flatnonzero(world.user_join_day <= day)
    is_active = (world.user_join_day[joined] == day) | (rng.random(len(joined)) < ACTIVE_SHARE)
    active = joined[is_active]
    released = np.flatnonzero(world.item_release_day <= day)
    wanted = 1 + rng.poisson(MEAN_EVENTS_PER_ACTIVE_USER - 1.0, size=len(active))

    # Gumbel-top-k: the k largest of log-weight + Gumbel noise are a draw of k items without replacement, each
    # pick proportional to its weight among those left, for every user at once.
    log_weight = POPULARITY_EXPONENT * np.log(world.item_popularity[released]) + np.log(
        world.taste[np.ix_(active, world.item_genre[released])]
    )
    keys = log_weight + rng.gumbel(size=log_weight.shape)
    keys[seen[np.ix_(active, released)]] = -np.inf
    wanted = np.minimum(wanted, np.isfinite(keys).sum(axis=1))
    most = int(wanted.max(initial=0))
    if most == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    top = np.argpartition(-keys, most - 1, axis=1)[:, :most]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1), axis=1)
    row, rank = np.nonzero(np.arange(most) < wanted[:, None])
    return active[row], released[top[row, rank]]


def _social_edges(world: _World, rng: np.random.Generator, day_list: list[date]) -> pl.DataFrame:
    num_users = len(world.user_ids)
    community = world.user_community
    src = np.repeat(np.arange(num_users), rng.poisson(MEAN_SOCIAL_OUT_DEGREE, size=num_users))
    stays_home = rng.random(len(src)) < HOMOPHILY
    # Adding 1..C-1 modulo C lands on a uniformly chosen *other* community.
    elsewhere = (community[src] + rng.integers(1, world.num_communities, size=len(src))) % world.num_communities
    target_community = np.where(stays_home, community[src], elsewhere)
    members = np.argsort(community, kind="stable")
    first_member = np.searchsorted(community[members], np.arange(world.num_communities))
    community_size = np.bincount(community, minlength=world.num_communities)
    offset = (rng.random(len(src)) * community_size[target_community]).astype(np.int64)
    dst = members[first_member[target_community] + offset]

    no_loop = src != dst
    src, dst = src[no_loop], dst[no_loop]
    _, first = np.unique(src * num_users + dst, return_index=True)
    first.sort()
    src, dst = src[first], dst[first]

    day_of_edge = np.maximum(world.user_join_day[src], world.user_join_day[dst])
    # ceil keeps the weight in (0, 1] after rounding to three decimals.
    weight = np.ceil((1.0 - rng.random(len(src))) * 1000.0) / 1000.0
    seconds = _epoch_seconds(day_list, day_of_edge) + rng.integers(0, SECONDS_PER_DAY, len(src))
    order = np.lexsort((dst, src, seconds))
    user_ids = np.asarray(world.user_ids)
    return pl.DataFrame(
        {
            "src_user_id": user_ids[src[order]],
            "dst_user_id": user_ids[dst[order]],
            "weight": weight[order],
            "ts": _format_ts(seconds[order]),
            DAY_COLUMN: day_of_edge[order],
        }
    )


def _kg_triples(world: _World) -> pl.DataFrame:
    entities = np.asarray(world.item_entities)
    creators = np.asarray(world.creator_ids)
    genre_names = np.asarray([f"genre:{genre}" for genre in GENRES])
    has_genre = pl.DataFrame(
        {
            "head": entities,
            "relation": "has_genre",
            "tail": genre_names[world.item_genre],
            DAY_COLUMN: world.item_release_day,
        }
    )
    created_by = pl.DataFrame(
        {
            "head": entities,
            "relation": "created_by",
            "tail": creators[world.item_creator],
            DAY_COLUMN: world.item_release_day,
        }
    )
    # A creator is first needed on the earliest release day of their items; creators without items never appear.
    creator_debut = np.full(len(world.creator_ids), np.iinfo(np.int64).max)
    np.minimum.at(creator_debut, world.item_creator, world.item_release_day)
    working = np.flatnonzero(creator_debut < np.iinfo(np.int64).max)
    works_in = pl.DataFrame(
        {
            "head": creators[working],
            "relation": "works_in",
            "tail": genre_names[world.creator_genre[working]],
            DAY_COLUMN: creator_debut[working],
        }
    )
    return pl.concat([works_in, has_genre, created_by]).sort(DAY_COLUMN, "relation", "head", maintain_order=True)


def _item_links(world: _World, interactions: pl.DataFrame) -> pl.DataFrame:
    """Each item's entity link, landed with the item's first interaction, as a catalogue feed links the items that
    went live: the data contracts expect every linked item to have been interacted with (``links_to_known_items``),
    so the demo's own days keep them. An item nobody interacts with is never linked."""
    first_seen = interactions.group_by("item_id").agg(pl.col(DAY_COLUMN).min())
    links = pl.DataFrame({"item_id": world.item_ids, "entity_id": world.item_entities})
    return links.join(first_seen, on="item_id").sort(DAY_COLUMN, "item_id")


def _epoch_seconds(day_list: list[date], day_index: np.ndarray) -> np.ndarray:
    midnights = np.asarray(
        [int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) for day in day_list], dtype=np.int64
    )
    return midnights[day_index]


def _format_ts(seconds: np.ndarray) -> pl.Series:
    return pl.from_epoch(pl.Series(seconds, dtype=pl.Int64), time_unit="s").dt.strftime(TS_FORMAT)


def _file_name(source: str, day: int) -> str:
    """The file ``source`` writes on the day with index ``day``."""
    if source == "interactions":
        # Every third day lands as Parquet so the pipeline's CSV and Parquet readers both see interactions.
        return "events.parquet" if day % 3 == 2 else "events.csv"
    return {"social": "edges.parquet", "kg": "triples.jsonl", "item_entities": "links.csv"}[source]


def _write_partitions(out: Path, source: str, frame: pl.DataFrame, day_list: list[date]) -> None:
    by_day = frame.partition_by(DAY_COLUMN, as_dict=True, include_key=False)
    for day, ds in enumerate(day_list):
        partition = out / source / f"ds={ds.isoformat()}"
        if partition.exists():
            shutil.rmtree(partition)
        rows = by_day.get((day,))
        if rows is None:
            continue
        partition.mkdir(parents=True)
        path = partition / _file_name(source, day)
        if path.suffix == ".csv":
            rows.write_csv(path)
        elif path.suffix == ".parquet":
            rows.write_parquet(path)
        else:
            rows.write_ndjson(path)
