"""Baselines the Multi-Predict method is compared against, each behind the same entry point
``fit_and_score(*, space, train_devices, test_devices, samples, seed, protocol, **options)``:

- `flops`: rank archs by FLOPs (no training, no measurements).
- `brpnas`: the same predictor trained from scratch on the target device alone (BRP-NAS).
- `help`: HELP, meta-learned hardware-adaptive predictor (Lee et al., NeurIPS 2021).

`latency_method(name)` returns the entry point of a latency method by name, the transfer method
included, importing its module only when asked (HELP and the predictors pull in torch).
"""

from __future__ import annotations

from importlib import import_module

from ..errors import UnknownNameError

# method name -> module that defines its fit_and_score
LATENCY_METHODS = {
    "transfer": "multipredict.methods.transfer",
    "flops": "multipredict.baselines.flops",
    "brpnas": "multipredict.baselines.brpnas",
    "help": "multipredict.baselines.help",
}


def latency_method(name: str):
    """The ``fit_and_score`` function of latency method ``name``."""
    if name not in LATENCY_METHODS:
        raise UnknownNameError("latency method", name, list(LATENCY_METHODS))
    return import_module(LATENCY_METHODS[name]).fit_and_score


__all__ = ["LATENCY_METHODS", "latency_method"]
