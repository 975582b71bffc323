"""Checks at the edge: every bad option value, clashing path, unusable database folder or file is one line on
stderr naming the option, exit code 2, and nothing written. None of these tests trains anything."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pytest
import torch

from gnnrec.flows.backfill import BackfillParams
from gnnrec.flows.cli import main
from gnnrec.flows.params import (
    SEED_MAX, UNTRAINED_MODELS, DailyParams, OptionError, check_history, check_writable_file_folder, probe_writable,
)
from gnnrec.models.base import GraphData
from gnnrec.models.registry import MODELS, ModelHyperparameters, build_model
from gnnrec.tasks.ops.db import WarehouseHeld, WarehouseUnreadable, connect
from gnnrec.tasks.data.demo import generate_demo_world
from gnnrec.tasks.ops.lock import WarehouseBusy
from gnnrec.tasks.learn.train import is_trainable

GNNREC = Path(sys.executable).with_name("gnnrec")
PROJECT_DIR = Path(__file__).resolve().parents[1]
FIRST, LAST = date(2026, 1, 1), date(2026, 1, 3)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    """Three landed days, 2026-01-01 .. 2026-01-03, outside each test's own folder."""
    folder = tmp_path_factory.mktemp("world") / "landing"
    generate_demo_world(folder, start=FIRST, days=3, users=30, items=20, seed=3)
    return folder


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths (and the default data/...) land in the test's own folder


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with a file's bytes (None for a folder): equal before and after = nothing written."""
    return {
        str(path.relative_to(root)): None if path.is_dir() else path.read_bytes()
        for path in sorted(root.rglob("*"))
        if not path.is_symlink() or path.exists()
    }


def _refused(argv: list[str], capsys, root: Path) -> str:
    """Run the CLI in-process; expect exit code 2, one stderr line, nothing on stdout and nothing written under
    ``root``; return the line."""
    before = _tree(root)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    assert exit_info.value.code == 2, captured.err
    assert captured.out == ""
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert _tree(root) == before
    return lines[0]


def _run(landing: Path, *argv: str) -> list[str]:
    return ["run", "--landing", str(landing), "--ds", str(LAST), *argv]


# 1. distinct places ---------------------------------------------------------------------------------------------


def test_analytics_equal_to_db_is_refused(landing, tmp_path, capsys):
    line = _refused(_run(landing, "--db", "data/gnnrec.duckdb", "--analytics", "data/gnnrec.duckdb"), capsys, tmp_path)
    assert line == ("gnnrec run: error: --analytics: the analysts' store data/gnnrec.duckdb is the warehouse "
                    "data/gnnrec.duckdb of --db; they must be distinct")


def test_analytics_equal_to_db_through_dotdot_and_absolute_is_refused(landing, tmp_path, capsys):
    line = _refused(_run(landing, "--db", "data/gnnrec.duckdb", "--analytics", str(tmp_path / "x" / ".." / "data" / "gnnrec.duckdb")),
                    capsys, tmp_path)
    assert line.startswith("gnnrec run: error: --analytics: the analysts' store ")
    assert line.endswith(f"is the warehouse data/gnnrec.duckdb of --db (both {tmp_path.resolve()}/data/gnnrec.duckdb); "
                         "they must be distinct")


def test_analytics_equal_to_db_through_a_symlinked_folder_is_refused(landing, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "data")
    line = _refused(_run(landing, "--db", "data/gnnrec.duckdb", "--analytics", "alias/gnnrec.duckdb"), capsys, tmp_path)
    assert line.startswith("gnnrec run: error: --analytics: the analysts' store alias/gnnrec.duckdb is the warehouse")
    assert not (tmp_path / "data" / "gnnrec.duckdb.lock").exists()


def test_analytics_parquet_folder_equal_to_the_checkpoint_folder_is_refused(landing, tmp_path, capsys):
    line = _refused(_run(landing, "--db", "data/gnnrec.duckdb", "--analytics", "data/checkpoints.duckdb"), capsys, tmp_path)
    assert line == ("gnnrec run: error: --analytics: the analysts' Parquet folder data/checkpoints is the checkpoint "
                    "folder data/checkpoints of --db; they must be distinct")


