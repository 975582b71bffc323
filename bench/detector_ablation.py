"""What each part of the poisoning detector adds: the detector's own scoring functions with one part switched off
at a time, on attacked days and on clean data. No model is trained.

    python bench/detector_ablation.py [--world demo] [--users 1000] [--items 500] [--days 8]
                                      [--shares 0.005,0.01,0.03] [--kinds random,average,bandwagon,social,kg,copy]
                                      [--datasets ml-100k,ciao] [--name detector-ablation]

Accounts (``score_users`` with a :class:`UserSignals`, the default policy's threshold and ``min_group``): the
production score; without the debut-profile rate; without the day's-established-users rate; without the prior
(raw shares); without setting flagged groups aside (one round); with ``min_group`` 1 (every item counts).
Entities (``score_entities`` with an :class:`EntitySignals`, flagged at the policy's ``min_kg_triples``): the
production score; every new triple counted (not only those copying a popular item's links); entities new on the day
scored too; popular items' entities scored too.

Attacked days: the world (``--world``: the demo world or MovieLens 100K's replay) and attacks of
``bench/poisoning.py`` (the same seeds and target), landed through the pipeline's ingest and validation up to the
attack day D-1, then D-1 scored by each variant: precision and recall against the fake accounts written (kg: the
target's entity), and the genuine accounts flagged. Clean data: every day of the clean world (through the
pipeline), and of the other ``--datasets`` replays (rows loaded straight into ``clean``,
:func:`bench.poisoning.load_imported`): the accounts flagged over all days and the highest score. Writes
``bench/results/detector-ablation.json``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DIR, write_results  # noqa: E402
from bench.poisoning import KINDS, WORLDS, cold_target, land_world, load_imported  # noqa: E402
from gnnrec.flows.settings import configure_prefect_environment  # noqa: E402
from gnnrec.tasks.data.policy import DefencePolicy  # noqa: E402
from gnnrec.tasks.security.detector import EntitySignals, UserSignals  # noqa: E402

POLICY = DefencePolicy()
# name: (the signals, min_group); the first is production.
USER_VARIANTS: dict[str, tuple[UserSignals, int]] = {
    "production": (UserSignals(), POLICY.min_group),
    "no debut rate": (UserSignals(debut_rate=False), POLICY.min_group),
    "no day rate": (UserSignals(day_rate=False), POLICY.min_group),
    "no prior": (UserSignals(prior=False), POLICY.min_group),
    "no set-aside": (UserSignals(set_aside=False), POLICY.min_group),
    "min_group 1": (UserSignals(), 1),
}
ENTITY_VARIANTS: dict[str, EntitySignals] = {
    "production": EntitySignals(),
    "every triple counts": EntitySignals(copied_links=False),
    "new entities too": EntitySignals(described_before=False),
    "popular items too": EntitySignals(cold_only=False),
}


def _number(score: float | None) -> float | str | None:
    """A score for JSON: an unsmoothed rate of 0 makes a burst infinitely surprising."""
    return score if score is None or math.isfinite(score) else "inf"


def _user_scores(con, days: list[date]) -> dict:
    """Each variant's scores of every account new on ``days`` (one frame per variant)."""
    import polars as pl

    from gnnrec.tasks.security.detector import score_users

    return {
        name: pl.concat([score_users(con, d, min_group, POLICY.threshold, signals) for d in days])
        for name, (signals, min_group) in USER_VARIANTS.items()
    }


def _entity_scores(con, days: list[date]) -> dict:
    import polars as pl

    from gnnrec.tasks.security.detector import score_entities

    return {name: pl.concat([score_entities(con, d, signals) for d in days]) for name, signals in ENTITY_VARIANTS.items()}


