# Two commands do everything: `make run` (the system on SQLite with demo data) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: install run worker test lint types pytest migrate demo clean

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

# Loads the demo once (a second run changes nothing) and prints its logins, then serves until Ctrl-C.
run: demo
	@echo "open http://127.0.0.1:$(PORT)/admin/ (sign in as demo-operator) and http://127.0.0.1:$(PORT)/api/docs"
	PORT=$(PORT) $(BIN)/aftersales serve

# Background work with a broker (CELERY_BROKER_URL=redis://... or amqp://...); without one, `run` does it.
worker: install
	$(BIN)/aftersales worker

lint: install
	$(BIN)/ruff check aftersales benchmarks conftest.py

types: install
	$(BIN)/mypy aftersales

pytest: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: lint types pytest

clean:
	rm -rf $(VENV) var
