"""The command line: a wrong option is one line on stderr and exit code 2; every flow parameter is an option."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from gnnrec.flows.cli import main
from gnnrec.flows.params import DailyParams

GNNREC = Path(sys.executable).with_name("gnnrec")


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch):
    # A `run` that wrongly got past validation must not find a `landing/` folder in the project and start a flow.
    monkeypatch.chdir(tmp_path)


def _usage_error(argv: list[str], capsys) -> str:
    """Run the CLI, expect exit code 2, and return its single stderr line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("gnnrec run: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "nope"], "gnnrec run: error: --model: unknown model 'nope'; choose one of pop, mf, lightgcn"),
        (["--ds", "2026-02-30"], "gnnrec run: error: argument --ds: invalid date '2026-02-30': expected YYYY-MM-DD"),
        (["--ds", "03/01/2026"], "gnnrec run: error: argument --ds: invalid date '03/01/2026': expected YYYY-MM-DD"),
        (["--top-k", "0"], "gnnrec run: error: --top-k: Input should be greater than or equal to 1"),
        (["--contracts", "{nope"], "gnnrec run: error: argument --contracts: invalid JSON '{nope'"),
        (["--contracts", '{"interactions": {"critical": ["nope"]}}'],
         "gnnrec run: error: --contracts: interactions: unknown expectation(s) nope; choose from "),
        (["--contracts", '{"kg": {"rejection_budget": 2}}'],
         "gnnrec run: error: --contracts-kg-rejection-budget: Input should be less than or equal to 1"),
    ],
    ids=["unknown-model", "impossible-date", "malformed-date", "top-k-0", "contracts-not-json", "contracts-unknown-expectation",
         "contracts-budget-over-1"],
)
def test_bad_option_is_one_line_and_exit_code_2(argv: list[str], message: str, capsys):
    assert _usage_error(["run", *argv], capsys).startswith(message)


def test_missing_landing_folder_is_one_line_and_exit_code_2(tmp_path: Path, capsys):
    missing = tmp_path / "no-landing"
    line = _usage_error(["run", "--landing", str(missing), "--ds", "2026-01-03"], capsys)
    assert line == f"gnnrec run: error: --landing: folder {missing} does not exist"


def test_run_help_lists_every_daily_parameter(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    # every field is an option; the options dict is given one KEY=VALUE at a time, as --option
    expected = ["--" + ("option" if name == "options" else name.replace("_", "-")) for name in DailyParams.model_fields]
    assert {"--top-k", "--eval-days", "--model", "--ds", "--landing", "--db"} <= set(expected)
    assert [option for option in expected if f"{option} " not in shown] == []


def test_run_help_shows_booleans_as_flag_pairs_and_defaults_as_values(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--retrain, --no-retrain" in shown and "--curve-recall, --no-curve-recall" in shown
    assert "(default: lightgcn)" in shown and "(default: data/gnnrec.duckdb)" in shown
    assert '(default: {"interactions":{"rejection_budget":' in shown  # the policy as the JSON --contracts takes
    assert "ContractPolicy(" not in shown and "PosixPath(" not in shown


def test_no_retrain_is_the_flag_that_turns_retraining_off(tmp_path, monkeypatch):
    from gnnrec.flows.cli import build_parser

    parser = build_parser("run")
    assert parser.parse_args(["run", "--no-retrain"]).retrain is False
    assert parser.parse_args(["run", "--retrain"]).retrain is True
    assert parser.parse_args(["run"]).retrain is None  # not given: the parameter's own default applies


def test_top_level_help_and_version_answer_without_loading_the_pipeline():
    # No torch, polars or Prefect to list the commands: `gnnrec --help` answers at once.
    probe = (
        "import sys\nfrom gnnrec.flows.cli import main\nfor argv in (['--help'], ['--version']):\n"
        "    try:\n        main(argv)\n    except SystemExit as done:\n        assert done.code == 0\n"
        "print(sorted(m for m in ('torch', 'polars', 'prefect', 'duckdb') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    *_, loaded = done.stdout.splitlines()
    assert "run       run the daily flow for one day" in done.stdout
    assert any(line.startswith("gnnrec 0.") for line in done.stdout.splitlines())
    assert loaded == "[]"


def test_demo_data_writes_the_landing_folders(tmp_path: Path, capsys):
    out = tmp_path / "landing"
    argv = ["demo-data", "--out", str(out), "--days", "3", "--users", "50", "--items", "40", "--seed", "1"]
    assert main(argv) == 0
    days = [f"ds={date(2026, 1, 1) + timedelta(days=n)}" for n in range(3)]
    for source in ("interactions", "social", "kg", "item_entities"):
        assert sorted(p.name for p in (out / source).iterdir()) == days, source
        assert all(any((out / source / day).iterdir()) for day in days), source
    assert "50 users, 40 items, 3 days (2026-01-01 .. 2026-01-03)" in capsys.readouterr().out


def test_console_script_reports_a_bad_option_on_one_line(tmp_path: Path):
    result = subprocess.run(
        [str(GNNREC), "run", "--model", "nope"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("gnnrec run: error: --model: unknown model 'nope'; choose one of ")
