"""The run summary: the ``metrics.json`` every ``adapruner-train`` run writes, and what ``adapruner-report`` reads.

One definition of the file name, of the method name of a full-data run, and of the keys a summary holds.

Example::

    >>> METRICS_FILE, FULL_DATA_METHOD
    ('metrics.json', 'none')
    >>> {"method", "test_acc", "samples_forwarded", "label_noise"} <= set(SUMMARY_KEYS)
    True
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"  # in every run directory, written at the end of the run
FULL_DATA_METHOD = "none"  # the ``method`` of a run that trains on all the data (``pruning=none``)
SUMMARY_KEYS = (  # the keys of a summary; a run may add extras after them
    "method",  # the pruning config's name
    "prune_ratio_target",  # the configured prune ratio (0.0 without a pruning callback)
    "prune_ratio_realised",  # share of the training set the last epoch did not keep
    "seed",
    "dataset",  # the data config's meta.name
    "model",  # the model config's name
    "epochs",
    "label_noise",  # share of training labels flipped by the datamodule (0.0 for clean data)
    "test_acc",
    "test_loss",
    "val_acc",
    "samples_forwarded",  # training samples forwarded over the whole run (retrain included)
    "samples_full_data",  # what full data forwards in the same epochs, processes and limit_train_batches
    "saved_share",  # 1 - samples_forwarded / samples_full_data
    "wall_time_s",  # the whole run: fit, retrain and test
    "num_train_samples",
    "subset_path",  # the exported pruned subset (its JSON), or None
    "metrics_csv",  # the CSVLogger file of the fit, or None
)
