"""Runs daily flows in forked children so that a failpoint can SIGKILL a real run, many times, cheaply.

Started by tests/test_crash_recovery.py as ``python tests/crash_driver.py PLAN.json``. The driver imports the
pipeline once (Prefect, torch, DuckDB, Great Expectations: seconds per process) and forks one child per run, so a
crash-and-rerun costs the runs themselves. The driver never runs torch or opens a warehouse itself, so each child
starts from a clean fork. The plan is a JSON object:

    {"params": {...DailyParams fields, without landing/db/analytics...}, "landing": "...",
     "runs": [{"root": "...", "env": {"GNNREC_FAILPOINT": "..."}, "then_rerun": true, "rerun_with": {"ds": ...}}],
     "parallel": 2}

For each run it writes ``<root>/outcome.json``: the crash run's and the rerun's exit codes (a negative code is the
signal that ended the child).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import great_expectations  # noqa: F401 - imported once here rather than in every child
import torch  # noqa: F401

from gnnrec.flows.daily import run_daily
from gnnrec.flows.params import DailyParams
from gnnrec.tasks.data.policy import DataContractError


def _child(params: DailyParams, env: dict[str, str]) -> int:
    os.environ.update(env)
    try:
        run_daily(params)
    except DataContractError:
        return 1
    return 0


def _fork(params: DailyParams, env: dict[str, str], log: Path) -> int:
    pid = os.fork()
    if pid == 0:
        with log.open("a") as out:
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
        code = 70
        try:
            code = _child(params, env)
        except BaseException:  # noqa: BLE001 - the child reports any failure by its exit code and log
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def _exit_code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def main(plan_file: str) -> None:
    plan = json.loads(Path(plan_file).read_text())
    landing = Path(plan["landing"])
    pending = list(plan["runs"])
    running: dict[int, tuple[dict, str]] = {}  # pid -> (run, phase)
    outcomes: dict[str, dict[str, int]] = {}

    def params_for(run: dict, phase: str) -> DailyParams:
        root = Path(run["root"])
        given = plan["params"] | (run.get("rerun_with", {}) if phase == "rerun" else {})
        return DailyParams(**given, landing=landing, db=root / "data" / "gnnrec.duckdb", analytics=root / "data" / "analytics.duckdb")

    def start(run: dict, phase: str) -> None:
        env = run.get("env", {}) if phase == "crash" else {}
        root = Path(run["root"])
        root.mkdir(parents=True, exist_ok=True)
        running[_fork(params_for(run, phase), env, root / f"{phase}.log")] = (run, phase)

    while pending or running:
        while pending and len(running) < plan.get("parallel", 1):
            start(pending.pop(0), "crash")
        pid, status = os.wait()
        run, phase = running.pop(pid)
        outcome = outcomes.setdefault(run["root"], {})
        outcome[phase] = _exit_code(status)
        if phase == "crash" and run.get("then_rerun"):
            start(run, "rerun")
        else:
            Path(run["root"], "outcome.json").write_text(json.dumps(outcome))


if __name__ == "__main__":
    main(sys.argv[1])
