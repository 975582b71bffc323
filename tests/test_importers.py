"""Importers on slices of the real published files: exact landed rows, byte-identical reruns, file-and-line errors,
and a Gowalla-format landing that ingests cleanly and holds out exactly the authors' test pairs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from gnnrec.flows.cli import main
from gnnrec.tasks.data.importers import IMPORTERS, DatasetFormatError, ImportOptionError, import_dataset

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


def _recbole_files(target: Path) -> None:
    """A RecBole dataset by hand: interactions with a rating, a timestamp, and a field gnnrec does not read, in
    RecBole's column order of choice; social edges; a KG with its links; item features."""
    _write(target / "toy.inter", "user_id:token\titem_id:token\trating:float\treview:token_seq\ttimestamp:float",
           "u1\ti1\t4\tgood film\t881250949", "u2\ti1\t3.5\t\t881250949.75", "u1\ti2\t1\tmeh\t881280000",
           "u3\ti2\t0\tno\t881100000")  # fmt: skip
    _write(target / "toy.net", "source_id:token\ttarget_id:token", "u1\tu2", "u2\tu3")
    _write(target / "toy.kg", "head_id:token\trelation_id:token\ttail_id:token", "m.1\tfilm.genre\tm.9")
    _write(target / "toy.link", "item_id:token\tentity_id:token", "i1\tm.1", "i2\tm.2")
    _write(target / "toy.item", "item_id:token\ttitle:token_seq", "i1\tA film")


def _diffnet_slice(target: Path) -> None:
    source = _dataset("diffnet-yelp")
    for name in ("yelp.train.rating", "yelp.val.rating", "yelp.test.rating", "yelp.links"):
        _head(source / name, target / name, 200)


