"""Predict a user's device latency for every encoded model from k of them measured on it.

The user measures k models (5-20; at least 3) of an encoding table (`encode_models`) on their own
device and gives ``model,latency_ms``. A small estimator reads each model's features:

``hwl``     log10 of its latency on each reference profile of the table (``latency_ms:<profile>``);
``zcp``     its zero-cost proxies, FLAN's rule (log10 of fisher, flops, grad_norm, params, snip,
            synflow; signed log where a column has values <= 0);
``hwlzcp``  both;

every column min-max scaled over all encoded models (features only: no label is read, so nothing
leaks), fits log latency on the k measured models, and predicts the rest. Its quality is estimated
as `onboard` does: each measured model is predicted by a fit that never saw it (leave-one-out up
to 20 measurements, else k-fold) and the Spearman rank correlation of those predictions with the
measurements is reported.

Estimators (`PREDICTORS`), each ``fit(X, y_ms)`` / ``predict(X) -> ms``:

``nnls``     log latency as an intercept plus a non-negative mix of the features (the default on
             HWL: `benchmarks/your_models.py` measured it best at k = 10, .955 mean Spearman over
             4 held-out profiles, against .948 closest, .945 mlp, .931 ridge, .928 FLOPs);
``ridge``    ridge regression of log latency, its penalty chosen by the closed-form leave-one-out
             error on the k samples;
``mlp``      the paper's latency MLP trained from scratch on the k samples (`LatencyPredictor`,
             body ``mlp``, no hardware embedding, the paper's optimiser settings; the default on
             ZCP and HWL+ZCP, where it measured ahead of ridge);
``closest``  the reference profile whose latencies rank the k samples best (the HWL analogue of
             the paper's Eq. 1), rescaled by a linear fit in log space.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..encodings import FLAN_LOG_PROXIES, ColumnNormaliser
from ..errors import MultipredictError, UnknownNameError
from ..proxies import ALL_PROXIES
from .encode import LATENCY_PREFIX, latency_column, profile_columns
from .names import DEFAULT_PREDICTOR, ENCODINGS
from .sources import refuse_pickle

MIN_MEASUREMENTS = 3
LOO_UP_TO = 20
DEFAULT_FOLDS = 5
EXPECTED_COLUMNS = "model,latency_ms"


# ---------------------------------------------------------------- reading


def read_encodings(path_or_frame, *, flag: str = "--encodings") -> pd.DataFrame:
    """An encoding table (parquet or CSV written by `encode_models`), numbers as floats."""
    from .. import usercsv

    if isinstance(path_or_frame, pd.DataFrame):
        frame, origin = path_or_frame.copy(), "the encodings"
    else:
        path = Path(path_or_frame).expanduser()
        refuse_pickle(path, flag)
        frame, origin = usercsv.read_table(path, columns="model,status,flops,...,latency_ms:<profile>", flag=flag), \
            f"{flag} {path}"
    if "model" not in frame.columns or "status" not in frame.columns:
        raise MultipredictError(f"{origin} is not an encoding table (columns {list(frame.columns)[:8]}...); write "
                                f"one with `multipredict encode --models DIR --out enc.parquet`")
    numeric = [c for c in frame.columns if c in ALL_PROXIES or str(c).startswith(LATENCY_PREFIX) or c == "seconds"]
    for column in numeric:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["model"] = frame["model"].astype(str)
    frame["error"] = frame["error"].fillna("").astype(str) if "error" in frame.columns else ""
    return frame.reset_index(drop=True)


def read_user_measurements(path_or_frame, encoded: pd.DataFrame, *, flag: str = "--measurements") -> pd.DataFrame:
    """``model, latency_ms`` of the user's device, every model checked against the encoded set."""
    from .. import usercsv

    if isinstance(path_or_frame, pd.DataFrame):
        frame, origin = path_or_frame.copy(), "the measurements"
        frame.columns = [str(c).strip() for c in frame.columns]
    else:
        path = Path(path_or_frame).expanduser()
        refuse_pickle(path, flag)
        frame, origin = usercsv.read_table(path, columns=EXPECTED_COLUMNS, flag=flag), str(path)
    if "model" not in frame.columns or "latency_ms" not in frame.columns:
        raise MultipredictError(f"{origin} line 1: expected columns {EXPECTED_COLUMNS}; found {list(frame.columns)}")
    names = frame["model"].astype(str).str.strip()
    known = set(encoded["model"])
    unknown = [f"line {i + 2}: {n!r}" for i, n in enumerate(names) if n not in known]
    if unknown:
        examples = ", ".join(sorted(known)[:5])
        raise MultipredictError(f"{origin}: {len(unknown)} model(s) are not in the encoded set ({'; '.join(unknown[:10])})"
                                f"; encoded models are e.g. {examples} ({len(known)} in all); encode those models "
                                f"first or fix the names")
    out = pd.DataFrame({"model": names.to_numpy(), "latency_ms": usercsv.latency_ms(frame, origin)})
    usercsv.check_unique(out["model"], origin, "model")
    if len(out) < MIN_MEASUREMENTS:
        raise MultipredictError(f"{origin}: {len(out)} measurement(s); a prediction needs at least "
                                f"{MIN_MEASUREMENTS} (5-20 recommended: measure more of the encoded models)")
    return out


