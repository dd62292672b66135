#!/usr/bin/env bash
# The core tests (and doctests) on the lowest Lightning this package supports, without a second 5 GB venv:
# the lightning wheel of that version is installed into .venv-floor/ and put in front of the pinned venv.
set -euo pipefail
cd "$(dirname "$0")/.."

FLOOR=${LIGHTNING_FLOOR:-2.5.0.post0}
DIR=.venv-floor/lightning-$FLOOR
if [ ! -f "$DIR/.done" ]; then
  echo "[floor] installing lightning==$FLOOR into $DIR (an overlay on .venv)"
  rm -rf "$DIR" && mkdir -p "$DIR"
  .venv/bin/pip download -q --disable-pip-version-check --no-deps "lightning==$FLOOR" -d "$DIR/wheel"
  # Lightning before 2.6 declares rich<14 (its RichProgressBar pops an empty live stack on Rich 14+); the tests put a
  # Rich bar before the callback, so the overlay carries the Rich that version was released for.
  .venv/bin/pip download -q --disable-pip-version-check --no-deps "rich<14" -d "$DIR/wheel"
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --target "$DIR/site" "$DIR"/wheel/*.whl
  touch "$DIR/.done"
fi
version=$(PYTHONPATH="$DIR/site" .venv/bin/python -c "import lightning; print(lightning.__version__)")
rich=$(PYTHONPATH="$DIR/site" .venv/bin/python -c "import importlib.metadata as m; print(m.version('rich'))")
case "$rich" in 1[0-3].*) ;; *) echo "[floor] expected rich<14 for lightning $FLOOR, got $rich (rm -rf $DIR)"; exit 1;; esac
[ "$version" = "$FLOOR" ] || { echo "[floor] expected lightning $FLOOR, got $version"; exit 1; }
echo "[floor] core tests on lightning $version, rich $rich"
PYTHONPATH="$DIR/site" .venv/bin/pytest -q -p no:cacheprovider tests/core lightning_adapruner/core
