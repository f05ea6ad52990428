"""The trial protocol every latency method shares: device latencies looked up from the benchmark
tables, protocol splits, the few-shot draw, the rank correlations, and HELP's reference archs for
the ``sample`` hardware embedding. This is the layer that reads data; the estimators it feeds
(`multipredict.predictors`) receive arrays and never do.

The few-shot draw depends on (seed, device) only and uses the protocol's split with its default
source-sample count, exactly like the HELP baseline, so that all methods run with the same seed
see the same few-shot archs of a device and are scored on the same held-out archs.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
from scipy import stats

from .. import encodings
from ..errors import MultipredictError, UnknownNameError
from ..predictors.hardware import sample_embedding
from ..protocols import PROTOCOLS, SOURCE_SAMPLES, DeviceSplit, split

SCORE_ON = ("heldout", "all")
PREDICTORS = ("auto", "gcn", "mlp")


def resolve_predictor(space: str, encoding: str, predictor: str = "auto") -> str:
    """``gcn`` or ``mlp``: ``auto`` is the GCN for NB201 Vec-based encodings, else the MLP."""
    if predictor not in PREDICTORS:
        raise UnknownNameError("predictor", predictor, PREDICTORS)
    vec_body = encodings.body_kind(encoding) == "vec"
    if predictor == "auto":
        return "gcn" if (space == "nb201" and vec_body) else "mlp"
    if predictor == "gcn" and not (space == "nb201" and vec_body):
        raise MultipredictError(f"predictor='gcn' needs space 'nb201' and a Vec-based encoding (vec, zcpvec, "
                                f"hwlvec); got space {space!r}, encoding {encoding!r}. Use predictor='mlp' or 'auto'")
    return predictor


def device_latency(space: str, device: str) -> np.ndarray:
    """Latency in ms indexed by arch id (NaN where the device was not measured)."""
    from ..data import tables

    table = tables.latencies(space)
    if device not in table.columns:
        raise UnknownNameError(f"{space} device", device, list(table.columns),
                               "List them with multipredict.data.tables.latency_sources(space).")
    values = np.full(int(table.index.max()) + 1, np.nan)
    values[table.index.to_numpy(dtype=np.int64)] = table[device].to_numpy(dtype=float)
    return values


def device_split(protocol: str, space: str, device: str, pool, seed: int, *, source_samples: int | None = None,
                 score_on: str = "heldout") -> DeviceSplit:
    """The protocol's split of ``device`` restricted to ``pool``.

    ``source_samples``: how many training archs (paper: drawn at random; help: the first indices)
    the device offers; None = the protocol's default (900 NB201 / 4000 FBNet).
    """
    if protocol not in PROTOCOLS:
        raise UnknownNameError("protocol", protocol, PROTOCOLS)
    if score_on not in SCORE_ON:
        raise UnknownNameError("score_on", score_on, SCORE_ON)
    latency = device_latency(space, device)
    pool = np.asarray(pool, dtype=np.int64)
    if protocol == "paper":
        result = split("paper", space, device, latency, pool, seed, source_samples=source_samples, score_on=score_on)
    else:
        result = split("help", space, device, latency, pool, seed, num_train=source_samples)
        if score_on != result.score_on:
            result = dataclasses.replace(result, score_on=score_on)
    if len(result.train_ids) == 0:
        raise MultipredictError(f"device {device!r} has no training archs in a pool of {len(pool)} under protocol "
                                f"{protocol!r}; choose a larger pool (another encoding) or protocol")
    return result


def target_split(protocol: str, space: str, device: str, pool, seed: int, samples: int,
                 score_on: str = "heldout") -> DeviceSplit:
    """Split of a target device whose few-shot candidates must hold ``samples`` archs: the default
    training pool, enlarged (paper protocol) when ``samples`` exceeds it (e.g. BRP-NAS on 3,200)."""
    default = SOURCE_SAMPLES.get(space, 900)
    source_samples = max(default, samples) if protocol == "paper" else None
    result = device_split(protocol, space, device, pool, seed, source_samples=source_samples, score_on=score_on)
    if len(np.setdiff1d(result.eval_ids, result.train_ids)) == 0 and protocol == "help" and score_on == "heldout":
        raise MultipredictError(f"device {device!r} has no query archs under protocol 'help' in a pool of {len(pool)}: "
                                "HELP queries the archs after the first 900/4000 of the pool. Use protocol='paper' "
                                "for small pools (e.g. NB201 ZCP)")
    return result


def few_shot_ids(device_split_: DeviceSplit, samples: int, seed: int) -> np.ndarray:
    """The ``samples`` few-shot archs of a device: a draw seeded by (seed, device name) only."""
    rng = np.random.default_rng([int(seed), zlib.crc32(device_split_.device.encode())])
    return device_split_.few_shot(samples, rng)


def rank_correlations(prediction, truth) -> tuple[float, float]:
    """(Spearman rho, Kendall tau) of predictions against the true latencies."""
    prediction = np.asarray(prediction, dtype=float)
    truth = np.asarray(truth, dtype=float)
    if len(prediction) != len(truth):
        raise MultipredictError(f"{len(prediction)} predictions for {len(truth)} true values")
    if len(truth) < 2:
        return float("nan"), float("nan")
    return float(stats.spearmanr(prediction, truth)[0]), float(stats.kendalltau(prediction, truth)[0])


def minmax_labels(latency_ms, reference_ms) -> np.ndarray:
    """Latencies min-max scaled over ``reference_ms`` (e.g. the few-shot measurements themselves,
    so that a target device's labels use nothing but its few-shot samples)."""
    reference = np.asarray(reference_ms, dtype=float)
    low, high = float(np.min(reference)), float(np.max(reference))
    if high <= low:
        high = low + 1.0
    return ((np.asarray(latency_ms, dtype=float) - low) / (high - low)).astype(np.float32)


def reference_archs(space: str) -> list[int]:
    """HELP's 10 reference archs of ``space`` (the ``sample`` embedding measures a device on them)."""
    from ..data import help

    return help.reference_archs(space)


def sample_vector(space: str, device: str) -> np.ndarray:
    """A benchmark device's ``sample`` embedding: its latencies on HELP's reference archs, min-max scaled."""
    return sample_embedding(device_latency(space, device)[reference_archs(space)], device=f"device {device!r}")
