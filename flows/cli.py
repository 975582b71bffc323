"""``gnnrec``: the command line, on cyclopts. The options of ``run`` and ``backfill`` are the flows' own pydantic
parameters (:class:`~gnnrec.flows.params.DailyParams`), flattened, so no option is mapped by hand and none is ever
missing. Commands are registered by import path: ``gnnrec --help`` lists them without importing torch, polars or
Prefect, and a command's module is imported when it runs. A wrong value is one line on stderr and exit code 2,
never a traceback."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated, NoReturn

from cyclopts import App, Parameter
from cyclopts.exceptions import CycloptsError

EXIT_USAGE = 2
EXIT_DATA = 1  # the landed data broke its contract, or the landing folder is unusable
EXIT_BUSY = 3  # another run holds the warehouse

Db = Annotated[Path, Parameter(help="the pipeline's DuckDB file")]
Analytics = Annotated[
    Path | None,
    Parameter(help="the analysts' store: its folder or its views file (default: the store of --db, "
              "data/gnnrec.analytics/ for data/gnnrec.duckdb)"),
]
DEFAULT_DB = Path("data/gnnrec.duckdb")


class Usage:
    """Reports a command's refused option or input as ``gnnrec <command>: error: <message>`` and exits."""

    def __init__(self, command: str) -> None:
        self.command = command

    def error(self, message: str, code: int = EXIT_USAGE) -> NoReturn:
        print(f"gnnrec {self.command}: error: {message}", file=sys.stderr)
        raise SystemExit(code)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"gnnrec {version('gnnrec')}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "gnnrec unknown (not installed)"


app = App(
    name="gnnrec", help="Batch GNN recommendations: landing files in, per-user top-K out.", version=_version,
    exit_on_error=False, print_error=False, help_on_error=False, result_action="return_value",
)  # fmt: skip
for command, summary in {
    "run": "Run the daily flow for one day: ingest, validate, build the graph, train, evaluate, publish.",
    "backfill": "Run every day of a range: ingest and validate each, train and publish every day or the last.",
    "import": "Convert a published dataset (Gowalla, MovieLens, Ciao, Last.FM, ...) into landing files.",
    "attack": "Write a day of fake activity (a data-poisoning attack) into a landing folder.",
}.items():
    app.command(f"gnnrec.flows.commands:{command}_command", name=command, help=summary)


@app.command(name="demo-data")
def demo_data(
    *,
    out: Annotated[Path, Parameter(help="landing folder to write")] = Path("landing"),
    start: Annotated[date, Parameter(help="first day")] = date(2026, 1, 1),
    days: Annotated[int, Parameter(help="number of days")] = 14,
    users: Annotated[int, Parameter(help="number of users")] = 2000,
    items: Annotated[int, Parameter(help="number of items")] = 1000,
    seed: Annotated[int, Parameter(help="random seed")] = 7,
) -> int:
    """Write a synthetic landing folder with planted structure (the demo world)."""
    from gnnrec.tasks.data.demo import generate_demo_world

    try:
        summary = generate_demo_world(out, start=start, days=days, users=users, items=items, seed=seed)
    except ValueError as error:
        Usage("demo-data").error(str(error))
    rows = ", ".join(f"{n:,} {source}" for source, n in summary.rows.items())
    print(f"demo world: {summary.num_users:,} users, {summary.num_items:,} items, {len(summary.days)} days "
          f"({summary.days[0]} .. {summary.days[-1]}) -> {out}/  [{rows}]")
    return 0


