"""``gnnrec``: the command line. Every option is checked here, at the edge; a wrong value is one line on stderr
and exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any, NoReturn, get_args

EXIT_USAGE = 2
EXIT_DATA = 1  # the landed data broke its contract, or the landing folder is unusable
EXIT_BUSY = 3  # another run holds the warehouse


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: expected YYYY-MM-DD") from None


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"invalid JSON {text!r}: {error.msg}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _shown(default: object) -> str:
    """A default as a user would type it: a path as written, a model name plain, a policy as its JSON."""
    from pydantic import BaseModel

    if isinstance(default, BaseModel):
        return default.model_dump_json()
    if isinstance(default, tuple | list):
        return ",".join(map(str, default))
    return str(default)


def _add_daily_options(parser: argparse.ArgumentParser, exclude: frozenset[str] = frozenset()) -> None:
    """One option per field of :class:`DailyParams`, with its description as help, so none is ever missing."""
    from gnnrec.flows.params import RECIPE_FIELDS, DailyParams
    from gnnrec.models.registry import MODELS

    for name, field in DailyParams.model_fields.items():
        if name in exclude:
            continue
        option = "--" + name.replace("_", "-")
        if field.default is None and name in RECIPE_FIELDS + ("embedding_dim", "num_layers"):
            help_text = f"{field.description} (default: the model's recipe)"
        else:
            help_text = field.description if field.default is None else f"{field.description} (default: {_shown(field.default)})"
        kwargs: dict[str, Any] = {"dest": name, "help": help_text}
        # An optional field (None: decided later, e.g. by the model) takes the type of its value.
        annotation = next((a for a in get_args(field.annotation) if a is not type(None)), field.annotation) if (
            type(None) in get_args(field.annotation) and name not in ("sampling", "negative_sampling")
        ) else field.annotation
        if name == "ds":
            kwargs["type"] = _iso_date
        elif name == "model":
            kwargs["metavar"] = "MODEL[,MODEL...]"
        elif name == "options":
            option, kwargs["dest"] = "--option", name
            kwargs |= {"type": _key_value, "action": "append", "metavar": "KEY=VALUE",
                       "help": f"{field.description}; repeat for several"}  # fmt: skip
        elif name in ("sampling", "negative_sampling"):
            kwargs["choices"] = [a for a in get_args(get_args(field.annotation)[0]) or get_args(field.annotation) if a is not None]
        elif annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif annotation in (int, float):
            kwargs["type"] = annotation
        elif annotation in (Path, Path | None):
            kwargs["type"] = Path
        elif name == "contracts":
            kwargs["type"] = _json_object
        elif get_args(annotation):
            kwargs["choices"] = list(get_args(annotation))
        parser.add_argument(option, **kwargs)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gnnrec")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the options of ``selected`` (every command's when None). The options of ``run``,
    ``backfill`` and ``import`` come from the pipeline's own modules, which import torch and polars: leaving
    them out keeps ``gnnrec --help`` and the light commands quick."""
    parser = _Parser(prog="gnnrec", description="Batch GNN recommendations: landing files in, per-user top-K out.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    def full(name: str) -> bool:
        return selected is None or selected == name

    run = commands.add_parser("run", help="run the daily flow for one day", description="Run the daily flow: "
                              "ingest, validate, build graph, train, evaluate, publish.")
    if full("run"):
        _add_daily_options(run)
    run.set_defaults(handler=_run, parser=run)

    demo = commands.add_parser("demo-data", help="write a synthetic landing folder with planted structure")
    demo.add_argument("--out", type=Path, default=Path("landing"), help="landing folder to write (default: landing)")
    demo.add_argument("--start", type=_iso_date, default=date(2026, 1, 1), help="first day (default: 2026-01-01)")
    demo.add_argument("--days", type=int, default=14, help="number of days (default: 14)")
    demo.add_argument("--users", type=int, default=2000, help="number of users (default: 2000)")
    demo.add_argument("--items", type=int, default=1000, help="number of items (default: 1000)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    demo.set_defaults(handler=_demo, parser=demo)

    query = commands.add_parser(
        "query", help="run a SQL file read-only against the analysts' store and print the result",
        description="Run a SQL file read-only against the analysts' store (default: the store of --db), or with "
        "--describe print the store's data dictionary.",
    )
    query.add_argument("sql_file", type=Path, nargs="?", help="a .sql file, e.g. sql/analyst/user_recommendations.sql")
    query.add_argument("--describe", action="store_true", help="print every view and column of the store with its meaning")
    query.add_argument("--set", dest="variables", action="append", default=[], metavar="NAME=VALUE",
                       help="set a SQL variable first (getvariable('NAME')), e.g. --set user_id=u-002a915b; repeatable")
    query.add_argument("--warehouse", action="store_true",
                       help="read the warehouse --db itself instead (refused while a run holds it)")
    _add_registry_options(query)
    query.set_defaults(handler=_query, parser=query)

    backfill = commands.add_parser(
        "backfill", help="run every day of a range: ingest and validate each, train and publish every day or the last",
        description="Backfill [start, end] day by day under one warehouse lock. Days already completed with the same "
        "input files and parameters are skipped (--force redoes them).",
    )
    backfill.add_argument("--start", type=_iso_date, required=True, help="first day (YYYY-MM-DD)")
    backfill.add_argument("--end", type=_iso_date, required=True, help="last day, inclusive (YYYY-MM-DD)")
    backfill.add_argument("--publish", choices=["every", "last"], default="last",
                          help="train and publish every day, or only the last (default: last)")
    backfill.add_argument("--force", action="store_true", help="redo days already completed with the same inputs")
    if full("backfill"):
        _add_daily_options(backfill, exclude=frozenset({"ds"}))
    backfill.set_defaults(handler=_backfill, parser=backfill)

    failpoints = commands.add_parser(
        "failpoints", help="list the failpoints a run can be killed at (GNNREC_FAILPOINT=<name>[:<n>])",
        description="Every failpoint, one per line: its name, then what has and has not been written when a run "
        "dies there. GNNREC_FAILPOINT=<name>[:<n>] kills a run with SIGKILL the n-th time (default: first) it gets there.",
    )
    failpoints.set_defaults(handler=_failpoints, parser=failpoints)

    runs = commands.add_parser("runs", help="recent runs with their status, duration and headline metrics")
    runs.add_argument("--limit", type=int, default=20, help="how many runs (default: 20)")
    _add_registry_options(runs)
    runs.set_defaults(handler=_runs, parser=runs)

    show = commands.add_parser("show-run", help="everything recorded about one run")
    show.add_argument("run_id", help="a run id, or a unique prefix of one")
    _add_registry_options(show)
    show.set_defaults(handler=_show_run, parser=show)

    _add_import_command(commands, full("import"))
    _add_attack_command(commands, full("attack"))
    _add_release_command(commands)
    return parser


def _add_attack_command(commands, with_options: bool) -> None:
    summary = "write a day of fake activity (a data-poisoning attack) into a landing folder"
    if not with_options:
        commands.add_parser("attack", help=summary)
        return
    from gnnrec.tasks.security.attacks import KINDS

    attack = commands.add_parser(
        "attack", help=summary,
        description="Write fake users' activity for one day into the landing folder, in the landing contract, to push "
        "target items (tasks/security/attacks.py describes each kind). It reads the history landed before --ds.",
    )  # fmt: skip
    attack.add_argument("kind", choices=KINDS, help="the attack")
    attack.add_argument("--landing", type=Path, required=True, help="landing folder to read and write")
    attack.add_argument("--ds", type=_iso_date, required=True, help="the day to write (YYYY-MM-DD)")
    attack.add_argument("--target", required=True, help="item IDs to push, comma-separated")
    attack.add_argument("--fake-users", type=int, required=True, help="fake accounts to write (kg: fake triples)")
    attack.add_argument("--filler", type=int, help="items per fake profile besides the targets (social: friends "
                        "per fake user; copy: most items copied); default: the median real profile")
    attack.add_argument("--copy-from", type=Path, help="copy: a landing folder whose profiles are copied (default: --landing)")
    attack.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    attack.set_defaults(handler=_attack, parser=attack)


def _add_release_command(commands) -> None:
    release = commands.add_parser(
        "release", help="release accounts (or KG entities) the defence flagged on a day as genuine",
        description="Record that the accounts are genuine on --ds; the next run checks the day again from its raw "
        "rows and keeps their rows in clean (releases are kept, so every later check honours them).",
    )  # fmt: skip
    release.add_argument("--ds", type=_iso_date, required=True, help="the day they were flagged (YYYY-MM-DD)")
    release.add_argument("--user", help="account IDs, comma-separated")
    release.add_argument("--entity", help="KG entity IDs, comma-separated")
    release.add_argument("--db", type=Path, default=Path("data/gnnrec.duckdb"), help="DuckDB file (default: data/gnnrec.duckdb)")
    release.set_defaults(handler=_release, parser=release)


def _add_registry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=Path("data/gnnrec.duckdb"), help="DuckDB file (default: data/gnnrec.duckdb)")
    parser.add_argument("--analytics", type=Path, default=None,
                        help="the analysts' store: its folder or its views file (default: the store of --db, "
                        "data/gnnrec.analytics/ for data/gnnrec.duckdb)")


def _store(args: argparse.Namespace) -> Path:
    """The views file of the analysts' store the options name: --analytics (a folder or the file), else --db's."""
    from gnnrec.tasks.publish.analytics import default_store, views_file

    return views_file(args.analytics) if args.analytics is not None else default_store(args.db)


def _open_store(store: Path, parser: argparse.ArgumentParser):
    """A read-only session on the store; one that is missing or unreadable is one line and exit code 2."""
    import duckdb

    from gnnrec.tasks.publish.analytics import open_store

    if not store.is_file():
        parser.error(f"--analytics: no analysts' store at {store}; `gnnrec run` publishes one")
    try:
        return open_store(store)
    except duckdb.Error as error:
        parser.error(f"--analytics: {store} is not a readable analysts' store: {str(error).splitlines()[0]}")


def _add_import_command(commands, with_options: bool) -> None:
    summary = "convert a published dataset (Gowalla, MovieLens, Ciao, Last.FM, ...) into landing files"
    if not with_options:
        commands.add_parser("import", help=summary)
        return
    from gnnrec.tasks.data.importers import DEFAULT_SEED, IMPORTERS

    formats = "".join(f"\n  {name:<14} {importer.description}" for name, importer in IMPORTERS.items())
    imports = commands.add_parser(
        "import", help=summary,
        description="Convert a published dataset into landing partitions, its train/test split laid out as days."
        f"\n\nformats:{formats}", formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    imports.add_argument("format", choices=list(IMPORTERS), help="the dataset's published format")
    imports.add_argument("source", type=Path, help="the dataset's folder, e.g. ../shared/data/gowalla")
    imports.add_argument("--landing", type=Path, required=True, help="landing folder to write into")
    imports.add_argument("--day", type=_iso_date, help="D, the test day of a split (default: per format, see README)")
    imports.add_argument("--split", help="a split protocol of the format (default: its own layout, see README)")
    imports.add_argument("--seed", type=int, help=f"seed of a random split (default: {DEFAULT_SEED})")
    imports.set_defaults(handler=_import, parser=imports)


def _flow_params(model: type, args: argparse.Namespace, parser: argparse.ArgumentParser):
    """Build a flow's pydantic parameters from the options given and run the checks that need the file system;
    a bad value is one line and exit code 2, before anything is written."""
    from pydantic import ValidationError

    from gnnrec.flows.params import OptionError

    given = {k: v for k, v in vars(args).items() if k in model.model_fields and v is not None}
    if "options" in given:
        given["options"] = dict(given["options"])
    try:
        params = model(**given)
    except ValidationError as error:
        first = error.errors()[0]
        where = "-".join(str(p) for p in first["loc"]).replace("_", "-")
        message = first["msg"].removeprefix("Value error, ")
        parser.error(f"--{where}: {message}" if where else message)
    if not params.landing.is_dir():
        parser.error(f"--landing: folder {params.landing} does not exist")
    try:
        params.check_before_run()
    except OptionError as error:
        parser.error(str(error))
    return params


def _run_flow(flow: Any, params: Any, parser: argparse.ArgumentParser) -> Any:
    """Run a flow; a busy warehouse exits 3, an option the flow's own checks refuse exits 2, and bad landed data
    is one line on stderr and ``None`` (exit 1)."""
    from gnnrec.flows.params import OptionError
    from gnnrec.tasks.ops.db import WarehouseUnreadable
    from gnnrec.tasks.data.ingest import LandingError
    from gnnrec.tasks.ops.lock import WarehouseBusy
    from gnnrec.tasks.data.policy import DataContractError

    try:
        return flow(params)
    except WarehouseBusy as error:
        parser.exit(EXIT_BUSY, f"{parser.prog}: error: {error}\n")
    except OptionError as error:
        parser.error(str(error))
    except WarehouseUnreadable as error:
        parser.error(f"--db: {error}")
    except (DataContractError, LandingError) as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return None


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from gnnrec.flows.params import DailyParams

    params = _flow_params(DailyParams, args, parser)

    from gnnrec.flows.daily import run_daily
    from gnnrec.flows.report import describe_result

    result = _run_flow(run_daily, params, parser)
    if result is None:
        return EXIT_DATA
    print(describe_result(result))
    return 0


def _backfill(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from gnnrec.flows.backfill import BackfillParams

    params = _flow_params(BackfillParams, args, parser)

    from gnnrec.flows.backfill import run_backfill
    from gnnrec.flows.report import describe_backfill, show_progress

    show_progress()
    result = _run_flow(run_backfill, params, parser)
    if result is None:
        return EXIT_DATA
    print(describe_backfill(result, params.analytics))
    return 0


def _open_read_only(path: Path, option: str, parser: argparse.ArgumentParser):
    """A read-only connection; a file that is not a usable DuckDB database is one line and exit code 2."""
    from gnnrec.tasks.ops.db import WarehouseUnreadable, open_database

    try:
        return open_database(path, read_only=True)
    except WarehouseUnreadable as error:
        parser.error(f"{option}: {error}")


def _registry(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """A read-only connection to the run registry: the warehouse, or while a run holds it, the analysts' store."""
    from gnnrec.tasks.ops.lock import WarehouseBusy

    if not args.db.is_file():
        parser.error(f"--db: no warehouse at {args.db}; run `gnnrec run` first")
    try:
        return _open_read_only(args.db, "--db", parser), None
    except WarehouseBusy as busy:
        store = _store(args)
        if not store.is_file():
            parser.exit(EXIT_BUSY, f"{parser.prog}: error: {busy}; there is no analytics store at {store} yet\n")
        note = f"(a run holds {args.db}; showing the analytics store {store} as of its last publication)"
        return _open_store(store, parser), note


def _runs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from gnnrec.tasks.ops.runs import recent_runs

    con, note = _registry(args, parser)
    with con:
        if note:
            print(note)
        con.from_arrow(recent_runs(con, args.limit)).show(max_width=320, max_rows=args.limit)
    return 0


def _show_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from gnnrec.flows.report import describe_run
    from gnnrec.tasks.ops.runs import find_runs

    con, note = _registry(args, parser)
    with con:
        runs = find_runs(con, args.run_id)
    if len(runs) != 1:
        parser.error(f"{'no run' if not runs else f'{len(runs)} runs'} with an id starting with {args.run_id!r}")
    if note:
        print(note)
    print(describe_run(runs[0]))
    return 0


def _failpoints(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from gnnrec.tasks.ops.failpoints import FAILPOINTS

    width = max(map(len, FAILPOINTS))
    for name, description in FAILPOINTS.items():
        print(f"{name:<{width}}  {description}")
    return 0


def _demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from gnnrec.tasks.data.demo import generate_demo_world

    try:
        summary = generate_demo_world(args.out, start=args.start, days=args.days, users=args.users, items=args.items, seed=args.seed)
    except ValueError as error:
        parser.error(str(error))
    rows = ", ".join(f"{n:,} {source}" for source, n in summary.rows.items())
    print(f"demo world: {summary.num_users:,} users, {summary.num_items:,} items, {len(summary.days)} days "
          f"({summary.days[0]} .. {summary.days[-1]}) -> {args.out}/  [{rows}]")
    return 0


def _query(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run a SQL file against the analysts' store (or, with --warehouse, the warehouse); a failing query is one
    line on stderr and exit code 1, never a traceback."""
    import duckdb

    from gnnrec.tasks.ops.lock import WarehouseBusy

    if args.sql_file is None and not args.describe:
        parser.error("give a SQL file to run, or --describe")
    if args.sql_file is not None and not args.sql_file.is_file():
        parser.error(f"no SQL file {args.sql_file}")
    variables = []
    for assignment in args.variables:
        name, equals, value = assignment.partition("=")
        if not equals or not name.isidentifier():
            parser.error(f"--set: expected NAME=VALUE, got {assignment!r}")
        variables.append((name, value))
    if args.warehouse:
        if not args.db.is_file():
            parser.error(f"--db: no warehouse at {args.db}; run `gnnrec run` first")
        try:
            con = _open_read_only(args.db, "--db", parser)
        except WarehouseBusy as error:
            parser.exit(EXIT_BUSY, f"{parser.prog}: error: {error}; the analysts' store (without --warehouse) "
                        "can be read at any time\n")
    else:
        con = _open_store(_store(args), parser)
    with con:
        if args.describe:
            from gnnrec.tasks.publish.data_dictionary import describe

            print(describe(con), end="")
            if args.sql_file is None:
                return 0
        text = args.sql_file.read_text(encoding="utf-8")
        print(f"-- {args.sql_file}\n{text.strip()}\n")
        try:
            for name, value in variables:
                con.execute(f"set variable {name} = ?", [value])
            con.sql(text).show(max_width=160)
        except duckdb.Error as error:
            print(f"{parser.prog}: error: {args.sql_file}: {str(error).splitlines()[0]}", file=sys.stderr)
            return EXIT_DATA
    return 0


def _import(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from gnnrec.tasks.data.importers import DatasetFormatError, ImportOptionError, import_dataset

    if args.landing.exists() and not args.landing.is_dir():
        parser.error(f"--landing: {args.landing} is not a folder")
    try:
        summary = import_dataset(args.format, args.source, args.landing, day=args.day, split=args.split, seed=args.seed)
    except (DatasetFormatError, ImportOptionError) as error:
        parser.error(str(error))
    rows = ", ".join(f"{n:,} {source}" for source, n in summary.rows.items())
    days = f"{summary.days[0]}" if len(summary.days) == 1 else f"{summary.days[0]} .. {summary.days[-1]}"
    print(f"imported {args.format} {args.source} -> {args.landing}/: {rows}; {len(summary.days)} "
          f"day{'s' if len(summary.days) != 1 else ''} ({days})")
    for note in summary.notes:
        print(f"  note: {note}")
    return 0


def _attack(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from gnnrec.tasks.security.attacks import Attack, AttackError, write_attack

    try:
        attack = Attack(args.kind, args.ds, tuple(t.strip() for t in args.target.split(",")), args.fake_users,
                        args.filler, args.seed, args.copy_from)  # fmt: skip
        summary = write_attack(args.landing, attack)
    except AttackError as error:
        parser.error(str(error))
    print(summary.describe())
    return 0


def _release(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from datetime import datetime, timezone

    from gnnrec.tasks.ops.db import WarehouseUnreadable, connect, transaction
    from gnnrec.tasks.ops.lock import WarehouseBusy, warehouse_lock
    from gnnrec.tasks.security.detector import release

    asked = {kind: [i.strip() for i in text.split(",") if i.strip()] for kind, text in (("user", args.user), ("entity", args.entity)) if text}
    if not asked:
        parser.error("give --user or --entity (comma-separated IDs)")
    if not args.db.is_file():
        parser.error(f"--db: no warehouse at {args.db}; run `gnnrec run` first")
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        with warehouse_lock(args.db, f"release ds={args.ds}"), connect(args.db) as con, transaction(con):
            added = {kind: release(con, args.ds, kind, ids, now) for kind, ids in asked.items()}
    except WarehouseBusy as error:
        parser.exit(EXIT_BUSY, f"{parser.prog}: error: {error}\n")
    except WarehouseUnreadable as error:
        parser.error(f"--db: {error}")
    print(f"released on {args.ds}: " + "; ".join(f"{len(asked[k])} {k}(s), {n} new" for k, n in added.items())
          + "; the next run checks the day again")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    from gnnrec.flows.settings import configure_prefect_environment

    arguments = sys.argv[1:] if argv is None else argv
    selected = next((a for a in arguments if not a.startswith("-")), "")  # "": no command, a light parser
    parser = build_parser(selected)
    args = parser.parse_args(arguments)
    configure_prefect_environment(Path.cwd())
    return args.handler(args, args.parser)


if __name__ == "__main__":
    sys.exit(main())
