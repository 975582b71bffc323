"""The run registry never claims what did not happen; one writer per warehouse file, whatever its path's spelling."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from gnnrec.flows.cli import main
from gnnrec.tasks.ops.db import connect
from gnnrec.tasks.ops.failpoints import FAILPOINTS
from gnnrec.tasks.ops.lock import WarehouseBusy, is_alive, lock_is_free, lock_path, warehouse_lock
from gnnrec.tasks.ops.runs import abandon_dead_runs

D1, D2 = date(2026, 1, 1), date(2026, 1, 2)


def _run(con, run_id: str, ds: date, status: str, published: bool) -> None:
    con.execute(
        "insert into ops.runs (run_id, flow, ds, model, params, status, started_at) values (?, 'daily', ?, 'mf', '{}', ?, ?)",
        [run_id, ds, status, datetime(ds.year, ds.month, ds.day, 3)],
    )
    if published:
        con.execute("insert into recs.topk values (?, 'mf', ?, 'u1', 1, ?, 1.0)", [ds, run_id, f"item-of-{run_id}"])
        con.execute("insert into recs.publications values (?, 'mf', ?, ?, 1, 1)", [ds, run_id, datetime(ds.year, ds.month, ds.day, 4)])


@pytest.mark.parametrize("status", ["running", "failed", "abandoned"])
def test_latest_topk_serves_only_lists_of_completed_runs(tmp_path: Path, status: str):
    with connect(tmp_path / "w.duckdb") as con:
        _run(con, "done", D1, "completed", published=True)
        _run(con, "newer", D2, status, published=True)
        assert con.execute("select ds, run_id, item_id from recs.latest_topk").fetchall() == [(D1, "done", "item-of-done")]
        con.execute("update ops.runs set status = 'completed' where run_id = 'newer'")
        assert con.execute("select ds, run_id from recs.latest_topk").fetchall() == [(D2, "newer")]


def test_the_lock_holder_marks_every_other_running_run_abandoned_saying_who_found_it(tmp_path: Path):
    found_at = datetime(2026, 1, 3, 3, 0, 5)
    with connect(tmp_path / "w.duckdb") as con:
        _run(con, "dead", D1, "running", published=False)
        _run(con, "done", D1, "completed", published=False)
        _run(con, "training", D1, "running", published=False)
        assert abandon_dead_runs(con, "new", found_at, alive=lambda run_id: run_id == "training") == ["dead"]
        assert con.execute("select run_id, status, message, finished_at from ops.runs order by run_id").fetchall() == [
            ("dead", "abandoned", "found running by run new at 2026-01-03 03:00:05 UTC: its process died without finishing", found_at),
            ("done", "completed", None, None),
            ("training", "running", None, None),
        ]


def test_a_symlink_to_the_warehouse_takes_the_same_lock(tmp_path: Path):
    real = tmp_path / "data" / "gnnrec.duckdb"
    real.parent.mkdir()
    alias = tmp_path / "alias.duckdb"
    alias.symlink_to(real)
    (tmp_path / "elsewhere").symlink_to(real.parent, target_is_directory=True)
    assert lock_path(alias) == lock_path(real) == lock_path(tmp_path / "elsewhere" / ".." / "data" / "gnnrec.duckdb")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from gnnrec.tasks.ops.lock import warehouse_lock\n"
         "with warehouse_lock(Path(sys.argv[1]), 'holder by the real path'):\n    print('held', flush=True); time.sleep(60)",
         str(real)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        for spelling in (alias, tmp_path / "elsewhere" / "gnnrec.duckdb"):
            with pytest.raises(WarehouseBusy, match=f"pid {holder.pid} .*: holder by the real path"):
                with warehouse_lock(spelling, "second"):
                    pass
            assert not lock_is_free(spelling)
    finally:
        holder.kill()
        holder.wait()
    assert lock_is_free(alias)  # the kernel freed the killed holder's lock; its words are still in the file
    assert "holder by the real path" in lock_path(real).read_text()


def test_gnnrec_failpoints_lists_every_point_name_first(capsys):
    assert main(["failpoints"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(FAILPOINTS)
    assert all(line.split(maxsplit=1)[1] == FAILPOINTS[line.split()[0]] for line in lines)


def test_a_run_is_alive_while_its_process_holds_its_liveness_lock(tmp_path: Path):
    db = tmp_path / "w.duckdb"
    assert not is_alive(db, "r1")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from gnnrec.tasks.ops.lock import run_alive\n"
         "with run_alive(Path(sys.argv[1]), 'r1'):\n    print('alive', flush=True); time.sleep(60)", str(db)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "alive\n"
        assert is_alive(db, "r1") and not is_alive(db, "r2")
    finally:
        holder.kill()
        holder.wait()
    assert not is_alive(db, "r1")  # killed: the kernel released its lock
