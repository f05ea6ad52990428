"""NATS-Bench / NAS-Bench-201 test accuracies (v-tao/nats-bench-landscape ``nats_bench.csv``).

Test accuracy (%) after 200 epochs, mean over seeds, for all 15,625 NB201 cells on CIFAR-10,
CIFAR-100 and ImageNet16-120. Row ``i`` of the csv is NB201 index ``i``; the loader checks that
for every row against HELP's arch-string index, so a reordered file cannot slip through.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from ..errors import DataError, UnknownNameError
from . import help
from .formats import read_csv
from .sources import source_file

REPO = "nats-bench-landscape"
PATH = "nats_bench.csv"
DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "ImageNet16-120")
_CSV_COLUMN = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "ImageNet16-120": "ImageNetTestAccuracy200Epochs",
}
_ARCH_COLUMN = "ArchitectureString"
# No sentinel occurs in the pinned file; the values the other benchmark files use for "missing"
# are still mapped to NaN (and counted) so that a different file version could not pass one off
# as an accuracy.
_SENTINELS = (-1e8, -1.0)


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise UnknownNameError("NATS dataset", dataset, DATASETS)


@cache
def _test_accuracies() -> pd.DataFrame:
    file = source_file(REPO, PATH)
    raw = read_csv(file)
    missing = [c for c in (*_CSV_COLUMN.values(), _ARCH_COLUMN) if c not in raw.columns]
    if missing:
        raise DataError(
            f"{file.name} lacks the columns {missing}; expected {list(_CSV_COLUMN.values())} and "
            f"{_ARCH_COLUMN!r}, found {list(raw.columns)}. The pinned file is not what this loader "
            f"was written for: report it."
        )
    index = help.nb201_index()
    if len(raw) != len(index):
        raise DataError(f"{file.name} has {len(raw)} rows; expected one per NB201 cell ({len(index)})")
    for row, arch in enumerate(raw[_ARCH_COLUMN]):
        found = index.get(str(arch).strip())
        if found != row:
            raise DataError(
                f"{file.name} row {row} holds arch {arch!r}, whose NB201 index is {found}; expected "
                f"row i to be NB201 index i for every row. The file order changed: the loader "
                f"cannot key it by position."
            )
    table = pd.DataFrame(
        {name: raw[column].to_numpy(dtype=float, copy=True) for name, column in _CSV_COLUMN.items()},
        index=pd.RangeIndex(len(raw), name="arch_id"),
    )
    sentinels = {}
    for name in DATASETS:
        is_sentinel = table[name].isin(_SENTINELS).to_numpy()
        sentinels[name] = int(is_sentinel.sum())
        table.loc[is_sentinel, name] = np.nan
    table.attrs["source"] = file.name
    table.attrs["sentinels"] = sentinels
    table.attrs["arch_id"] = "NAS-Bench-201 index 0..15624"
    return table


def test_accuracies() -> pd.DataFrame:
    """Index NB201 arch id, columns ``cifar10``, ``cifar100``, ``ImageNet16-120``: test accuracy
    (%) after 200 epochs. Parsed once per process; each call returns a copy-on-write view, so a
    caller may modify it without changing what the next caller gets."""
    return _test_accuracies().copy(deep=False)


test_accuracies.__test__ = False  # keep pytest from collecting the name when it is imported


def test_accuracy(dataset: str = "cifar10") -> pd.Series:
    """One dataset's column of :func:`test_accuracies`."""
    _check_dataset(dataset)
    return test_accuracies()[dataset]


test_accuracy.__test__ = False


def tables() -> list[tuple[str, object]]:
    """``(name, callable)`` of every table this module offers (for a data report)."""
    return [("nats/test_accuracies", test_accuracies)]
