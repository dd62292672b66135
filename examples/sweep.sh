#!/usr/bin/env bash
# AdaPruner at three prune ratios against full-data training, three seeds each, then a report.
#
#   examples/sweep.sh                               # the main job's setting (Fashion-MNIST, small CNN, CPU)
#   examples/sweep.sh experiment=synthetic_quick    # seconds per run: try the pipeline first
#   examples/sweep.sh trainer=gpu data=cifar10 model=resnet18 trainer.max_epochs=100
#   SWEEP_DIR=multirun/my_sweep examples/sweep.sh   # choose where the runs go
#
# Extra arguments are Hydra overrides added to every run. Each run writes <run dir>/metrics.json;
# adapruner-report turns the sweep directory into report/report.md and plots.
# Two multiruns share one sweep directory: the full-data baseline does not depend on the prune ratio, so
# sweeping `pruning=adapruner,none pruning.prune_ratio=0.1,0.2,0.3` in one go would train it three
# times per seed. Run directories are named <method>_p<ratio>_seed<seed>_<job number>.
# At the main job's 1.5-3 min per run on a 2-core CPU, the 12 runs take 20-40 minutes.
set -euo pipefail

# adapruner-train / adapruner-report: from the PATH, else from this checkout's .venv (make setup)
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v adapruner-train >/dev/null && [ -x "$ROOT/.venv/bin/adapruner-train" ]; then
  PATH="$ROOT/.venv/bin:$PATH"
fi
SWEEP_DIR=${SWEEP_DIR:-multirun/sweep/$(date +%Y-%m-%d_%H-%M-%S)}

adapruner-train -m pruning=adapruner pruning.prune_ratio=0.1,0.2,0.3 seed=0,1,2 \
  hydra.sweep.dir="$SWEEP_DIR" "$@"
adapruner-train -m pruning=none seed=0,1,2 \
  hydra.sweep.dir="$SWEEP_DIR" "$@"

adapruner-report "$SWEEP_DIR"
echo "report: $SWEEP_DIR/report/report.md"
