# Set-up and checks for scaffolder. `make demo` and `make test` work on a fresh machine with Python 3.10+ and git.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel of torch: a bare `torch` requirement would pull a multi-GB CUDA build. On a GPU machine,
# run `make TORCH=torch demo` (or install your CUDA build of torch first).
TORCH ?= torch==2.13.0

.PHONY: install demo test lint bench clean

$(BIN)/scaffold: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)" -e ".[train,llm,dev]"
	touch $@

install: $(BIN)/scaffold

# Scaffold the shipped example into demo-reviews/, commit it and smoke-train it.
demo: install
	rm -rf demo-reviews
	$(BIN)/scaffold new --task text-classification \
		--data examples/text-classification/train.csv --eval-data examples/text-classification/dev.csv \
		--output demo-reviews
	@echo "next: cd demo-reviews && ../$(BIN)/python train.py"

test: install lint
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=10

lint: install
	$(BIN)/ruff check scaffolder tests bench
	$(BIN)/ruff format --check scaffolder tests bench
	$(BIN)/mypy

# Scaffolded projects against the Hugging Face Trainer (same model, data, hyperparameters; about an hour on a
# 2-core CPU), `scaffold new` against copier, and the smoke run of every task. Results in bench/results/.
bench: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python bench/text_classification.py --data sst2
	$(BIN)/python bench/token_classification.py --sentences 3000 --repeats 3
	$(BIN)/python bench/text_generation.py --rows 3000
	$(BIN)/python bench/scaffold_speed.py --repeats 15
	$(BIN)/python bench/smoke_speed.py

clean:
	rm -rf $(VENV) demo-reviews dist build
