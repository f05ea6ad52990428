"""A DEMO method for trying the workbench without training anything: NOT a latency predictor.

``register()`` adds ``DEMO_METHOD`` to the active method registry. Its rho values are synthetic
(a made-up curve rising with the sample budget plus seeded noise) and say nothing about any
device; it exists so that the dashboard, its browser test and the notebook tests can run a whole
experiment in seconds. ``multipredict.serve --demo`` / ``plugins=["mpwidgets._demo"]`` enable it.
"""

from __future__ import annotations

import time
import zlib

import numpy as np

DEMO_METHOD = "DEMO synthetic (not a predictor)"


def fit_and_score(*, space: str, train_devices: list[str], test_devices: list[str], samples: int, seed: int,
                  protocol: str = "paper", delay: float = 0.3, **options) -> list[dict]:
    """Synthetic rows in the engine's method contract; sleeps ``delay`` seconds to look like work."""
    started = time.perf_counter()
    time.sleep(delay)
    rows = []
    for device in test_devices:
        rng = np.random.default_rng([seed, samples, zlib.crc32(device.encode())])
        rho = float(np.clip(0.95 - 0.5 / (1 + samples / 8) + rng.normal(0, 0.03), -1, 1))
        rows.append({"device": device, "spearman": rho, "kendall": rho * 0.8, "n_eval": 100, "n_fewshot": samples,
                     "pool": "demo", "seconds": time.perf_counter() - started, "demo": True})
    return rows


def register(delay: float | None = None) -> str:
    """Add the demo method to the active registry (``delay``: seconds per trial); returns its name."""
    from multipredict.experiments import register as register_method

    fixed = {} if delay is None else {"delay": delay}
    register_method(DEMO_METHOD, fit_and_score, accepts=frozenset({"delay"}), needs_train_devices=False,
                    description="DEMO: synthetic numbers to try the workbench; not a latency predictor", **fixed)
    return DEMO_METHOD


register()
