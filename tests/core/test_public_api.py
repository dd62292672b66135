import lightning_adapruner


def test_public_names_are_pinned():
    # removing or adding a public name is a deliberate act: update this list with it
    assert sorted(lightning_adapruner.__all__) == [
        "AdaptiveDatasetPruning",
        "IndexedDataset",
        "IndexedSample",
        "METRIC_NAMES",
        "PrunedSubset",
        "PrunedSubsetError",
        "PruningPerformanceController",
        "PruningSampler",
        "SUBSET_FILE",
        "load_pruned_subset",
        "read_pruned_subset",
    ]
    for name in lightning_adapruner.__all__:
        assert getattr(lightning_adapruner, name) is not None
