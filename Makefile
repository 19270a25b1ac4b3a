# Two commands: `make demo` and `make test`. Each sets up .venv on a fresh machine first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The exact torch pin: on our machines pip takes a local CPU wheel for it. Installed before the
# package, so that the package's `torch>=2.4` is already met and pip never pulls a CUDA build.
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed
# Embedding tables: torchrec and the CPU build of FBGEMM, at pins that load with the torch pin
# (fbgemm-gpu-cpu 1.9.0 does not: undefined symbols). torchrec is installed with --no-deps because
# it asks for `fbgemm-gpu` (the CUDA build, which `fbgemm-gpu-cpu` replaces) and an old torchmetrics
# that only its metrics module uses; its other runtime dependencies are listed here.
TORCHREC_PIN := torchrec==1.9.2
TABLES_DEPS := fbgemm-gpu-cpu==1.8.0 tensordict==0.15.3 pyre-extensions==0.0.32 tqdm
# The Python folders of the project.
LINT_PATHS := $(wildcard src tests examples benchmarks scripts)

.PHONY: demo test lint typecheck unit setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet "$(TORCH_PIN)" -e ".[cli,dev,test,integrations]"
	$(PY) -m pip install --quiet "$(TORCH_PIN)" $(TABLES_DEPS)
	$(PY) -m pip install --quiet "$(TORCH_PIN)" --no-deps $(TORCHREC_PIN)
	touch $(STAMP)

DEMO_CONFIG := examples/multi_task_towers.yaml
DEMO_STEPS := 10000

# Trains the demo ranking model (about a minute on 2 CPU cores), then plots the schedule.
demo: $(STAMP)
	$(VENV)/bin/tml-optim train $(DEMO_CONFIG) --steps $(DEMO_STEPS) --checkpoint-dir runs/demo --fresh
	$(VENV)/bin/tml-optim plot $(DEMO_CONFIG) --steps $(DEMO_STEPS) -o runs/demo/lr_from_plot.png

lint: $(STAMP)
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)

typecheck: $(STAMP)
	$(PY) -m mypy

unit: $(STAMP)
	$(PY) -m pytest -q

test: lint typecheck unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
