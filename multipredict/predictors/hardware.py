"""Fixed hardware embeddings: how a device is described to a predictor without a learned row.

``sample``: the device's latencies on HELP's 10 reference archs (looked up by the trial layer,
`multipredict.methods.protocol.sample_vector`), min-max scaled over those 10 values, so that the vector
describes the *shape* of the device's latency profile (the labels are per-device min-max scaled
too). Measuring them costs a new device 10 extra measurements, which results report.

``index``: the binary code of the device's position (most significant bit first), ``dim`` bits.
The transfer estimator codes a device by its position among the source devices (targets numbered
after them); its ``index_position`` hook chooses another position
(`multipredict.predictors.fewshot.FewShotLatencyPredictor`).
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError, MultipredictError


def sample_embedding(reference_ms, *, device: str = "the device") -> np.ndarray:
    """The ``sample`` embedding of a device from its latencies on HELP's 10 reference archs: min-max
    scaled over those values (the shape of its latency profile)."""
    latency = np.asarray(reference_ms, dtype=float).reshape(-1)
    if not np.isfinite(latency).all() or len(latency) == 0:
        raise DataError(f"{device} has no latency on some of HELP's reference archs, which the 'sample' embedding "
                        "needs; measure them, or use embedding='table' or 'index'")
    low, high = latency.min(), latency.max()
    return ((latency - low) / (high - low if high > low else 1.0)).astype(np.float32)


def index_vector(position: int, dim: int = 8) -> np.ndarray:
    if not 0 <= position < 2 ** dim:
        raise MultipredictError(f"device position {position} does not fit a {dim}-bit index embedding; "
                                f"use at most {2 ** dim} devices or a larger embedding_dim")
    bits = [(position >> (dim - 1 - b)) & 1 for b in range(dim)]
    return np.asarray(bits, dtype=np.float32)
