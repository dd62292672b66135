"""The plugin core: what a user adds to their own Trainer (callback, mixin, sampler, methods, subsets).

Nothing here imports Hydra, omegaconf, matplotlib or torchvision, nor anything from :mod:`lightning_adapruner.app`.
"""