SLICES = {
    "lightgcn": _gowalla_slice,
    "recbole": _recbole_files,
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


def _write(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def _yelp_like(folder: Path) -> None:
    """A Yelp2018-shaped release: string org ids, an Amazon-Book-style item list with a freebase_id column that
    one item lacks."""
    _write(folder / "train.txt", "0 0 1", "1 1 2", "2 2")
    _write(folder / "test.txt", "0 2", "1 0", "2")
    _write(folder / "user_list.txt", "org_id remap_id", "nkN_do3fJ9xekchVC-v68A 0", "qmR-Z0Vh_c8xx9Ce4Rf1vQ 1", "7 2")
    _write(folder / "item_list.txt", "org_id remap_id freebase_id", "0553092626 0 m.045wq1q", "0393316041 1",
           "B00005N5PF 2 m.03_28m")  # fmt: skip


def test_lightgcn_accepts_string_org_ids_and_a_freebase_column(tmp_path: Path):
    _yelp_like(tmp_path / "yelp")

    summary = import_dataset("lightgcn", tmp_path / "yelp", tmp_path / "landing", day=D)

    def row(user: str, item: str, day: date) -> dict:
        return {"user_id": user, "item_id": item, "event": "checkin", "ts": f"{day}T00:00:00Z"}

    u0, u1, i0, i1, i2 = "nkN_do3fJ9xekchVC-v68A", "qmR-Z0Vh_c8xx9Ce4Rf1vQ", "0553092626", "0393316041", "B00005N5PF"
    assert _landed(tmp_path / "landing", "interactions") == {
        D_1: [row(u0, i0, D_1), row(u0, i1, D_1), row(u1, i1, D_1), row(u1, i2, D_1), row("7", i2, D_1)],
        D: [row(u0, i2, D), row(u1, i0, D)],
    }
    assert summary.notes == ()


def test_lightgcn_without_id_lists_keeps_the_remapped_ids_and_says_so(tmp_path: Path):
    _yelp_like(tmp_path / "yelp")
    (tmp_path / "yelp" / "user_list.txt").unlink()
    (tmp_path / "yelp" / "item_list.txt").unlink()
    _write(tmp_path / "yelp" / "train.txt", "0 0 1", "1 01 2")  # 01 is item 1, as the authors' loader reads it

    summary = import_dataset("lightgcn", tmp_path / "yelp", tmp_path / "landing", day=D)

    landed = _landed(tmp_path / "landing", "interactions")
    assert [(r["user_id"], r["item_id"]) for r in landed[D_1]] == [("0", "0"), ("0", "1"), ("1", "1"), ("1", "2")]
    assert [(r["user_id"], r["item_id"]) for r in landed[D]] == [("0", "2"), ("1", "0")]
    assert summary.notes == (
        "user_list.txt is absent: users keep the remapped ids of train.txt and test.txt as their external ids",
        "item_list.txt is absent: items keep the remapped ids of train.txt and test.txt as their external ids",
    )


def test_lightgcn_with_one_list_absent_translates_the_other_side(tmp_path: Path):
    _yelp_like(tmp_path / "yelp")
    (tmp_path / "yelp" / "item_list.txt").unlink()
    summary = import_dataset("lightgcn", tmp_path / "yelp", tmp_path / "landing", day=D)
    landed = _landed(tmp_path / "landing", "interactions")
    assert (landed[D][0]["user_id"], landed[D][0]["item_id"]) == ("nkN_do3fJ9xekchVC-v68A", "2")
    assert [note.split(" ")[0] for note in summary.notes] == ["item_list.txt"]


@pytest.mark.parametrize(("file", "lines", "message"), [
    ("user_list.txt", ("org_id remap_id", "a 0", "b x1"), "line 3: remap_id must be a non-negative integer, found 'x1'"),
    ("user_list.txt", ("org_id remap_id", "a 0", "a 1"), "line 3: org_id a is listed twice"),
    ("user_list.txt", ("org_id remap_id", "a 0", "b 0"), "line 3: remap_id 0 is listed twice"),
    ("user_list.txt", ("org_id remap_id", "a 0", "b 1 m.01"), "line 3: expected the fields org_id remap_id, found 3: 'b 1 m.01'"),
    ("item_list.txt", ("org_id remap_id freebase_id", "a"), "line 2: expected the fields org_id remap_id [freebase_id], found 1: 'a'"),
    ("item_list.txt", ("org remap",), "line 1: expected the header 'org_id remap_id' or 'org_id remap_id freebase_id', found 'org remap'"),
])  # fmt: skip
def test_lightgcn_id_list_errors_name_the_file_and_line(tmp_path: Path, file: str, lines: tuple[str, ...], message: str):
    _yelp_like(tmp_path / "yelp")
    path = _write(tmp_path / "yelp" / file, *lines)
    assert _format_error("lightgcn", tmp_path / "yelp", tmp_path) == f"{path}, {message}"


def test_lightgcn_on_gowalla_without_its_id_lists_lands_every_pair_under_the_remapped_ids(tmp_path: Path):
    """The shape of the many copies that ship only train.txt and test.txt, on the full published Gowalla files."""
    source = _dataset("gowalla")
    folder = tmp_path / "gowalla"
    folder.mkdir()
    for name in ("train.txt", "test.txt"):
        (folder / name).symlink_to(source / name)

    bare = import_dataset("lightgcn", folder, tmp_path / "bare", day=D)
    listed = import_dataset("lightgcn", source, tmp_path / "listed", day=D)

    assert bare.rows == listed.rows == {"interactions": 810_128 + 217_242}
    assert len(bare.notes) == 2 and listed.notes == ()
    first = pl.read_parquet(tmp_path / "bare" / "interactions" / f"ds={D_1}" / "lightgcn.parquet").row(0, named=True)
    assert (first["user_id"], first["item_id"]) == tuple(next(open(source / "train.txt")).split()[:2])


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


def test_recbole_lands_each_file_with_interactions_on_their_utc_days(tmp_path: Path):
    _recbole_files(tmp_path / "toy")

    summary = import_dataset("recbole", tmp_path / "toy", tmp_path / "landing")

    first, second = date(1997, 12, 2), date(1997, 12, 4)  # 881100000 is 1997-12-02 22:00:00 UTC
    def rate(user: str, item: str, rating: float, ts: str) -> dict:
        return {"user_id": user, "item_id": item, "event": "rate", "ts": ts, "rating": rating}

    assert _landed(tmp_path / "landing", "interactions") == {
        first: [rate("u3", "i2", 0.0, "1997-12-02T22:00:00Z")],
        second: [rate("u1", "i1", 4.0, "1997-12-04T15:55:49Z"), rate("u2", "i1", 3.5, "1997-12-04T15:55:49Z")],
        date(1997, 12, 5): [rate("u1", "i2", 1.0, "1997-12-05T00:00:00Z")],
    }
    assert _landed(tmp_path / "landing", "social") == {
        first: [{"src_user_id": "u1", "dst_user_id": "u2"}, {"src_user_id": "u2", "dst_user_id": "u3"}]
    }
    assert _landed(tmp_path / "landing", "kg") == {first: [{"head": "m.1", "relation": "film.genre", "tail": "m.9"}]}
    assert _landed(tmp_path / "landing", "item_entities") == {
        first: [{"item_id": "i1", "entity_id": "m.1"}, {"item_id": "i2", "entity_id": "m.2"}]
    }
    assert summary.rows == {"interactions": 4, "social": 2, "kg": 1, "item_entities": 2}
    assert summary.notes == ("toy.item is present and not landed (item features)",)
    assert {p.name for p in summary.files} == {"recbole.parquet"}


def test_recbole_without_times_or_ratings_lands_everything_on_the_day(tmp_path: Path):
    _write(tmp_path / "x" / "x.inter", "item_id:token\tuser_id:token", "i1\tu1", "i2\tu1")
    _write(tmp_path / "x" / "x.user", "user_id:token\tage:float", "u1\t30")

    summary = import_dataset("recbole", tmp_path / "x", tmp_path / "landing", day=D)

    assert _landed(tmp_path / "landing", "interactions") == {D: [
        {"user_id": "u1", "item_id": item, "event": "interact", "ts": f"{D}T00:00:00Z"} for item in ("i1", "i2")
    ]}  # fmt: skip
    assert summary.days == [D] and summary.notes == ("x.user is present and not landed (user features)",)
    default = import_dataset("recbole", tmp_path / "x", tmp_path / "default")
    assert default.days == [date(2020, 1, 2)]


def test_recbole_random_splits_cut_the_interactions_and_put_the_rest_on_the_first_day(tmp_path: Path):
    lines = [f"u{n % 7}\ti{n}\t{1_700_000_000 + 3600 * n}" for n in range(100)]
    _write(tmp_path / "s" / "s.inter", "user_id:token\titem_id:token\ttimestamp:float", *lines)
    _write(tmp_path / "s" / "s.net", "source_id:token\ttarget_id:token", "u1\tu2")

    import_dataset("recbole", tmp_path / "s", tmp_path / "a", split="random811", seed=4)

    landed = _landed(tmp_path / "a", "interactions")
    test_day = _utc_day(1_700_000_000 + 3600 * 99) + (D - D_1)  # the day after the last interaction
    days = [test_day - 2 * (D - D_1), test_day - (D - D_1), test_day]
    assert {day: len(rows) for day, rows in landed.items()} == dict(zip(days, (80, 10, 10)))
    assert sorted((r["user_id"], r["item_id"], r["ts"]) for rows in landed.values() for r in rows) == sorted(
        (f"u{n % 7}", f"i{n}", _iso(1_700_000_000 + 3600 * n)) for n in range(100)
    )
    assert all(r["event"] == "interact" for rows in landed.values() for r in rows)
    assert sorted(_landed(tmp_path / "a", "social")) == [days[0]]

    import_dataset("recbole", tmp_path / "s", tmp_path / "b", split="random80", day=D, seed=4)
    assert {day: len(rows) for day, rows in _landed(tmp_path / "b", "interactions").items()} == {D_1: 80, D: 20}
    import_dataset("recbole", tmp_path / "s", tmp_path / "c", split="random80", day=D, seed=5)
    assert _landed(tmp_path / "c", "interactions")[D] != _landed(tmp_path / "b", "interactions")[D]


def test_recbole_a_kg_without_interactions_lands_on_the_day(tmp_path: Path):
    _recbole_files(tmp_path / "kg")
    (tmp_path / "kg" / "toy.inter").unlink()
    (tmp_path / "kg" / "toy.net").unlink()
    summary = import_dataset("recbole", tmp_path / "kg", tmp_path / "landing", day=D)
    assert summary.rows == {"kg": 1, "item_entities": 2} and summary.days == [D]
    with pytest.raises(ImportOptionError, match="has no <name>.inter"):
        import_dataset("recbole", tmp_path / "kg", tmp_path / "landing", split="random80")


@pytest.mark.parametrize(("file", "lines", "message"), [
    ("toy.inter", ("user_id:token\titem_id:token\trating:float", "u1\ti1\t5", "u1\ti2"),
     "line 3: expected 3 tab-separated fields (user_id, item_id, rating), found 2: 'u1\\ti2'"),
    ("toy.inter", ("user_id:token\titem_id:token\trating:float", "u1\ti1\tfive"),
     "line 2: rating must be a number, found 'five'"),
    ("toy.inter", ("user_id:token\titem_id:token\ttimestamp:float", "u1\ti1\t1700000000000"),
     "line 2: timestamp must be Unix seconds (before 2100), found '1700000000000'"),
    ("toy.inter", ("user_id\titem_id:token", "u1\ti1"),
     "line 1: header field 'user_id' is not name:type with a type among token, token_seq, float, float_seq"),
    ("toy.net", ("source_id:token\tdst:token", "u1\tu2"),
     "line 1: header lacks target_id: expected the fields source_id, target_id, found ['source_id:token', 'dst:token']"),
])  # fmt: skip
def test_recbole_errors_name_the_file_and_line(tmp_path: Path, file: str, lines: tuple[str, ...], message: str):
    _recbole_files(tmp_path / "toy")
    path = _write(tmp_path / "toy" / file, *lines)
    assert _format_error("recbole", tmp_path / "toy", tmp_path) == f"{path}, {message}"


def test_recbole_refuses_a_folder_of_two_datasets_or_of_none(tmp_path: Path):
    _recbole_files(tmp_path / "two")
    _write(tmp_path / "two" / "other.kg", "head_id:token\trelation_id:token\ttail_id:token")
    assert _format_error("recbole", tmp_path / "two", tmp_path) == (
        f"{tmp_path / 'two'}: expected the atomic files of one dataset, found several names: other, toy"
    )
    _write(tmp_path / "none" / "toy.item", "item_id:token", "i1")
    assert _format_error("recbole", tmp_path / "none", tmp_path) == (
        f"{tmp_path / 'none'}: no atomic file to land: expected at least one of <name>.inter, <name>.net, "
        "<name>.kg, <name>.link"
    )


def test_recbole_on_the_shared_ml_100k_kg_lands_the_kg_like_recbole_kg(tmp_path: Path):
    folder = _dataset("ml-100k-kg")
    summary = import_dataset("recbole", folder, tmp_path / "recbole", day=date(1997, 9, 20))
    alias = import_dataset("recbole-kg", folder, tmp_path / "alias")
    assert summary.rows == alias.rows == {"kg": 91_631, "item_entities": 1_598}
    assert summary.days == alias.days == [date(1997, 9, 20)]
    assert summary.notes == ("ml-100k.item is present and not landed (item features)",)
    for source in ("kg", "item_entities"):
        (new,), (old,) = ((tmp_path / name / source).rglob("*.parquet") for name in ("recbole", "alias"))
        assert pl.read_parquet(new).equals(pl.read_parquet(old))


def test_recbole_on_ml_100k_as_recbole_ships_it_matches_the_movielens_import(tmp_path: Path):
    """RecBole's ml-100k.inter is u.data with a typed header: both importers must land the same rows."""
    u_data = _dataset("ml-100k") / "u.data"
    inter = tmp_path / "ml" / "ml-100k.inter"
    inter.parent.mkdir()
    inter.write_bytes(b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + u_data.read_bytes())

    recbole = import_dataset("recbole", tmp_path / "ml", tmp_path / "recbole")
    movielens = import_dataset("movielens", u_data.parent, tmp_path / "movielens")

    assert recbole.rows == movielens.rows == {"interactions": 100_000} and recbole.days == movielens.days
    def rows(landing: Path) -> pl.DataFrame:
        return pl.concat(pl.read_parquet(p) for p in sorted((landing / "interactions").rglob("*.parquet")))
    assert rows(tmp_path / "recbole").equals(rows(tmp_path / "movielens"))


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
    (folder / "test.txt").unlink()
    assert _format_error("lightgcn", folder, tmp_path) == (
        f"{folder / 'test.txt'}: missing: the lightgcn format needs this file"
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
    ("recbole", {"day": D}, "--day does not apply: with a timestamp field the days come from the timestamps"),
    ("recbole", {"split": "random70"}, "--split: recbole has no split 'random70'; it knows one of random80, random60, random811"),
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
    (["nope", "x", "--landing", "l"], "Invalid value \"nope\" for FORMAT. Choose from: \"lightgcn\", "),
    (["lightgcn", "missing-folder", "--landing", "l"], "no dataset folder missing-folder"),
    (["movielens", "{ml}", "--landing", "l", "--split", "u1", "--day", "1998-13-01"], "Invalid value for --day: unable to convert \"1998-13-01\" into date."),
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


def test_cli_imports_recbole_and_names_a_malformed_line(tmp_path: Path, capsys):
    _recbole_files(tmp_path / "toy")
    landing = tmp_path / "landing"
    assert main(["import", "recbole", str(tmp_path / "toy"), "--landing", str(landing)]) == 0
    assert capsys.readouterr().out.startswith(
        f"imported recbole {tmp_path / 'toy'} -> {landing}/: 4 interactions, 2 social, 1 kg, 2 item_entities; 3 days "
        "(1997-12-02 .. 1997-12-05)"
    )
    _replace_line(tmp_path / "toy" / "toy.net", 3, "u2")
    with pytest.raises(SystemExit) as exit_info:
        main(["import", "recbole", str(tmp_path / "toy"), "--landing", str(landing)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        f"gnnrec import: error: {tmp_path / 'toy' / 'toy.net'}, line 3: expected 2 tab-separated fields "
        "(source_id, target_id), found 1: 'u2'\n"
    )


def test_every_format_is_offered_by_the_cli():
    assert set(IMPORTERS) == set(SLICES)


# ---------------------------------------------------------------------------------------------------------------
# End to end: an imported landing through ingest and validate
# ---------------------------------------------------------------------------------------------------------------


def test_imported_gowalla_ingests_cleanly_and_holds_out_exactly_the_test_pairs(tmp_path: Path):
    from gnnrec.tasks import steps
    from gnnrec.tasks.ops.db import connect
    from gnnrec.tasks.graph.ids import load_holdout

    written = _gowalla_slice(tmp_path / "gowalla", users=40)
    users, items = _id_map(written["user_list.txt"]), _id_map(written["item_list.txt"])
    test_lines = (line.split() for line in written["test.txt"])
    test_pairs = {(users[user], items[item]) for user, *line_items in test_lines for item in line_items}
    landing, db = tmp_path / "landing", tmp_path / "gnnrec.duckdb"
    import_dataset("lightgcn", tmp_path / "gowalla", landing, day=D)

    for day in steps.pending_days(db, landing, D):
        validations = steps.ingest(db, landing, day).validation
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
