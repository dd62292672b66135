"""The Hydra app around the core: ``adapruner-train``, ``adapruner-report``, the data and model zoo.

It uses the core only through :mod:`lightning_adapruner`'s public API.
"""
