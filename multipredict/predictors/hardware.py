"""Fixed hardware embeddings: how a device is described to a predictor without a learned row.

``sample``: the device's latencies on HELP's 10 reference archs
(`multipredict.data.help.reference_archs`), min-max scaled over those 10 values, so that the vector
describes the *shape* of the device's latency profile (the labels are per-device min-max scaled
too). Measuring them costs a new device 10 extra measurements, which results report.

``index``: the binary code of the device's position (most significant bit first), ``dim`` bits.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError, MultipredictError


def reference_archs(space: str) -> list[int]:
    from ..data import help

    return help.reference_archs(space)


def sample_vector(space: str, device: str) -> np.ndarray:
    from .evaluation import device_latency

    ids = reference_archs(space)
    latency = device_latency(space, device)[ids]
    if not np.isfinite(latency).all():
        raise DataError(f"device {device!r} has no latency on some of HELP's reference archs {ids}, which the "
                        "'sample' embedding needs; use embedding='table' or 'index' for it")
    low, high = latency.min(), latency.max()
    return ((latency - low) / (high - low if high > low else 1.0)).astype(np.float32)


def index_vector(position: int, dim: int = 8) -> np.ndarray:
    if not 0 <= position < 2 ** dim:
        raise MultipredictError(f"device position {position} does not fit a {dim}-bit index embedding; "
                                f"use at most {2 ** dim} devices or a larger embedding_dim")
    bits = [(position >> (dim - 1 - b)) & 1 for b in range(dim)]
    return np.asarray(bits, dtype=np.float32)
