import lightning_adapruner


def test_public_names_are_pinned():
    # removing or adding a public name is a deliberate act: update this list with it
    assert sorted(lightning_adapruner.__all__) == [
        "AdaPruner",
        "AdaptiveDatasetPruning",
        "BatchSelection",
        "DataPruning",
        "EL2NPruning",
        "EpochLayout",
        "FitInfo",
        "ForgettingPruning",
        "IndexedDataset",
        "IndexedSample",
        "InfoBatchPruning",
        "METRIC_NAMES",
        "Observations",
        "PrunedSubset",
        "PrunedSubsetError",
        "PruningMethod",
        "PruningPerformanceController",
        "PruningSampler",
        "RS2Pruning",
        "RandomPruning",
        "SUBSET_FILE",
        "SeTaPruning",
        "functional",
        "load_pruned_subset",
        "read_pruned_subset",
    ]
    for name in lightning_adapruner.__all__:
        assert getattr(lightning_adapruner, name) is not None


def test_every_method_is_a_peer_on_the_public_protocol():
    names = [n for n in lightning_adapruner.__all__ if n.endswith(("Pruner", "Pruning"))]
    methods = [getattr(lightning_adapruner, n) for n in names]
    methods = [m for m in methods if isinstance(m, type) and issubclass(m, lightning_adapruner.PruningMethod)]
    assert {m.__name__ for m in methods} == {
        "AdaPruner",
        "EL2NPruning",
        "ForgettingPruning",
        "InfoBatchPruning",
        "RS2Pruning",
        "RandomPruning",
        "SeTaPruning",
    }
    for method in methods:  # none overrides the generic state plumbing
        for plumbing in ("state_dict", "load_state_dict", "to", "reset", "add_state"):
            assert getattr(method, plumbing) is getattr(lightning_adapruner.PruningMethod, plumbing), (method, plumbing)