@app.command
def query(
    sql_file: Annotated[Path | None, Parameter(help="a .sql file, e.g. sql/analyst/user_recommendations.sql")] = None,
    /,
    *,
    describe: Annotated[bool, Parameter(help="print every view and column of the store with its meaning")] = False,
    set_: Annotated[
        tuple[str, ...],
        Parameter(name="--set", help="set a SQL variable first (getvariable('NAME')), e.g. --set user_id=u-002a915b; "
                  "repeatable", consume_multiple=False, negative=()),
    ] = (),
    warehouse: Annotated[
        bool, Parameter(help="read the warehouse --db itself instead (refused while a run holds it)", negative=())
    ] = False,
    db: Db = DEFAULT_DB,
    analytics: Analytics = None,
) -> int:
    """Run a SQL file read-only against the analysts' store and print the result.

    The store is --db's unless --analytics names one; --describe prints its data dictionary. A failing query is one
    line on stderr and exit code 1."""
    import duckdb

    from gnnrec.tasks.ops.lock import WarehouseBusy

    usage = Usage("query")
    if sql_file is None and not describe:
        usage.error("give a SQL file to run, or --describe")
    if sql_file is not None and not sql_file.is_file():
        usage.error(f"no SQL file {sql_file}")
    variables = []
    for assignment in set_:
        name, equals, value = assignment.partition("=")
        if not equals or not name.isidentifier():
            usage.error(f"--set: expected NAME=VALUE, got {assignment!r}")
        variables.append((name, value))
    if warehouse:
        if not db.is_file():
            usage.error(f"--db: no warehouse at {db}; run `gnnrec run` first")
        try:
            con = _open_read_only(db, "--db", usage)
        except WarehouseBusy as error:
            usage.error(f"{error}; the analysts' store (without --warehouse) can be read at any time", EXIT_BUSY)
    else:
        con = _open_store(_store(db, analytics), usage)
    with con:
        if describe:
            from gnnrec.tasks.publish.data_dictionary import describe as data_dictionary

            print(data_dictionary(con), end="")
            if sql_file is None:
                return 0
        text = sql_file.read_text(encoding="utf-8")
        print(f"-- {sql_file}\n{text.strip()}\n")
        try:
            for name, value in variables:
                con.execute(f"set variable {name} = ?", [value])
            con.sql(text).show(max_width=160)
        except duckdb.Error as error:
            print(f"gnnrec query: error: {sql_file}: {str(error).splitlines()[0]}", file=sys.stderr)
            return EXIT_DATA
    return 0


@app.command
def failpoints() -> int:
    """List the failpoints a run can be killed at.

    One per line: its name, then what has and has not been written when a run dies there. GNNREC_FAILPOINT=NAME
    kills a run with SIGKILL the first time it gets there, GNNREC_FAILPOINT=NAME:N the N-th time."""
    from gnnrec.tasks.ops.failpoints import FAILPOINTS

    width = max(map(len, FAILPOINTS))
    for name, description in FAILPOINTS.items():
        print(f"{name:<{width}}  {description}")
    return 0


@app.command
def runs(
    *, limit: Annotated[int, Parameter(help="how many runs")] = 20, db: Db = DEFAULT_DB, analytics: Analytics = None
) -> int:
    """Recent runs with their status, duration and headline metrics."""
    from gnnrec.tasks.ops.runs import recent_runs

    con, note = _registry(db, analytics, Usage("runs"))
    with con:
        if note:
            print(note)
        con.from_arrow(recent_runs(con, limit)).show(max_width=320, max_rows=limit)
    return 0


@app.command(name="show-run")
def show_run(
    run_id: Annotated[str, Parameter(help="a run id, or a unique prefix of one")], /, *, db: Db = DEFAULT_DB,
    analytics: Analytics = None,
) -> int:
    """Everything recorded about one run."""
    from gnnrec.flows.report import describe_run
    from gnnrec.tasks.ops.runs import find_runs

    usage = Usage("show-run")
    con, note = _registry(db, analytics, usage)
    with con:
        found = find_runs(con, run_id)
    if len(found) != 1:
        usage.error(f"{'no run' if not found else f'{len(found)} runs'} with an id starting with {run_id!r}")
    if note:
        print(note)
    print(describe_run(found[0]))
    return 0


