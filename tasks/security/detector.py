"""The defence against data poisoning: score the accounts and knowledge-graph entities new on a day, and move the
rows of those above a threshold from ``clean`` to ``quarantine`` before any graph is built.

**Accounts.** A shilling or copy attack lands many fresh accounts on one day, all taking the few items it pushes.
That is the one thing the attacker cannot hide: fillers can look like anyone's (average, bandwagon, copied
profiles), but the targets must be shared by the whole group. So each item of the day gets how surprising its
number of *new* accounts is, ``-log10 P(X >= k)`` for ``X ~ Poisson(n * rate)`` where ``n`` is the day's new
accounts and ``rate`` how often a new account would take the item (the larger of two smoothed estimates: earlier
accounts' debut profiles, and the day's established users). It is the target-focus and rating-burst idea of the
shilling-detection literature (Mobasher et al., TOIT 2007; Zhang et al., 2006), as one calibrated tail probability. The most surprising item that at least
``min_group`` new accounts took, if at or above the threshold, flags those accounts with its surprise as their
score; they are set aside and the next burst is looked for, so a group's fillers do not flag the genuine newcomers
who took them too (:func:`score_users`). Accounts seen before the day score 0, and a day with nothing to compare
with (the first day landed) scores nobody.

**Entities.** A KG attack adds facts to an entity that already had its own, linking it to what popular items link
to. An entity's score is the number of that day's triples about it whose (relation, tail) a popular item's entity
has, counted only for an entity described before the day whose item is in the less popular half.

Flagged accounts have the day's interactions and social edges (either end) quarantined as
:data:`USER_RULE`, flagged entities their triples as :data:`ENTITY_RULE`, each with the score as the value. An
operator's releases (``ops.releases``) are honoured every time the day is screened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import numpy as np
import polars as pl
from scipy.stats import poisson

from gnnrec.tasks.data.policy import DefencePolicy
from gnnrec.tasks.ops.db import ARROW_LEVEL, fetch_arrow, sql_text

USER_RULE = "suspected_fake_user"
ENTITY_RULE = "suspected_poisoned_triple"
# Pseudo-observations of the catalog-wide rate that smooth an item's rate (a few accounts' worth), so an item never
# seen before is not infinitely surprising.
PRIOR_WEIGHT = 10.0
# The popular items whose entities' links a KG attack copies.
POPULAR_ITEMS = 50
_SUSPECTS_SCHEMA = {"kind": pl.String, "id": pl.String, "score": pl.Float64, "flagged": pl.Boolean, "released": pl.Boolean}


@dataclass(frozen=True)
class UserSignals:
    """The separable parts of the account score, all on in production. Each can be switched off on its own, so
    that what it adds is measured (``bench/detector_ablation.py``) by the very functions that screen a day."""

    debut_rate: bool = True  # the rate estimated from earlier accounts' debut profiles
    day_rate: bool = True  # the rate estimated from the day's established users
    prior: bool = True  # both estimates shrunk by PRIOR_WEIGHT pseudo-observations (off: raw shares)
    set_aside: bool = True  # a flagged group is set aside before the next burst is looked for (off: one round)

    def __post_init__(self) -> None:
        if not (self.debut_rate or self.day_rate):
            raise ValueError("the account score needs at least one rate estimate: debut_rate or day_rate")


@dataclass(frozen=True)
class EntitySignals:
    """The separable parts of the entity score, all on in production (see :class:`UserSignals`)."""

    copied_links: bool = True  # count only triples whose (relation, tail) a popular item's entity has (off: every triple)
    described_before: bool = True  # only entities with triples before the day
    cold_only: bool = True  # only entities of items in the less popular half


@dataclass(frozen=True)
class Screening:
    """What the defence found on a day: how many accounts it scored and which it flagged (less those released)."""

    ds: date
    action: str
    scored_users: int
    flagged_users: tuple[str, ...] = ()
    flagged_entities: tuple[str, ...] = ()
    released: tuple[str, ...] = ()
    quarantined_rows: dict[str, int] = field(default_factory=dict)  # per source, when the policy quarantines

    @property
    def flagged_share(self) -> float:
        return len(self.flagged_users) / self.scored_users if self.scored_users else 0.0


def _tail(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """``-log10 P(X >= observed)`` for ``X ~ Poisson(expected)``."""
    return np.maximum(-poisson.logsf(observed - 1, expected) / math.log(10), 0.0)


def _shrunk(count: np.ndarray, total: int, weight: float, toward: np.ndarray | float) -> np.ndarray:
    """``count / total`` shrunk toward ``toward`` by ``weight`` pseudo-observations; ``toward`` when there is
    nothing to count (no observations and no pseudo-observations)."""
    if total + weight == 0:
        return np.broadcast_to(np.asarray(toward, dtype=np.float64), count.shape).copy()
    return (count + weight * np.asarray(toward)) / (total + weight)


def item_surprise(con: duckdb.DuckDBPyConnection, ds: date, signals: UserSignals = UserSignals()) -> pl.DataFrame:
    """Each item taken on ``ds``: ``new_users`` (the day's new accounts that took it), ``expected`` and ``surprise``
    (``-log10`` of the Poisson tail); none on a day with nothing to compare with (no earlier or established user).

    The rate at which a new account takes an item is the larger of two smoothed estimates: among earlier accounts'
    debut profiles, and among the day's established users (so an item in fashion today is not news). ``signals``
    switches either estimate or the smoothing off (an ablation; production keeps all)."""
    items = pl.from_arrow(fetch_arrow(con, "security/item_bursts", {"ds": ds}))
    if items.is_empty() or (items["debut_profiles"][0] == 0 and items["day_established_users"][0] == 0):
        return items.clear().select("item_id", "new_users", pl.lit(0.0).alias("expected"), pl.lit(0.0).alias("surprise"))
    first = items.row(0, named=True)
    mean_debut = first["debut_pairs"] / first["debut_profiles"] if first["debut_profiles"] else 1.0
    prior = min(1.0, mean_debut / max(first["catalog_items"], 1))
    # The debut estimate shrinks to the catalog-wide rate; the day's estimate shrinks to the item's debut estimate,
    # so a day with few established users says little, and one where many took the item says it is in fashion.
    weight = PRIOR_WEIGHT if signals.prior else 0.0
    debut = _shrunk(items["debut_users"].to_numpy(), first["debut_profiles"], weight, prior)
    today = _shrunk(items["established_users"].to_numpy(), first["day_established_users"], weight, debut if signals.debut_rate else prior)
    rate = np.maximum(debut, today) if signals.debut_rate and signals.day_rate else debut if signals.debut_rate else today
    # Without smoothing an item no earlier account took has rate 0, and any new account taking it is infinitely
    # surprising: what the prior is there to prevent.
    expected = first["day_new_users"] * rate
    surprise = _tail(items["new_users"].to_numpy(), expected)
    return items.select("item_id", "new_users", pl.Series("expected", expected), pl.Series("surprise", surprise))


def _bursts(pairs: pl.DataFrame, expected: pl.DataFrame, min_group: int) -> pl.DataFrame:
    """The items at least ``min_group`` of ``pairs``' accounts took, with their surprise, most surprising first."""
    counts = pairs.group_by("item_id").len("new_users").filter(pl.col("new_users") >= min_group).join(expected, on="item_id")
    surprise = _tail(counts["new_users"].to_numpy(), counts["expected"].to_numpy())
    return counts.with_columns(pl.Series("surprise", surprise, dtype=pl.Float64)).sort(["surprise", "item_id"], descending=[True, False])


def score_users(
    con: duckdb.DuckDBPyConnection, ds: date, min_group: int, threshold: float, signals: UserSignals = UserSignals()
) -> pl.DataFrame:
    """Every account first seen on ``ds`` with its score (``user_id``, ``score``), highest first; nobody on a day
    with nothing to compare with.

    The most surprising burst at or above ``threshold`` gives its accounts its score, and they are set aside before
    the next burst is looked for: the items a fake group shares besides its targets (its fillers) then no longer
    burst, so a genuine newcomer who took one of them is not flagged with the group (one round per fake group).
    Without ``signals.set_aside`` every account gets the highest surprise among the bursts it took part in."""
    items = item_surprise(con, ds, signals)
    pairs = pl.from_arrow(fetch_arrow(con, "security/new_user_items", {"ds": ds}))
    if items.is_empty():
        return pairs.clear().select("user_id", pl.lit(0.0).alias("score"))
    expected = items.select("item_id", "expected")
    groups, left = [], pairs
    bursts = _bursts(left, expected, min_group)
    while signals.set_aside and not bursts.is_empty() and bursts["surprise"][0] >= threshold:
        group = left.filter(pl.col("item_id") == bursts["item_id"][0]).select("user_id").unique()
        groups.append(group.with_columns(pl.lit(bursts["surprise"][0]).alias("score")))
        left = left.join(group, on="user_id", how="anti")
        bursts = _bursts(left, expected, min_group)
    rest = left.join(bursts.select("item_id", "surprise"), on="item_id", how="left").group_by("user_id").agg(
        pl.col("surprise").max().fill_null(0.0).alias("score")
    )
    return pl.concat([*groups, rest]).sort(["score", "user_id"], descending=[True, False])


def score_entities(con: duckdb.DuckDBPyConnection, ds: date, signals: EntitySignals = EntitySignals()) -> pl.DataFrame:
    """Every KG head with triples on ``ds`` that was described before it, with its score (``head``, ``score``);
    ``signals`` switches a part of the score off (an ablation; production keeps all)."""
    params = {
        "ds": ds, "popular_items": POPULAR_ITEMS, "copied_links": signals.copied_links,
        "described_before": signals.described_before, "cold_only": signals.cold_only,
    }  # fmt: skip
    return pl.from_arrow(fetch_arrow(con, "security/entity_scores", params))


def screen_day(con: duckdb.DuckDBPyConnection, ds: date, policy: DefencePolicy) -> Screening:
    """Score ``ds``, record the scores in ``ops.suspects`` and, when the policy quarantines, move the flagged rows
    from ``clean`` to ``quarantine`` and reconcile ``ops.ingest_files``. Call inside the transaction that decides
    the day's contracts, so the day is decided with its screening or not at all. Repeatable: the day's scores
    are replaced, and rows moved before are back in ``clean`` after validation rebuilt the day from ``raw``."""
    con.execute(sql_text("security/delete_suspects"), {"ds": ds})
    if policy.action == "off":
        return Screening(ds, policy.action, 0)
    released = pl.from_arrow(fetch_arrow(con, "security/releases", {"ds": ds})).with_columns(pl.lit(True).alias("released"))
    users = score_users(con, ds, policy.min_group, policy.threshold).select(pl.lit("user").alias("kind"), pl.col("user_id").alias("id"), "score")
    entities = score_entities(con, ds).select(pl.lit("entity").alias("kind"), pl.col("head").alias("id"), "score")
    threshold = pl.when(pl.col("kind") == "user").then(policy.threshold).otherwise(policy.min_kg_triples)
    suspects = (
        pl.concat([users, entities]).join(released, on=["kind", "id"], how="left", maintain_order="left")
        .with_columns(pl.col("released").fill_null(False))
        .with_columns(((pl.col("score") >= threshold) & pl.col("released").not_()).alias("flagged"))
        .select(list(_SUSPECTS_SCHEMA)).cast(_SUSPECTS_SCHEMA)
    )  # fmt: skip
    con.register("staged_suspects", suspects.to_arrow(compat_level=ARROW_LEVEL))
    try:
        con.execute(sql_text("security/insert_suspects"), {"ds": ds})
    finally:
        con.unregister("staged_suspects")
    flagged = suspects.filter("flagged")
    flagged_users = tuple(flagged.filter(pl.col("kind") == "user")["id"].to_list())
    flagged_entities = tuple(flagged.filter(pl.col("kind") == "entity")["id"].to_list())
    moved: dict[str, int] = {}
    if policy.action != "warn" and (flagged_users or flagged_entities):
        rules = {"ds": ds, "rule": USER_RULE, "entity_rule": ENTITY_RULE}
        for source in ("interactions", "social", "kg"):
            # Each statement binds only the parameters it names.
            query = sql_text(f"security/quarantine_{source}")
            (moved[source],) = con.execute(query, {k: v for k, v in rules.items() if f"${k}" in query}).fetchone()
            con.execute(sql_text(f"security/delete_{source}"), {"ds": ds})
        con.execute(sql_text("ops/reconcile_ingest_files"), {"ds": ds})
    return Screening(
        ds, policy.action, users.height, flagged_users, flagged_entities,
        tuple(released.filter(pl.col("kind") == "user")["id"].to_list()), {s: n for s, n in moved.items() if n},
    )  # fmt: skip


def release(con: duckdb.DuckDBPyConnection, ds: date, kind: str, ids: list[str], at: datetime) -> int:
    """Record that ``ids`` (accounts or entities) are genuine on ``ds`` and send the day back to be checked again,
    so the next run rebuilds it from ``raw`` and keeps their rows; call inside a transaction. Returns how many of
    the releases are new (releasing an id twice keeps the first)."""
    (added,) = con.execute(sql_text("security/insert_releases"), {"ds": ds, "kind": kind, "ids": ids, "released_at": at}).fetchone()
    con.execute(sql_text("security/reopen_day"), {"ds": ds})
    return added
