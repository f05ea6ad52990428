"""Replication: code that emulates other code bases, kept out of the `multipredict` engine.

Nothing here is part of the library's API or defaults; it exists to measure how the published
numbers were made. It reaches the engine only through its public extension points:

- `authors_code`: the Multi-Predict authors' released code (AutoML-Conf 2023 submission): the
  device list that keys their ``index`` codes, as an ``index_position`` hook of
  `multipredict.predictors.fewshot.FewShotLatencyPredictor`, the device their scoring looks up,
  and the network / label parts `authors_index_loop.py` swaps in (``network_parts``,
  ``target_label_scaling``, ``source_split`` hooks).
- `brpnas_eagle`: BRP-NAS as its released code (SamsungLabs/eagle) trains it: its pruned cell
  graph, its GCN and training loop, registered as the method ``"BRP-NAS (released recipe)"``.
- `help_readme`: the Spearman numbers HELP's README publishes.

The scripts beside these modules (``authors_embedding_lookup.py``, ``authors_index_loop.py``,
``brpnas_recipes.py``) run from the repository root, as files or as modules::

    python benchmarks/replication/brpnas_recipes.py --quick
    python -m benchmarks.replication.brpnas_recipes --quick

Import the package with the repository root on ``sys.path`` (``python -m ...`` from the root,
``python -m pytest``, or ``PYTHONPATH=.``); `register_methods` adds its methods to the active
method registry (`multipredict.experiments.methods`).
"""

from __future__ import annotations

from multipredict.experiments import methods as _methods

BRPNAS_RELEASED = "BRP-NAS (released recipe)"


def register_methods() -> list[_methods.Method]:
    """Add the replication methods to the active method registry (idempotent); returns them."""
    module = "benchmarks.replication.brpnas_eagle"
    return [_methods.register(BRPNAS_RELEASED, f"{module}:fit_and_score", accepts_from=f"{module}:ReleasedOptions",
                              quick_options={"epochs": 10}, needs_train_devices=False,
                              description="BRP-NAS as its released code (SamsungLabs/eagle) trains it: its pruned "
                                          "NB201 cell graph, 4 x 600 GCN, batch 1, early stopping")]


__all__ = ["register_methods", "BRPNAS_RELEASED"]
