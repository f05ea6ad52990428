"""HELP's benchmark files (HayeonLee/HELP): NB201 and FBNet latencies on 27 devices each.

NB201 archs are keyed by the NAS-Bench-201 index (0..15624) from HELP's ``str_arch2idx.pt``,
FBNet archs by their position (0..4999) in HELP's ``arch.pt``. Latencies are in ms.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from ..errors import UnknownNameError
from .formats import latency_frame, load_torch
from .sources import SOURCE_FILES, source_file

REPO = "HELP"
_SPACE_DIR = {"nb201": "nasbench201", "fbnet": "fbnet"}


def _space_dir(space: str) -> str:
    if space not in _SPACE_DIR:
        raise UnknownNameError("HELP space", space, list(_SPACE_DIR))
    return _SPACE_DIR[space]


def devices(space: str) -> list[str]:
    """HELP's 27 device names for ``space``, from the pinned file list (no download needed)."""
    prefix = f"data/{_space_dir(space)}/latency/"
    return sorted(f.path[len(prefix):-3] for f in SOURCE_FILES if f.repo == REPO and f.path.startswith(prefix))


@cache
def nb201_index() -> dict[str, int]:
    """NB201 arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` -> NAS-Bench-201 index."""
    return dict(load_torch(source_file(REPO, "data/nasbench201/str_arch2idx.pt")))


@cache
def nb201_arch_strings() -> tuple[str, ...]:
    by_index = sorted(nb201_index().items(), key=lambda item: item[1])
    assert [i for _, i in by_index] == list(range(len(by_index))), "HELP index is not 0..N-1"
    return tuple(s for s, _ in by_index)


@cache
def fbnet_archs() -> np.ndarray:
    """(5000, 22) int array of FBNet op indices per layer, in HELP's order."""
    archs = np.asarray(load_torch(source_file(REPO, "data/fbnet/arch.pt")), dtype=np.int64)
    return archs


# HELP's hardware_embedding_index.pt, as published (HELP paper / repository; tests check them against
# the pinned files): known without a download, so that MULTIPREDICT_DATA=local can use them too
REFERENCE_ARCHS = {"nb201": (11982, 431, 55, 9, 14451, 8636, 9881, 13479, 6196, 1462),
                   "fbnet": (3328, 3790, 3313, 890, 3052, 2538, 1640, 2514, 457, 2100)}


def reference_archs(space: str) -> list[int]:
    """HELP's 10 reference archs whose latencies form the ``sample`` hardware embedding."""
    _space_dir(space)  # validates the space
    return list(REFERENCE_ARCHS[space])


def reference_archs_from_file(space: str) -> list[int]:
    """The same ids read from HELP's pinned file (the check that `REFERENCE_ARCHS` is right)."""
    return [int(i) for i in load_torch(source_file(REPO, f"data/{_space_dir(space)}/hardware_embedding_index.pt"))]


@cache
def latency(space: str, device: str) -> np.ndarray:
    valid = devices(space)
    if device not in valid:
        raise UnknownNameError(f"HELP {space} device", device, valid)
    values = np.asarray(load_torch(source_file(REPO, f"data/{_space_dir(space)}/latency/{device}.pt")), dtype=float)
    values.setflags(write=False)
    return values


@cache
def latencies(space: str) -> pd.DataFrame:
    """Wide table: index ``arch_id``, one column per HELP device, values in ms."""
    return latency_frame({d: latency(space, d) for d in devices(space)})
