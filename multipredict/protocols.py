"""Evaluation protocols: which archs a device trains on, which it is scored on, how labels scale.

Two protocols, chosen by name in an ExperimentSpec:

``paper`` (the Multi-Predict paper's text): each training device contributes ``source_samples``
archs (900 NB201 / 4000 FBNet) drawn at random (seeded) from the pool; a test device's few-shot
samples are drawn at random from the pool and it is scored on every other pool arch
(``score_on="heldout"``) or, as the authors' released code does, on all pool archs including the
few-shot ones (``score_on="all"``). Labels are min-max scaled per device over its training archs.

``help`` (HELP's released loader): training pool = the first 900 / 4000 arch indices, query = the
next 1000, both trimmed per device to the 10th-90th latency percentile; few-shot samples come from
the trimmed training pool, scoring is on the trimmed query; labels are min-max normalised over the
trimmed training indices and squeezed into [0.05, 0.95] (``portion=0.9``).

The pool is whatever archs the chosen encoding and the device's data both cover (e.g. the ~725
NB201 archs with public ZCP); a protocol only ever draws from it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from .errors import MultipredictError, UnknownNameError

SOURCE_SAMPLES = {"nb201": 900, "fbnet": 4000}
HELP_QUERY = 1000


@dataclass(frozen=True)
class DeviceSplit:
    """One device under one protocol: where its samples come from and how its labels scale."""

    device: str
    train_ids: np.ndarray  # pretraining archs of a source device / few-shot candidates of a target
    eval_ids: np.ndarray  # archs a target device is scored on (few-shot ones removed unless score_on="all")
    low: float
    high: float
    portion: float = 1.0
    score_on: str = "heldout"

    def normalise(self, latency_ms: np.ndarray) -> np.ndarray:
        scaled = (np.asarray(latency_ms, dtype=float) - self.low) / (self.high - self.low)
        return scaled * self.portion + (1 - self.portion) / 2

    def denormalise(self, label: np.ndarray) -> np.ndarray:
        scaled = (np.asarray(label, dtype=float) - (1 - self.portion) / 2) / self.portion
        return scaled * (self.high - self.low) + self.low

    def scored_ids(self, few_shot_ids: np.ndarray) -> np.ndarray:
        if self.score_on == "all":
            return np.union1d(self.eval_ids, few_shot_ids)
        return np.setdiff1d(self.eval_ids, few_shot_ids)

    def few_shot(self, k: int, rng: np.random.Generator) -> np.ndarray:
        if k > len(self.train_ids):
            raise MultipredictError(
                f"{k} few-shot samples asked of device {self.device!r}, but its pool holds only "
                f"{len(self.train_ids)} archs; lower the sample budget or use a larger pool")
        return rng.choice(self.train_ids, size=k, replace=False)


def _minmax(latency: np.ndarray, ids: np.ndarray) -> tuple[float, float]:
    values = latency[ids]
    low, high = float(np.min(values)), float(np.max(values))
    if high <= low:
        high = low + 1.0  # a constant device: keep the scale finite; Spearman is undefined anyway
    return low, high


def paper_split(space: str, device: str, latency: np.ndarray, pool: np.ndarray, seed: int,
                source_samples: int | None = None, score_on: str = "heldout") -> DeviceSplit:
    """``latency`` is indexed by arch id (NaN where missing); ``pool`` the usable arch ids."""
    pool = np.asarray(pool, dtype=np.int64)
    pool = pool[np.isfinite(latency[pool])]
    n = min(source_samples or SOURCE_SAMPLES.get(space, 900), len(pool))
    # the seed and the device name fix the draw, so a device gets the same archs in every run
    rng = np.random.default_rng([seed, _stable_hash(device)])
    train = np.sort(rng.choice(pool, size=n, replace=False))
    low, high = _minmax(latency, train)
    return DeviceSplit(device, train, pool, low, high, 1.0, score_on)


def help_split(space: str, device: str, latency: np.ndarray, pool: np.ndarray | None = None,
               num_train: int | None = None, num_query: int = HELP_QUERY, trim: bool = True) -> DeviceSplit:
    n_train = num_train or SOURCE_SAMPLES[space]
    ids = np.arange(len(latency)) if pool is None else np.sort(np.asarray(pool, dtype=np.int64))
    ids = ids[np.isfinite(latency[ids])]
    train, query = ids[:n_train], ids[n_train:n_train + num_query]
    if trim:
        train, query = _trim(latency, train), _trim(latency, query)
    low, high = _minmax(latency, train)
    return DeviceSplit(device, train, query, low, high, 0.9, "heldout")


def _trim(latency: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Keep the 10th-90th percentile by latency, exactly as HELP slices its argsort."""
    order = np.argsort(latency[ids], kind="stable")
    return ids[order[int(len(ids) * 0.1):int(len(ids) * 0.9)]]


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode())


PROTOCOLS = ("paper", "help")


def split(protocol: str, space: str, device: str, latency: np.ndarray, pool: np.ndarray, seed: int,
          **options) -> DeviceSplit:
    if protocol == "paper":
        return paper_split(space, device, latency, pool, seed, **options)
    if protocol == "help":
        return help_split(space, device, latency, pool, **options)
    raise UnknownNameError("protocol", protocol, PROTOCOLS)
