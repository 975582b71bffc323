"""Process-level defaults for running Prefect offline and quietly. Called once at the program's edge (the CLI,
the test session), before Prefect is imported; values the user already set win."""

from __future__ import annotations

import os
from pathlib import Path

QUIET_PREFECT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    # gnnrec's own modules log through `logging`; route them into the Prefect run logs.
    "PREFECT_LOGGING_EXTRA_LOGGERS": "tasks,models,flows",
    # The same steps also run outside a flow (benchmarks, tests); their logs then stay local, silently.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    # The ephemeral API gets 20 s to start by default; a busy 2-core machine (a training run beside it) needs more.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def configure_prefect_environment(project_dir: Path) -> None:
    """Keep Prefect's state under ``<project_dir>/.prefect`` and switch off analytics and telemetry."""
    os.environ.setdefault("PREFECT_HOME", str(project_dir.resolve() / ".prefect"))
    for name, value in QUIET_PREFECT.items():
        os.environ.setdefault(name, value)
