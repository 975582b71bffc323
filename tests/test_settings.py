"""One Prefect configuration for every process: the project's prefect.toml, read by Prefect itself in the checkout
and exported by the CLI from anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gnnrec.flows.settings import PROJECT_SETTINGS, prefect_environment

PREFECT = Path(sys.executable).with_name("prefect")


def test_the_settings_file_maps_to_prefects_own_variables(tmp_path):
    settings = tmp_path / "prefect.toml"
    settings.write_text('[logging]\nextra_loggers = "tasks"\n[logging.to_api]\nwhen_missing_flow = "ignore"\n'
                        "[server]\nanalytics_enabled = false\n")
    assert prefect_environment(settings) == {
        "PREFECT_LOGGING_EXTRA_LOGGERS": "tasks",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def test_prefect_started_in_the_checkout_reads_the_project_settings(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {"PREFECT_HOME": str(tmp_path)}
    shown = subprocess.run(
        [str(PREFECT), "config", "view", "--show-sources"], env=clean, cwd=PROJECT_SETTINGS.parent,
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    from_file = {line.split("=", 1)[0] for line in shown.splitlines() if line.endswith("(from prefect.toml)")}
    assert from_file == set(prefect_environment())