def test_landing_inside_the_checkpoint_folder_is_refused(tmp_path, capsys):
    inner = tmp_path / "data" / "checkpoints" / "landing"
    inner.mkdir(parents=True)
    line = _refused(["run", "--landing", str(inner), "--db", "data/gnnrec.duckdb"], capsys, tmp_path)
    assert line == (f"gnnrec run: error: --landing: the landing folder {inner} lies inside the checkpoint folder "
                    "data/checkpoints of --db; they must be distinct")


def test_an_output_inside_a_landing_source_folder_is_refused(landing, tmp_path, capsys):
    store = landing / "interactions" / "analytics.duckdb"
    line = _refused(_run(landing, "--analytics", str(store)), capsys, landing.parent)
    assert line == (f"gnnrec run: error: --landing: the landing folder {landing} has, inside a source folder it "
                    f"reads, the analysts' store {store} of --analytics; they must be distinct")


def test_outputs_beside_the_landing_source_folders_are_allowed():
    # The landing root's own entries are never read, only <landing>/<source>/: a warehouse there is no clash.
    DailyParams(landing=Path("world"), db=Path("world/gnnrec.duckdb"), analytics=Path("world/analytics.duckdb"))


# 2. the database's folder ---------------------------------------------------------------------------------------


def test_db_under_a_regular_file_is_refused(landing, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    line = _refused(_run(landing, "--db", "afile/x.duckdb", "--analytics", "a.duckdb"), capsys, tmp_path)
    assert line == "gnnrec run: error: --db: afile/x.duckdb lies under afile, which is a file, not a folder"


def test_db_that_is_a_folder_is_refused(landing, tmp_path, capsys):
    (tmp_path / "wh.duckdb").mkdir()
    line = _refused(_run(landing, "--db", "wh.duckdb"), capsys, tmp_path)
    assert line == "gnnrec run: error: --db: wh.duckdb is a folder, not a DuckDB file"


@pytest.mark.skipif(not os.access("/sys", os.F_OK), reason="no /sys")
def test_db_in_a_folder_nobody_can_write_is_refused(landing, tmp_path, capsys):
    # sysfs refuses new files even to root, where chmod does not.
    line = _refused(_run(landing, "--db", "/sys/gnnrec.duckdb", "--analytics", "a.duckdb"), capsys, tmp_path)
    assert line.startswith("gnnrec run: error: --db: the folder /sys is not writable (")
    line = _refused(_run(landing, "--db", "/sys/gnnrec-missing/x.duckdb", "--analytics", "a.duckdb"), capsys, tmp_path)
    assert line.startswith("gnnrec run: error: --db: the folder /sys/gnnrec-missing does not exist and cannot be "
                           "created: /sys is not writable (")


def test_db_in_an_immutable_folder_is_refused(landing, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        if probe_writable(locked) is None:
            pytest.skip("an immutable folder is still writable here")
        line = _refused(_run(landing, "--db", "locked/gnnrec.duckdb", "--analytics", "a.duckdb"), capsys, tmp_path)
        assert line.startswith("gnnrec run: error: --db: the folder locked is not writable (")
        line = _refused(_run(landing, "--db", "locked/sub/gnnrec.duckdb", "--analytics", "a.duckdb"), capsys, tmp_path)
        assert line.startswith("gnnrec run: error: --db: the folder locked/sub does not exist and cannot be created: "
                               "locked is not writable (")
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)


def test_the_folder_check_asks_the_probe_about_the_nearest_existing_folder(tmp_path):
    asked = []

    def read_only(folder: Path) -> str:
        asked.append(folder)
        return "Read-only file system"

    with pytest.raises(OptionError, match=r"^--db: the folder .*/a/b does not exist and cannot be created: .* is not "
                                          r"writable \(Read-only file system\)$"):
        check_writable_file_folder(tmp_path / "a" / "b" / "x.duckdb", "--db", probe=read_only)
    assert asked == [tmp_path]
    with pytest.raises(OptionError, match=r"^--analytics: the folder .* is not writable \(Read-only file system\)$"):
        check_writable_file_folder(tmp_path / "x.duckdb", "--analytics", probe=read_only)
    check_writable_file_folder(tmp_path / "a" / "x.duckdb", "--db", probe=lambda folder: None)
    assert probe_writable(tmp_path) is None and list(tmp_path.iterdir()) == []  # the real probe leaves nothing


# 3. numbers in range --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed", str(2**64)], f"--seed: {2**64} is outside 0..{SEED_MAX} (2**63-1, the seed a run records as a BIGINT)"),
        (["--seed", "-1"], f"--seed: -1 is outside 0..{SEED_MAX} (2**63-1, the seed a run records as a BIGINT)"),
        (["--eval-days", str(10**9)], "--eval-days: 1000000000 days is more than the 2958098 days from 1900-01-01 to 9998-12-31"),
        (["--ds", "0001-01-01"], "--ds: 0001-01-01 is outside the days gnnrec can hold, 1900-01-01..9998-12-31"),
        (["--ds", "9999-12-31"], "--ds: 9999-12-31 is outside the days gnnrec can hold, 1900-01-01..9998-12-31"),
        (["--ds", "1900-01-05", "--eval-days", "10"], "--eval-days: 10 days before --ds 1900-01-05 is before 1900-01-01"),
        (["--eval-days", "3"], "--eval-days: holding out 3 days leaves nothing to train on: the history under {landing} "
                               "is 3 days (2026-01-01..2026-01-03); hold out at most 2"),
    ],
    ids=["seed-2**64", "seed-negative", "eval-days-huge", "ds-year-1", "ds-year-9999", "eval-days-before-1900",
         "eval-days-whole-history"],
)
def test_numbers_out_of_range_are_one_line(argv, message, landing, tmp_path, capsys):
    day = [] if "--ds" in argv else ["--ds", str(LAST)]  # an option is given once (a repeat is refused)
    line = _refused(["run", "--landing", str(landing), *day, *argv], capsys, tmp_path)
    assert line == "gnnrec run: error: " + message.format(landing=landing)


