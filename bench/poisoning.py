"""Data poisoning through the real pipeline: each attack kind and fake-user share on the demo world, the target's
hit rate in real users' published lists before the attack, after it, and after it with the defence on; each
model's Recall@20 on clean users; the detector's precision and recall; and its false alarms on clean datasets.

    python bench/poisoning.py [--world demo] [--users 1000] [--items 500] [--days 8] [--epochs 10]
                              [--models pop,mf,lightgcn] [--shares 0.005,0.01,0.03]
                              [--kinds random,average,bandwagon,social,kg,copy] [--datasets ml-100k,ciao] [--name poisoning]

``--world ml-100k`` attacks MovieLens 100K instead of the demo world: ``u.data`` landed by the ``movielens`` importer
one day per rating day (the replay, 213 days up to 1998-04-22); a share is then of its users before the attack day
(940). The attack lands on the day before the last (D-1) and the run is for the last day D with one evaluation day
and no retraining: the published model is the one trained up to D-1, poisoned or not, and Recall@20 is measured on D's
genuine interactions. "after attack" runs with the defence only warning; "defended" with its default policy. The
target is one cold item (the 20th popularity percentile before the attack); hit rates count real users with a
published list who had not taken it. False alarms: accounts flagged over every day of a clean world (the demo
world through the pipeline; the imported datasets' rows loaded straight into ``clean``, as their contracts keep
every row), as a share of its users. Writes ``bench/results/poisoning.json``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DIR, SHARED_DATA, write_results  # noqa: E402
from gnnrec.flows.settings import configure_prefect_environment  # noqa: E402

START = date(2026, 1, 1)
KINDS = "random,average,bandwagon,social,kg,copy"
IMPORTS = {"ml-100k": ("movielens", "ml-100k"), "ciao": ("ciao", "ciao")}
WORLDS = ("demo", "ml-100k")


def _run(landing: Path, db: Path, ds: date, args, action: str) -> None:
    from gnnrec.flows.daily import run_daily
    from gnnrec.flows.params import DailyParams
    from gnnrec.tasks.data.policy import ContractPolicy

    run_daily(DailyParams(
        ds=ds, model=args.models, top_k=50, epochs=args.epochs, eval_days=1, retrain=False, landing=landing, db=db,
        contracts=ContractPolicy(defence={"action": action}),
    ))  # fmt: skip


def _outcome(db: Path, ds: date, args, target: str, fakes: list[str]) -> dict:
    import duckdb

    from gnnrec.tasks.security.measures import target_hit_rate

    with duckdb.connect(str(db), read_only=True) as con:
        outcome = {}
        for model in args.models.split(","):
            recall = con.execute(
                "select m.value from ops.metrics m join ops.runs r using (run_id) where r.ds = ? and r.model = ? "
                "and r.status = 'completed' and m.metric = 'recall' and m.k = 20 and m.protocol = 'full' "
                "order by r.started_at desc limit 1", [ds, model],
            ).fetchone()  # fmt: skip
            outcome[model] = {
                "hr10": target_hit_rate(con, ds, model, [target], fakes, 10),
                "hr50": target_hit_rate(con, ds, model, [target], fakes, 50),
                "recall20": recall[0] if recall else None,
            }
    return outcome


def _detection(db: Path, day: date, kind: str, fakes: list[str], target_entity: str | None) -> dict:
    import duckdb

    from gnnrec.tasks.security.measures import detection

    with duckdb.connect(str(db), read_only=True) as con:
        if kind == "kg":
            flagged = [e for (e,) in con.execute("select id from ops.suspects where ds = ? and kind = 'entity' and flagged", [day]).fetchall()]
            hits = int(target_entity in flagged)
            return {"flagged": len(flagged), "precision": hits / len(flagged) if flagged else 1.0, "recall": float(hits)}
        found = detection(con, day, fakes)
    return {"flagged": found.flagged, "precision": found.precision, "recall": found.recall}


def _false_alarms_pipeline(db: Path) -> dict:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        flagged, users = con.execute(
            "select (select count(distinct id) from ops.suspects where kind = 'user' and flagged), "
            "(select count(distinct user_id) from raw.interactions)"
        ).fetchone()  # fmt: skip
    return {"users": users, "flagged": flagged, "share": flagged / users}


def load_imported(name: str, root: Path) -> tuple[Path, list[date]]:
    """Import a public dataset and load its rows into a scratch warehouse's ``clean`` layer by day, as its contracts
    keep every row; return the warehouse and its days. The defence reads ``clean`` alone, so it scores these days
    as it would through the pipeline."""
    from gnnrec.tasks.data.importers import import_dataset
    from gnnrec.tasks.ops.db import connect

    importer, folder = IMPORTS[name]
    landing, db = root / name, root / f"{name}.duckdb"
    import_dataset(importer, SHARED_DATA / folder, landing)
    with connect(db) as con:
        con.execute(
            "insert into clean.interactions select cast(regexp_extract(filename, 'ds=([0-9-]+)', 1) as date), "
            "filename, row_number() over (), user_id::varchar, item_id::varchar, event, rating::double, ts::timestamp "
            "from read_parquet($files, filename = true)", {"files": str(landing / "interactions" / "ds=*" / "*.parquet")},
        )  # fmt: skip
        days = [d for (d,) in con.execute("select distinct ds from clean.interactions order by ds").fetchall()]
    return db, days


def _false_alarms_imported(name: str, root: Path) -> dict:
    """Screen every day of an imported dataset (:func:`load_imported`) with the default policy."""
    import polars as pl

    from gnnrec.tasks.data.policy import DefencePolicy
    from gnnrec.tasks.ops.db import connect
    from gnnrec.tasks.security.detector import score_users

    db, days = load_imported(name, root)
    policy = DefencePolicy()
    with connect(db) as con:
        scores = pl.concat([score_users(con, d, policy.min_group, policy.threshold) for d in days])
        (users,) = con.execute("select count(distinct user_id) from clean.interactions").fetchone()
    flagged = scores.filter(pl.col("score") >= policy.threshold)["user_id"].n_unique()
    return {"users": users, "days": len(days), "flagged": flagged, "share": flagged / users, "max_score": scores["score"].max()}


def cold_target(history) -> tuple[str, str | None]:
    """The attacks' target: the item at the 20th popularity percentile of the history, and its KG entity if any."""
    import polars as pl

    popularity = history.interactions.group_by("item_id").agg(pl.col("user_id").n_unique().alias("n")).sort("n", "item_id")
    target = popularity["item_id"][popularity.height // 5]
    return target, dict(history.item_entities.iter_rows()).get(target)


def land_world(world: str, landing: Path, args) -> list[date]:
    """Land the attacked world under ``landing``: the demo world, or an imported dataset's replay; its days."""
    if world == "demo":
        from gnnrec.tasks.data.demo import generate_demo_world

        return generate_demo_world(landing, start=START, days=args.days, users=args.users, items=args.items, seed=7).days
    from gnnrec.tasks.data.importers import import_dataset

    importer, folder = IMPORTS[world]
    return sorted(import_dataset(importer, SHARED_DATA / folder, landing).days)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", choices=WORLDS, default="demo", help="the world attacked: the demo world or MovieLens 100K's replay")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--models", default="pop,mf,lightgcn")
    parser.add_argument("--shares", default="0.005,0.01,0.03")
    parser.add_argument("--kinds", default=KINDS)
    parser.add_argument("--datasets", default="ml-100k,ciao")
    parser.add_argument("--name", default="poisoning", help="results file bench/results/NAME.json (a partial run's own)")
    args = parser.parse_args()
    configure_prefect_environment(BENCH_DIR.parent)

    from gnnrec.tasks.security.attacks import Attack, AttackError, read_history, write_attack

    started = time.perf_counter()
    figures: dict = {"args": vars(args), "cases": [], "skipped": [], "false_alarms": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = root / "base"
        days = land_world(args.world, base / "landing", args)
        ds, attack_day = days[-1], days[-1] - timedelta(days=1)
        history = read_history(base / "landing", attack_day)
        # A share is of the world's users: the demo's --users, an imported dataset's users before the attack.
        users = args.users if args.world == "demo" else history.interactions["user_id"].n_unique()
        target, target_entity = cold_target(history)
        _run(base / "landing", base / "data" / "gnnrec.duckdb", ds, args, "quarantine")
        before = _outcome(base / "data" / "gnnrec.duckdb", ds, args, target, [])
        figures["target"], figures["before"], figures["users"], figures["days"] = target, before, users, [str(ds), str(attack_day)]
        figures["false_alarms"][args.world] = _false_alarms_pipeline(base / "data" / "gnnrec.duckdb")
        print(f"target {target}; before: {before}", flush=True)

        for kind in args.kinds.split(","):
            for share in (float(s) for s in args.shares.split(",")):
                fakes_wanted = max(1, round(share * users))
                case = {"kind": kind, "share": share, "fake_users": fakes_wanted}
                for action, label in (("warn", "attacked"), ("quarantine", "defended")):
                    where = root / f"{kind}-{share}-{action}"
                    shutil.copytree(base, where)
                    try:
                        summary = write_attack(where / "landing", Attack(kind, attack_day, (target,), fakes_wanted, seed=11))
                    except AttackError as error:  # e.g. more kg triples asked than popular items' links exist
                        case["skipped"] = str(error)
                        shutil.rmtree(where)
                        break
                    db = where / "data" / "gnnrec.duckdb"
                    _run(where / "landing", db, ds, args, action)
                    case[label] = _outcome(db, ds, args, target, list(summary.fake_users))
                    if action == "quarantine":
                        case["detection"] = _detection(db, attack_day, kind, list(summary.fake_users), target_entity)
                    shutil.rmtree(where)
                figures["skipped" if "skipped" in case else "cases"].append(case)
                print(case, flush=True)

        for name in filter(None, args.datasets.split(",")):
            figures["false_alarms"][name] = _false_alarms_imported(name, root)
            print(name, figures["false_alarms"][name], flush=True)

    figures["wall_seconds"] = round(time.perf_counter() - started)
    _print_table(figures, args)
    write_results(args.name, figures)


def _print_table(figures: dict, args) -> None:
    models = args.models.split(",")
    print(f"\ntarget {figures['target']}: HR@10 / HR@50 among real users who had not taken it")
    header = "| attack | share | " + " | ".join(f"{m} before / attacked / defended" for m in models) + " | precision | recall |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for case in figures["cases"]:
        cells = []
        for m in models:
            b, a, d = figures["before"][m], case["attacked"][m], case["defended"][m]
            cells.append(f"{b['hr10']:.3f}/{b['hr50']:.3f} → {a['hr10']:.3f}/{a['hr50']:.3f} → {d['hr10']:.3f}/{d['hr50']:.3f}")
        det = case["detection"]
        print(f"| {case['kind']} | {case['share']:.1%} | " + " | ".join(cells) + f" | {det['precision']:.2f} | {det['recall']:.2f} |")
    print("\nRecall@20 on clean users (before / attacked / defended), mean over the cases:")
    for m in models:
        mean = lambda label: sum(c[label][m]["recall20"] or 0 for c in figures["cases"]) / max(len(figures["cases"]), 1)  # noqa: E731
        print(f"  {m}: {figures['before'][m]['recall20'] or 0:.4f} / {mean('attacked'):.4f} / {mean('defended'):.4f}")
    print("\nfalse alarms on clean data (accounts flagged / users):")
    for name, fa in figures["false_alarms"].items():
        print(f"  {name}: {fa['flagged']} / {fa['users']} = {fa['share']:.3%}")


if __name__ == "__main__":
    main()
