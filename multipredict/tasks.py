"""Task distance between devices: latency rank correlation, closest training device, adversarial
device sets, and the paper's named device sets.

Two devices are compared over the archs both cover (EAGLE lacks the 341 disconnected cells,
HW-NAS-Bench covers 1,999 archs): the number of archs used is reported with every value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from . import config
from .data import catalogue
from .data import targets
from .data.tables import latencies
from .errors import MultipredictError, UnknownNameError


@dataclass(frozen=True)
class DeviceSet:
    """A named train/test split of devices (HELP's splits, Lee et al., NeurIPS 2021, as used in Akhauri &
    Abdelfattah, AutoML-Conf 2023, Tables 1 and 3; their adversarial sets, Table 13)."""

    name: str
    space: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    valid: tuple[str, ...] = field(default=())
    description: str = ""


_NB201_HELP_TRAIN = ("1080ti_1", "1080ti_32", "1080ti_256", "silver_4114", "silver_4210r", "samsung_a50", "pixel3",
                     "essential_ph_1", "samsung_s7")
_FBNET_HELP_TRAIN = ("1080ti_1", "1080ti_32", "1080ti_64", "silver_4114", "silver_4210r", "samsung_a50", "pixel3",
                     "essential_ph_1", "samsung_s7")
DEVICE_SETS: dict[str, DeviceSet] = {
    s.name: s for s in (
        DeviceSet("nb201-default", "nb201", _NB201_HELP_TRAIN,
                  ("titan_rtx_256", "gold_6226", "fpga", "pixel2", "raspi4", "eyeriss"),
                  ("titanx_1", "titanx_32", "titanx_256", "gold_6240"),
                  "HELP's NB201 meta-train / meta-valid / meta-test split (paper Table 1, Table 9)"),
        DeviceSet("fbnet-default", "fbnet", _FBNET_HELP_TRAIN, ("fpga", "raspi4", "eyeriss"),
                  ("titanx_1", "titanx_32", "titanx_64", "gold_6240"),
                  "HELP's FBNet split (paper Table 3, Table 10)"),
        DeviceSet("nb201-adversarial", "nb201",
                  ("titan_rtx_1", "titan_rtx_32", "titanxp_1", "2080ti_1", "titanx_1", "1080ti_1", "titanx_32",
                   "titanxp_32", "2080ti_32", "1080ti_32", "gold_6226", "samsung_s7", "silver_4114", "gold_6240",
                   "silver_4210r", "samsung_a50", "pixel2"),
                  ("eyeriss", "desktop_gpu_gtx_1080ti_fp32", "embedded_tpu_edge_tpu_int8"), (),
                  "NB201-Adversarial (paper Table 13 / Table 2)"),
        DeviceSet("fbnet-adversarial", "fbnet",
                  tuple(f"{g}_{b}" for g in ("1080ti", "2080ti", "titan_rtx", "titanx", "titanxp") for b in (1, 32, 64)),
                  ("gold_6226", "essential_ph_1", "samsung_s7", "pixel2"), (),
                  "FBNet-Adversarial (paper Table 13 / Table 2)"),
        DeviceSet("nb201-local", "nb201", ("cpu-1t-b1", "cpu-1t-b8", "ort-cpu-1t-b8"), ("ort-cpu-1t-b1",), (),
                  "this machine's profiles in data/latency (MULTIPREDICT_DATA=local or all): torch eager and "
                  "batch 8 -> onnxruntime batch 1"),
    )
}


def available_device_sets(space: str) -> list[str]:
    """The named device sets of ``space`` whose devices all have data under the current data source
    (``nb201-local`` needs ``MULTIPREDICT_DATA=local``/``all``; the paper's sets need the benchmarks)."""
    known = set(catalogue.device_names(space))
    return [name for name, s in DEVICE_SETS.items()
            if s.space == space and set(s.train) | set(s.test) | set(s.valid) <= known]


def default_device_set(space: str) -> str | None:
    """``<space>-default`` (HELP's split) when available, else the first available set, else None."""
    available = available_device_sets(space)
    preferred = f"{space}-default"
    return preferred if preferred in available else (available[0] if available else None)


def device_set(name: str) -> DeviceSet:
    if name not in DEVICE_SETS:
        raise UnknownNameError("device set", name, list(DEVICE_SETS))
    return DEVICE_SETS[name]


def check_devices(space: str, names, role: str = "device") -> list[str]:
    """Validate device names for ``space``; the error lists the valid ones."""
    names = list(names)
    if not names:
        raise MultipredictError(f"no {role} devices given for {space}; name at least one "
                                f"(see `multipredict devices --space {space}`)")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise MultipredictError(f"{role} device {twice[0]!r} is listed {names.count(twice[0])} times in "
                                f"{','.join(names)}; list each device once")
    valid = catalogue.device_names(space)
    for name in names:
        if name not in valid:
            raise UnknownNameError(f"{space} {role} device", name, valid,
                                   f"See `multipredict devices --space {space}`.")
    return names


def check_split(space: str, train, test) -> tuple[list[str], list[str]]:
    """Validate a train/test split: known devices, each listed once, none on both sides (a device
    compared with itself, or tested on what it trained on, says nothing)."""
    train, test = check_devices(space, train, "train"), check_devices(space, test, "test")
    both = [name for name in train if name in test]
    if both:
        raise MultipredictError(f"device {both[0]!r} is both a train and a test device (a device ranks archs "
                                f"exactly like itself: rho = 1 says nothing); remove it from the train or the test "
                                f"devices")
    return train, test


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[float, float, int]:
    both = np.isfinite(a) & np.isfinite(b)
    n = int(both.sum())
    if n < 3:
        return float("nan"), float("nan"), n
    return (float(stats.spearmanr(a[both], b[both]).statistic),
            float(stats.kendalltau(a[both], b[both]).statistic), n)


def target_correlation(space: str, kind: str, names=None, method: str = "spearman") -> pd.DataFrame:
    """Target x target rank correlation over the archs each pair shares (pairwise-complete, at
    least 3), for any targets of one space: device latencies (``kind="latency"``) or task
    accuracies (``kind="accuracy"``). ``attrs["n_archs"]`` holds the pair counts."""
    if method not in ("spearman", "kendall"):
        raise UnknownNameError("correlation method", method, ["spearman", "kendall"])
    table = targets.frame(space, kind, names)
    matrix = table.corr(method=method, min_periods=3)
    present = table.notna().astype(np.int64)
    matrix.attrs["n_archs"] = present.T @ present
    return matrix.rename_axis(index="source", columns="target")


@config.cache_per_data_source
def spearman_matrix(space: str) -> pd.DataFrame:
    """Device x device Spearman over the archs each pair covers (pairwise-complete), for every
    device of the space; computed once per process (and data source)."""
    return latencies(space).corr(method="spearman", min_periods=3)


@config.cache_per_data_source
def _pair_counts(space: str) -> pd.DataFrame:
    present = latencies(space).notna().astype(np.int64)
    return present.T @ present


def correlation_pairs(space: str, train, test, kendall: bool = True) -> pd.DataFrame:
    """One row per (train, test) pair: ``train, test, spearman, kendall, n_archs``."""
    train, test = check_devices(space, train, "train"), check_devices(space, test, "test")
    lat = latencies(space)
    rows = []
    for t in train:
        for s in test:
            a, b = lat[t].to_numpy(), lat[s].to_numpy()
            if kendall:
                rho, tau, n = _pair(a, b)
            else:
                rho, tau = float(spearman_matrix(space).loc[t, s]), float("nan")
                n = int(_pair_counts(space).loc[t, s])
            rows.append({"train": t, "test": s, "spearman": rho, "kendall": tau, "n_archs": n})
    return pd.DataFrame(rows, columns=["train", "test", "spearman", "kendall", "n_archs"])


def device_correlation(space: str, train, test, method: str = "spearman") -> pd.DataFrame:
    """Train x test matrix of rank correlations (``spearman`` or ``kendall``)."""
    if method not in ("spearman", "kendall"):
        raise UnknownNameError("correlation method", method, ["spearman", "kendall"])
    if method == "spearman":
        train, test = check_devices(space, train, "train"), check_devices(space, test, "test")
        return spearman_matrix(space).loc[train, test].rename_axis(index="train", columns="test")
    pairs = correlation_pairs(space, train, test, kendall=True)
    matrix = pairs.pivot(index="train", columns="test", values=method)
    return matrix.loc[list(train), list(test)]


def closest_training_device(space: str, train, test) -> pd.DataFrame:
    """Each test device's most correlated (Spearman) training device."""
    pairs = correlation_pairs(space, train, test, kendall=False)
    best = pairs.loc[pairs.groupby("test", sort=False)["spearman"].idxmax()]
    out = best.rename(columns={"train": "closest_train"})[["test", "closest_train", "spearman", "n_archs"]]
    return out.set_index("test").loc[list(test)].reset_index()


def adversarial_train_set(space: str, train, test, bound: float) -> list[str]:
    """The training devices whose Spearman with every test device is at most ``bound``
    (paper Table 12 removes training devices correlated above a bound with the test devices)."""
    if not -1.0 <= bound <= 1.0:
        raise MultipredictError(f"correlation bound {bound} is outside [-1, 1]")
    matrix = device_correlation(space, train, test)
    keep = matrix.max(axis=1) <= bound
    return [d for d in train if keep[d]]
