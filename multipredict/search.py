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


def initial(table: SpaceTable, seed: int, init: int, candidates: np.ndarray | None = None) -> np.ndarray:
    """The first ``init`` random archs of a trial (from ``candidates``, arch ids, when given)."""
    rng = _rng(seed, table.dataset, "init")
    if candidates is None:
        return rng.choice(len(table), size=init, replace=False)
    return rng.choice(np.asarray(candidates, dtype=np.int64), size=init, replace=False)


def predict_accuracy(dataset: str, trained, *, encoding: str = "zcp", seed: int = 0, options=None) -> np.ndarray:
    """Validation accuracy (%) of every arch of the space: the Table 14 predictor trained from scratch
    on the ``trained`` arch ids (their own values are the table's), within 0-100: rescaled from the
    trained archs' range, a prediction beyond it can pass 100 (112 on an onboarded device's front)."""
    from .encodings import ArchFeatures
    from .predictors.tasktransfer import AccuracyOptions, fit_scratch

    table, X = space_table(dataset), features(dataset, encoding)
    ids = np.asarray(trained, dtype=np.int64)
    model = fit_scratch(ArchFeatures(X[ids]), table.val[ids], options or AccuracyOptions(), seed=seed)
    low, high = float(table.val[ids].min()), float(table.val[ids].max())
    # back from the min-max scale the predictor learnt on (`scale_labels`) to accuracy points
    prediction = low + np.asarray(model.predict(ArchFeatures(X)), dtype=float) * (high - low)
    prediction = np.clip(prediction, 0.0, 100.0)
    prediction[ids] = table.val[ids]
    return prediction


WARM_FRACTION = 0.15  # of each other dataset's archs, as the accuracy-transfer figures pretrain (Fig 9)
WARM_MODE = "finetune"


def pretrain_other_tasks(dataset: str, *, encoding: str = "zcp", fraction: float = WARM_FRACTION, seed: int = 0,
                         options=None):
    """The search's warm start: a `TaskTransferPredictor` pretrained on NB201's *other* datasets
    (a random ``fraction`` of their archs each, with their validation accuracy; nothing of
    ``dataset`` is read)."""
    from .encodings import ArchFeatures
    from .predictors.tasktransfer import TaskTransferPredictor

    space_table(dataset)
    if not 0 < fraction <= 1:
        raise MultipredictError(f"fraction={fraction}: the share of each other dataset's archs must lie in (0, 1]")
    sources, names = [], []
    for other in DATASETS:
        if other == dataset:
            continue
        table, X = space_table(other), features(other, encoding)
        rng = np.random.default_rng([int(seed), zlib.crc32(f"warm:{other}".encode())])
        ids = np.sort(rng.choice(len(table), size=max(2, int(round(fraction * len(table)))), replace=False))
        sources.append((ArchFeatures(X[ids]), table.val[ids]))
        names.append(other)
    return TaskTransferPredictor(options, seed=seed).fit(sources, names)


def _warm_predict(warm, dataset: str, encoding: str, trained) -> np.ndarray:
    """The pretrained model's scores of every arch: its source rows' mean before any arch of this
    dataset is trained, then adapted to the ``trained`` archs."""
    from .encodings import ArchFeatures

    X = ArchFeatures(features(dataset, encoding))
    if trained is None:
        model = warm.model_
        rows = range(model.n_devices_) if model.embedding != "none" else [None]
        return np.mean([model.predict(X, None if r is None else np.full(len(X), r)) for r in rows], axis=0)
    ids = np.asarray(trained, dtype=np.int64)
    return np.asarray(warm.adapt(X.subset(ids), space_table(dataset).val[ids], mode=WARM_MODE).predict(X), dtype=float)


