# The README's two commands: `make demo` and `make test`. Both set everything up first.
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do \
	if command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' 2>/dev/null; \
	then echo $$p; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench catalogue cluster-up cluster-down clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 or 3.12 is required (durable_rules cannot import on 3.13)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/rapport demo

test: setup lint
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: setup
	RAPPORT_BENCH_POSTGRES_URL=$${RAPPORT_BENCH_POSTGRES_URL:-$$(scripts/postgres-start rapport_bench)} \
		$(BIN)/python -u -m bench

# The staff-language catalogue (README, "Staff language"): extract every marked string
# (babel.cfg), merge new ones into each .po (then translate them: the test
# tests/rapport/services/test_staff_language.py fails until every entry is translated),
# and regenerate the zh-CN rules guide.
catalogue: setup
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output \
		-k N_ -o rapport/locale/rapport.pot .
	$(BIN)/pybabel update -i rapport/locale/rapport.pot -d rapport/locale -D rapport \
		--no-wrap --no-fuzzy-matching --ignore-obsolete
	$(BIN)/rapport rules reference --locale zh-CN --write rules/README.zh-CN.md

# Rapport's cluster on this machine (README, "Scaling out"): `make cluster-up WORKERS=3`.
WORKERS ?= 2
cluster-up: setup
	scripts/cluster-up --workers $(WORKERS)

cluster-down:
	scripts/cluster-down

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
