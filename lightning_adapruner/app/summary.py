"""The run summary: the ``metrics.json`` every ``adapruner-train`` run writes, and what ``adapruner-report`` reads.

One definition of the file name, of the method name of a full-data run, and of the keys a summary holds.

Example::

    >>> METRICS_FILE, FULL_DATA_METHOD
    ('metrics.json', 'none')
    >>> {"method", "test_acc", "samples_forwarded", "label_noise"} <= set(SUMMARY_KEYS)
    True
"""

from __future__ import annotations

METRICS_FILE = "metrics.json"  # in every run directory, written at the end of the run
FULL_DATA_METHOD = "none"  # the ``method`` of a run that trains on all the data (``pruning=none``)
SUMMARY_KEYS = (  # the keys of a summary; a run may add extras after them
    "method",  # the pruning config's name ("none": full data; "shorter": full data for fewer epochs)
    "prune_ratio_target",  # the configured prune ratio, or the one solved for a budget (0.0 without a pruning callback)
    "prune_ratio_realised",  # share of the training set the last epoch did not keep
    "seed",
    "dataset",  # the data config's meta.name
    "model",  # the model config's name
    "epochs",  # the epochs trained ("shorter": round(budget * reference_epochs))
    "label_noise",  # share of training labels flipped by the datamodule (0.0 for clean data)
    "test_acc",
    "test_loss",
    "val_acc",
    "samples_forwarded",  # training samples forwarded over the whole run (retrain included)
    "samples_full_data",  # what full data forwards over reference_epochs, under the run's processes and limits
    "saved_share",  # 1 - samples_forwarded / samples_full_data
    "reference_epochs",  # the setting's epochs, what a "none" run of it trains; the report groups settings by it,
    #                      so a "shorter" run shares the setting of its full-data and pruning runs
    "budget_target",  # the budget the run was given: a share of samples_full_data ("shorter": its own; "none": 1.0;
    #                   null for runs configured by prune ratio and for retrain runs)
    "budget_realised",  # samples_forwarded / samples_full_data (a "shorter" run at 12 of 20 epochs: 0.6)
    "wall_time_s",  # the whole job: fit, retrain and test
    "fit_time_s",  # the training alone (trainer.fit, and the retrain's when there is one)
    "started_at",  # unix seconds when the job started
    "finished_at",  # unix seconds when the job finished
    "num_train_samples",
    "subset_path",  # the exported pruned subset (its JSON), or None
    "metrics_csv",  # the CSVLogger file of the fit, or None
)
# Runs written before the budget keys lack them; adapruner-report reads them when present.
# A run's budget key (its cell and its place on the plots): budget_target, else budget_realised rounded to 3 decimals,
# else samples_forwarded / samples_full_data rounded to 3 decimals.
