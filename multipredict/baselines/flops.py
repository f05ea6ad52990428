"""FLOPs baseline: rank archs by their FLOPs, no training and no target measurements.

NB201: FLOPs of the CIFAR-10 network computed analytically from the cell for all 15,625 archs
(`nb201_flops`), with NAS-Bench-201's own counting convention (``get_model_infos``: conv and linear
multiply-accumulates, pooling = output elements x kernel area, BN/ReLU not counted). The network:
a 3x3 stem conv 3->16, three stages of 5 cells (16/32/64 channels at 32/16/8 pixels) joined by two
residual reduction blocks, global pooling and a 64->10 classifier; a cell computes every one of its
6 edges (a ``none`` edge costs nothing). The all-conv3x3 cell gives 220.14 MFLOPs (NB201 lists
220.11). The NASLib table covers only ~725 archs, so it is not used; on those archs its flops rank
exactly like these (Spearman 1.0, checked in the tests).

FBNet: the ``flops`` column of the nasflat_latency zero-cost proxy table (all 5,000 archs).

Scored on the same held-out archs as the transfer methods for the same seed: the target's
``samples`` few-shot archs are drawn (and removed, under ``score_on="heldout"``) exactly as the
other methods draw them, though FLOPs never looks at their latencies (``n_fewshot`` = 0).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import Field

from .. import encodings
from ..errors import MultipredictError, UnknownNameError
from ..methods.protocol import device_latency, few_shot_ids, rank_correlations, target_split
from ..options import Options
from ..spaces import LATENCY_SPACES

METHOD = "flops"

# NB201 CIFAR network geometry: (channels, pixels per side) of the three stages, 5 cells each.
_STAGES = ((16, 32), (32, 16), (64, 8))
_CELLS_PER_STAGE = 5
_CLASSES = 10


def _edge_flops(op: str, channels: int, side: int) -> float:
    area = side * side
    if op == "nor_conv_3x3":
        return channels * channels * 9 * area
    if op == "nor_conv_1x1":
        return channels * channels * area
    if op == "avg_pool_3x3":
        return channels * 9 * area
    return 0.0  # none, skip_connect


def _fixed_flops() -> float:
    """Stem, the two residual reduction blocks and the classifier (the same for every cell)."""
    total = 3 * 16 * 9 * 32 * 32  # stem conv 3x3
    for (c_in, side_in), (c_out, side_out) in zip(_STAGES[:-1], _STAGES[1:]):
        area = side_out * side_out
        total += c_in * c_out * 9 * area  # conv_a, 3x3 stride 2
        total += c_out * c_out * 9 * area  # conv_b, 3x3
        total += c_in * 4 * area  # shortcut avg pool 2x2 stride 2
        total += c_in * c_out * area  # shortcut conv 1x1
    total += 64 * _CLASSES  # classifier
    return float(total)


def nb201_flops(arch_ids=None) -> np.ndarray:
    """MFLOPs of NB201 archs (all 15,625 when ``arch_ids`` is None), computed from the cell."""
    from ..spaces import nb201

    ids = np.arange(nb201.N_ARCHS) if arch_ids is None else np.asarray(arch_ids, dtype=np.int64)
    ops = nb201.op_indices(ids)
    per_op = np.zeros(len(nb201.OPS))
    for k, op in enumerate(nb201.OPS):
        per_op[k] = sum(_edge_flops(op, c, s) for c, s in _STAGES) * _CELLS_PER_STAGE
    return (_fixed_flops() + per_op[ops].sum(axis=1)) / 1e6


def flops(space: str, arch_ids) -> np.ndarray:
    """FLOPs (M) of ``arch_ids`` in ``space``: analytic for NB201, the zc_fbnet column for FBNet."""
    ids = np.asarray(arch_ids, dtype=np.int64)
    if space == "nb201":
        return nb201_flops(ids)
    if space == "fbnet":
        return encodings.zcp_table("fbnet")["flops"].loc[ids].to_numpy(dtype=float) / 1e6
    raise UnknownNameError("space", space, tuple(LATENCY_SPACES), "FLOPs are available for the latency spaces only.")


FLOPS_SOURCE = {"nb201": "analytic (NB201 CIFAR-10 network, get_model_infos convention)",
                "fbnet": "nasflat_latency zc_fbnet.json flops"}



class FlopsOptions(Options):
    """FLOPs as the latency ranking (no training)."""

    score_on: Literal["heldout", "all"] = Field("heldout", description="score on held-out or all pool archs")
    pool_encoding: encodings.EncodingName = Field(
        "vec", description="score on the pool of this encoding (e.g. zcp, to compare with a ZCP transfer)")
    hwl_devices: tuple[str, ...] | None = Field(None, description="pool_encoding hwl/hwlvec: reference devices")
    progress: Callable[[str, float], None] | None = Field(None, description="callable(stage, fraction)",
                                                          exclude=True)


OPTIONS = FlopsOptions.names()
DEFAULT_OPTIONS: dict[str, object] = FlopsOptions.defaults()


def fit_and_score(*, space: str, train_devices: list[str], test_devices: list[str], samples: int,
                  seed: int, protocol: str = "paper", **options) -> list[dict]:
    """Score FLOPs as a latency ranking on each test device (``train_devices`` unused).

    Options: score_on (heldout|all), pool_encoding (score on the pool of this encoding, e.g. "zcp"
    to compare with a ZCP-based transfer on the same archs; default "vec" = every arch with a
    latency), hwl_devices (for pool_encoding hwl/hwlvec; default the train devices), progress.
    """
    parsed = FlopsOptions.parse(options, "FLOPs")
    config = {name: getattr(parsed, name) for name in OPTIONS}
    if space not in LATENCY_SPACES:
        raise UnknownNameError("space", space, tuple(LATENCY_SPACES))
    score_on = config["score_on"]
    pool_encoding = encodings.check_encoding(config["pool_encoding"])
    hwl = [] if "hwl" not in encodings.uses(pool_encoding) else list(config["hwl_devices"] or train_devices)
    if not isinstance(samples, (int, np.integer)) or samples < 0:
        raise MultipredictError(f"samples={samples!r} is not valid; expected the few-shot budget the other methods use")
    rows = []
    for j, device in enumerate(test_devices):
        started = time.perf_counter()
        pool_ids = encodings.pool(space, pool_encoding, [device], hwl_devices=hwl)
        split_ = target_split(protocol, space, device, pool_ids, seed, max(int(samples), 1), score_on)
        shots = few_shot_ids(split_, samples, seed) if samples > 0 else np.zeros(0, dtype=np.int64)
        scored = split_.scored_ids(shots)
        latency = device_latency(space, device)
        spearman, kendall = rank_correlations(flops(space, scored), latency[scored])
        rows.append({"method": METHOD, "space": space, "device": device, "samples": int(samples), "seed": int(seed),
                     "protocol": protocol, "spearman": spearman, "kendall": kendall, "n_eval": int(len(scored)),
                     "n_fewshot": 0, "n_measured": 0,
                     "pool": encodings.describe_pool(space, pool_encoding, pool_ids), "pool_size": int(len(pool_ids)),
                     "seconds": time.perf_counter() - started, "score_on": score_on,
                     "flops_source": FLOPS_SOURCE[space]})
        if config["progress"] is not None:
            config["progress"](f"flops {device}", (j + 1) / len(test_devices))
    return rows


__all__ = ["fit_and_score", "flops", "nb201_flops", "FLOPS_SOURCE", "OPTIONS"]
