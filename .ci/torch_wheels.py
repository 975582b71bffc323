"""Install torch from the right wheels for this machine; `make setup` runs it before the project's own install.

A plain `pip install torch==X` on Linux resolves the CUDA build and about twenty NVIDIA packages, gigabytes that a
machine without a GPU never uses. So:

1. an index given by the user (`TORCH_INDEX_URL`, `--index-url`) wins;
2. a torch wheel of the wanted version already among the machine's own wheels (pip's `find-links`, from its
   configuration or `PIP_FIND_LINKS`) is used as pip finds it, with no index override, so an offline machine
   with local wheels keeps working;
3. with an NVIDIA GPU present, PyPI's default build (CUDA) is what is wanted;
4. without one, the CPU-only build from PyTorch's CPU index.

Standard library only: it runs before anything else is installed. `--dry-run` prints the command and exits, which
is how the choice is tested without a network (tests/test_install.py).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def nvidia_gpu_present(dev: Path = Path("/dev"), proc: Path = Path("/proc/driver/nvidia/gpus")) -> bool:
    """An NVIDIA GPU the driver sees: a GPU entry under /proc, or a /dev/nvidia<N> device."""
    return (proc.is_dir() and any(proc.iterdir())) or any(re.fullmatch(r"nvidia\d+", p.name) for p in dev.glob("nvidia*"))


def find_links(python: str) -> list[str]:
    """pip's find-links locations for ``python``: its configuration files and ``PIP_FIND_LINKS``."""
    done = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False)
    found = [line.split("=", 1)[1].strip("'\"") for line in done.stdout.splitlines() if re.match(r"^[:\w.-]*find-links=", line)]
    return [location for entry in found for location in entry.split()]


def local_torch_wheel(locations: list[str], version: str) -> Path | None:
    """A torch wheel of ``version`` (any local build, ``2.13.0+cpu`` included) in one of the local folders."""
    for location in locations:
        folder = Path(location.removeprefix("file://"))
        if folder.is_dir():
            for wheel in sorted(folder.glob(f"torch-{version}*.whl")):
                if re.match(rf"torch-{re.escape(version)}(\+[\w.]+)?-", wheel.name):
                    return wheel
    return None


def install_command(python: str, spec: str, index_url: str | None, gpu: bool, locations: list[str]) -> list[str]:
    """The pip command that installs ``spec`` (``torch==2.13.0``) by the rules in this module's docstring."""
    # --no-compile: Python compiles a module on its first import; compiling all of torch at install costs more.
    command = [python, "-m", "pip", "install", "-q", "--no-compile", spec]
    version = spec.partition("==")[2]
    if index_url:
        return [*command, "--index-url", index_url]
    if version and local_torch_wheel(locations, version) is not None:
        return command
    if gpu:
        return command
    return [*command, "--index-url", CPU_INDEX]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the interpreter to install into (a venv's python)")
    parser.add_argument("--spec", default="torch==2.13.0", help="what to install (default: torch==2.13.0)")
    parser.add_argument("--index-url", default=os.environ.get("TORCH_INDEX_URL") or None, help="an index that wins")
    parser.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    args = parser.parse_args()
    command = install_command(args.python, args.spec, args.index_url, nvidia_gpu_present(), find_links(args.python))
    if args.dry_run:
        print(shlex.join(command))
        return 0
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
