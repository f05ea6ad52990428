"""HW-NAS-Bench edgegpu / edgetpu NB201 latencies, from OneProxy's 1,999-arch subsets.

OneProxy's lists are positional. Its ``rice_raspi4`` list is HW-NAS-Bench's raspi4 column for the
same archs, and each value matches exactly one HELP raspi4 value: that match recovers the NB201
index of every position (checked: pixel3, eyeriss and fpga then agree exactly too). -1 marks a
missing edgetpu measurement and becomes NaN.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from ..errors import DataError, UnknownNameError
from .formats import latency_frame, load_verified_pickle
from .sources import source_file

REPO = "OneProxy"
DEVICES = {"edgegpu": "latency_data/rice_edgegpu.pickle", "edgetpu": "latency_data/rice_edgetpu.pickle"}
MISSING = -1.0


def devices() -> list[str]:
    return list(DEVICES)


@cache
def nb201_ids() -> np.ndarray:
    """NB201 index of each of OneProxy's 1,999 positions."""
    from . import help

    raspi4 = np.asarray(load_verified_pickle(source_file(REPO, "latency_data/rice_raspi4.pickle")), dtype=float)
    help_raspi4 = help.latency("nb201", "raspi4")
    order = np.argsort(help_raspi4, kind="stable")
    pos = np.searchsorted(help_raspi4[order], raspi4)
    pos = np.clip(pos, 0, len(order) - 1)
    ids = order[pos]
    if not np.array_equal(help_raspi4[ids], raspi4) or len(np.unique(ids)) != len(ids):
        raise DataError("OneProxy rice_raspi4 no longer matches HELP raspi4 one-to-one; the join to NB201 "
                        "indices is invalid for this file version")
    return ids


@cache
def latency(device: str) -> np.ndarray:
    """Latency in ms by NB201 index; NaN outside the 1,999 archs and where HW-NAS-Bench has -1."""
    from ..spaces import nb201

    if device not in DEVICES:
        raise UnknownNameError("HW-NAS-Bench device", device, devices())
    values = np.asarray(load_verified_pickle(source_file(REPO, DEVICES[device])), dtype=float)
    values[values == MISSING] = np.nan
    out = np.full(nb201.N_ARCHS, np.nan)
    out[nb201_ids()] = values
    out.setflags(write=False)
    return out


def sentinel_count(device: str) -> int:
    values = np.asarray(load_verified_pickle(source_file(REPO, DEVICES[device])), dtype=float)
    return int(np.sum(values == MISSING))


@cache
def latencies() -> pd.DataFrame:
    return latency_frame({d: latency(d) for d in devices()})