def test_the_largest_seed_and_holdout_pass():
    DailyParams(seed=SEED_MAX, ds=LAST, eval_days=(LAST - date(1900, 1, 1)).days)


def test_eval_days_on_the_first_landed_day_must_be_0(landing, tmp_path):
    with pytest.raises(OptionError, match=r"history under .* is 1 day \(2026-01-01..2026-01-01\); hold out none "
                                          r"\(--eval-days 0 skips evaluation\)$"):
        check_history(landing, FIRST, 1)
    check_history(landing, FIRST, 0)
    check_history(landing, LAST, 2)
    check_history(tmp_path / "nothing-landed", LAST, 5)  # nothing landed: the run itself reports that


def test_backfill_checks_its_range_and_its_first_training_day(landing, tmp_path, capsys):
    argv = ["backfill", "--landing", str(landing), "--start", str(FIRST), "--end", str(LAST)]
    line = _refused([*argv, "--publish", "every"], capsys, tmp_path)
    assert line.startswith("gnnrec backfill: error: --eval-days: holding out 1 day leaves nothing to train on")
    line = _refused([*argv, "--eval-days", "3"], capsys, tmp_path)  # publish last: only the end trains
    assert line.endswith("is 3 days (2026-01-01..2026-01-03); hold out at most 2")
    line = _refused(["backfill", "--landing", str(landing), "--start", "0001-01-01", "--end", str(LAST)], capsys, tmp_path)
    assert line == "gnnrec backfill: error: --start: 0001-01-01 is outside the days gnnrec can hold, 1900-01-01..9998-12-31"
    BackfillParams(start=FIRST, end=LAST, landing=landing).check_before_run()  # publish last with 1 held out: fine


