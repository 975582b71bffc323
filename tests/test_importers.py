"""Importers on slices of the real published files: exact landed rows, byte-identical reruns, file-and-line errors,
and a Gowalla-format landing that ingests cleanly and holds out exactly the authors' test pairs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flows.cli import main
from tasks.importers import IMPORTERS, DatasetFormatError, ImportOptionError, import_dataset

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
D = date(2024, 3, 10)
D_1, D_2 = date(2024, 3, 9), date(2024, 3, 8)


def _dataset(name: str) -> Path:
    folder = DATA / name
    if not folder.is_dir():
        pytest.skip(f"public dataset {folder} is not available")
    return folder


def _head(source: Path, target: Path, lines: int) -> list[str]:
    """Copy the first ``lines`` lines of ``source`` to ``target`` byte for byte; return them decoded, without breaks."""
    with source.open("rb") as handle:
        head = [handle.readline() for _ in range(lines)]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"".join(head))
    return [line.decode().rstrip("\r\n") for line in head if line]


def _landed(landing: Path, source: str) -> dict[date, list[dict]]:
    """Every landed row of ``source`` by day, in file order."""
    return {
        date.fromisoformat(folder.name.removeprefix("ds=")): [
            row for path in sorted(folder.iterdir()) for row in pl.read_parquet(path).iter_rows(named=True)
        ]
        for folder in sorted((landing / source).iterdir())
    }


def _files(landing: Path) -> dict[str, bytes]:
    return {p.relative_to(landing).as_posix(): p.read_bytes() for p in sorted(landing.rglob("*")) if p.is_file()}


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_day(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, UTC).date()


# ---------------------------------------------------------------------------------------------------------------
# Slices of the real files
# ---------------------------------------------------------------------------------------------------------------


def _gowalla_slice(target: Path, users: int = 30) -> dict[str, list[str]]:
    """The first ``users`` lines of train.txt and test.txt, and the id lists cut to the ids those lines use.

    Test items that no sliced training line has are dropped from test.txt, as they are absent from the full
    file's test set: every Gowalla test item occurs in training. Returns the written lines of each file.
    """
    source = _dataset("gowalla")
    train = _head(source / "train.txt", target / "train.txt", users)
    train_items = {token for line in train for token in line.split()[1:]}
    with (source / "test.txt").open() as handle:
        test_lines = [next(handle).split() for _ in range(users)]
    test = [" ".join([tokens[0], *(t for t in tokens[1:] if t in train_items)]) for tokens in test_lines]
    (target / "test.txt").write_text("".join(f"{line}\n" for line in test))
    written = {"train.txt": train, "test.txt": test}
    used = {"user_list.txt": {line.split()[0] for line in train}, "item_list.txt": train_items}
    for name, ids in used.items():
        rows = (source / name).read_text().splitlines()
        kept = [rows[0], *(row for row in rows[1:] if row.split()[1] in ids)]
        (target / name).write_text("".join(f"{row}\n" for row in kept))
        written[name] = kept
    return written


def _id_map(lines: list[str]) -> dict[str, str]:
    return {remap: org for org, remap in (line.split() for line in lines[1:])}


def _ciao_slice(target: Path, ratings: int = 300, edges: int = 400) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat, savemat

    source = _dataset("ciao")
    rating = loadmat(source / "rating_with_timestamp.mat")["rating"][:ratings]
    trust = loadmat(source / "trustnetwork.mat")["trustnetwork"][:edges]
    target.mkdir(parents=True, exist_ok=True)
    savemat(target / "rating_with_timestamp.mat", {"rating": rating})
    savemat(target / "trustnetwork.mat", {"trustnetwork": trust})
    return rating.astype(np.int64), trust.astype(np.int64)


def _movielens_slice(target: Path) -> None:
    source = _dataset("ml-100k")
    for name in ("u.data", "u1.base", "u1.test"):
        _head(source / name, target / name, 300)


def _recbole_slice(target: Path) -> None:
    source = _dataset("ml-100k-kg")
    for name in ("ml-100k.kg", "ml-100k.link"):
        _head(source / name, target / name, 200)


def _kgcn_slice(target: Path) -> None:
    source = _dataset("lastfm-kgcn")
    for name, lines in (("user_artists.dat", 400), ("kg.txt", 200), ("item_index2entity_id.txt", 300)):
        _head(source / name, target / name, lines)


def _lastfm_social_slice(target: Path) -> None:
    source = _dataset("lastfm-social")
    for name in ("data1.txt", "test1.txt", "trustnetwork.txt"):
        _head(source / name, target / name, 200)


def _diffnet_slice(target: Path) -> None:
    source = _dataset("diffnet-yelp")
    for name in ("yelp.train.rating", "yelp.val.rating", "yelp.test.rating", "yelp.links"):
        _head(source / name, target / name, 200)


SLICES = {
    "lightgcn": _gowalla_slice,
    "movielens": _movielens_slice,
    "recbole-kg": _recbole_slice,
    "ciao": _ciao_slice,
    "kgcn": _kgcn_slice,
    "lastfm-social": _lastfm_social_slice,
    "diffnet": _diffnet_slice,
}


# ---------------------------------------------------------------------------------------------------------------
# Exact landed rows, per format
# ---------------------------------------------------------------------------------------------------------------


def test_lightgcn_lands_train_on_the_day_before_test_with_the_original_ids(tmp_path: Path):
    written = _gowalla_slice(tmp_path / "gowalla")
    users, items = _id_map(written["user_list.txt"]), _id_map(written["item_list.txt"])

    summary = import_dataset("lightgcn", tmp_path / "gowalla", tmp_path / "landing", day=D)

    landed = _landed(tmp_path / "landing", "interactions")
    assert sorted(landed) == [D_1, D]
    for day, name in ((D_1, "train.txt"), (D, "test.txt")):
        expected = [
            {"user_id": users[user], "item_id": items[item], "event": "checkin", "ts": f"{day}T00:00:00Z"}
            for user, *line_items in (line.split() for line in written[name])
            for item in line_items
        ]
        assert landed[day] == expected, name
    first_user, first_item = written["train.txt"][0].split()[:2]
    assert landed[D_1][0]["user_id"] == written["user_list.txt"][1].split()[0] == users[first_user] == "343"
    assert landed[D_1][0]["item_id"] == items[first_item]
    assert summary.rows == {"interactions": len(landed[D_1]) + len(landed[D])}
    assert summary.days == [D_1, D]


def test_lightgcn_defaults_to_the_documented_days(tmp_path: Path):
    _gowalla_slice(tmp_path / "gowalla")
    summary = import_dataset("lightgcn", tmp_path / "gowalla", tmp_path / "landing")
    assert summary.days == [date(2020, 1, 1), date(2020, 1, 2)]


def test_movielens_lands_each_rating_on_its_utc_day(tmp_path: Path):
    _movielens_slice(tmp_path / "ml")
    source = [line.split("\t") for line in (tmp_path / "ml" / "u.data").read_text().splitlines()]

    import_dataset("movielens", tmp_path / "ml", tmp_path / "landing")

    landed = _landed(tmp_path / "landing", "interactions")
    expected: dict[date, list[dict]] = {}
    for user, item, rating, ts in source:
        expected.setdefault(_utc_day(int(ts)), []).append(
            {"user_id": user, "item_id": item, "event": "rate", "ts": _iso(int(ts)), "rating": float(rating)}
        )
    assert landed == dict(sorted(expected.items()))
    # u.data line 1: 196 242 3 881250949, i.e. 1997-12-04 15:55:49 UTC.
    assert landed[date(1997, 12, 4)][0] == {
        "user_id": "196", "item_id": "242", "event": "rate", "ts": "1997-12-04T15:55:49Z", "rating": 3.0
    }  # fmt: skip


def test_movielens_u1_lands_base_before_test_and_keeps_the_real_timestamps(tmp_path: Path):
    _movielens_slice(tmp_path / "ml")

    summary = import_dataset("movielens", tmp_path / "ml", tmp_path / "landing", split="u1")

    landed = _landed(tmp_path / "landing", "interactions")
    test_day = date(1998, 4, 23)
    assert summary.days == [date(1998, 4, 22), test_day]
    for day, name in ((date(1998, 4, 22), "u1.base"), (test_day, "u1.test")):
        rows = [line.split("\t") for line in (tmp_path / "ml" / name).read_text().splitlines()]
        assert landed[day] == [
            {"user_id": u, "item_id": i, "event": "rate", "ts": _iso(int(t)), "rating": float(r)} for u, i, r, t in rows
        ], name
    assert all(row["ts"] < f"{test_day}" for rows in landed.values() for row in rows)


def test_recbole_kg_lands_triples_and_links_on_one_day(tmp_path: Path):
    _recbole_slice(tmp_path / "kg")
    kg_lines = (tmp_path / "kg" / "ml-100k.kg").read_text().splitlines()
    link_lines = (tmp_path / "kg" / "ml-100k.link").read_text().splitlines()

    summary = import_dataset("recbole-kg", tmp_path / "kg", tmp_path / "landing")

    day = date(1997, 9, 20)
    assert summary.days == [day]
    assert _landed(tmp_path / "landing", "kg") == {
        day: [dict(zip(("head", "relation", "tail"), line.split("\t"))) for line in kg_lines[1:]]
    }
    assert _landed(tmp_path / "landing", "item_entities") == {
        day: [dict(zip(("item_id", "entity_id"), line.split("\t"))) for line in link_lines[1:]]
    }
    first = {"head": "m.04ctbw8", "relation": "film.producer.film", "tail": "m.0bln8"}
    assert _landed(tmp_path / "landing", "kg")[day][0] == first


def test_ciao_lands_ratings_by_day_and_trust_on_the_first_day(tmp_path: Path):
    rating, trust = _ciao_slice(tmp_path / "ciao")

    import_dataset("ciao", tmp_path / "ciao", tmp_path / "landing")

    landed = _landed(tmp_path / "landing", "interactions")
    expected: dict[date, list[dict]] = {}
    for user, item, _category, stars, _helpfulness, ts in rating.tolist():
        expected.setdefault(_utc_day(ts), []).append(
            {"user_id": str(user), "item_id": str(item), "event": "rate", "ts": _iso(ts), "rating": float(stars)}
        )
    assert landed == dict(sorted(expected.items()))
    # Row 1 of the published matrix: user 6119 gave item 92579 five stars at 959670000 (2000-05-30 07:00 UTC).
    assert landed[date(2000, 5, 30)][0] == {
        "user_id": "6119", "item_id": "92579", "event": "rate", "ts": "2000-05-30T07:00:00Z", "rating": 5.0
    }  # fmt: skip
    assert _landed(tmp_path / "landing", "social") == {
        min(expected): [{"src_user_id": str(a), "dst_user_id": str(b)} for a, b in trust.tolist()]
    }


def test_ciao_random_split_keeps_trust_network_users_and_cuts_80_20(tmp_path: Path):
    rating, trust = _ciao_slice(tmp_path / "ciao", ratings=2000, edges=3000)
    in_network = set(trust.ravel().tolist())
    kept = [row for row in rating.tolist() if row[0] in in_network]
    assert 0 < len(kept) < len(rating)

    import_dataset("ciao", tmp_path / "ciao", tmp_path / "landing", split="random80", day=D, seed=5)

    landed = _landed(tmp_path / "landing", "interactions")
    assert sorted(landed) == [D_1, D]
    assert len(landed[D]) == int(len(kept) * 0.2) and len(landed[D_1]) == len(kept) - int(len(kept) * 0.2)
    as_rows = sorted((int(r["user_id"]), int(r["item_id"]), r["rating"], r["ts"]) for rows in landed.values() for r in rows)
    assert as_rows == sorted((u, i, float(s), _iso(t)) for u, i, _c, s, _h, t in kept)
    edges = [{"src_user_id": str(a), "dst_user_id": str(b)} for a, b in trust.tolist()]
    assert _landed(tmp_path / "landing", "social") == {D_1: edges}

    other = tmp_path / "other-seed"
    import_dataset("ciao", tmp_path / "ciao", other, split="random80", day=D, seed=6)
    assert _landed(other, "interactions")[D] != landed[D]


def test_ciao_graphrec_filter_gives_the_published_counts(tmp_path: Path):
    """README of the shared data: 7,317 users / 104,975 items / 283,320 ratings with 111,781 links."""
    summary = import_dataset("ciao", _dataset("ciao"), tmp_path / "landing", split="random60", day=D)
    ratings = pl.concat(pl.read_parquet(p) for p in sorted((tmp_path / "landing" / "interactions").rglob("*.parquet")))
    assert (ratings["user_id"].n_unique(), ratings["item_id"].n_unique(), ratings.height) == (7_317, 104_975, 283_320)
    assert summary.rows == {"interactions": 283_320, "social": 111_781}
    test_rows = pl.read_parquet(tmp_path / "landing" / "interactions" / f"ds={D}" / "ciao.parquet").height
    assert test_rows == int(283_320 * 0.4)
    assert ratings["rating"].min() == 0.0 and ratings["rating"].max() == 5.0


def test_kgcn_lands_everything_on_the_day_without_the_play_count(tmp_path: Path):
    _kgcn_slice(tmp_path / "fm")
    listens = [line.split("\t") for line in (tmp_path / "fm" / "user_artists.dat").read_text().splitlines()[1:]]
    triples = [line.split("\t") for line in (tmp_path / "fm" / "kg.txt").read_text().splitlines()]
    links = [line.split("\t") for line in (tmp_path / "fm" / "item_index2entity_id.txt").read_text().splitlines()]

    summary = import_dataset("kgcn", tmp_path / "fm", tmp_path / "landing", day=D)

    assert summary.days == [D]
    midnight = f"{D}T00:00:00Z"
    assert _landed(tmp_path / "landing", "interactions") == {
        D: [{"user_id": u, "item_id": a, "event": "listen", "ts": midnight} for u, a, _weight in listens]
    }
    assert _landed(tmp_path / "landing", "kg") == {D: [{"head": h, "relation": r, "tail": t} for h, r, t in triples]}
    assert _landed(tmp_path / "landing", "item_entities") == {D: [{"item_id": a, "entity_id": e} for a, e in links]}
    assert triples[0] == ["2086", "music.artist.origin", "3846"]  # kg.txt has CRLF line ends; none is landed


def test_kgcn_random622_keeps_linked_artists_and_cuts_three_days(tmp_path: Path):
    _kgcn_slice(tmp_path / "fm")
    linked = {line.split("\t")[0] for line in (tmp_path / "fm" / "item_index2entity_id.txt").read_text().splitlines()}
    listens = [line.split("\t") for line in (tmp_path / "fm" / "user_artists.dat").read_text().splitlines()[1:]]
    kept = [(u, a) for u, a, _weight in listens if a in linked]
    assert 0 < len(kept) < len(listens)

    import_dataset("kgcn", tmp_path / "fm", tmp_path / "landing", day=D, split="random622", seed=3)

    landed = _landed(tmp_path / "landing", "interactions")
    n = len(kept)
    fifth = int(n * 0.2)
    assert {day: len(rows) for day, rows in landed.items()} == {D_2: n - 2 * fifth, D_1: fifth, D: fifth}
    assert sorted((r["user_id"], r["item_id"]) for rows in landed.values() for r in rows) == sorted(kept)
    assert all(r["ts"] == f"{day}T00:00:00Z" for day, rows in landed.items() for r in rows)
    assert sorted(_landed(tmp_path / "landing", "kg")) == sorted(_landed(tmp_path / "landing", "item_entities")) == [D_2]


def test_lastfm_social_lands_train_and_friends_before_test(tmp_path: Path):
    _lastfm_social_slice(tmp_path / "fm")
    rows = {
        name: [line.split("\t") for line in (tmp_path / "fm" / name).read_text().splitlines()]
        for name in ("data1.txt", "test1.txt", "trustnetwork.txt")
    }

    import_dataset("lastfm-social", tmp_path / "fm", tmp_path / "landing", day=D)

    assert _landed(tmp_path / "landing", "interactions") == {
        day: [{"user_id": u, "item_id": a, "event": "listen", "ts": f"{day}T00:00:00Z"} for u, a, _count in rows[name]]
        for day, name in ((D_1, "data1.txt"), (D, "test1.txt"))
    }
    assert _landed(tmp_path / "landing", "social") == {
        D_1: [{"src_user_id": u, "dst_user_id": f} for u, f in rows["trustnetwork.txt"]]
    }
    assert rows["data1.txt"][0] == ["424", "4076", "993"]


# ---------------------------------------------------------------------------------------------------------------
# Reruns and partitions
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("format_name", "split"), [
    ("lightgcn", None), ("movielens", None), ("movielens", "u1"), ("recbole-kg", None), ("ciao", None),
    ("ciao", "random80"), ("kgcn", None), ("kgcn", "random622"), ("lastfm-social", None),
])  # fmt: skip
def test_a_rerun_is_byte_identical(tmp_path: Path, format_name: str, split: str | None):
    SLICES[format_name](tmp_path / "source")
    first, second = tmp_path / "first", tmp_path / "second"
    import_dataset(format_name, tmp_path / "source", first, split=split)
    import_dataset(format_name, tmp_path / "source", second, split=split)
    before = _files(first)
    import_dataset(format_name, tmp_path / "source", first, split=split)
    assert before and _files(first) == before == _files(second)
    assert all(path.endswith(f"/{format_name}.parquet") for path in before)


def test_an_import_replaces_only_the_partitions_it_writes(tmp_path: Path):
    _lastfm_social_slice(tmp_path / "fm")
    landing = tmp_path / "landing"
    foreign = landing / "interactions" / "ds=2024-01-01" / "events.csv"
    stale = landing / "interactions" / f"ds={D}" / "old.csv"
    for path in (foreign, stale):
        path.parent.mkdir(parents=True)
        path.write_text("user_id,item_id,event,ts\nu,i,view,2024-01-01T00:00:00Z\n")

    import_dataset("lastfm-social", tmp_path / "fm", landing, day=D)

    assert sorted(_files(landing)) == [
        "interactions/ds=2024-01-01/events.csv",
        f"interactions/ds={D_1}/lastfm-social.parquet",
        f"interactions/ds={D}/lastfm-social.parquet",
        f"social/ds={D_1}/lastfm-social.parquet",
    ]


# ---------------------------------------------------------------------------------------------------------------
# Malformed files: the error names the file and the 1-based line
# ---------------------------------------------------------------------------------------------------------------


def _replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = text.encode()
    path.write_bytes(b"\n".join(lines))


def _format_error(format_name: str, folder: Path, tmp_path: Path, **options) -> str:
    with pytest.raises(DatasetFormatError) as error:
        import_dataset(format_name, folder, tmp_path / "landing", **options)
    assert not (tmp_path / "landing").exists(), "nothing is written when a file is malformed"
    return str(error.value)


def test_a_truncated_file_is_named_with_its_last_line(tmp_path: Path):
    _gowalla_slice(tmp_path / "g", users=5)
    train = tmp_path / "g" / "train.txt"
    train.write_bytes(train.read_bytes()[:-7])  # cut inside line 5
    assert _format_error("lightgcn", tmp_path / "g", tmp_path) == (
        f"{train}, line 5: no line break at the end: the file looks truncated"
    )


def test_a_line_with_the_wrong_column_count_is_named(tmp_path: Path):
    _movielens_slice(tmp_path / "ml")
    _replace_line(tmp_path / "ml" / "u.data", 3, "22\t377\t1")
    assert _format_error("movielens", tmp_path / "ml", tmp_path) == (
        f"{tmp_path / 'ml' / 'u.data'}, line 3: expected 4 tab-separated fields (user_id, item_id, rating, timestamp), "
        "found 3: '22\\t377\\t1'"
    )


@pytest.mark.parametrize(("file", "line", "text", "message"), [
    ("user_artists.dat", 4, "2\tx53\t11351", "item_id must be a non-negative integer, found 'x53'"),
    ("kg.txt", 2, "1601\tfilm.actor.film\tm.0abc", "tail must be a non-negative integer, found 'm.0abc'"),
    ("item_index2entity_id.txt", 7, "-8\t5", "item_id must be a non-negative integer, found '-8'"),
    ("user_artists.dat", 1, "user\tartist\tweight",
     "expected the header 'userID\\tartistID\\tweight', found 'user\\tartist\\tweight'"),
])  # fmt: skip
def test_a_non_integer_id_is_named_with_its_line(tmp_path: Path, file: str, line: int, text: str, message: str):
    _kgcn_slice(tmp_path / "fm")
    _replace_line(tmp_path / "fm" / file, line, text)
    assert _format_error("kgcn", tmp_path / "fm", tmp_path) == f"{tmp_path / 'fm' / file}, line {line}: {message}"


def test_gowalla_errors_name_the_file_and_line(tmp_path: Path):
    _gowalla_slice(tmp_path / "g", users=5)
    folder = tmp_path / "g"
    _replace_line(folder / "test.txt", 2, "1 99999999")
    assert _format_error("lightgcn", folder, tmp_path) == (
        f"{folder / 'test.txt'}, line 2: item_id 99999999 is not listed in item_list.txt"
    )
    _replace_line(folder / "train.txt", 4, "")
    assert _format_error("lightgcn", folder, tmp_path) == (
        f"{folder / 'train.txt'}, line 4: expected a user id followed by item ids, found an empty line"
    )
    (folder / "item_list.txt").unlink()
    assert _format_error("lightgcn", folder, tmp_path) == (
        f"{folder / 'item_list.txt'}: missing: the lightgcn format needs this file"
    )


def test_recbole_header_must_name_its_fields(tmp_path: Path):
    _recbole_slice(tmp_path / "kg")
    _replace_line(tmp_path / "kg" / "ml-100k.link", 1, "item:token\tentity_id:token")
    assert _format_error("recbole-kg", tmp_path / "kg", tmp_path).startswith(
        f"{tmp_path / 'kg' / 'ml-100k.link'}, line 1: header lacks item_id: expected the fields item_id, entity_id"
    )


def test_ciao_damaged_matrices_are_named(tmp_path: Path):
    from scipy.io import savemat

    rating, _trust = _ciao_slice(tmp_path / "ciao", ratings=20, edges=20)
    path = tmp_path / "ciao" / "rating_with_timestamp.mat"
    path.write_bytes(path.read_bytes()[:-40])
    assert _format_error("ciao", tmp_path / "ciao", tmp_path).startswith(f"{path}: cannot read it as a MATLAB file: ")

    fractional = rating.astype(float)
    fractional[6, 1] = 12.5
    savemat(path, {"rating": fractional})
    assert _format_error("ciao", tmp_path / "ciao", tmp_path) == (
        f"{path}, row 7: item must be a non-negative integer, found 12.5"
    )

    savemat(path, {"rating": rating[:, :5]})
    assert _format_error("ciao", tmp_path / "ciao", tmp_path) == (
        f"{path}: expected 'rating' to be an N x 6 numeric matrix [user, item, category, rating, helpfulness, "
        "timestamp], found int64 20 x 5"
    )


@pytest.mark.parametrize(("format_name", "options", "message"), [
    ("movielens", {"day": D}, "--day does not apply: without --split the days come from the timestamps"),
    ("lightgcn", {"seed": 1}, "--seed does not apply: the lightgcn split is fixed"),
    ("ciao", {"split": "random50"}, "--split: ciao has no split 'random50'; it knows one of random80, random60"),
    ("lastfm-social", {"split": "u1"}, "--split: lastfm-social has no split 'u1'; it knows none (its split is fixed)"),
])  # fmt: skip
def test_an_option_the_format_does_not_take_is_refused(tmp_path: Path, format_name: str, options: dict, message: str):
    SLICES[format_name](tmp_path / "source")
    with pytest.raises(ImportOptionError) as error:
        import_dataset(format_name, tmp_path / "source", tmp_path / "landing", **options)
    assert str(error.value) == message


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------


def test_cli_imports_and_prints_one_summary_line(tmp_path: Path, capsys):
    _lastfm_social_slice(tmp_path / "fm")
    landing = tmp_path / "landing"
    assert main(["import", "lastfm-social", str(tmp_path / "fm"), "--landing", str(landing), "--day", str(D)]) == 0
    assert capsys.readouterr().out == (
        f"imported lastfm-social {tmp_path / 'fm'} -> {landing}/: 400 interactions, 200 social; 2 days ({D_1} .. {D})\n"
    )


@pytest.mark.parametrize(("argv", "message"), [
    (["nope", "x", "--landing", "l"], "argument format: invalid choice: 'nope'"),
    (["lightgcn", "missing-folder", "--landing", "l"], "no dataset folder missing-folder"),
    (["movielens", "{ml}", "--landing", "l", "--split", "u1", "--day", "1998-13-01"], "argument --day: invalid date"),
    (["movielens", "{ml}", "--landing", "l", "--seed", "3"], "--seed does not apply: the MovieLens splits are fixed"),
    (["movielens", "{ml}", "--landing", "l"], "{ml}/u.data, line 2: rating must be a number, found 'five'"),
])  # fmt: skip
def test_cli_errors_are_one_line_and_exit_code_2(tmp_path: Path, capsys, monkeypatch, argv: list[str], message: str):
    monkeypatch.chdir(tmp_path)
    _movielens_slice(tmp_path / "ml")
    _replace_line(tmp_path / "ml" / "u.data", 2, "186\t302\tfive\t891717742")
    argv = [arg.replace("{ml}", str(tmp_path / "ml")) for arg in argv]
    with pytest.raises(SystemExit) as exit_info:
        main(["import", *argv])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1, captured.err
    assert captured.err.startswith(f"gnnrec import: error: {message.replace('{ml}', str(tmp_path / 'ml'))}")


def test_every_format_is_offered_by_the_cli():
    assert set(IMPORTERS) == set(SLICES)


# ---------------------------------------------------------------------------------------------------------------
# End to end: an imported landing through ingest and validate
# ---------------------------------------------------------------------------------------------------------------


def test_imported_gowalla_ingests_cleanly_and_holds_out_exactly_the_test_pairs(tmp_path: Path):
    from tasks import steps
    from tasks.db import connect
    from tasks.graph import load_holdout

    written = _gowalla_slice(tmp_path / "gowalla", users=40)
    users, items = _id_map(written["user_list.txt"]), _id_map(written["item_list.txt"])
    test_lines = (line.split() for line in written["test.txt"])
    test_pairs = {(users[user], items[item]) for user, *line_items in test_lines for item in line_items}
    landing, db = tmp_path / "landing", tmp_path / "gnnrec.duckdb"
    import_dataset("lightgcn", tmp_path / "gowalla", landing, day=D)

    for day in steps.pending_days(db, landing, D):
        steps.ingest(db, landing, day)
        validations = steps.validate(db, day)
        assert sum(v.rows_read for v in validations) > 0
        assert [v.rows_quarantined for v in validations] == [0] * len(validations), day
    steps.build_graph(db, D)

    with connect(db) as con:
        holdout = load_holdout(con, D, 1)
        user_ids = dict(con.execute("select user_idx, user_id from graph.user_ids").fetchall())
        item_ids = dict(con.execute("select item_idx, item_id from graph.item_ids").fetchall())
    held_out = [(user_ids[u], item_ids[i]) for u, i in zip(holdout.users.tolist(), holdout.items.tolist(), strict=True)]
    assert holdout.cutoff == D_1
    assert len(held_out) == len(set(held_out)) == len(test_pairs) > 100
    assert set(held_out) == test_pairs
