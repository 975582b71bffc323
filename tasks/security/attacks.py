"""Data-poisoning attacks: one more day of landing files, in the landing contract, that pushes target items.

An attack reads what an outsider could have seen, the landed history before its day, and writes fake activity for
that day beside the genuine files, so the pipeline takes it in like any other source. Every kind is a pure function
of the history and the :class:`Attack` (seeded); :func:`write_attack` adds the reading and the writing.

- ``random``, ``average``, ``bandwagon``: the classic shilling profiles (Lam and Riedl, WWW 2004; Mobasher et al.,
  TOIT 2007). Each fake user rates the targets at the top of the scale, plus ``filler`` items drawn uniformly and
  rated around the global mean (random), drawn uniformly and rated around each item's own mean (average), or drawn
  from the most popular items and rated at the top (bandwagon).
- ``social``: fake users take the targets, and befriend (both directions) ``filler`` real users each, chosen among
  those closest to the targets' audience (sharing most items with it), for the models that diffuse over friends.
- ``kg``: ``fake_users`` fake triples that link each target's entity to the entities popular items link to, through
  the same relations, for the knowledge-graph models.
- ``copy``: fake users copy real users' profiles, from this landing's history or from another landing folder
  (another dataset, or users held apart), cropped to ``filler`` items when given, and add the targets, in the
  spirit of CopyAttack (Fan et al., SIGIR 2021).

Fake user IDs look like the real ones: the real IDs' common prefix, then a suffix of the same kind (the next free
numbers for numeric IDs, fresh hex digits of the same width for hex IDs, letters and digits otherwise).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from os.path import commonprefix
from pathlib import Path

import numpy as np
import polars as pl

from gnnrec.tasks.data.ingest import discover_files, landed_days, partition_dir, read_landed_file

KINDS = ("random", "average", "bandwagon", "social", "kg", "copy")
SHILLING_KINDS = ("random", "average", "bandwagon")
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
SECONDS_PER_DAY = 86_400
# Bandwagon fillers come from the most popular items: this many times the filler size, at least POPULAR_POOL_MIN.
POPULAR_POOL_FACTOR = 3
POPULAR_POOL_MIN = 20
# Social fakes befriend users from the closest this-many-times-their-friend-count candidates, so they do not all
# pick the very same users (which would be one obvious clique).
FRIEND_POOL_FACTOR = 4
# Entities of the most popular items a KG attack links the targets to.
POPULAR_ITEMS_FOR_KG = 50
COLUMNS = {
    "interactions": ("user_id", "item_id", "event", "rating", "ts"),
    "social": ("src_user_id", "dst_user_id", "weight", "ts"),
    "kg": ("head", "relation", "tail"),
    "item_entities": ("item_id", "entity_id"),
}


class AttackError(ValueError):
    """An attack that cannot be written as asked (a bad option, or a history that lacks what the kind needs)."""


@dataclass(frozen=True)
class Attack:
    """What to write: ``fake_users`` fake accounts (fake triples for ``kg``) on ``ds`` pushing ``targets``."""

    kind: str
    ds: date
    targets: tuple[str, ...]
    fake_users: int
    filler: int | None = None  # items per fake profile (friends per fake user for ``social``); None: per kind
    seed: int = 0
    copy_from: Path | None = None  # ``copy``: a landing folder whose profiles are copied (default: this one's)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise AttackError(f"unknown attack kind {self.kind!r}; choose from {', '.join(KINDS)}")
        if not self.targets or any(not t.strip() for t in self.targets):
            raise AttackError("--target: give one or more item IDs, comma-separated")
        if len(set(self.targets)) != len(self.targets):
            raise AttackError(f"--target: an item is named twice in {','.join(self.targets)}")
        if self.fake_users < 1:
            raise AttackError(f"--fake-users must be at least 1, got {self.fake_users}")
        if self.filler is not None and self.filler < (1 if self.kind == "social" else 0):
            raise AttackError(f"--filler must not be negative{' or 0 for social' if self.kind == 'social' else ''}, got {self.filler}")
        if self.filler is not None and self.kind == "kg":
            raise AttackError("--filler does not apply to kg: --fake-users is the number of fake triples")
        if self.copy_from is not None and self.kind != "copy":
            raise AttackError("--copy-from applies to the copy attack only")
        if not 0 <= self.seed < 2**63:
            raise AttackError(f"--seed must be in 0..2**63-1, got {self.seed}")


@dataclass(frozen=True)
class History:
    """The landed rows of the days before an attack, as text (ratings as numbers); unparseable rows left out."""

    interactions: pl.DataFrame  # user_id, item_id, event, rating (Float64, null when absent), in landed order
    social: pl.DataFrame  # src_user_id, dst_user_id, weight (Float64)
    kg: pl.DataFrame  # head, relation, tail
    item_entities: pl.DataFrame  # item_id, entity_id


@dataclass(frozen=True)
class AttackSummary:
    attack: Attack
    fake_users: tuple[str, ...]  # the fake accounts written (none for ``kg``)
    rows: dict[str, int]  # rows written per source
    files: tuple[Path, ...]

    def describe(self) -> str:
        a = self.attack
        rows = ", ".join(f"{n:,} {source} rows" for source, n in self.rows.items())
        users = f"{len(self.fake_users):,} fake users ({', '.join(self.fake_users[:3])}{', ...' if len(self.fake_users) > 3 else ''}), " if self.fake_users else ""
        files = ", ".join(str(f) for f in self.files)
        return f"attack {a.kind} on {a.ds} (seed {a.seed}) pushing {', '.join(a.targets)}: {users}{rows} -> {files}"


def read_history(landing: Path, before: date | None) -> History:
    """Every landed row of the days before ``before`` (all days when None), from the landing files themselves."""
    until = before - timedelta(days=1) if before is not None else date.max
    frames: dict[str, list[pl.DataFrame]] = {source: [] for source in COLUMNS}
    for day in landed_days(landing, until):
        for source, columns in COLUMNS.items():
            for path in discover_files(landing, source, day):
                try:
                    frame, _, malformed = read_landed_file(path)
                except (OSError, EOFError, ValueError, pl.exceptions.PolarsError):
                    continue  # a file the pipeline cannot read either (it records it as failed)
                if malformed is not None:
                    frame = frame.filter(malformed.get_column("malformed_rule").is_null())
                frames[source].append(frame.select(pl.col(c) if c in frame.columns else pl.lit(None, pl.String).alias(c) for c in columns))

    def stacked(source: str, numbers: tuple[str, ...] = ()) -> pl.DataFrame:
        columns = COLUMNS[source]
        frame = pl.concat(frames[source]) if frames[source] else pl.DataFrame(schema={c: pl.String for c in columns})
        ids = [c for c in columns if c not in numbers and c not in ("ts", "event")]
        frame = frame.with_columns(pl.col(c).str.strip_chars() for c in ids).filter(pl.all_horizontal(pl.col(ids).is_not_null() & (pl.col(ids) != "")))
        return frame.with_columns(pl.col(c).cast(pl.Float64, strict=False) for c in numbers).drop("ts", strict=False)

    return History(
        interactions=stacked("interactions", ("rating",)), social=stacked("social", ("weight",)),
        kg=stacked("kg"), item_entities=stacked("item_entities"),
    )  # fmt: skip


def fake_ids(real: list[str], count: int, rng: np.random.Generator) -> list[str]:
    """``count`` new IDs shaped like ``real``: their common prefix, then the next free numbers (numeric suffixes),
    fresh hex digits of the same width (hex suffixes), or fresh letters and digits of the median width."""
    prefix = commonprefix(real) if len(real) > 1 else ""
    suffixes = [r[len(prefix):] for r in real]
    taken = set(real)
    if suffixes and all(s.isdigit() for s in suffixes) and not any(len(s) > 1 and s.startswith("0") for s in suffixes):
        start = max(int(s) for s in suffixes) + 1
        return [f"{prefix}{start + k}" for k in range(count)]
    width = int(np.median([len(s) for s in suffixes])) if suffixes else 8
    hexadecimal = bool(suffixes) and all(s and all(ch in string.hexdigits for ch in s) for s in suffixes)
    alphabet = np.array(list("0123456789abcdef" if hexadecimal else string.ascii_lowercase + string.digits))
    made: list[str] = []
    while len(made) < count:
        for draw in rng.choice(alphabet, size=(count - len(made), max(width, 4))):
            candidate = prefix + "".join(draw)
            if candidate not in taken:
                taken.add(candidate)
                made.append(candidate)
    return made


@dataclass(frozen=True)
class _Scale:
    """How the history records preferences: the event that carries ratings and their range (None: no ratings)."""

    event: str
    low: float | None
    high: float | None
    mean: float | None
    std: float | None

    @classmethod
    def of(cls, interactions: pl.DataFrame) -> _Scale:
        rated = interactions.filter(pl.col("rating").is_not_null())
        if rated.is_empty():
            event = interactions.get_column("event").drop_nulls().mode().sort().first() if interactions.height else "view"
            return cls(event or "view", None, None, None, None)
        event = rated.get_column("event").drop_nulls().mode().sort().first() or "rate"
        r = rated.get_column("rating")
        return cls(event, r.min(), r.max(), r.mean(), r.std() if r.len() > 1 else 0.0)

    def ratings(self, around: np.ndarray, spread: np.ndarray | float, rng: np.random.Generator) -> np.ndarray | None:
        if self.low is None:
            return None
        return np.clip(np.rint(around + rng.normal(0.0, 1.0, len(around)) * spread), self.low, self.high)


def _timestamps(ds: date, count: int, rng: np.random.Generator) -> list[str]:
    midnight = datetime(ds.year, ds.month, ds.day, tzinfo=UTC)
    return [(midnight + timedelta(seconds=int(s))).strftime(TS_FORMAT) for s in rng.integers(0, SECONDS_PER_DAY, count)]


def _popularity(interactions: pl.DataFrame) -> pl.DataFrame:
    """Items by the number of distinct users, most popular first (ties by ID, so the order is seeded-stable)."""
    return (
        interactions.group_by("item_id").agg(pl.col("user_id").n_unique().alias("users"))
        .sort(["users", "item_id"], descending=[True, False])
    )  # fmt: skip


def _interaction_rows(
    users: list[str], items: list[str], ratings: np.ndarray | list | None, scale: _Scale, ds: date, rng: np.random.Generator
) -> pl.DataFrame:
    rating = pl.Series("rating", ratings if ratings is not None else [None] * len(users), dtype=pl.Float64)
    return pl.DataFrame({
        "user_id": users, "item_id": items, "event": [scale.event] * len(users), "rating": rating,
        "ts": _timestamps(ds, len(users), rng),
    })  # fmt: skip


def _shilling(history: History, attack: Attack, fakes: list[str], rng: np.random.Generator) -> dict[str, pl.DataFrame]:
    interactions = history.interactions
    scale = _Scale.of(interactions)
    popularity = _popularity(interactions).filter(pl.col("item_id").is_in(attack.targets).not_())
    catalog = popularity.get_column("item_id").to_numpy()
    filler = _default_filler(interactions, attack) if attack.filler is None else attack.filler
    pool = catalog[: max(POPULAR_POOL_FACTOR * filler, POPULAR_POOL_MIN)] if attack.kind == "bandwagon" else catalog
    if filler > len(pool):
        raise AttackError(f"--filler {filler}: only {len(pool)} items to draw fillers from")
    users, items = [], []
    for fake in fakes:
        chosen = rng.choice(pool, size=filler, replace=False).tolist()
        users += [fake] * (len(attack.targets) + filler)
        items += list(attack.targets) + chosen
    items_array = np.asarray(items)
    is_target = np.isin(items_array, attack.targets)
    if scale.low is None:
        ratings = None
    elif attack.kind == "random":
        ratings = scale.ratings(np.full(len(items), scale.mean), scale.std, rng)
    elif attack.kind == "average":
        stats = interactions.filter(pl.col("rating").is_not_null()).group_by("item_id").agg(
            pl.col("rating").mean().alias("mean"), pl.col("rating").std().fill_null(scale.std).alias("std")
        )
        looked_up = pl.DataFrame({"item_id": items}).join(stats, on="item_id", how="left", maintain_order="left")
        ratings = scale.ratings(
            looked_up.get_column("mean").fill_null(scale.mean).to_numpy(), looked_up.get_column("std").fill_null(scale.std).to_numpy(), rng
        )
    else:  # bandwagon: the popular items are rated at the top, to look like everyone's taste
        ratings = np.full(len(items), scale.high)
    if ratings is not None:
        ratings[is_target] = scale.high
    return {"interactions": _interaction_rows(users, items, ratings, scale, attack.ds, rng)}


def _default_filler(interactions: pl.DataFrame, attack: Attack) -> int:
    """The median real profile size, less the targets: a fake profile as long as a typical real one."""
    sizes = interactions.group_by("user_id").agg(pl.col("item_id").n_unique().alias("size")).get_column("size")
    return max(1, int(sizes.median()) - len(attack.targets)) if sizes.len() else 1


def _social(history: History, attack: Attack, fakes: list[str], rng: np.random.Generator) -> dict[str, pl.DataFrame]:
    interactions = history.interactions.select("user_id", "item_id").unique()
    scale = _Scale.of(history.interactions)
    audience = interactions.filter(pl.col("item_id").is_in(attack.targets)).get_column("user_id").unique().to_list()
    # How many of the audience took each item; a user's closeness is that summed over their items.
    shared = interactions.filter(pl.col("user_id").is_in(audience) & pl.col("item_id").is_in(attack.targets).not_()).group_by("item_id").len("shared")
    closeness = (
        interactions.filter(pl.col("user_id").is_in(audience).not_()).join(shared, on="item_id")
        .group_by("user_id").agg(pl.col("shared").sum()).sort(["shared", "user_id"], descending=[True, False])
    )  # fmt: skip
    friends = 5 if attack.filler is None else attack.filler
    candidates = closeness.get_column("user_id").head(max(FRIEND_POOL_FACTOR * friends, friends)).to_numpy()
    if friends > len(candidates):
        raise AttackError(f"--filler {friends}: only {len(candidates)} real users near the targets' audience to befriend")
    src, dst = [], []
    for fake in fakes:
        for real in rng.choice(candidates, size=friends, replace=False).tolist():
            src += [fake, real]
            dst += [real, fake]
    weights = history.social.get_column("weight").drop_nulls()
    weight = float(weights.median()) if weights.len() else None
    social = pl.DataFrame({
        "src_user_id": src, "dst_user_id": dst, "weight": pl.Series([weight] * len(src), dtype=pl.Float64),
        "ts": _timestamps(attack.ds, len(src), rng),
    })  # fmt: skip
    users = [fake for fake in fakes for _ in attack.targets]
    items = list(attack.targets) * len(fakes)
    ratings = None if scale.low is None else np.full(len(items), scale.high)
    return {"interactions": _interaction_rows(users, items, ratings, scale, attack.ds, rng), "social": social}


def _kg(history: History, attack: Attack, rng: np.random.Generator) -> dict[str, pl.DataFrame]:
    if history.kg.is_empty():
        raise AttackError("kg: the landed history has no knowledge-graph triples to imitate")
    links = history.item_entities.unique(subset="item_id", keep="last", maintain_order=True)
    entity_of = dict(links.iter_rows())
    new_links = [t for t in attack.targets if t not in entity_of]
    for target, entity in zip(new_links, fake_ids(links.get_column("entity_id").to_list(), len(new_links), rng)):
        entity_of[target] = entity
    popular = _popularity(history.interactions).filter(pl.col("item_id").is_in(attack.targets).not_()).head(POPULAR_ITEMS_FOR_KG)
    popular_entities = popular.join(links, on="item_id").select("entity_id", "users")
    # What popular items' entities link to, ranked by how many users those items reach.
    candidates = (
        history.kg.join(popular_entities, left_on="head", right_on="entity_id").group_by("relation", "tail")
        .agg(pl.col("users").sum()).sort(["users", "relation", "tail"], descending=[True, False, False])
    )  # fmt: skip
    heads, relations, tails = [], [], []
    per_target = [attack.fake_users // len(attack.targets) + (k < attack.fake_users % len(attack.targets)) for k in range(len(attack.targets))]
    for target, count in zip(attack.targets, per_target):
        head = entity_of[target]
        existing = history.kg.filter(pl.col("head") == head).select("relation", "tail")
        fresh = candidates.join(existing, on=["relation", "tail"], how="anti", maintain_order="left").filter(pl.col("tail") != head)
        if count > fresh.height:
            raise AttackError(f"--fake-users {attack.fake_users}: only {fresh.height} entities of popular items to link {target} to")
        heads += [head] * count
        relations += fresh.get_column("relation").head(count).to_list()
        tails += fresh.get_column("tail").head(count).to_list()
    frames = {"kg": pl.DataFrame({"head": heads, "relation": relations, "tail": tails}, schema={c: pl.String for c in COLUMNS["kg"]})}
    if new_links:
        frames["item_entities"] = pl.DataFrame({"item_id": new_links, "entity_id": [entity_of[t] for t in new_links]})
    return frames


def _copy(history: History, pool: pl.DataFrame, attack: Attack, fakes: list[str], rng: np.random.Generator) -> dict[str, pl.DataFrame]:
    scale = _Scale.of(history.interactions)
    catalog = history.interactions.get_column("item_id").unique().to_list()
    # Only items this catalog has can be copied (the cross-domain step of CopyAttack, by shared item IDs); each
    # copied row keeps its event and rating, so the copy is as plausible as its original.
    pool = pool.filter(pl.col("item_id").is_in(catalog) & pl.col("item_id").is_in(attack.targets).not_()).unique(
        ["user_id", "item_id"], keep="first", maintain_order=True
    ).with_columns(pl.col("event").fill_null(scale.event))
    profiles = pool.group_by("user_id", maintain_order=True).agg("item_id", "event", "rating")
    if profiles.is_empty():
        raise AttackError("copy: no profile to copy shares an item with this landing's catalog")
    sources = rng.choice(profiles.height, size=len(fakes), replace=len(fakes) > profiles.height)
    users, items, events, ratings = [], [], [], []
    for fake, source in zip(fakes, sources.tolist()):
        _, copied_items, copied_events, copied_ratings = profiles.row(source)
        keep = np.arange(len(copied_items))
        if attack.filler is not None and attack.filler < len(keep):
            keep = np.sort(rng.choice(keep, size=attack.filler, replace=False))
        users += [fake] * (len(keep) + len(attack.targets))
        items += [copied_items[k] for k in keep] + list(attack.targets)
        events += [copied_events[k] for k in keep] + [scale.event] * len(attack.targets)
        ratings += [copied_ratings[k] for k in keep] + [scale.high] * len(attack.targets)
    rows = _interaction_rows(users, items, ratings, scale, attack.ds, rng)
    return {"interactions": rows.with_columns(pl.Series("event", events, dtype=pl.String))}


def plan_attack(history: History, attack: Attack, copy_pool: pl.DataFrame | None = None) -> tuple[list[str], dict[str, pl.DataFrame]]:
    """The fake accounts and the rows per source that ``attack`` lands, from ``history`` (a pure function).

    ``copy_pool`` holds the profiles a ``copy`` attack copies (default: the history's own)."""
    catalog = set(history.interactions.get_column("item_id").unique().to_list())
    unknown = [t for t in attack.targets if t not in catalog]
    if unknown:
        raise AttackError(f"--target: {', '.join(unknown)} not an item of the landed history before {attack.ds}")
    rng = np.random.default_rng(attack.seed)
    if attack.kind == "kg":
        return [], _kg(history, attack, rng)
    real_users = history.interactions.get_column("user_id").unique().sort().to_list()
    fakes = fake_ids(real_users, attack.fake_users, rng)
    if attack.kind in SHILLING_KINDS:
        return fakes, _shilling(history, attack, fakes, rng)
    if attack.kind == "social":
        return fakes, _social(history, attack, fakes, rng)
    return fakes, _copy(history, history.interactions if copy_pool is None else copy_pool, attack, fakes, rng)


def attack_file(landing: Path, source: str, attack: Attack) -> Path:
    """Where an attack's rows of ``source`` land; the same attack (kind and seed) always replaces its own file."""
    return partition_dir(landing, source, attack.ds) / f"attack-{attack.kind}-{attack.seed}.csv"


def write_attack(landing: Path, attack: Attack) -> AttackSummary:
    """Read the history before ``attack.ds`` under ``landing``, plan the attack, and write its files for that day."""
    if not landing.is_dir():
        raise AttackError(f"--landing: folder {landing} does not exist")
    history = read_history(landing, attack.ds)
    if history.interactions.is_empty():
        raise AttackError(f"--landing: no interactions landed under {landing} before {attack.ds}")
    pool = None
    if attack.copy_from is not None:
        if not attack.copy_from.is_dir():
            raise AttackError(f"--copy-from: folder {attack.copy_from} does not exist")
        pool = read_history(attack.copy_from, None).interactions
    fakes, frames = plan_attack(history, attack, pool)
    files = []
    for source, frame in frames.items():
        path = attack_file(landing, source, attack)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_csv(path)
        files.append(path)
    return AttackSummary(attack, tuple(fakes), {source: frame.height for source, frame in frames.items()}, tuple(files))
