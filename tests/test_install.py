"""A quiet install, and torch's wheels chosen for the machine, checked without a network."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("torch_wheels", PROJECT_DIR / ".ci" / "torch_wheels.py")
torch_wheels = importlib.util.module_from_spec(spec)
spec.loader.exec_module(torch_wheels)

PY = "/venv/bin/python"
PIP = [PY, "-m", "pip", "install", "-q", "--no-compile", "torch==2.13.0"]


@pytest.mark.parametrize(
    ("index_url", "gpu", "local", "expected"),
    [
        (None, False, False, [*PIP, "--index-url", torch_wheels.CPU_INDEX]),  # no GPU: never the CUDA wheels
        (None, True, False, PIP),  # a GPU: PyPI's default, the CUDA build
        (None, False, True, PIP),  # the machine's own wheel, found by pip's find-links
        ("https://example.org/whl/cu128", False, True, [*PIP, "--index-url", "https://example.org/whl/cu128"]),
    ],
    ids=["cpu-machine", "gpu-machine", "local-wheel", "index-given"],
)
def test_the_torch_wheels_are_chosen_for_the_machine(tmp_path, index_url, gpu, local, expected):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / ("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl" if local else "torch-2.12.0-cp311-none.whl")).touch()
    assert torch_wheels.install_command(PY, "torch==2.13.0", index_url, gpu, [f"file://{wheels}"]) == expected


def test_a_gpu_is_seen_through_the_driver(tmp_path):
    dev, proc = tmp_path / "dev", tmp_path / "gpus"
    dev.mkdir()
    (dev / "nvidiactl").touch()  # the control device alone is no GPU
    assert not torch_wheels.nvidia_gpu_present(dev, proc)
    (dev / "nvidia0").touch()
    assert torch_wheels.nvidia_gpu_present(dev, proc)


def test_the_dry_run_prints_the_command_from_pips_own_configuration(tmp_path):
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\nfind-links = {tmp_path}\n")
    (tmp_path / "torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl").touch()
    env = {"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": str(config), "NO_NETWORK": "1"}
    done = subprocess.run(
        [sys.executable, str(PROJECT_DIR / ".ci" / "torch_wheels.py"), "--python", sys.executable, "--dry-run"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )
    assert done.stdout.strip() == f"{sys.executable} -m pip install -q --no-compile torch==2.13.0"


@pytest.mark.slow
def test_the_package_builds_without_warnings_under_its_own_name_and_ships_every_file(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp_path), str(PROJECT_DIR)],
        capture_output=True, text=True, timeout=300, check=True,
    )
    assert "warning" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
    (wheel,) = tmp_path.glob("gnnrec-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    # one top-level package, gnnrec: no generic `flows`, `tasks`, `models` or `sql` in site-packages
    assert {name.split("/")[0] for name in names} == {"gnnrec", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    code = {p.relative_to(PROJECT_DIR).as_posix() for folder in ("flows", "tasks", "models", "sql")
            for p in (PROJECT_DIR / folder).rglob("*") if p.suffix in {".py", ".sql"} and "__pycache__" not in p.parts}
    assert {name.removeprefix("gnnrec/") for name in names if name.endswith((".py", ".sql"))} == code


def test_the_installed_package_is_this_checkout():
    import gnnrec.flows.cli

    assert Path(gnnrec.flows.cli.__file__).resolve() == PROJECT_DIR / "flows" / "cli.py"
