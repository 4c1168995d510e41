# Two commands do everything: `make run` (the system on SQLite with demo data) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: install run test lint types pytest migrate demo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/aftersales migrate --noinput

demo: migrate
	$(BIN)/aftersales demo-data

run: demo
	PORT=$(PORT) $(BIN)/aftersales serve

lint: install
	$(BIN)/ruff check aftersales benchmarks conftest.py

types: install
	$(BIN)/mypy aftersales

pytest: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: lint types pytest

clean:
	rm -rf $(VENV) var
