# pushgrowth: `make demo` and `make test` are all a new user needs; both create the virtualenv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PUSHGROWTH_HOME ?= $(CURDIR)/.pushgrowth
export PUSHGROWTH_HOME
STAMP := $(VENV)/.installed

.PHONY: install demo test dev lock bench clean

install: $(STAMP)

# --compile-bytecode: Python then reads compiled modules instead of compiling dbt, Dagster and MLflow from source
# in every process (~20 s once at install; where PYTHONDONTWRITEBYTECODE is set nothing is ever cached otherwise).
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv==0.13.8
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pushgrowth demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

dev: $(STAMP)
	$(BIN)/pushgrowth dev

bench: $(STAMP)
	$(BIN)/pushgrowth bench sim --users 1000000

lock:
	$(BIN)/uv pip compile --python-version 3.11 requirements.in -o requirements.lock -q --no-header
	sed -i '1i # Exact versions for every install (make venv). Regenerate with `make lock`.' requirements.lock

clean:
	rm -rf $(PUSHGROWTH_HOME)
