"""deployments/prefect.yaml against a real local Prefect server: deploy it, trigger the daily deployment through
the API as if scheduled for a given day, let a process worker run it, and check the rows it published."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import IO

import duckdb
import pytest

from gnnrec.flows.concurrency import LEASE_SECONDS, warehouse_limit_name, writer_slot
from gnnrec.tasks.data.demo import generate_demo_world
from gnnrec.tasks.data.ingest import read_landed_file

PROJECT_DIR = Path(__file__).resolve().parents[1]
PREFECT = Path(sys.executable).with_name("prefect")
SCHEDULED_DAY = date(2026, 5, 3)
TOP_K = 5


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _api(url: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        url, data=None if body is None else json.dumps(body).encode(), headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def _stop(process: subprocess.Popen) -> None:
    """Stop a process we started, with the children it started (it leads its own session)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def _prefect_server(tmp_path: Path, **settings: str) -> Iterator[tuple[str, dict[str, str], IO[str]]]:
    """A real ``prefect server`` on a free port, with its own home: yields its API URL, the environment a process
    needs to use it, and the server's log file (which other processes may write to)."""
    api = f"http://127.0.0.1:{_free_port()}/api"
    env = os.environ | {"PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api, **settings}
    with (tmp_path / "server.log").open("w") as log:
        server = subprocess.Popen(
            [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", api.split(":")[-1].removesuffix("/api")],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if _api(f"{api}/health") is True:
                        break
                except OSError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.5)
            yield api, env, log
        finally:
            _stop(server)


@pytest.mark.slow
def test_daily_deployment_runs_on_a_local_server_for_its_scheduled_day(tmp_path: Path):
    landing, db = tmp_path / "landing", tmp_path / "data" / "gnnrec.duckdb"
    generate_demo_world(landing, start=date(2026, 5, 1), days=3, users=60, items=40, seed=8)
    # one bad row on the scheduled day: its warning must reach the flow run's logs on the server
    day_dir = landing / "interactions" / f"ds={SCHEDULED_DAY}"
    rows_landed = sum(read_landed_file(f)[0].height for f in day_dir.iterdir())
    (day_dir / "late.csv").write_text(f"user_id,item_id,event,rating,ts\nu-x,sku-x,rate,11,{SCHEDULED_DAY}T08:00:00Z\n")
    # The test triggers its own run (no scheduler); the cron schedules are checked through the API instead.
    with _prefect_server(tmp_path, PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false", PREFECT_WORKER_QUERY_SECONDS="1") \
            as (api, env, log), contextlib.ExitStack() as stop:

        def prefect(*args: str) -> None:
            done = subprocess.run([str(PREFECT), *args], env=env, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr

        prefect("work-pool", "create", "gnnrec-process", "--type", "process")
        prefect("--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml")

        daily = _api(f"{api}/deployments/name/daily-recommendations/daily")
        assert [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in daily["schedules"]] == [("0 3 * * *", "UTC")]
        assert daily["work_pool_name"] == "gnnrec-process"
        assert daily["parameters"] == {"model": ["lightgcn", "mf", "pop"], "lock_wait": 3600}
        # The server knows the registry: the form offers the models, and an unknown one is refused at creation.
        schema = daily["parameter_openapi_schema"]["properties"]["model"]
        assert set(schema["anyOf"][0]["enum"]) >= {"lightgcn", "mf", "pop", "kgat"}
        try:
            _api(f"{api}/deployments/{daily['id']}/create_flow_run", {"parameters": {"model": "lightgnc"}})
        except urllib.error.HTTPError as refused:
            assert refused.code in (409, 422), refused.code
        else:
            raise AssertionError("the server accepted an unknown model")
        backfill = _api(f"{api}/deployments/name/backfill-recommendations/backfill")
        assert backfill["schedules"] == [] and backfill["work_pool_name"] == "gnnrec-process"

        # A run scheduled for 03:00 on SCHEDULED_DAY without a ds: the flow must take the scheduled day.
        params = {"model": "pop", "top_k": TOP_K, "landing": str(landing), "db": str(db),
                  "analytics": str(tmp_path / "data" / "analytics.duckdb")}
        run = _api(
            f"{api}/deployments/{daily['id']}/create_flow_run",
            {"parameters": params,
             "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": f"{SCHEDULED_DAY}T03:00:00Z"}}},
        )
        worker = subprocess.Popen(
            [str(PREFECT), "worker", "start", "--pool", "gnnrec-process", "--run-once"],
            env=env, cwd=PROJECT_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        stop.callback(_stop, worker)
        deadline = time.monotonic() + 150
        while (state := _api(f"{api}/flow_runs/{run['id']}")["state"]["type"]) not in {"COMPLETED", "FAILED", "CRASHED"}:
            assert time.monotonic() < deadline, f"flow run still {state}"
            time.sleep(1)
        assert state == "COMPLETED", (tmp_path / "server.log").read_text()[-4000:]
        finished = _api(f"{api}/flow_runs/{run['id']}")
        # one key overridden, the deployment's others kept: lock_wait stays, the model is the run's own
        assert finished["parameters"]["lock_wait"] == 3600 and finished["parameters"]["model"] == "pop"
        assert finished["name"] == f"pop-{SCHEDULED_DAY}"
        # gnnrec's own loggers reach the run's logs in the UI: the worker's flow run read the project's prefect.toml.
        # The run's process ships its logs in the background and may still be sending them after the state is
        # COMPLETED (CI once asked too early and found none): ask again for up to 30 s.
        expected = [f"interactions {SCHEDULED_DAY}: 1 of {rows_landed + 1} rows quarantined {{'rating_number_in_0_5': 1}}"]
        deadline = time.monotonic() + 30
        while True:
            logs = _api(f"{api}/logs/filter",
                        {"logs": {"flow_run_id": {"any_": [run["id"]]}, "level": {"ge_": 30}}, "limit": 200})
            warned = [e["message"] for e in logs if e["name"] == "gnnrec.tasks.data.validate" and e["level"] == 30]
            if warned == expected or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert warned == expected
        # it wrote under the warehouse's Prefect concurrency limit, one slot, free again once the run ended
        limit = _api(f"{api}/v2/concurrency_limits/{warehouse_limit_name(db)}")
        assert (limit["limit"], limit["active_slots"]) == (1, 0)

    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.execute("select ds, model, status from ops.runs").fetchall()
        (flow_run_id,) = con.execute("select flow_run_id from ops.runs").fetchone()
        per_user = con.execute(
            "select ds, model, count(distinct user_id), min(n), max(n) from "
            "(select ds, model, user_id, count(*) as n from recs.topk group by all) group by all"
        ).fetchall()
        users = con.execute("select count(distinct user_id) from clean.interactions where ds <= ?", [SCHEDULED_DAY]).fetchone()[0]
    assert runs == [(SCHEDULED_DAY, "pop", "completed")] and flow_run_id == run["id"]
    assert per_user == [(SCHEDULED_DAY, "pop", users, TOP_K, TOP_K)]


@pytest.mark.slow
def test_a_writer_holds_and_waits_for_its_warehouse_in_prefects_concurrency_limit(tmp_path: Path, caplog):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    db, name = tmp_path / "gnnrec.duckdb", warehouse_limit_name(tmp_path / "gnnrec.duckdb")
    first_holds, first_may_go, second_holds = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with writer_slot(db, "first", 0):
            first_holds.set()
            first_may_go.wait(60)

    def second() -> None:
        with writer_slot(db, "second", 60):
            second_holds.set()

    with _prefect_server(tmp_path) as (api, _, _), temporary_settings({PREFECT_API_URL: api}), \
            caplog.at_level(logging.WARNING, logger="gnnrec.flows.concurrency"):
        # threads run in a copy of this context, so they see the server's URL too
        writers = [threading.Thread(target=contextvars.copy_context().run, args=(w,)) for w in (first, second)]
        writers[0].start()
        assert first_holds.wait(60)
        limit = _api(f"{api}/v2/concurrency_limits/{name}")
        assert (limit["limit"], limit["active_slots"]) == (1, 1)  # what the UI's Concurrency page shows
        writers[1].start()
        assert not second_holds.wait(3)  # waits in Prefect's limit while the first writes
        assert any("its Prefect concurrency slot" in m and "first" in m for m in caplog.messages)
        first_may_go.set()
        assert second_holds.wait(30)
        for writer in writers:
            writer.join(30)
        assert _api(f"{api}/v2/concurrency_limits/{name}")["active_slots"] == 0

        # A writer killed with kill -9 keeps its slot until its lease ends, but the kernel freed its lock file at
        # once: a run takes the warehouse by its lock file without waiting for the lease, and says why.
        with get_client(sync_client=True) as client:
            client.increment_concurrency_slots_with_lease([name], 1, "concurrency", lease_duration=LEASE_SECONDS)
        started = time.monotonic()
        with writer_slot(db, "after a crash", 0):
            assert time.monotonic() - started < 30
        assert any("nobody holds the warehouse's lock file; going by the warehouse's lock file" in m for m in caplog.messages)
