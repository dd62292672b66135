# The two commands of the README. Both set everything up first (idempotent).
.PHONY: setup train test lint

setup:
	@bash scripts/setup.sh

# Main job: AdaPruner (p = 0.2) on Fashion-MNIST with a small CNN, CPU, offline.
train: setup
	.venv/bin/adapruner-train $(ARGS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

# The test command (CI runs exactly this).
test: lint
	.venv/bin/pytest -q
