"""The trial protocol of latency transfer across search spaces (paper Figs 7, 20, 21).

HWL encodes an arch by its latencies on reference devices, so an arch of NB201 and an arch of FBNet
get features of one meaning when both spaces are measured on the same devices: 22 HELP devices are.
A predictor of a target device's latency pretrained on one space (the target's latencies there are
the labels) is fine-tuned on k archs of the other space and scored on the rest of it.

- **HWL features** of a space: each reference device's latency min-max scaled over the space's archs
  (the authors' normalisation, within each space). They are measurements too: encoding every arch of
  the target space costs the reference devices' measurements of every arch (counted in the total by
  the figures, not here).
- **Reference devices** exclude the target: ``least`` (the 16 shared devices least correlated with
  the target on NB201, as the authors' ``hwl_fb_nb201_transfer.py`` picks them), ``most`` (the 16
  most correlated) or ``all`` (every other shared device).
- **Draws** depend on (seed, target, space) only: the source archs (``source_archs``: a count, or a
  share of the source space such as 0.15, the paper's text) and, for each k, the target's k archs
  (the k archs of a smaller budget are a prefix of a larger one's, so a curve is one growing set).
- **Arms**: ``HWL transfer`` (pretrained on the source space, fine-tuned on the k), ``HWL scratch``
  and ``Vec scratch`` (trained on the k alone, properly: the accuracy predictors' scratch recipe).
"""

from __future__ import annotations

import zlib
from functools import cache

import numpy as np
import pandas as pd

from ..errors import MultipredictError, UnknownNameError
from ..predictors.tasktransfer import AccuracyOptions, TaskTransferPredictor, fit_scratch
from .protocol import rank_correlations

SPACES = ("nb201", "fbnet")
REFERENCE_RULES = ("least", "most", "all")
N_REFERENCE = 16
# the MLP of the authors' cross-space code (width 256, depth 4), pretraining and fine-tuning at lr 4e-4
TRANSFER_OPTIONS = AccuracyOptions(width=256, depth=4, lr=4e-4, epochs=250, transfer_lr=4e-4, transfer_epochs=50)
# training from scratch on the k archs: the Table 14 scratch recipe (lr 4e-3, 250 epochs), same network
SCRATCH_OPTIONS = AccuracyOptions(width=256, depth=4, lr=4e-3, epochs=250)


@cache
def _tables() -> dict[str, pd.DataFrame]:
    from ..data import help

    shared = sorted(set(help.devices("nb201")) & set(help.devices("fbnet")))
    return {space: help.latencies(space)[shared].dropna() for space in SPACES}


def shared_devices() -> list[str]:
    """HELP devices measured in both NB201 and FBNet."""
    return list(_tables()["nb201"].columns)


def _check(space: str, target: str) -> None:
    if space not in SPACES:
        raise UnknownNameError("search space with cross-space latency", space, SPACES)
    if target not in shared_devices():
        raise UnknownNameError("NB201-and-FBNet device", target, shared_devices())


def other(space: str) -> str:
    return "fbnet" if space == "nb201" else "nb201"


def reference_devices(target: str, rule: str = "least", n: int = N_REFERENCE) -> list[str]:
    """The HWL reference devices for ``target`` (never the target itself)."""
    _check("nb201", target)
    if rule not in REFERENCE_RULES:
        raise UnknownNameError("reference-device rule", rule, REFERENCE_RULES)
    table = _tables()["nb201"]
    rho = table.corr(method="spearman")[target].drop(target).sort_values(kind="stable")
    if rule == "all":
        return list(rho.index)
    return list(rho.index[:n] if rule == "least" else rho.index[::-1][:n])


@cache
def _scaled(space: str) -> pd.DataFrame:
    table = _tables()[space]
    return (table - table.min()) / (table.max() - table.min())


def hwl_features(space: str, devices: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(arch ids, HWL features): the devices' latencies min-max scaled within ``space``."""
    frame = _scaled(space)[list(devices)]
    return frame.index.to_numpy(dtype=np.int64), frame.to_numpy(dtype=np.float32)


def target_latency(space: str, target: str) -> np.ndarray:
    return _tables()[space][target].to_numpy(dtype=float)


def _rng(seed: int, *labels: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(":".join(labels).encode())])


def source_count(space: str, source_archs: float) -> int:
    n = len(_tables()[space])
    count = int(round(source_archs * n)) if source_archs <= 1 else int(source_archs)
    if not 2 <= count <= n:
        raise MultipredictError(f"source_archs={source_archs} gives {count} archs of {space} ({n}); use a share in "
                                f"(0, 1] (0.15: the paper's 15%) or a count from 2 to {n} (100: the authors' code)")
    return count


def trial(source: str, target: str, seed: int, samples, *, source_archs: float = 0.15, rule: str = "least",
          arms=("HWL transfer", "HWL scratch", "Vec scratch"), transfer_options: AccuracyOptions | None = None,
          scratch_options: AccuracyOptions | None = None) -> list[dict]:
    """One repeat of one direction for one target device: rows per arm and k."""
    from ..encodings import ArchFeatures
    from ..spaces import get

    _check(source, target)
    goal = other(source)
    samples = sorted(int(k) for k in samples)
    refs = reference_devices(target, rule)
    src_ids, src_X = hwl_features(source, refs)
    dst_ids, dst_X = hwl_features(goal, refs)
    src_y, dst_y = target_latency(source, target), target_latency(goal, target)
    if samples[0] < 2 or samples[-1] >= len(dst_ids):
        raise MultipredictError(f"samples {samples} must lie in 2..{len(dst_ids) - 1} (the {goal} archs)")
    rows = []
    model = None
    if "HWL transfer" in arms:
        pick = _rng(seed, "source", source, target).permutation(len(src_ids))[:source_count(source, source_archs)]
        model = TaskTransferPredictor(transfer_options or TRANSFER_OPTIONS, seed=seed).fit(
            [(ArchFeatures(src_X[pick]), src_y[pick])], [f"{source}:{target}"])
    order = _rng(seed, "target", goal, target).permutation(len(dst_ids))
    vec = get(goal).vec_encoding(dst_ids).astype(np.float32) if "Vec scratch" in arms else None
    for k in samples:
        train, test = order[:k], order[k:]
        truth = dst_y[test]
        for arm in arms:
            if arm == "HWL transfer":
                adapted = model.adapt(ArchFeatures(dst_X[train]), dst_y[train])
                prediction = adapted.predict(ArchFeatures(dst_X[test]))
            elif arm == "HWL scratch":
                prediction = fit_scratch(ArchFeatures(dst_X[train]), dst_y[train], scratch_options or SCRATCH_OPTIONS,
                                         seed=seed).predict(ArchFeatures(dst_X[test]))
            elif arm == "Vec scratch":
                prediction = fit_scratch(ArchFeatures(vec[train]), dst_y[train], scratch_options or SCRATCH_OPTIONS,
                                         seed=seed).predict(ArchFeatures(vec[test]))
            else:
                raise UnknownNameError("cross-space arm", arm, ("HWL transfer", "HWL scratch", "Vec scratch"))
            rho, tau = rank_correlations(prediction, truth)
            rows.append({"source": source, "target_space": goal, "device": target, "arm": arm, "samples": k,
                         "seed": seed, "spearman": rho, "kendall": tau, "n_test": len(test), "rule": rule,
                         "references": len(refs), "source_archs": 0 if model is None else int(source_count(
                             source, source_archs))})
    return rows
