# datakiln: `make demo` and `make test` work on a fresh machine (they create .venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  ?= torch==2.13.0

.PHONY: demo test test-all bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip

# the exact local torch build first; the `torch` extra only states a range (torch>=2.3)
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -qq '$(TORCH)'
	$(BIN)/pip install -qq -e '.[sql,dev,torch,images,privacy,text,streams,ray,s3]'
	# pycanon (the k-anonymity agreement tests' reference) pins numpy, scipy, pandas and typer
	# exactly; its anonymity module needs only numpy and pandas, so it comes without its pins
	$(BIN)/pip install -qq --no-deps 'pycanon==1.3.6'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kiln demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

bench: $(STAMP)
	$(BIN)/pip install -qq -e '.[bench]'
	$(BIN)/python benchmarks/read.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