def _against_fakes(scores, fakes: set[str]) -> dict:
    import polars as pl

    flagged = set(scores.filter(pl.col("score") >= POLICY.threshold)["user_id"].to_list())
    hits = len(flagged & fakes)
    genuine = scores.filter(pl.col("user_id").is_in(list(fakes)).not_())["score"]
    fake = scores.filter(pl.col("user_id").is_in(list(fakes)))["score"]
    return {
        "flagged": len(flagged), "true_positives": hits, "genuine_flagged": len(flagged) - hits,
        "precision": hits / len(flagged) if flagged else None, "recall": hits / len(fakes) if fakes else None,
        "min_fake_score": _number(fake.min()), "max_genuine_score": _number(genuine.max()),
    }  # fmt: skip


def _against_entity(scores, target_entity: str | None) -> dict:
    import polars as pl

    flagged = set(scores.filter(pl.col("score") >= POLICY.min_kg_triples)["head"].to_list())
    hits = int(target_entity in flagged)
    return {
        "flagged": len(flagged), "precision": hits / len(flagged) if flagged else None,
        "recall": float(hits) if target_entity is not None else None,
    }  # fmt: skip


def _clean(user_scores: dict, users: int, days: int, entity_scores: dict | None = None) -> dict:
    import polars as pl

    figures = {"users": users, "days": days, "accounts": {}}
    for name, scores in user_scores.items():
        flagged = scores.filter(pl.col("score") >= POLICY.threshold)["user_id"].n_unique()
        figures["accounts"][name] = {"flagged": flagged, "share": flagged / users, "max_score": _number(scores["score"].max())}
    if entity_scores is not None:
        figures["entities"] = {
            name: {"scored": scores.height, "flagged": scores.filter(pl.col("score") >= POLICY.min_kg_triples).height,
                   "max_score": _number(scores["score"].max())}
            for name, scores in entity_scores.items()
        }  # fmt: skip
    return figures