def test_the_flow_itself_refuses_before_writing(prefect_harness, landing, tmp_path):
    """A deployment's run has no CLI: the flow's first line runs the same checks."""
    from gnnrec.flows.daily import run_daily

    with pytest.raises(OptionError, match="^--eval-days: holding out 3 days leaves nothing to train on"):
        run_daily(DailyParams(ds=LAST, landing=landing, eval_days=3, db=tmp_path / "gnnrec.duckdb"))
    assert list(tmp_path.iterdir()) == []


# 4. --epochs 0 --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(set(MODELS) - UNTRAINED_MODELS))
def test_epochs_0_for_a_model_that_trains_is_refused(model, landing, tmp_path, capsys):
    line = _refused(_run(landing, "--model", model, "--epochs", "0"), capsys, tmp_path)
    assert line == (f"gnnrec run: error: --epochs: model {model} trains, and 0 epochs would publish its random "
                    "initial weights; give at least 1")


def test_untrained_models_are_exactly_those_without_parameters():
    graph = GraphData(  # ratings, social edges and a one-triple KG, so that every model builds
        num_users=3, num_items=3, train_users=np.array([0, 1, 2]), train_items=np.array([1, 2, 0]),
        train_ratings=np.array([4.0, 2.0, 5.0]), social_src=np.array([0, 1]), social_dst=np.array([1, 2]),
        num_entities=3, num_relations=1, kg_head=np.array([0]), kg_relation=np.array([0]), kg_tail=np.array([1]),
        item_entity=np.array([0, 1, 2]),
    )
    trainable = {name for name in MODELS if is_trainable(build_model(name, graph, ModelHyperparameters(), torch.device("cpu")))}
    assert set(MODELS) - trainable == UNTRAINED_MODELS
    DailyParams(model="pop", epochs=0)


# 5. a file that is not a DuckDB database ------------------------------------------------------------------------


def _good_warehouse(path: Path) -> bytes:
    with duckdb.connect(str(path)) as con:
        con.execute("create table t as select range as i from range(100000)")
    return path.read_bytes()


@pytest.fixture(params=["garbage", "empty", "truncated"])
def broken_db(request, tmp_path) -> tuple[Path, str]:
    """A --db DuckDB cannot open, and the start of DuckDB's reason."""
    path = tmp_path / "gnnrec.duckdb"
    if request.param == "garbage":
        path.write_text("this is not a database\n" * 50)
        return path, f'IO Error: The file "{path}" exists, but it is not a valid DuckDB database file!'
    if request.param == "empty":
        path.write_bytes(b"")
        return path, f'IO Error: The file "{path}" exists, but it is not a valid DuckDB database file!'
    data = _good_warehouse(tmp_path / "good.duckdb")
    (tmp_path / "good.duckdb").unlink()
    path.write_bytes(data[:5000])
    return path, f'IO Error: Could not read enough bytes from file "{path}"'


@pytest.mark.parametrize(
    "command",
    [["runs"], ["show-run", "abc"], ["query", "--warehouse", str(PROJECT_DIR / "sql" / "analyst" / "user_recommendations.sql")],
     ["run", "--ds", str(LAST)], ["backfill", "--start", str(FIRST), "--end", str(LAST), "--eval-days", "0"]],
    ids=["runs", "show-run", "query", "run", "backfill"],
)
def test_a_broken_db_is_one_line_naming_the_file_and_duckdbs_reason(command, broken_db, landing, tmp_path, capsys):
    path, reason = broken_db
    argv = [*command, "--db", str(path)]
    if command[0] in ("run", "backfill"):
        argv += ["--landing", str(landing)]
    line = _refused(argv, capsys, tmp_path)
    assert line.startswith(f"gnnrec {command[0]}: error: --db: {path} is not a usable DuckDB database: {reason}")


