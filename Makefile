# Two entry points for a fresh machine: `make run` (set up + demo daily run) and `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch's wheels are chosen for the machine (.ci/torch_wheels.py): the machine's own wheels when pip's find-links
# has this version, PyPI's CUDA build with an NVIDIA GPU, else the CPU-only build. TORCH_INDEX_URL overrides:
#   make run TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX_URL ?=

# The demo world: 14 days from DEMO_START; the daily run processes its last day.
DEMO_START ?= 2026-01-01
DEMO_DAYS ?= 14
DEMO_LAST ?= 2026-01-14
LANDING ?= landing
DB ?= data/gnnrec.duckdb

.PHONY: setup run test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("gnnrec needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python .ci/torch_wheels.py --python $(BIN)/python --spec "$(TORCH_SPEC)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	# setuptools boxes an "Editable installation" notice (not a warning about this project) on every editable install.
	# --no-compile: bytecode is written on first import, for the modules used; compiling every installed module took
	# about 40 s of a fresh setup's 88 s here.
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install -q --no-compile -e ".[dev]"
	touch $@

run: setup
	$(BIN)/gnnrec demo-data --out $(LANDING) --start $(DEMO_START) --days $(DEMO_DAYS) --seed 7
	$(BIN)/gnnrec run --ds $(DEMO_LAST) --landing $(LANDING) --db $(DB)
	$(BIN)/gnnrec query sql/analyst/user_recommendations.sql --db $(DB)

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) data landing .prefect .pytest_cache
