# Every target creates (or reuses) .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint bench chaos demo demo-pull clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,spark]'
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# The chaos suite with its long schedule: 100 SIGKILLs and 200,000 lines (CI runs 8 and
# 100,000). CHAOS_SEED=n replays one.
chaos: $(STAMP)
	CHAOS_KILLS=$${CHAOS_KILLS:-100} CHAOS_LINES=$${CHAOS_LINES:-200000} $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/chaos

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

demo: $(STAMP)
	$(BIN)/python scripts/demo.py --mode push

demo-pull: $(STAMP)
	$(BIN)/python scripts/demo.py --mode pull

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
