"""The writer lock as the Prefect UI shows it: under a Prefect server, a run that writes a warehouse first takes
the one slot of that warehouse's global concurrency limit, so the UI's Concurrency page names the warehouse, shows
the slot taken, and a run waiting for it waits in Prefect's own way.

The lock file (:func:`gnnrec.tasks.ops.lock.warehouse_lock`) stays the truth. A run killed with ``kill -9`` keeps
its slot until its lease runs out (``LEASE_SECONDS``; the server's repossessor frees it), while the kernel frees its
lock file at once: a run that finds the slot taken and the lock file free goes by the lock file at once, and one
that cannot get the slot in its wait goes by the lock file too, each with a warning. Without a server (the CLI's
ephemeral API, tests, benchmarks) the lock file alone decides.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from gnnrec.tasks.ops.lock import describe_holder, lock_is_free, lock_path, warehouse_lock

log = logging.getLogger(__name__)

# A dead holder's slot comes back this long after its last renewal (a live holder renews at 75% of it).
LEASE_SECONDS = 60.0
# A run that may not wait still asks the server this long, so a free slot is taken rather than skipped.
MIN_SLOT_WAIT_SECONDS = 2.0


def warehouse_limit_name(db: Path) -> str:
    """The limit's name: the warehouse's file name and a digest of its resolved path (one limit per file, however
    it is spelled), within the characters Prefect allows in a name."""
    lock = lock_path(db)
    return f"gnnrec-warehouse-{db.stem}-{hashlib.sha256(str(lock).encode()).hexdigest()[:10]}"


def prefect_server_present() -> bool:
    """True when runs report to a Prefect server (``PREFECT_API_URL``), not to a per-process ephemeral API."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url is not None


@contextlib.contextmanager
def writer_slot(db: Path, holder: str, wait_seconds: float) -> Iterator[None]:
    """Hold ``db``'s writer lock for the block, under a Prefect server also the slot of its concurrency limit
    (created with one slot on first use); wait up to ``wait_seconds`` for both together."""
    if not prefect_server_present():
        with warehouse_lock(db, holder, wait_seconds):
            yield
        return
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency

    name = warehouse_limit_name(db)
    started = time.monotonic()
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, limit=1)
        taken = client.read_global_concurrency_limit_by_name(name).active_slots
    if taken and lock_is_free(db):
        # Slot and lock are taken together, so a slot held without the lock is a dead run's (or one a moment from
        # the lock): waiting out its lease would only delay the rerun after a crash.
        log.warning(
            "the Prefect concurrency slot %s is taken but nobody holds the warehouse's lock file; going by the "
            "warehouse's lock file (a run that died keeps its slot until its lease ends)", name,
        )  # fmt: skip
        with warehouse_lock(db, holder, max(0.0, wait_seconds - (time.monotonic() - started))):
            yield
        return
    if taken and wait_seconds:
        log.warning(
            "waiting for the warehouse %s (at most %gs): its Prefect concurrency slot %s is taken, by %s", db,
            wait_seconds, name, describe_holder(db) or "a run between its write phases",
        )  # fmt: skip
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(concurrency(
                name, occupy=1, timeout_seconds=max(wait_seconds, MIN_SLOT_WAIT_SECONDS), lease_duration=LEASE_SECONDS,
                strict=True, raise_on_lease_renewal_failure=False,
            ))  # fmt: skip
        except TimeoutError:
            log.warning(
                "the Prefect concurrency slot %s is still taken after %.0fs; going by the warehouse's lock file (a run "
                "that died keeps its slot until its lease ends)", name, time.monotonic() - started,
            )  # fmt: skip
        held.enter_context(warehouse_lock(db, holder, max(0.0, wait_seconds - (time.monotonic() - started))))
        yield
