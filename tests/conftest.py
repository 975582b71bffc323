"""Shared fixtures: a quiet, offline Prefect, and small planted demo worlds."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gnnrec.flows.settings import configure_prefect_environment

PROJECT_DIR = Path(__file__).resolve().parents[1]
configure_prefect_environment(PROJECT_DIR)

DEMO_START = date(2026, 1, 1)


@pytest.fixture(scope="session")
def prefect_harness():
    """One throw-away Prefect API for the whole session (starting one costs ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def planted_world(tmp_path_factory) -> tuple[Path, Path, date]:
    """A 10-day planted world, ingested and validated day by day: (landing, db, last day)."""
    from gnnrec.tasks import steps
    from gnnrec.tasks.data.demo import generate_demo_world

    root = tmp_path_factory.mktemp("planted")
    landing, db = root / "landing", root / "gnnrec.duckdb"
    summary = generate_demo_world(landing, start=DEMO_START, days=10, users=1200, items=600, seed=11)
    for day in summary.days:
        steps.ingest(db, landing, day)
    steps.build_graph(db, summary.days[-1])
    return landing, db, summary.days[-1]


def _data_snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time; empty when the folder does not exist."""
    if not folder.is_dir():
        return {}
    return {
        str(path.relative_to(folder)): (path.lstat().st_size, path.lstat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if not path.is_dir() or path.is_symlink()
    }


@pytest.fixture(scope="session", autouse=True)
def checkout_data_untouched():
    """The suite never writes the checkout's own ``data/`` (the warehouse and analysts' store a user made with
    `make run`): every test works in its own temporary folder, and the stores default to their warehouse's."""
    data = PROJECT_DIR / "data"
    existed, before = data.exists(), _data_snapshot(data)
    yield
    after = _data_snapshot(data)
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    assert data.exists() == existed and not changed, (
        f"the test session changed the checkout's {data}: {'created it; ' if data.exists() and not existed else ''}"
        f"{', '.join(changed[:10])}{' ...' if len(changed) > 10 else ''}"
    )