@app.command
def release(
    *,
    ds: Annotated[date, Parameter(help="the day they were flagged")],
    user: Annotated[str | None, Parameter(help="account IDs, comma-separated")] = None,
    entity: Annotated[str | None, Parameter(help="KG entity IDs, comma-separated")] = None,
    db: Db = DEFAULT_DB,
) -> int:
    """Release accounts (or KG entities) the defence flagged on a day as genuine.

    The next run checks the day again from its raw rows and keeps their rows in clean; releases are kept, so every
    later check honours them."""
    from datetime import datetime, timezone

    from gnnrec.tasks.ops.db import WarehouseUnreadable, connect, transaction
    from gnnrec.tasks.ops.lock import WarehouseBusy, warehouse_lock
    from gnnrec.tasks.security.detector import release as release_ids

    usage = Usage("release")
    asked = {kind: [i.strip() for i in text.split(",") if i.strip()] for kind, text in (("user", user), ("entity", entity)) if text}
    if not asked:
        usage.error("give --user or --entity (comma-separated IDs)")
    if not db.is_file():
        usage.error(f"--db: no warehouse at {db}; run `gnnrec run` first")
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        with warehouse_lock(db, f"release ds={ds}"), connect(db) as con, transaction(con):
            added = {kind: release_ids(con, ds, kind, ids, now) for kind, ids in asked.items()}
    except WarehouseBusy as error:
        usage.error(str(error), EXIT_BUSY)
    except WarehouseUnreadable as error:
        usage.error(f"--db: {error}")
    print(f"released on {ds}: " + "; ".join(f"{len(asked[k])} {k}(s), {n} new" for k, n in added.items())
          + "; the next run checks the day again")  # fmt: skip
    return 0


def _store(db: Path, analytics: Path | None) -> Path:
    """The views file of the analysts' store the options name: --analytics (a folder or the file), else --db's."""
    from gnnrec.tasks.publish.analytics import default_store, views_file

    return views_file(analytics) if analytics is not None else default_store(db)


def _open_store(store: Path, usage: Usage):
    """A read-only session on the store; one that is missing or unreadable is one line and exit code 2."""
    import duckdb

    from gnnrec.tasks.publish.analytics import open_store

    if not store.is_file():
        usage.error(f"--analytics: no analysts' store at {store}; `gnnrec run` publishes one")
    try:
        return open_store(store)
    except duckdb.Error as error:
        usage.error(f"--analytics: {store} is not a readable analysts' store: {str(error).splitlines()[0]}")


def _open_read_only(path: Path, option: str, usage: Usage):
    """A read-only connection; a file that is not a usable DuckDB database is one line and exit code 2."""
    from gnnrec.tasks.ops.db import WarehouseUnreadable, open_database

    try:
        return open_database(path, read_only=True)
    except WarehouseUnreadable as error:
        usage.error(f"{option}: {error}")


def _registry(db: Path, analytics: Path | None, usage: Usage):
    """A read-only connection to the run registry: the warehouse, or while a run holds it, the analysts' store."""
    from gnnrec.tasks.ops.lock import WarehouseBusy

    if not db.is_file():
        usage.error(f"--db: no warehouse at {db}; run `gnnrec run` first")
    try:
        return _open_read_only(db, "--db", usage), None
    except WarehouseBusy as busy:
        store = _store(db, analytics)
        if not store.is_file():
            usage.error(f"{busy}; there is no analytics store at {store} yet", EXIT_BUSY)
        note = f"(a run holds {db}; showing the analytics store {store} as of its last publication)"
        return _open_store(store, usage), note


def describe_parse_error(error: CycloptsError) -> str:
    """One line for what cyclopts refused: a parameter model's validation names the option (``--top-k: ...``,
    ``--contracts.kg.rejection-budget: ...``); anything else is cyclopts' own sentence."""
    from pydantic import ValidationError

    cause = error.__cause__
    if isinstance(cause, ValidationError):
        first = cause.errors()[0]
        where = ".".join(str(part).replace("_", "-") for part in first["loc"]).replace("options", "option", 1)
        message = first["msg"].removeprefix("Value error, ")
        return f"--{where}: {message}" if where else message
    return " ".join(str(error).split())


def main(argv: list[str] | None = None) -> int:
    from gnnrec.flows.settings import configure_prefect_environment

    arguments = sys.argv[1:] if argv is None else argv
    configure_prefect_environment(Path.cwd())
    try:
        result = app(arguments)
    except CycloptsError as error:
        command = next((a for a in arguments if not a.startswith("-")), "")
        print(f"gnnrec{f' {command}' if command else ''}: error: {describe_parse_error(error)}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    return 0 if result is None else result


if __name__ == "__main__":
    sys.exit(main())
