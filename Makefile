# Two commands: `make demo` and `make test`. Each creates the virtual environment if missing.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch and torchvision first and pinned: on this kind of machine pip takes them from wheels on
# disk (a CUDA build that runs on the CPU); other machines may override TORCH_SPEC.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test lint format bench-speed install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[methods,dev]"
	# panoptica, the lesion-wise oracle of the tests, caps numpy, pandas and rich below the
	# versions installed above and works on them: installed without its caps (pyproject: peers).
	$(PY) -m pip install --quiet --no-deps panoptica==2.1.7
	$(PY) -m pip install --quiet plotly ruamel.yaml typer connected-components-3d
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bench run --method nnunet3d_mirrored_tuned

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest -q
	$(VENV)/bin/bench leaderboard --check

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench-speed: $(STAMP)
	$(VENV)/bin/pytest -q tests/benchmarks --benchmark-columns=median,mean,rounds

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .benchmarks
