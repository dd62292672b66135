# The two commands of the README. Both set everything up first (idempotent).
.PHONY: setup train test lint test-floor test-capabilities

setup:
	@bash scripts/setup.sh

# Main job: AdaPruner on Fashion-MNIST with a small CNN, CPU, offline.
train: setup
	.venv/bin/adapruner-train $(ARGS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

# The core tests on the lowest supported Lightning (2.5.0), beside the pinned one.
test-floor: setup
	bash scripts/lightning-floor.sh

# The bit-sensitive tests again under the CPU kernels of other machines (default, avx2 below avx512).
test-capabilities: setup
	bash scripts/test-capabilities.sh

# The test command (CI runs exactly this): lint, every test and doctest on the pinned stack, the bit-sensitive
# tests under another CPU capability, then the core on the lowest supported Lightning.
test: lint
	.venv/bin/pytest -q
	$(MAKE) --no-print-directory test-capabilities
	$(MAKE) --no-print-directory test-floor
