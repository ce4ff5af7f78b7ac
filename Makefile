# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test demo bench lint clean fresh

$(BIN)/invoice-mailer: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

lint: $(BIN)/invoice-mailer
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

demo: $(BIN)/invoice-mailer
	$(BIN)/invoice-mailer demo $(DEMO_ARGS)

bench: $(BIN)/invoice-mailer
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The two commands again in a fresh clone of HEAD that sees nothing beside it (root, unshare).
fresh:
	bash .ci/fresh-clone

clean:
	rm -rf $(VENV) build *.egg-info daemon/*.egg-info .mypy_cache
