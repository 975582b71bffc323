"""The commands whose options come from the pipeline's own modules (torch, polars, Prefect): ``gnnrec run``,
``backfill``, ``import`` and ``attack``. :mod:`gnnrec.flows.cli` registers them by import path, so this module is
imported only when one of them runs or shows its help."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from cyclopts import Parameter

from gnnrec.flows.backfill import BackfillParams
from gnnrec.flows.cli import EXIT_BUSY, EXIT_DATA, Usage
from gnnrec.flows.params import DailyParams, OptionError
from gnnrec.tasks.data.importers import DEFAULT_SEED, IMPORTERS
from gnnrec.tasks.security.attacks import KINDS

DatasetFormat = Literal[*IMPORTERS]
AttackKind = Literal[*KINDS]


def _checked(params: DailyParams, usage: Usage) -> None:
    """The checks that need the file system, made before anything is written: one line and exit code 2."""
    if not params.landing.is_dir():
        usage.error(f"--landing: folder {params.landing} does not exist")
    try:
        params.check_before_run()
    except OptionError as error:
        usage.error(str(error))


def _run_flow(flow: Any, params: DailyParams, usage: Usage) -> Any:
    """Run a flow; a busy warehouse exits 3, an option the flow's own checks refuse exits 2, and bad landed data
    is one line on stderr and ``None`` (exit 1)."""
    import sys

    from gnnrec.tasks.data.ingest import LandingError
    from gnnrec.tasks.data.policy import DataContractError
    from gnnrec.tasks.ops.db import WarehouseUnreadable
    from gnnrec.tasks.ops.lock import WarehouseBusy

    try:
        return flow(params)
    except WarehouseBusy as error:
        usage.error(str(error), EXIT_BUSY)
    except OptionError as error:
        usage.error(str(error))
    except WarehouseUnreadable as error:
        usage.error(f"--db: {error}")
    except (DataContractError, LandingError) as error:
        print(f"gnnrec {usage.command}: {error}", file=sys.stderr)
        return None


def run_command(params: Annotated[DailyParams | None, Parameter(name="*")] = None) -> int:
    """Run the daily flow for one day: ingest, validate, build the graph, train, evaluate, publish.

    Every option is a parameter of the flow (``daily-recommendations``), with the same checks."""
    from gnnrec.flows.daily import run_daily
    from gnnrec.flows.report import describe_result

    usage = Usage("run")
    params = params or DailyParams()
    _checked(params, usage)
    result = _run_flow(run_daily, params, usage)
    if result is None:
        return EXIT_DATA
    print(describe_result(result))
    return 0


def backfill_command(params: Annotated[BackfillParams, Parameter(name="*")]) -> int:
    """Backfill [start, end] day by day under one warehouse lock: ingest and validate each day, train and publish
    every day or only the last. Days already completed with the same input files and parameters are skipped
    (--force redoes them)."""
    from gnnrec.flows.backfill import run_backfill
    from gnnrec.flows.report import describe_backfill, show_progress

    usage = Usage("backfill")
    _checked(params, usage)
    show_progress()
    result = _run_flow(run_backfill, params, usage)
    if result is None:
        return EXIT_DATA
    print(describe_backfill(result, params.analytics))
    return 0


def import_command(
    format: Annotated[
        DatasetFormat,
        Parameter(help="the dataset's published format: " + "; ".join(f"{name}: {i.description}" for name, i in IMPORTERS.items())),
    ],
    source: Annotated[Path, Parameter(help="the dataset's folder, e.g. ../shared/data/gowalla")],
    /,
    *,
    landing: Annotated[Path, Parameter(help="landing folder to write into")],
    day: Annotated[date | None, Parameter(help="D, the test day of a split (default: per format, see README)")] = None,
    split: Annotated[str | None, Parameter(help="a split protocol of the format (default: its own layout, see README)")] = None,
    seed: Annotated[int | None, Parameter(help=f"seed of a random split (default: {DEFAULT_SEED})")] = None,
) -> int:
    """Convert a published dataset into landing partitions, its train/test split laid out as days."""
    from gnnrec.tasks.data.importers import DatasetFormatError, ImportOptionError, import_dataset

    usage = Usage("import")
    if landing.exists() and not landing.is_dir():
        usage.error(f"--landing: {landing} is not a folder")
    try:
        summary = import_dataset(format, source, landing, day=day, split=split, seed=seed)
    except (DatasetFormatError, ImportOptionError) as error:
        usage.error(str(error))
    rows = ", ".join(f"{n:,} {source}" for source, n in summary.rows.items())
    days = f"{summary.days[0]}" if len(summary.days) == 1 else f"{summary.days[0]} .. {summary.days[-1]}"
    print(f"imported {format} {source} -> {landing}/: {rows}; {len(summary.days)} "
          f"day{'s' if len(summary.days) != 1 else ''} ({days})")
    for note in summary.notes:
        print(f"  note: {note}")
    return 0


def attack_command(
    kind: Annotated[AttackKind, Parameter(help="the attack (tasks/security/attacks.py describes each)")],
    /,
    *,
    landing: Annotated[Path, Parameter(help="landing folder to read and write")],
    ds: Annotated[date, Parameter(help="the day to write")],
    target: Annotated[str, Parameter(help="item IDs to push, comma-separated")],
    fake_users: Annotated[int, Parameter(help="fake accounts to write (kg: fake triples)")],
    filler: Annotated[int | None, Parameter(help="items per fake profile besides the targets (social: friends per "
                                            "fake user; copy: most items copied); default: the median real profile")] = None,
    copy_from: Annotated[Path | None, Parameter(help="copy: a landing folder whose profiles are copied (default: --landing)")] = None,
    seed: Annotated[int, Parameter(help="random seed")] = 0,
) -> int:
    """Write fake users' activity for one day into the landing folder, in the landing contract, to push target
    items (tasks/security/attacks.py describes each kind). It reads the history landed before --ds."""
    from gnnrec.tasks.security.attacks import Attack, AttackError, write_attack

    usage = Usage("attack")
    try:
        attack = Attack(kind, ds, tuple(t.strip() for t in target.split(",")), fake_users, filler, seed, copy_from)
        summary = write_attack(landing, attack)
    except AttackError as error:
        usage.error(str(error))
    print(summary.describe())
    return 0
