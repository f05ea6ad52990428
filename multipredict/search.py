"""Predictor-guided architecture search over the whole NB201 space (paper Fig 10).

The search "trains" an arch by reading its validation accuracy from NASLib's whole-space table
(`nb201_zen.zip`, every one of the 15,625 cells) and reports the **test** accuracy (NATS-Bench) of
the arch it would return: the best by validation accuracy among those trained so far. Strategies:

- ``predictor``: Fig 10's protocol. Start from ``init`` random archs; then, repeatedly, train an
  accuracy predictor (the Table 14 MLP, from scratch) on every trained arch, predict every arch of
  the space and train the ``batch`` best not trained yet.
- ``random``: random search.
- ``evolution``: regularized evolution (Real et al. 2019): a population of ``init`` archs (the same
  first random draw), tournaments of ``tournament`` archs, the winner mutated on one edge, the oldest
  member removed.
- ``zero-shot``: after the ``init`` random archs, train archs in the order of the single proxy
  that ranks those ``init`` archs best (no predictor).

Encodings over the whole space (`space_table`): ``vec`` (the one-hot of the 6 edges), ``zcp`` (the
proxies present for the whole space: zen from NASLib, and flops, params and synflow computed by
this project's engine in ``data/wholespace/``, FLAN's log rule then min-max; the 341 cells zen
cannot score get the minimum and an indicator) and ``zcpvec``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import MultipredictError, UnknownNameError

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
STRATEGIES = ("predictor", "random", "evolution", "zero-shot")
ENCODINGS = ("vec", "zcp", "zcpvec")
WHOLE_SPACE_DIR = Path(__file__).resolve().parents[1] / "data" / "wholespace"
NB201_OPS = 5


@dataclass(frozen=True)
class SpaceTable:
    """One dataset's whole NB201 space: arch ids (the NB201 index), validation and test accuracy,
    the proxies present for every cell (raw), and the proxy names."""

    dataset: str
    ids: np.ndarray
    val: np.ndarray
    test: np.ndarray
    proxies: pd.DataFrame

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def best_test(self) -> float:
        return float(np.max(self.test))


def whole_space_proxies() -> pd.DataFrame:
    """This project's whole-space NB201 proxies (``data/wholespace/nb201_*.parquet``), if computed:
    index arch id, one column per proxy (NaN where not computed yet)."""
    frames = []
    for path in sorted(WHOLE_SPACE_DIR.glob("nb201_*.parquet")):
        frame = pd.read_parquet(path)
        frames.append(frame.set_index("arch_id") if "arch_id" in frame.columns else frame)
    if not frames:
        return pd.DataFrame(index=pd.RangeIndex(15625, name="arch_id"))
    return pd.concat(frames, axis=1).groupby(level=0).first()


@cache
def _space_table(dataset: str) -> SpaceTable:
    from .data import nats, naslib

    zen = naslib.nb201_zen(dataset)
    test = nats.test_accuracy(dataset)
    ids = np.arange(15625, dtype=np.int64)
    ours = whole_space_proxies().reindex(ids)
    proxies = pd.DataFrame({"zen": zen["zen"].reindex(ids).to_numpy(float)}, index=ids)
    for name in ("flops", "params", "synflow"):
        if name in ours.columns and ours[name].notna().all():
            proxies[name] = ours[name].to_numpy(float)
    return SpaceTable(dataset, ids, zen["val_accuracy"].reindex(ids).to_numpy(float),
                      test.reindex(ids).to_numpy(float), proxies)


def space_table(dataset: str = "cifar10") -> SpaceTable:
    if dataset not in DATASETS:
        raise UnknownNameError("NB201 dataset", dataset, DATASETS)
    return _space_table(dataset)


@cache
def _features(dataset: str, encoding: str) -> np.ndarray:
    from .encodings import FLAN_LOG_PROXIES, ColumnNormaliser
    from .spaces import naslib_vec

    table = space_table(dataset)
    parts = []
    if encoding in ("vec", "zcpvec"):
        parts.append(naslib_vec.vec_encoding("nb201", table.ids))
    if encoding in ("zcp", "zcpvec"):
        raw = table.proxies.copy()
        missing = raw.isna()
        raw = raw.fillna(raw.min())
        scaled = ColumnNormaliser(tuple(c for c in raw.columns if c in FLAN_LOG_PROXIES)).fit_transform(raw)
        parts += [scaled, missing.to_numpy(np.float32)[:, missing.any().to_numpy()]]
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)


def features(dataset: str, encoding: str) -> np.ndarray:
    if encoding not in ENCODINGS:
        raise UnknownNameError("search encoding", encoding, ENCODINGS)
    space_table(dataset)
    return _features(dataset, encoding)


def _rng(seed: int, dataset: str, strategy: str) -> np.random.Generator:
    # the first `init` draw depends on (seed, dataset) only: every strategy of a trial starts alike
    return np.random.default_rng([int(seed), zlib.crc32(f"{dataset}:{strategy}".encode())])


def initial(table: SpaceTable, seed: int, init: int) -> np.ndarray:
    return _rng(seed, table.dataset, "init").choice(len(table), size=init, replace=False)


def _mutate(arch: int, rng: np.random.Generator) -> int:
    """One edge of an NB201 cell (6 edges, 5 ops; the index's base-5 digits) set to another op."""
    digits = [(arch // NB201_OPS ** e) % NB201_OPS for e in range(6)]
    edge = int(rng.integers(6))
    digits[edge] = int((digits[edge] + rng.integers(1, NB201_OPS)) % NB201_OPS)
    return int(sum(d * NB201_OPS ** e for e, d in enumerate(digits)))


def search(dataset: str, strategy: str, *, encoding: str = "zcp", budget: int = 100, seed: int = 0, init: int = 10,
           batch: int = 10, tournament: int = 3, options=None, progress: bool = False) -> pd.DataFrame:
    """One search: a row per trained arch, in order (``n_trained``, ``arch_id``, ``val``, ``test``),
    with the arch it would return so far (best validation accuracy), its ``returned_test`` accuracy
    and ``regret`` (the space's best test accuracy minus it)."""
    from .encodings import ArchFeatures
    from .predictors.tasktransfer import AccuracyOptions, fit_scratch

    if strategy not in STRATEGIES:
        raise UnknownNameError("search strategy", strategy, STRATEGIES)
    table = space_table(dataset)
    if not 1 <= init <= budget <= len(table):
        raise MultipredictError(f"budget={budget} must lie in init..{len(table)} (init={init}; NB201 has "
                                f"{len(table)} archs)")
    rng = _rng(seed, dataset, strategy)
    trained = list(initial(table, seed, init))
    seen = set(trained)
    if strategy == "random":
        rest = rng.permutation(np.setdiff1d(np.arange(len(table)), trained))
        trained += list(rest[:budget - init])
    elif strategy == "zero-shot":
        from scipy import stats

        scores = {p: abs(stats.spearmanr(table.proxies[p].to_numpy()[trained], table.val[trained],
                                         nan_policy="omit").statistic) for p in table.proxies.columns}
        best = max(scores, key=lambda p: -1 if np.isnan(scores[p]) else scores[p])
        sign = np.sign(stats.spearmanr(table.proxies[best].to_numpy()[trained], table.val[trained],
                                       nan_policy="omit").statistic) or 1.0
        order = np.argsort(-sign * np.nan_to_num(table.proxies[best].to_numpy(), nan=-np.inf * sign), kind="stable")
        trained += [int(a) for a in order if a not in seen][:budget - init]
    elif strategy == "evolution":
        population = list(trained)
        while len(trained) < budget:
            contenders = rng.choice(population, size=min(tournament, len(population)), replace=False)
            parent = max(contenders, key=lambda a: table.val[a])
            child = _mutate(int(parent), rng)
            while child in seen:
                child = _mutate(child, rng)
            trained.append(child)
            seen.add(child)
            population.append(child)
            population.pop(0)
    else:
        from tqdm.auto import tqdm

        X = features(dataset, encoding)
        o = options or AccuracyOptions()
        bar = tqdm(total=budget, initial=len(trained), desc=f"search {dataset}", unit="arch", disable=not progress)
        while len(trained) < budget:
            ids = np.asarray(trained)
            model = fit_scratch(ArchFeatures(X[ids]), table.val[ids], o, seed=seed + len(trained))
            prediction = model.predict(ArchFeatures(X))
            prediction[ids] = -np.inf
            take = min(batch, budget - len(trained))
            picked = np.argsort(-prediction, kind="stable")[:take]
            trained += [int(a) for a in picked]
            bar.update(len(picked))
        bar.close()
    trained = np.asarray(trained[:budget], dtype=np.int64)
    val, test = table.val[trained], table.test[trained]
    best_index = np.array([int(np.argmax(val[:n + 1])) for n in range(len(trained))])
    returned = test[best_index]
    return pd.DataFrame({"dataset": dataset, "strategy": strategy,
                         "encoding": encoding if strategy == "predictor" else "", "seed": seed,
                         "n_trained": np.arange(1, len(trained) + 1), "arch_id": trained, "val": val, "test": test,
                         "returned_arch": trained[best_index], "returned_test": returned,
                         "regret": table.best_test - returned})
