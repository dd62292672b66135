#!/usr/bin/env bash
# AdaPruner at two budgets against full data for fewer epochs (the free alternative) and full data, three seeds
# each, then a report.
#
#   examples/sweep.sh                               # the main job's setting (Fashion-MNIST, small CNN, CPU)
#   examples/sweep.sh experiment=synthetic_quick    # seconds per run: try the pipeline first
#   examples/sweep.sh trainer=gpu data=cifar10 model=resnet18 trainer.max_epochs=100
#   SWEEP_DIR=multirun/my_sweep examples/sweep.sh   # choose where the runs go
#
# Extra arguments are Hydra overrides added to every run. Each run writes <run dir>/metrics.json;
# adapruner-report turns the sweep directory into report/report.md and plots: per budget, AdaPruner against
# full data for round(budget * max_epochs) epochs (pruning=shorter), paired by seed, with 95% intervals.
# The full-data run does not depend on the budget, so it is a multirun of its own (in one multirun with
# `pruning.budget=...` it would train once per budget). Run directories are <method>_b<budget>_seed<seed>_<n>.
# At the main job's 1-2 min per run on a 2-core CPU, the 15 runs take 20-30 minutes.
set -euo pipefail

# adapruner-train / adapruner-report: from the PATH, else from this checkout's .venv (make setup)
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v adapruner-train >/dev/null && [ -x "$ROOT/.venv/bin/adapruner-train" ]; then
  PATH="$ROOT/.venv/bin:$PATH"
fi
SWEEP_DIR=${SWEEP_DIR:-multirun/sweep/$(date +%Y-%m-%d_%H-%M-%S)}

adapruner-train -m pruning=adapruner,shorter pruning.budget=0.5,0.75 seed=0,1,2 \
  hydra.sweep.dir="$SWEEP_DIR" "$@"
adapruner-train -m pruning=none seed=0,1,2 \
  hydra.sweep.dir="$SWEEP_DIR" "$@"

adapruner-report "$SWEEP_DIR"
echo "report: $SWEEP_DIR/report/report.md"