def _land_days(db: Path, landing: Path, days: list[date]) -> None:
    """Ingest and validate ``days`` as the pipeline does, without deciding them: nothing is quarantined."""
    from gnnrec.tasks import steps

    for day in days:
        steps.ingest(db, landing, day)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", choices=WORLDS, default="demo", help="the world attacked: the demo world or MovieLens 100K's replay")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--shares", default="0.005,0.01,0.03")
    parser.add_argument("--kinds", default=KINDS)
    parser.add_argument("--datasets", default="ml-100k,ciao")
    parser.add_argument("--name", default="detector-ablation")
    args = parser.parse_args()
    configure_prefect_environment(BENCH_DIR.parent)

    import duckdb

    from gnnrec.tasks.security.attacks import Attack, AttackError, read_history, write_attack

    started = time.perf_counter()
    figures: dict = {
        "args": vars(args), "policy": POLICY.model_dump(), "user_variants": list(USER_VARIANTS),
        "entity_variants": list(ENTITY_VARIANTS), "cases": [], "skipped": [], "clean": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = root / "base"
        days = land_world(args.world, base / "landing", args)
        attack_day = days[-1] - timedelta(days=1)
        before = [d for d in days if d < attack_day]
        _land_days(base / "gnnrec.duckdb", base / "landing", before)
        history = read_history(base / "landing", attack_day)
        target, target_entity = cold_target(history)
        # A share is of the world's users: the demo's --users, an imported dataset's users before the attack.
        users = args.users if args.world == "demo" else history.interactions["user_id"].n_unique()
        figures["target"], figures["target_entity"] = target, target_entity

        clean = root / "clean"
        shutil.copytree(base, clean)
        _land_days(clean / "gnnrec.duckdb", clean / "landing", [attack_day, days[-1]])
        with duckdb.connect(str(clean / "gnnrec.duckdb"), read_only=True) as con:
            ((clean_users,),) = con.execute("select count(distinct user_id) from clean.interactions").fetchall()
            figures["clean"][args.world] = _clean(_user_scores(con, days), clean_users, len(days), _entity_scores(con, days))
        shutil.rmtree(clean)
        print(args.world, figures["clean"][args.world], flush=True)

        for kind in args.kinds.split(","):
            for share in (float(s) for s in args.shares.split(",")):
                fakes_wanted = max(1, round(share * users))
                case = {"kind": kind, "share": share, "fake_users": fakes_wanted}
                where = root / f"{kind}-{share}"
                shutil.copytree(base, where)
                try:
                    summary = write_attack(where / "landing", Attack(kind, attack_day, (target,), fakes_wanted, seed=11))
                except AttackError as error:  # e.g. more kg triples asked than popular items' links exist
                    figures["skipped"].append(case | {"skipped": str(error)})
                    shutil.rmtree(where)
                    continue
                _land_days(where / "gnnrec.duckdb", where / "landing", [attack_day])
                with duckdb.connect(str(where / "gnnrec.duckdb"), read_only=True) as con:
                    fakes = set(summary.fake_users)
                    case["accounts"] = {n: _against_fakes(s, fakes) for n, s in _user_scores(con, [attack_day]).items()}
                    entity = target_entity if kind == "kg" else None
                    case["entities"] = {n: _against_entity(s, entity) for n, s in _entity_scores(con, [attack_day]).items()}
                shutil.rmtree(where)
                figures["cases"].append(case)
                print(kind, share, {n: (v["precision"], v["recall"]) for n, v in case["accounts"].items()}, flush=True)

        for name in (d for d in args.datasets.split(",") if d and d != args.world):  # the world's own days are above
            db, imported_days = load_imported(name, root)
            with duckdb.connect(str(db), read_only=True) as con:
                ((dataset_users,),) = con.execute("select count(distinct user_id) from clean.interactions").fetchall()
                figures["clean"][name] = _clean(_user_scores(con, imported_days), dataset_users, len(imported_days))
            print(name, figures["clean"][name], flush=True)

    figures["wall_seconds"] = round(time.perf_counter() - started)
    _print_tables(figures)
    write_results(args.name, figures)


def _cell(found: dict) -> str:
    if found["precision"] is None:
        return f"– / {found['recall']:.2f}" if found["recall"] is not None else "–"
    return f"{found['precision']:.2f} / {found['recall']:.2f}" + (f" ({found['genuine_flagged']} genuine)" if found.get("genuine_flagged") else "")


def _print_tables(figures: dict) -> None:
    print("\naccounts: precision / recall on the attack day; clean data: accounts flagged over every day (highest score)")
    header = "| attack | share | " + " | ".join(figures["user_variants"]) + " |"
    print(header + "\n|" + "---|" * (header.count("|") - 1))
    for case in figures["cases"]:
        if case["kind"] != "kg":
            print(f"| {case['kind']} | {case['share']:.1%} | " + " | ".join(_cell(case["accounts"][n]) for n in figures["user_variants"]) + " |")
    for name, clean in figures["clean"].items():
        cells = [f"{clean['accounts'][n]['flagged']} of {clean['users']:,} ({_score(clean['accounts'][n]['max_score'])})" for n in figures["user_variants"]]
        print(f"| clean {name} | {clean['days']} days | " + " | ".join(cells) + " |")
    print("\nentities: precision / recall on the attack day; clean world: entities flagged over every day (highest score)")
    header = "| attack | share | " + " | ".join(figures["entity_variants"]) + " |"
    print(header + "\n|" + "---|" * (header.count("|") - 1))
    for case in figures["cases"]:
        print(f"| {case['kind']} | {case['share']:.1%} | " + " | ".join(_cell(case["entities"][n]) for n in figures["entity_variants"]) + " |")
    world = figures["args"]["world"]
    entities = figures["clean"][world]["entities"].values()
    print(f"| clean {world} | | " + " | ".join(f"{v['flagged']} of {v['scored']} ({_score(v['max_score'])})" for v in entities) + " |")


def _score(score: float | str | None) -> str:
    return "–" if score is None else score if isinstance(score, str) else f"{score:.1f}"


if __name__ == "__main__":
    main()
