"""The command line: a wrong option is one line on stderr and exit code 2; every flow parameter is an option."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from gnnrec.flows import cli
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
        (["--ds", "2026-02-30"], "gnnrec run: error: --ds: invalid date '2026-02-30': expected YYYY-MM-DD"),
        (["--ds", "03/01/2026"], "gnnrec run: error: --ds: invalid date '03/01/2026': expected YYYY-MM-DD"),
        (["--top-k", "0"], "gnnrec run: error: --top-k: Input should be greater than or equal to 1"),
        (["--protocol", "sampled:1000,ful"],
         "gnnrec run: error: --protocol: unknown evaluation protocol 'ful'; choose full, sampled:N (N >= 1), ctr or rating"),
        (["--contracts", "{nope"], "gnnrec run: error: Invalid value for --contracts: JSONDecodeError"),
        (["--contracts", '{"interactions": {"critical": ["nope"]}}'],
         "gnnrec run: error: --contracts: interactions: unknown expectation(s) nope; choose from "),
        (["--contracts.interactions.critical", "nope"],
         "gnnrec run: error: --contracts: interactions: unknown expectation(s) nope; choose from "),
        (["--contracts", '{"kg": {"rejection_budget": 2}}'],
         "gnnrec run: error: --contracts.kg.rejection-budget: Input should be less than or equal to 1"),
        (["--contracts.kg.rejection-budget", "2"],
         "gnnrec run: error: --contracts.kg.rejection-budget: Input should be less than or equal to 1"),
        (["--option.dropout", "0.1"], "gnnrec run: error: --option: dropout is no option of lightgcn; valid: "),
        (["--option", "dropout=0.1"], "gnnrec run: error: --option: Input should be a valid dictionary"),
        (["2026-01-03"], "gnnrec run: error: Unused Tokens: ['2026-01-03']"),
        (["--epoch", "3"], "gnnrec run: error: Unknown option: --epoch. Did you mean --epochs?"),
    ],
    ids=["unknown-model", "impossible-date", "malformed-date", "top-k-0", "unknown-protocol-in-a-list", "contracts-not-json", "contracts-unknown-expectation",
         "contracts-option-unknown-expectation", "contracts-budget-over-1", "contracts-option-budget-over-1",
         "option-not-of-the-model", "option-without-key", "day-by-position", "misspelt-option"],
)
def test_bad_option_is_one_line_and_exit_code_2(argv: list[str], message: str, capsys):
    assert _usage_error(["run", *argv], capsys).startswith(message)


def test_missing_landing_folder_is_one_line_and_exit_code_2(tmp_path: Path, capsys):
    missing = tmp_path / "no-landing"
    line = _usage_error(["run", "--landing", str(missing), "--ds", "2026-01-03"], capsys)
    assert line == f"gnnrec run: error: --landing: folder {missing} does not exist"


def _help(argv: list[str], capsys, monkeypatch) -> str:
    # Wide enough that rich keeps each option's name on one line. The app's console is replaced rather than COLUMNS
    # set: a console made by an earlier test in the same process keeps the width it was made with.
    monkeypatch.setattr(cli.app, "console", Console(width=240))
    assert main([*argv, "--help"]) == 0
    return " ".join(capsys.readouterr().out.replace("│", " ").split())  # the help is a boxed, wrapped table


def test_run_help_lists_every_daily_parameter(capsys, monkeypatch):
    shown = _help(["run"], capsys, monkeypatch)
    # every field is an option (the options dict as --option.KEY VALUE); the contract policy one per field
    expected = ["--" + ("option" if name == "options" else name.replace("_", "-")) for name in DailyParams.model_fields
                if name != "contracts"]
    assert {"--top-k", "--eval-days", "--model", "--ds", "--landing", "--db"} <= set(expected)
    assert [option for option in expected if f"{option} " not in shown] == []
    assert "--contracts.interactions.rejection-budget FLOAT" in shown and "--contracts.defence.action CHOICE" in shown


def test_backfill_help_has_the_range_and_no_day(capsys, monkeypatch):
    shown = _help(["backfill"], capsys, monkeypatch)
    assert "--start DATE" in shown and "--end DATE" in shown and "--force" in shown
    assert "--ds " not in shown


def test_run_help_shows_booleans_as_flag_pairs_and_defaults_as_values(capsys, monkeypatch):
    shown = _help(["run"], capsys, monkeypatch)
    assert "--retrain --no-retrain" in shown and "--curve-recall --no-curve-recall" in shown
    assert "[default: lightgcn]" in shown and "[default: data/gnnrec.duckdb]" in shown
    assert "[default: quarantine]" in shown  # the contract policy's own defaults, field by field
    assert "ContractPolicy(" not in shown and "PosixPath(" not in shown


@pytest.mark.parametrize(("argv", "retrain"), [(["--no-retrain"], False), (["--retrain"], True), ([], True)])
def test_no_retrain_is_the_flag_that_turns_retraining_off(argv, retrain):
    from gnnrec.flows.cli import app

    _, bound, _ = app.parse_args(["run", *argv], exit_on_error=False, print_error=False)
    params = bound.arguments.get("params") or DailyParams()  # nothing given: the parameters' own defaults
    assert params.retrain is retrain


def test_options_and_the_contract_policy_are_options_one_key_at_a_time():
    from gnnrec.flows.cli import app

    argv = ["run", "--option.embedding_dim", "32", "--model", "mf,lightgcn", "--contracts.kg.rejection-budget", "0.5",
            "--contracts.interactions.critical", "no_duplicate_events"]
    params = app.parse_args(argv, exit_on_error=False, print_error=False)[1].arguments["params"]
    assert params.options == {"embedding_dim": "32"} and params.models == ("mf", "lightgcn")
    assert params.contracts.kg.rejection_budget == 0.5 and params.contracts.interactions.critical == ("no_duplicate_events",)
    assert params.contracts.social == DailyParams().contracts.social  # the other sources keep their defaults


def test_top_level_help_and_version_answer_without_loading_the_pipeline():
    # No torch, polars or Prefect to list the commands: `gnnrec --help` answers at once.
    probe = (
        "import sys\nfrom gnnrec.flows.cli import main\nfor argv in (['--help'], ['--version']):\n"
        "    try:\n        main(argv)\n    except SystemExit as done:\n        assert done.code == 0\n"
        "print(sorted(m for m in ('torch', 'polars', 'prefect', 'duckdb') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    *_, loaded = done.stdout.splitlines()
    assert "run          Run the daily flow for one day" in done.stdout
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
