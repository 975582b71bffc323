"""One writer per warehouse: an OS file lock next to the DuckDB file, taken by every daily run and backfill.

DuckDB itself refuses a second writing process, but only once that process tries to open the file, possibly
halfway through a run. The lock follows the file, not the spelling of its path (see :func:`lock_path`). Taking ``<db>.lock`` first makes a second run stop before it touches anything, with a
message naming the holder. ``fcntl.flock`` is released by the kernel when the holder dies, so a crash never
leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

POLL_SECONDS = 0.5
# How often a waiting run says again that it waits (and for whom), so its logs show why it has not started.
WAITING_REPORT_SECONDS = 60.0

log = logging.getLogger(__name__)


class WarehouseBusy(RuntimeError):
    """Another run holds the warehouse's lock."""


def lock_path(db: Path) -> Path:
    """The lock file of the warehouse ``db`` *is*: named after its resolved path, so a symlink, a ``..`` or a
    relative spelling of the same file takes the same lock."""
    resolved = db.resolve()
    return resolved.with_name(resolved.name + ".lock")


def describe_holder(db: Path) -> str:
    """What the current holder wrote into the lock file (empty when nobody holds it)."""
    try:
        return lock_path(db).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def lock_is_free(db: Path) -> bool:
    """True when no process holds ``db``'s writer lock at this instant: a probe that takes and drops it at once."""
    path = lock_path(db)
    if not path.exists():
        return True
    with path.open("a", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


@contextlib.contextmanager
def warehouse_lock(db: Path, holder: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold ``db``'s writer lock for the block; wait up to ``wait_seconds`` for it, then raise :class:`WarehouseBusy`."""
    path = lock_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        started = time.monotonic()
        deadline, next_report = started + wait_seconds, started
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if now < deadline and now >= next_report:
                    log.warning(
                        "waiting for the warehouse %s (%.0fs of at most %gs so far): held by %s",
                        db, now - started, wait_seconds, describe_holder(db) or "an unknown holder",
                    )
                    next_report = now + WAITING_REPORT_SECONDS
                if now >= deadline:
                    waited = f" after waiting {wait_seconds:g}s" if wait_seconds else ""
                    raise WarehouseBusy(
                        f"warehouse {db} is locked by another run{waited}: {describe_holder(db) or 'unknown holder'}"
                        f" (lock file {path})"
                    ) from None
                time.sleep(POLL_SECONDS)
        if time.monotonic() - started > POLL_SECONDS:
            log.warning("took the warehouse %s after waiting %.0fs", db, time.monotonic() - started)
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {since}: {holder}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def liveness_path(db: Path, run_id: str) -> Path:
    """The file a live run of ``db`` keeps locked: while the lock is held, the run's process is alive."""
    lock = lock_path(db)
    return lock.with_name(f"{lock.name}.runs") / f"{run_id}.alive"


@contextlib.contextmanager
def run_alive(db: Path, run_id: str) -> Iterator[None]:
    """Keep ``run_id`` provably alive for the block: its liveness lock is released by the kernel if the process
    dies, so a writer can tell a run that trains without the warehouse lock from one that died."""
    path = liveness_path(db, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_alive(db: Path, run_id: str) -> bool:
    """Whether a process holds ``run_id``'s liveness lock now (a run without one is not alive)."""
    path = liveness_path(db, run_id)
    try:
        handle = path.open("r")
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    path.unlink(missing_ok=True)
    return False