# ---------------------------------------------------------------- features


def check_encoding(encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise UnknownNameError("encoding", encoding, ENCODINGS)
    return encoding


def feature_columns(table: pd.DataFrame, encoding: str, references=None) -> list[str]:
    """The table's columns an encoding reads: ``latency_ms:<profile>`` of the reference profiles
    (default: every profile the table has), and/or the proxies present for some model."""
    check_encoding(encoding)
    columns = []
    if encoding in ("hwl", "hwlzcp"):
        available = profile_columns(table)
        chosen = available if references is None else list(references)
        unknown = [p for p in chosen if p not in available]
        if unknown:
            raise UnknownNameError("reference profile", unknown[0], available,
                                   "The encoding table measured only these; encode again with --profiles to add one")
        if not chosen:
            raise MultipredictError("the encoding table has no latency_ms:<profile> columns, so there is no HWL "
                                    "encoding; use --encoding zcp, or encode with --profiles")
        columns += [latency_column(p) for p in chosen]
    if encoding in ("zcp", "hwlzcp"):
        proxies = [p for p in ALL_PROXIES if p in table.columns and table[p].notna().any()]
        if not proxies:
            raise MultipredictError("the encoding table has no proxy columns; use --encoding hwl")
        columns += proxies
    return columns


def feature_matrix(table: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(rows usable: every column finite, scaled features of those rows). Latencies and FLAN's
    proxies are logged, then every column min-max scaled over the usable models."""
    values = table[columns].to_numpy(dtype=float)
    usable = np.isfinite(values).all(axis=1)
    if usable.sum() == 0:
        raise MultipredictError(f"no encoded model has every feature ({', '.join(columns)}); check the table's "
                                f"status/error columns")
    logged = tuple(c for c in columns if c.startswith(LATENCY_PREFIX) or c in FLAN_LOG_PROXIES)
    scaled = ColumnNormaliser(logged).fit_transform(pd.DataFrame(values[usable], columns=columns))
    return np.flatnonzero(usable), scaled.astype(float)


# ---------------------------------------------------------------- estimators


class RidgeLatency:
    """Ridge regression of log latency on standardised features; the penalty chosen from
    ``alphas`` by the closed-form leave-one-out squared error on the training rows."""

    def __init__(self, alphas=tuple(np.logspace(-4, 3, 15)), seed: int = 0):
        self.alphas = alphas
        self.seed = seed

    def fit(self, X, y_ms) -> RidgeLatency:
        X, y = np.asarray(X, float), np.log(np.asarray(y_ms, float))
        self.mean_, self.std_ = X.mean(axis=0), X.std(axis=0)
        self.std_[self.std_ == 0] = 1.0
        Z = (X - self.mean_) / self.std_
        self.offset_ = y.mean()
        yc = y - self.offset_
        u, s, vt = np.linalg.svd(Z, full_matrices=False)
        best = None
        for alpha in self.alphas:
            shrink = s / (s ** 2 + alpha)
            coef = vt.T @ (shrink * (u.T @ yc))
            # hat diagonal of the centred ridge fit, + 1/n for the intercept
            hat = (u ** 2 * (s ** 2 / (s ** 2 + alpha))).sum(axis=1) + 1.0 / len(y)
            loo = np.mean(((yc - Z @ coef) / np.maximum(1 - hat, 1e-9)) ** 2)
            if best is None or loo < best[0]:
                best = (loo, alpha, coef)
        _, self.alpha_, self.coef_ = best
        return self

    def predict(self, X) -> np.ndarray:
        Z = (np.asarray(X, float) - self.mean_) / self.std_
        return np.exp(self.offset_ + Z @ self.coef_)


class PositiveLogLinear:
    """Log latency as an intercept plus a non-negative weighted sum of the features (non-negative
    least squares): on HWL, the device's log latency as a positive mix of the reference profiles'.
    Without the sign constraint, 10 samples let a fit lean on differences of correlated profiles,
    which extrapolates badly (`benchmarks/your_models.py`: ridge .931, this .955 at k = 10)."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, X, y_ms) -> PositiveLogLinear:
        from scipy.optimize import nnls

        X, y = np.asarray(X, float), np.log(np.asarray(y_ms, float))
        self.mean_, offset = X.mean(axis=0), y.mean()
        self.coef_, _ = nnls(X - self.mean_, y - offset)
        self.intercept_ = offset - self.mean_ @ self.coef_
        return self

    def predict(self, X) -> np.ndarray:
        return np.exp(self.intercept_ + np.asarray(X, float) @ self.coef_)


class MLPLatency:
    """The paper's latency MLP (`LatencyPredictor`: body ``mlp`` of 3 x 100, a 4-layer head, no
    hardware embedding; AdamW lr 4e-4, weight decay 5e-4, cosine, L1) trained from scratch on the
    k samples; labels are standardised log latencies."""

    def __init__(self, seed: int = 0, epochs: int = 250, lr: float = 4e-4):
        self.seed, self.epochs, self.lr = seed, epochs, lr

    def fit(self, X, y_ms) -> MLPLatency:
        from ..encodings import ArchFeatures
        from ..predictors import LatencyPredictor
        from ..threads import torch_threads

        y = np.log(np.asarray(y_ms, float))
        self.mean_, self.scale_ = y.mean(), max(float(y.std()), 1e-6)
        self.model_ = LatencyPredictor(body="mlp", embedding="none", epochs=self.epochs, lr=self.lr, seed=self.seed,
                                       device="cpu")
        with torch_threads(1):
            self.model_.fit(ArchFeatures(np.asarray(X, np.float32)), (y - self.mean_) / self.scale_)
        return self

    def predict(self, X) -> np.ndarray:
        from ..encodings import ArchFeatures
        from ..threads import torch_threads

        with torch_threads(1):
            z = self.model_.predict(ArchFeatures(np.asarray(X, np.float32)))
        return np.exp(self.mean_ + self.scale_ * z)


class ClosestReference:
    """The one feature column that ranks the training samples best (Spearman), mapped to latency by
    a least-squares line in log space: the HWL form of the paper's Eq. 1 (closest device)."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, X, y_ms) -> ClosestReference:
        X, y = np.asarray(X, float), np.log(np.asarray(y_ms, float))
        scores = [stats.spearmanr(X[:, j], y).statistic if np.ptp(X[:, j]) > 0 else -np.inf for j in range(X.shape[1])]
        scores = [s if np.isfinite(s) else -np.inf for s in scores]
        self.column_ = int(np.argmax(scores))
        self.correlation_ = float(scores[self.column_])
        x = X[:, self.column_]
        self.slope_, self.intercept_ = np.polyfit(x, y, 1) if np.ptp(x) > 0 else (0.0, float(y.mean()))
        return self

    def predict(self, X) -> np.ndarray:
        return np.exp(self.intercept_ + self.slope_ * np.asarray(X, float)[:, self.column_])


# `names.PREDICTOR_NAMES` lists these (the command line offers them without importing this module)
PREDICTORS = {"nnls": PositiveLogLinear, "ridge": RidgeLatency, "mlp": MLPLatency, "closest": ClosestReference}
# what "auto" picks per encoding: the best mean Spearman at k = 10 in benchmarks/your_models.py
AUTO = {"hwl": "nnls", "zcp": "mlp", "hwlzcp": "mlp"}


def resolve_predictor(name: str, encoding: str) -> str:
    """A predictor name, ``auto`` resolved for ``encoding``."""
    if name == "auto":
        return AUTO[check_encoding(encoding)]
    if name not in PREDICTORS:
        raise UnknownNameError("predictor", name, ("auto", *PREDICTORS))
    return name


def make_predictor(name: str, seed: int = 0):
    if name not in PREDICTORS:
        raise UnknownNameError("predictor", name, ("auto", *PREDICTORS))
    return PREDICTORS[name](seed=seed)


def cv_folds(n: int, folds: int | str | None, seed: int) -> list[np.ndarray]:
    """Leave-one-out (``"loo"``, or the default up to `LOO_UP_TO` samples) or ``folds``-fold."""
    if folds is None:
        folds = "loo" if n <= LOO_UP_TO else DEFAULT_FOLDS
    if folds == "loo":
        return [np.array([i]) for i in range(n)]
    if int(folds) < 2:
        raise MultipredictError(f"folds must be at least 2 (or 'loo'); got {folds}")
    order = np.random.default_rng(seed).permutation(n)
    return [part for part in np.array_split(order, min(int(folds), n)) if len(part)]


def cross_validated(predictor: str, X: np.ndarray, y: np.ndarray, folds, seed: int) -> tuple[np.ndarray, int]:
    """Each sample predicted by a fit on the others (its fold never seen); returns (predictions, folds)."""
    parts = cv_folds(len(y), folds, seed)
    held_out = np.empty(len(y))
    for test in parts:
        train = np.setdiff1d(np.arange(len(y)), test)
        held_out[test] = make_predictor(predictor, seed).fit(X[train], y[train]).predict(X[test])
    return held_out, len(parts)


# ---------------------------------------------------------------- the whole step


@dataclass
class PredictResult:
    predictions: pd.DataFrame = field(repr=False)  # model, predicted_ms, measured_ms
    n_measurements: int
    encoding: str
    features: list[str]
    predictor: str
    cv_spearman: float
    cv_folds: int
    cv_predictions: pd.DataFrame = field(repr=False)  # model, measured_ms, cv_predicted_ms
    excluded: list[str] = field(default_factory=list)  # "model: reason" of encoded models not predicted
    closest_reference: str | None = None
    closest_correlation: float | None = None

    def summary(self) -> str:
        unseen = int(self.predictions["measured_ms"].isna().sum())
        folds = "leave-one-out" if self.cv_folds == self.n_measurements else f"{self.cv_folds}-fold"
        closest = (f" The reference profile that ranks your samples best is {self.closest_reference} (Spearman "
                   f"{self.closest_correlation:.3f})." if self.closest_reference else "")
        excluded = (f" {len(self.excluded)} encoded model(s) lack a feature and are not predicted "
                    f"({'; '.join(self.excluded[:3])})." if self.excluded else "")
        return (f"Fitted a {self.predictor} predictor of your device's latency on {self.encoding.upper()} features "
                f"({', '.join(self.features)}) from k = {self.n_measurements} measured models, and predicted "
                f"{len(self.predictions)} models ({unseen} you did not measure). Estimated quality: {folds} "
                f"cross-validated Spearman {self.cv_spearman:.3f} on your samples (each predicted by a fit that "
                f"never saw it).{closest}{excluded}")

    def summary_record(self) -> dict:
        return {"n_measurements": self.n_measurements, "encoding": self.encoding, "features": self.features,
                "predictor": self.predictor, "cv_spearman": self.cv_spearman, "cv_folds": self.cv_folds,
                "cv_method": "leave-one-out" if self.cv_folds == self.n_measurements else "k-fold",
                "predicted_models": len(self.predictions),
                "unmeasured_models": int(self.predictions["measured_ms"].isna().sum()),
                "closest_reference": self.closest_reference, "closest_correlation": self.closest_correlation,
                "excluded": self.excluded,
                "cv_predictions": self.cv_predictions.to_dict("records")}


def predict_latency(encodings, measurements, *, encoding: str = "hwl", predictor: str = DEFAULT_PREDICTOR,
                    references=None, folds: int | str | None = None, seed: int = 0) -> PredictResult:
    """Fit ``predictor`` on the user's measured models and predict every encoded model.

    ``encodings``: an encoding table (path or DataFrame from `encode_models`); ``measurements``:
    ``model,latency_ms`` (path or DataFrame); ``references``: the profiles HWL reads (default: all
    the table has); ``folds``: None (leave-one-out up to 20 samples, else 5-fold), ``"loo"`` or a
    number.
    """
    table = read_encodings(encodings)
    predictor = resolve_predictor(predictor, encoding)
    user = read_user_measurements(measurements, table)
    columns = feature_columns(table, encoding, references)
    rows, X = feature_matrix(table, columns)
    usable = table.iloc[rows].reset_index(drop=True)
    excluded = [f"{r['model']}: {r['error'] or 'no ' + ', '.join(c for c in columns if not np.isfinite(r[c]))}"
                for _, r in table.drop(index=table.index[rows]).iterrows()]
    position = {m: i for i, m in enumerate(usable["model"])}
    lacking = [m for m in user["model"] if m not in position]
    if lacking:
        raise MultipredictError(f"measured model(s) {', '.join(map(repr, lacking[:10]))} have no complete "
                                f"{encoding} encoding (see the table's error column: {excluded[0] if excluded else ''});"
                                f" drop them from the measurements or use another --encoding")
    train = np.array([position[m] for m in user["model"]])
    y = user["latency_ms"].to_numpy(float)
    held_out, n_folds = cross_validated(predictor, X[train], y, folds, seed)
    fitted = make_predictor(predictor, seed).fit(X[train], y)
    predicted = fitted.predict(X)
    measured = pd.Series(y, index=user["model"].to_numpy())
    predictions = pd.DataFrame({"model": usable["model"], "predicted_ms": predicted,
                                "measured_ms": measured.reindex(usable["model"]).to_numpy()})
    closest, correlation = None, None
    hwl = [c for c in columns if c.startswith(LATENCY_PREFIX)]
    if hwl:
        reference = ClosestReference().fit(X[train][:, :len(hwl)], y)
        closest, correlation = hwl[reference.column_][len(LATENCY_PREFIX):], round(reference.correlation_, 4)
    rho = stats.spearmanr(held_out, y).statistic if np.ptp(held_out) > 0 and np.ptp(y) > 0 else float("nan")
    return PredictResult(
        predictions=predictions, n_measurements=len(y), encoding=encoding, features=columns, predictor=predictor,
        cv_spearman=float(rho), cv_folds=n_folds, excluded=excluded,
        cv_predictions=pd.DataFrame({"model": user["model"], "measured_ms": y, "cv_predicted_ms": held_out}),
        closest_reference=closest, closest_correlation=correlation)


def summary_path(out: str | os.PathLike) -> Path:
    """Where the JSON summary goes by default: beside ``--out``, ``pred.csv`` -> ``pred.json``."""
    return Path(out).with_suffix(".json")
