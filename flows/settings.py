"""Process-level Prefect settings, applied once at the program's edge (the CLI, the test session, a benchmark),
before Prefect is imported. Values the user already set win.

The settings every process needs live in the project's ``prefect.toml``, which Prefect itself reads when a process
starts in the checkout (the server, the worker, ``prefect deploy``); they are exported here too, so the CLI gets
them from any folder. The CLI adds what only a command-line run wants: its own Prefect home and a quiet,
UI-less ephemeral API.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

PROJECT_SETTINGS = Path(__file__).resolve().parents[1] / "prefect.toml"
COMMAND_LINE_ONLY = {
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def prefect_environment(settings: Path = PROJECT_SETTINGS) -> dict[str, str]:
    """The settings of a ``prefect.toml`` as Prefect's environment variables: ``[logging.to_api]
    when_missing_flow`` is ``PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW``."""

    def flatten(table: dict, prefix: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for key, value in table.items():
            name = f"{prefix}_{key}".upper()
            if isinstance(value, dict):
                found |= flatten(value, name)
            else:
                found[name] = str(value).lower() if isinstance(value, bool) else str(value)
        return found

    return flatten(tomllib.loads(settings.read_text(encoding="utf-8")), "PREFECT")


def configure_prefect_environment(project_dir: Path) -> None:
    """Keep Prefect's state under ``<project_dir>/.prefect``; the project's settings and a quiet ephemeral API."""
    os.environ.setdefault("PREFECT_HOME", str(project_dir.resolve() / ".prefect"))
    for name, value in (prefect_environment() | COMMAND_LINE_ONLY).items():
        os.environ.setdefault(name, value)