def test_a_corrupt_block_is_reported_with_duckdbs_checksum_error(tmp_path):
    data = bytearray(_good_warehouse(tmp_path / "gnnrec.duckdb"))
    data[12288:12288 + 64] = b"x" * 64  # the first block after the headers: DuckDB's checksum no longer matches
    (tmp_path / "gnnrec.duckdb").write_bytes(bytes(data))
    with pytest.raises(WarehouseUnreadable, match=r"gnnrec.duckdb is not a usable DuckDB database: Corrupt database file"):
        with connect(tmp_path / "gnnrec.duckdb", read_only=True):
            pass


def test_the_console_script_reports_a_garbage_db_for_runs_on_one_line(tmp_path):
    (tmp_path / "gnnrec.duckdb").write_text("garbage")
    result = subprocess.run([str(GNNREC), "runs", "--db", "gnnrec.duckdb"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, check=False, env=os.environ | {"PYTHONPATH": str(PROJECT_DIR)})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f'gnnrec runs: error: --db: gnnrec.duckdb is not a usable DuckDB database: IO Error: The '
                             f'file "{tmp_path / "gnnrec.duckdb"}" exists, but it is not a valid DuckDB database file!\n')


def test_the_console_script_refuses_analytics_equal_to_db_and_writes_nothing(landing, tmp_path):
    result = subprocess.run(
        [str(GNNREC), "run", "--landing", str(landing), "--ds", str(LAST), "--db", "d/w.duckdb", "--analytics", "d/w.duckdb"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False, env=os.environ | {"PYTHONPATH": str(PROJECT_DIR)},
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("gnnrec run: error: --analytics: the analysts' store d/w.duckdb is the warehouse d/w.duckdb "
                             "of --db; they must be distinct\n")
    assert list(tmp_path.iterdir()) == []


# 6. another process holds the warehouse -------------------------------------------------------------------------


@pytest.fixture()
def held_warehouse(tmp_path):
    """A warehouse held open by another process: (path, that process)."""
    db = tmp_path / "gnnrec.duckdb"
    with connect(db):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time\ncon = duckdb.connect(sys.argv[1])\nprint('held', flush=True)\n"
         "time.sleep(60)", str(db)], stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        yield db, holder
    finally:
        holder.kill()
        holder.wait()


def test_a_warehouse_held_by_another_process_names_it(held_warehouse):
    db, holder = held_warehouse
    for read_only in (False, True):
        with pytest.raises(WarehouseBusy) as error_info:
            with connect(db, read_only=read_only):
                pass
        assert isinstance(error_info.value, WarehouseHeld) and isinstance(error_info.value, duckdb.IOException)
        assert str(error_info.value) == (
            f"{db} is open in process {holder.pid} ({_program(holder.pid)}); the warehouse belongs to the pipeline; "
            f"analysts read its analytics store (--analytics, default {db.with_name(db.stem + '.analytics')}/)"
        )


def test_runs_reads_the_analytics_store_while_another_process_holds_the_warehouse(held_warehouse, tmp_path, capsys):
    db, holder = held_warehouse
    with pytest.raises(SystemExit) as exit_info:
        main(["runs", "--db", str(db), "--analytics", str(tmp_path / "analytics.duckdb")])
    assert exit_info.value.code == 3
    assert capsys.readouterr().err == (f"gnnrec runs: error: {db} is open in process {holder.pid} "
                                       f"({_program(holder.pid)}); the warehouse belongs to the pipeline; analysts read "
                                       f"its analytics store (--analytics, default {db.with_name(db.stem + '.analytics')}/); there is no "
                                       f"analytics store at {tmp_path / 'analytics.duckdb'} yet\n")
    with connect(tmp_path / "analytics.duckdb"):  # a store with the registry's tables, empty
        pass
    assert main(["runs", "--db", str(db), "--analytics", str(tmp_path / "analytics.duckdb")]) == 0
    assert capsys.readouterr().out.startswith(f"(a run holds {db}; showing the analytics store ")


def _program(pid: int) -> str:
    """The program DuckDB names for a process: the file name of its executable."""
    return Path(os.readlink(f"/proc/{pid}/exe")).name