def _mutate(arch: int, rng: np.random.Generator) -> int:
    """One edge of an NB201 cell (6 edges, 5 ops; the index's base-5 digits) set to another op."""
    digits = [(arch // NB201_OPS ** e) % NB201_OPS for e in range(6)]
    edge = int(rng.integers(6))
    digits[edge] = int((digits[edge] + rng.integers(1, NB201_OPS)) % NB201_OPS)
    return int(sum(d * NB201_OPS ** e for e, d in enumerate(digits)))


def search(dataset: str, strategy: str, *, encoding: str = "zcp", budget: int = 100, seed: int = 0, init: int = 10,
           batch: int = 10, tournament: int = 3, options=None, progress: bool = False,
           allowed: np.ndarray | None = None, resume=None, on_batch=None, warm=None) -> pd.DataFrame:
    """One search: a row per trained arch, in order (``n_trained``, ``arch_id``, ``val``, ``test``),
    with the arch it would return so far (best validation accuracy), its ``returned_test`` accuracy
    and ``regret`` (the best test accuracy among the allowed archs minus it).

    ``allowed``: a boolean mask over arch ids (e.g. the archs under a latency budget,
    `latencybudget.LatencyEstimate.feasible`); every strategy trains only allowed archs.
    ``resume``: the arch ids a stopped run of the same search had trained (the ``predictor`` strategy
    continues from them and gives the same result as an uninterrupted run); ``on_batch(trained)`` is
    called after each of its batches (e.g. to save them), and once at the end by the other strategies.
    ``warm``: a predictor pretrained on other tasks (`pretrain_other_tasks`); the ``predictor``
    strategy then trains the ``init`` archs the pretrained model ranks best (its source tasks'
    mean) instead of random ones, and each round adapts it to the trained archs
    (`TaskTransferPredictor.adapt`, fine-tuning) instead of training from scratch."""
    from .predictors.tasktransfer import AccuracyOptions

    if strategy not in STRATEGIES:
        raise UnknownNameError("search strategy", strategy, STRATEGIES)
    table = space_table(dataset)
    if allowed is None:
        candidates, mask = None, np.ones(len(table), dtype=bool)
    else:
        mask = np.asarray(allowed, dtype=bool)
        if mask.shape != (len(table),):
            raise MultipredictError(f"allowed has shape {mask.shape}; expected a boolean mask over the "
                                    f"{len(table)} NB201 archs")
        candidates = np.flatnonzero(mask)
    space = int(mask.sum())
    if not 1 <= init <= budget <= space:
        within = "NB201 has" if allowed is None else "the allowed archs are"
        raise MultipredictError(f"budget={budget} must lie in init..{space} (init={init}; {within} {space} archs)")
    rng = _rng(seed, dataset, strategy)
    trained = list(initial(table, seed, init, candidates))
    if warm is not None:
        if strategy != "predictor":
            raise MultipredictError(f"a warm start needs the predictor strategy, not {strategy!r}")
        zero_shot = _warm_predict(warm, dataset, encoding, None)
        zero_shot[~mask] = -np.inf
        trained = [int(a) for a in np.argsort(-zero_shot, kind="stable")[:init]]
    seen = set(trained)
    if strategy == "random":
        pool = np.arange(len(table)) if candidates is None else candidates
        rest = rng.permutation(np.setdiff1d(pool, trained))
        trained += list(rest[:budget - init])
    elif strategy == "zero-shot":
        from scipy import stats

        scores = {p: abs(stats.spearmanr(table.proxies[p].to_numpy()[trained], table.val[trained],
                                         nan_policy="omit").statistic) for p in table.proxies.columns}
        best = max(scores, key=lambda p: -1 if np.isnan(scores[p]) else scores[p])
        sign = np.sign(stats.spearmanr(table.proxies[best].to_numpy()[trained], table.val[trained],
                                       nan_policy="omit").statistic) or 1.0
        order = np.argsort(-sign * np.nan_to_num(table.proxies[best].to_numpy(), nan=-np.inf * sign), kind="stable")
        trained += [int(a) for a in order if a not in seen and mask[a]][:budget - init]
    elif strategy == "evolution":
        population = list(trained)
        while len(trained) < budget:
            contenders = rng.choice(population, size=min(tournament, len(population)), replace=False)
            parent = max(contenders, key=lambda a: table.val[a])
            child = _mutate(int(parent), rng)
            for _ in range(1000):
                if child not in seen and mask[child]:
                    break
                child = _mutate(child, rng)
            else:  # the parent's neighbourhood is used up or outside the allowed archs: a random allowed arch
                child = int(rng.choice(np.setdiff1d(np.flatnonzero(mask), trained)))
            trained.append(child)
            seen.add(child)
            population.append(child)
            population.pop(0)
    else:
        from tqdm.auto import tqdm

        o = options or AccuracyOptions()
        if resume is not None and len(resume) > init:
            resume = [int(a) for a in resume][:budget]
            if resume[:init] != [int(a) for a in trained] or not mask[resume].all() or len(set(resume)) < len(resume):
                raise MultipredictError("the saved search state does not belong to this search (other seed, task, "
                                        "budget or latency limit); delete it or pick another --out")
            trained = resume
        bar = tqdm(total=budget, initial=len(trained), desc=f"search {dataset}", unit="arch", disable=not progress)
        while len(trained) < budget:
            if warm is None:
                prediction = predict_accuracy(dataset, trained, encoding=encoding, seed=seed + len(trained), options=o)
            else:
                prediction = _warm_predict(warm, dataset, encoding, trained)
            prediction[np.asarray(trained)] = -np.inf
            prediction[~mask] = -np.inf
            take = min(batch, budget - len(trained))
            picked = np.argsort(-prediction, kind="stable")[:take]
            trained += [int(a) for a in picked]
            bar.update(len(picked))
            if on_batch is not None:
                on_batch([int(a) for a in trained])
        bar.close()
    if strategy != "predictor" and on_batch is not None:  # the others take milliseconds: one call at the end
        on_batch([int(a) for a in trained[:budget]])
    trained = np.asarray(trained[:budget], dtype=np.int64)
    curve = best_so_far(dataset, trained)
    best = float(np.max(table.test[mask]))
    return pd.DataFrame({"dataset": dataset, "strategy": strategy,
                         "encoding": encoding if strategy == "predictor" else "", "seed": seed,
                         "n_trained": curve["n_trained"], "arch_id": trained, "val": table.val[trained],
                         "test": table.test[trained], "returned_arch": curve["returned_arch"],
                         "returned_test": curve["returned_test"], "regret": best - curve["returned_test"]})


def best_so_far(dataset: str, trained) -> pd.DataFrame:
    """After each trained arch (in order): the arch a search returns, the best by validation
    accuracy so far (the first on ties), and its test accuracy: ``n_trained, returned_arch,
    returned_test`` (also for a search still running)."""
    table = space_table(dataset)
    ids = np.asarray(trained, dtype=np.int64)
    val = table.val[ids]
    best = np.zeros(len(ids), dtype=np.int64)
    for i in range(1, len(ids)):
        best[i] = i if val[i] > val[best[i - 1]] else best[i - 1]
    return pd.DataFrame({"n_trained": np.arange(1, len(ids) + 1), "returned_arch": ids[best],
                         "returned_test": table.test[ids[best]]})
