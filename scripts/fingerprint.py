"""A digest of what small pruning fits end with: kept sets, method state, exported subset, network weights.

Run it before and after a refactoring that must not change results, on the same machine (bits depend on the CPU's
kernels and the thread count): the same digest line per fit means the same runs, bit for bit::

    python scripts/fingerprint.py            # one line per fit: <name> <sha256 prefix>

The fits cover the study's arms on a tiny model: AdaPruner (the default and the paper's settings) and the
baselines, by prune ratio and by budget, with a one-cycle schedule, in one process.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import EpochRecorder, TinyModel, loader, random_dataset, trainer  # noqa: E402

from lightning_adapruner import (  # noqa: E402
    AdaPruner,
    DataPruning,
    EL2NPruning,
    ForgettingPruning,
    InfoBatchPruning,
    RandomPruning,
    RS2Pruning,
    SeTaPruning,
)

FITS = {
    "adapruner_ratio": lambda: (AdaPruner(), {"prune_ratio": 0.4}),
    "adapruner_budget": lambda: (AdaPruner(), {"budget": 0.6}),
    "adapruner_paper": lambda: (AdaPruner(network_weights="score", selection="nested"), {"budget": 0.6}),
    "rs2": lambda: (RS2Pruning(), {"budget": 0.5}),
    "random_dynamic": lambda: (RandomPruning(dynamic=True), {"budget": 0.75}),
    "infobatch": lambda: (InfoBatchPruning(), {"budget": 0.6}),
    "el2n": lambda: (EL2NPruning(), {"prune_ratio": 0.3}),
    "forgetting": lambda: (ForgettingPruning(), {"prune_ratio": 0.3}),
    "seta": lambda: (SeTaPruning(), {"prune_ratio": 0.3}),
}


def digest(name: str) -> str:
    torch.set_num_threads(1)
    L.seed_everything(0)
    method, target = FITS[name]()
    cb = DataPruning(method, **target, export_dir=False, verbose=False)
    rec = EpochRecorder()
    model = TinyModel(scheduler="pruned")
    t = trainer(max_epochs=6, callbacks=[cb, rec])
    t.fit(model, loader(random_dataset(500), 32))
    h = hashlib.sha256()
    for epoch in sorted(rec.kept):
        h.update(rec.kept[epoch].numpy().tobytes())
    for key, value in sorted(cb.method.state_dict()["states"].items()):
        h.update(key.encode() + value.numpy().tobytes())
    h.update(cb.kept_indices.numpy().tobytes())
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode() + value.detach().numpy().tobytes())
    h.update(str(cb.forwarded_samples).encode())
    return h.hexdigest()[:16]


if __name__ == "__main__":
    for name in FITS:
        print(name, digest(name), flush=True)
