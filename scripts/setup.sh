#!/usr/bin/env bash
# Idempotent set-up: the Fashion-MNIST Debian package and a virtualenv with the pinned stack.
# Re-running is cheap: the venv is rebuilt only when requirements/lock.txt changes.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "[setup] installing Debian package dataset-fashion-mnist (offline Fashion-MNIST)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null; }
fi

PY=${PYTHON:-python3}
stamp=".venv/.lock-$(sha256sum requirements/lock.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[setup] creating .venv with the pinned stack (requirements/lock.txt; ~2 min, ~5 GB)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  # torch===2.13.0 (three '=') takes PyPI's standard build: the local +cpu wheel breaks torchvision.
  .venv/bin/pip install -q --disable-pip-version-check -r requirements/lock.txt
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
  rm -f .venv/.lock-*
  touch "$stamp"
fi
