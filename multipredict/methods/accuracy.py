"""The trial protocol of accuracy prediction: the layer that reads task data for the estimators.

A task's **pool** is the archs its encoding can encode (`encodings.TaskEncoder.pool`; with the
default ``common`` proxy set, the archs that have all 9 common proxies), encoded for every arm
alike so that Vec and ZCP are scored on the same archs. Draws depend on (seed, task) only:

- the k few-shot archs of a target: ``default_rng([seed, crc32("target:" + task key)])``, the
  same for every arm and every source, so the arms of a seed see the same samples and are scored
  on the same unseen archs (the pool minus the k);
- a source task's pretraining archs: ``source_fraction`` of its pool (default 15%, as in the
  authors' ``transfer_experiments.py``, which draws about 15-18% of a task's rows; the public pools
  hold 192-725 archs, so "15% of the space" is not available for any space but TNB-101: say
  ``source_fraction=1`` for the whole pool), ``default_rng([seed, crc32("source:" + key)])``.

Scores: Spearman and Kendall of the predictions against the true accuracies of the unseen archs.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..data import accuracy as tasks_data
from ..encodings import ArchFeatures, TaskEncoder, task_proxies
from ..errors import MultipredictError
from ..predictors.tasktransfer import AccuracyOptions, TaskTransferPredictor, fit_scratch
from .protocol import rank_correlations

SOURCE_FRACTION = 0.15


@dataclass(frozen=True)
class TaskData:
    """One task's pool, its features under one encoding and its accuracies (same order)."""

    key: str
    ids: tuple
    X: ArchFeatures
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def _proxy_key(proxy_set) -> str | tuple[str, ...]:
    return proxy_set if isinstance(proxy_set, str) else tuple(proxy_set)


@lru_cache(maxsize=256)
def _task_data(key: str, encoding: str, proxy_set, pool_proxy_set) -> TaskData:
    space, name = key.split("/", 1)
    pool = TaskEncoder(space, name, "zcp", proxy_set=pool_proxy_set).pool()
    encoder = TaskEncoder(space, name, encoding, proxy_set=proxy_set).fit(pool)
    y = tasks_data.accuracy(space, name).loc[list(pool)].to_numpy(dtype=float)
    return TaskData(key, tuple(pool), encoder.transform(pool), y)


def task_data(task_key: str, encoding: str = "zcp", proxy_set="common", *, pool_proxy_set=None) -> TaskData:
    """A task's pool, encoded. The pool is the archs that have every proxy of ``pool_proxy_set``
    (default: ``proxy_set``), so that several encodings of one task can share one pool."""
    task = tasks_data.task(task_key)
    task_proxies(proxy_set)  # validate early
    pool_set = proxy_set if pool_proxy_set is None else pool_proxy_set
    return _task_data(task.key, encoding, _proxy_key(proxy_set), _proxy_key(pool_set))


def _rng(seed: int, label: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(label.encode())])


def few_shot(data: TaskData, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(few-shot rows, unseen rows) of a target task's pool."""
    if samples < 2:
        raise MultipredictError(f"samples={samples}: an accuracy predictor needs at least 2 labelled archs")
    if samples >= len(data):
        raise MultipredictError(f"samples={samples} is not below task {data.key}'s pool of {len(data)} archs; "
                                f"pick at most {len(data) - 1} so that some archs are left to score on")
    order = _rng(seed, "target:" + data.key).permutation(len(data))
    return np.sort(order[:samples]), np.sort(order[samples:])


def source_rows(data: TaskData, seed: int, fraction: float = SOURCE_FRACTION) -> np.ndarray:
    """A source task's pretraining rows: ``fraction`` of its pool (at least 10 archs)."""
    if not 0 < fraction <= 1:
        raise MultipredictError(f"source_fraction={fraction} is outside (0, 1]; 0.15 = 15% of the pool, 1 = all")
    n = min(len(data), max(10, int(round(fraction * len(data)))))
    return np.sort(_rng(seed, "source:" + data.key).permutation(len(data))[:n])


def score(prediction, truth) -> dict:
    rho, tau = rank_correlations(prediction, truth)
    return {"spearman": rho, "kendall": tau, "n_test": len(truth)}


def scratch(target: TaskData, samples: int, seed: int, options: AccuracyOptions | None = None) -> dict:
    """An accuracy predictor trained from scratch on k archs of the target, scored on the rest."""
    train, test = few_shot(target, samples, seed)
    model = fit_scratch(target.X.subset(train), target.y[train], options, seed=seed)
    return score(model.predict(target.X.subset(test)), target.y[test])


def pretrain(sources: list[TaskData], seed: int, options: AccuracyOptions | None = None, *,
             fraction: float = SOURCE_FRACTION, task_embedding="auto") -> TaskTransferPredictor:
    """A `TaskTransferPredictor` pretrained on ``fraction`` of each source task's pool."""
    parts = []
    for s in sources:
        rows = source_rows(s, seed, fraction)
        parts.append((s.X.subset(rows), s.y[rows]))
    return TaskTransferPredictor(options, seed=seed, task_embedding=task_embedding).fit(
        parts, [s.key for s in sources])


def transfer(model: TaskTransferPredictor, target: TaskData, samples: int, seed: int, mode: str = "finetune") -> dict:
    """Adapt a pretrained predictor to the target from its k few-shot archs (``mode``: see
    `TaskTransferPredictor.adapt`); score on the rest."""
    if target.key in model.source_names_:
        raise MultipredictError(f"target task {target.key} is one of the source tasks; a predictor scored on "
                                "a task it pretrained on says nothing about transfer: pick another target")
    train, test = few_shot(target, samples, seed)
    adapted = model.adapt(target.X.subset(train), target.y[train], mode)
    row = score(adapted.predict(target.X.subset(test)), target.y[test])
    row.update(chosen_source=adapted.source_, chosen_source_spearman=adapted.source_spearman_)
    return row
