"""Onboard a new device from a handful of its own latency measurements.

The user measures k archs (``arch,latency_ms`` rows; arch as id or arch string), the transfer
engine pretrained on the public devices adds the device from those k rows (Eq. 1 initialisation,
then fine-tuning), and the result is predicted latency for every arch of the space plus an honest
quality estimate: a k-fold cross-validated Spearman on the user's own samples (each fold is
predicted by a predictor that never saw it) and a calibrated estimate of the Spearman on the archs
not measured, with an interval (`quality_estimate`).

The device's predictor fine-tunes from the `ONBOARD_STARTS` source rows Eq. 1 ranks first and
predicts their mean in ms (the estimator's ``eq1_starts``; the paper: Eq. 1's pick alone): over 30
seeds on HELP's meta-test devices this gained .0015 / .0009 Spearman on NB201 / FBNet from the
``reference+design``'s 20 archs and .0003 / .0036 from 20 random ones, for one more fine-tune (benchmarks/README.md,
"two starts instead of Eq. 1's pick"). The cross-validation folds and the out-of-bag members keep
one start: they are features of the estimate, which is calibrated against the final predictor.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from . import spaces, usercsv
from .errors import MultipredictError
from .outputs import check_output_file
from .threads import torch_threads

log = logging.getLogger(__name__)

MIN_ROWS = 5
ARCH_COLUMNS = ("arch", "arch_id")
EXPECTED_COLUMNS = "arch,latency_ms"


@dataclass
class OnboardResult:
    device: str
    space: str
    n_measurements: int
    predictions: pd.DataFrame = field(repr=False)  # arch_id, arch, predicted_ms, measured_ms
    cv_spearman: float
    cv_kendall: float
    cv_folds: int
    closest_source: str | None
    source_devices: list[str] = field(repr=False)
    settings: dict = field(default_factory=dict, repr=False)
    fine_tuned: str | None = None  # "head" (arch body frozen) or "all", see FewShotLatencyPredictor
    # one row per measured arch: arch_id, measured_ms, cv_predicted_ms (predicted by a fold that never saw it)
    cv_predictions: pd.DataFrame | None = field(default=None, repr=False)
    pretrained_from: str = "trained"  # where the pretrained source model came from: trained / cache / shipped
    quality: dict = field(default_factory=dict, repr=False)  # see `quality_estimate`
    reused_from: str | None = None  # the stored result this one was read from (`onboardstore`), if any
    # the source devices whose embedding rows the predictor was fine-tuned from (Eq. 1's order; it averages them)
    start_sources: list[str] = field(default_factory=list)

    def summary(self) -> str:
        trained = {"head": "; fine-tuned the hardware embedding and head (the arch body kept: a public device "
                           "ranks your archs closely)",
                   "all": "; fine-tuned every weight (no public device ranks your archs closely)"}
        q = self.quality
        quality = ""
        if q:
            quality = (f"; estimated Spearman on the archs you did not measure {q['spearman_estimate']:.3f} "
                       f"({q['level']:.0%} interval {q['spearman_low']:.3f}-{q['spearman_high']:.3f}, "
                       f"{q['interval_from']}); {q['advice']}")
        starts = (f" (predictions average fine-tunes started from {', '.join(self.start_sources)})"
                  if len(self.start_sources) > 1 else "")
        return (f"device {self.device!r} on {self.space}: {self.n_measurements} measurements; closest public device "
                f"(Eq. 1) {self.closest_source}{starts}{trained.get(self.fine_tuned, '')}{quality}; "
                f"{self.cv_folds}-fold cross-validated Spearman on your samples {self.cv_spearman:.3f} "
                f"(Kendall {self.cv_kendall:.3f}); "
                f"predicted {len(self.predictions)} archs; pretrained model: {self._pretrained_source()}"
                + (f"; stored result reused (same measurements, settings and code): {self.reused_from}"
                   if self.reused_from else ""))

    def summary_record(self) -> dict:
        """What ``onboard --summary FILE`` writes (JSON): the estimate and its interval, the advice,
        the closest public device, the cross-validated estimate, and the settings."""
        return {"device": self.device, "space": self.space, "n_measurements": self.n_measurements,
                "closest_source": self.closest_source, "start_sources": self.start_sources,
                "fine_tuned": self.fine_tuned, **self.quality,
                "cv_spearman": self.cv_spearman, "cv_kendall": self.cv_kendall, "cv_folds": self.cv_folds,
                "predicted_archs": len(self.predictions), "pretrained_from": self._pretrained_source(),
                "reused_from": self.reused_from,
                "settings": {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
                             for k, v in self.settings.items()}}

    def to_record(self) -> dict:
        """Every field but ``predictions`` (what `onboardstore` keeps beside them), JSON-able."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("predictions", "reused_from")}
        if self.cv_predictions is not None:
            record["cv_predictions"] = self.cv_predictions.to_dict(orient="list")
        return record

    @classmethod
    def from_record(cls, predictions: pd.DataFrame, record: dict, reused_from=None) -> OnboardResult:
        record = dict(record)
        if record.get("cv_predictions") is not None:
            record["cv_predictions"] = pd.DataFrame(record["cv_predictions"])
        return cls(predictions=predictions, reused_from=None if reused_from is None else str(reused_from), **record)

    def _pretrained_source(self) -> str:
        if self.pretrained_from in ("trained", "memory"):
            return {"trained": "trained now (cached for next time)", "memory": "reused in this process"}[
                self.pretrained_from]
        return f"loaded from {self.pretrained_from}"


def read_measurements(space: str, path_or_frame) -> pd.DataFrame:
    """Validate a user's measurements: returns ``arch_id, latency_ms`` (ids resolved).

    Accepts a CSV or parquet path, or a DataFrame, with columns ``arch`` (or ``arch_id``) and
    ``latency_ms``. Never pickle. Every problem names the file and its line (see `usercsv`).
    """
    module = spaces.get(space)
    if isinstance(path_or_frame, pd.DataFrame):
        frame, origin = path_or_frame.copy(), "the measurements"
        frame.columns = [str(c).strip() for c in frame.columns]
    else:
        frame, origin = usercsv.read_table(path_or_frame, columns=EXPECTED_COLUMNS, flag="measurement file"), \
            str(path_or_frame)
    arch_column = next((c for c in ARCH_COLUMNS if c in frame.columns), None)
    if arch_column is None or "latency_ms" not in frame.columns:
        raise MultipredictError(f"{origin} line 1: expected columns {EXPECTED_COLUMNS}; found {list(frame.columns)} "
                                f"(arch = an id or an arch string)")
    ids = _arch_ids(module, space, frame[arch_column], origin)
    out = pd.DataFrame({"arch_id": np.asarray(ids, dtype=np.int64), "latency_ms": usercsv.latency_ms(frame, origin)})
    usercsv.check_unique(out["arch_id"], origin, "arch")
    if len(out) < MIN_ROWS:
        raise MultipredictError(f"{origin}: {len(out)} measurements; onboarding needs at least {MIN_ROWS} "
                                f"(10-20 recommended)")
    return out


def _arch_ids(module, space: str, values: pd.Series, origin: str) -> list[int]:
    """Each cell (an arch id or an arch string) as the space's arch id; every unknown one is named."""
    ids, problems = [], []
    for line, value in zip(range(2, len(values) + 2), values):
        if isinstance(value, float) and value.is_integer():  # a DataFrame's id column with a gap
            value = int(value)
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()
        try:
            if not text:
                raise MultipredictError("the arch cell is empty")
            ids.append(module.arch_id(int(text)) if text.lstrip("-").isdigit() else module.arch_id(text))
        except MultipredictError as exc:
            problems.append(f"line {line}: {exc}")
            ids.append(-1)
    if problems:
        raise MultipredictError(f"{origin}: {len(problems)} unknown {space} arch(s):\n  " + "\n  ".join(problems[:10]))
    return ids


def _folds(n: int, folds: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [part for part in np.array_split(order, min(folds, n)) if len(part)]


def onboard(space: str, measurements, *, device: str = "my_device", source_devices=None, folds: int = 5,
            seed: int = 0, predict_archs=None, progress=None, threads: int | None = 1, store: bool | str | Path = False,
            recompute: bool = False, **predictor_options) -> OnboardResult:
    """Fit the transfer predictor for a new device and predict every arch of the space.

    ``source_devices``: public devices to pretrain on (default: every HELP device of the space).
    ``predictor_options``: passed to :class:`multipredict.methods.transfer.BenchmarkTransfer`
    (``encoding``, ``embedding``, ``source_epochs``, ``target_epochs``, ...).
    ``progress``: optional ``callable(stage: str, fraction: float)``; stages ``pretrain`` (only when
    no cached or shipped pretraining matches), ``cross-validate``, ``estimate`` (the out-of-bag
    quality estimate, `quality_estimate`) and ``predict``.
    ``threads``: torch threads while it runs (restored afterwards; None keeps the current). These
    small models are overhead-bound: one thread measured 10 s against 60 s with two on a busy
    2-core machine, and no slower on an idle one.
    ``store``: keep the result, and read it back when the same measurements are onboarded again with
    the same settings and code (`onboardstore`; True: under the cache folder, or a folder); the
    command line and the dashboard do. ``recompute``: onboard anew even when stored (the new result
    replaces the stored one). A reused result reports no progress and says where it came from
    (``reused_from``).
    """
    from . import onboardstore

    table = read_measurements(space, measurements)
    root = None if store is False or store is None else (onboardstore.folder() if store is True else Path(store))
    key = None
    if root is not None:
        archs = None if predict_archs is None else \
            hashlib.sha256(np.ascontiguousarray(np.asarray(predict_archs, dtype=np.int64)).tobytes()).hexdigest()
        settings = {"sources": list(source_devices) if source_devices else None, "folds": folds, "seed": seed,
                    "predict_archs": archs, "threads": threads, "options": predictor_options}
        key = onboardstore.result_key(space, table, device=device, settings=settings)
        stored = None if recompute else onboardstore.load(key, root)
        if stored is not None:
            return OnboardResult.from_record(*stored)
    with torch_threads(threads):
        result = _onboard(space, table, device=device, source_devices=source_devices, folds=folds, seed=seed,
                          predict_archs=predict_archs, progress=progress, **predictor_options)
    if key is not None:
        try:
            onboardstore.save(key, result.predictions, result.to_record(), root)
        except OSError as error:  # a read-only or full cache: the result stands, it is just not kept
            log.warning("could not store the onboarding result under %s (%s); it will be computed again next time",
                        root, error)
    return result


def _onboard(space: str, measurements, *, device: str, source_devices, folds: int, seed: int, predict_archs,
             progress, **predictor_options) -> OnboardResult:
    from .data import help
    from .methods.transfer import BenchmarkTransfer

    table = read_measurements(space, measurements)
    sources = list(source_devices) if source_devices else help.devices(space)
    if device in sources:
        raise MultipredictError(f"device name {device!r} is a public device used for pretraining; pick another name")
    check_starts(predictor_options.get("eq1_starts"), sources)  # before a pretraining, which can take minutes
    predictor = BenchmarkTransfer(space, sources, seed=seed, progress=progress, **predictor_options).fit()
    ids, latency = table["arch_id"].to_numpy(), table["latency_ms"].to_numpy()
    missing = np.setdiff1d(ids, predictor.pool_ids_)
    if len(missing):
        raise MultipredictError(f"{len(missing)} measured archs (e.g. {missing[:5].tolist()}) have no "
                                f"{predictor.encoding!r} encoding; use encoding='vec' or measure archs from its pool")
    held_out = np.empty(len(ids))
    parts = _folds(len(ids), folds, seed)
    for k, test in enumerate(parts):
        train = np.setdiff1d(np.arange(len(ids)), test)
        name = f"{device}#cv{k}"
        predictor.add_device(name, ids[train], latency[train], starts=1)  # the calibration's features: one start
        held_out[test] = predictor.predict(name, ids[test])
        del predictor.targets_[name]
        if progress is not None:
            progress("cross-validate", (k + 1) / len(parts))
    oob = bootstrap_estimate(predictor, device, ids, latency, members=OOB_MEMBERS, seed=seed)
    if progress is not None:
        progress("estimate", 1.0)
    target = predictor.add_device(device, ids, latency, starts=final_starts(predictor, predictor_options))
    eq1 = max((v for v in target.correlations.values() if np.isfinite(v)), default=float("nan"))
    cv_spearman = float(stats.spearmanr(held_out, latency).statistic)
    quality = quality_estimate(space, oob, eq1, len(ids), cv=cv_spearman, starts=1 + len(target.others))
    everything = predictor.pool_ids_ if predict_archs is None else np.asarray(predict_archs, dtype=np.int64)
    predicted = predictor.predict(device, everything)
    module = spaces.get(space)
    names = ([module.arch_string(int(i)) for i in everything] if space == "nb201"
             else [module.arch_key(int(i)) for i in everything])
    measured = pd.Series(latency, index=ids)
    predictions = pd.DataFrame({"arch_id": everything, "arch": names, "predicted_ms": predicted,
                                "measured_ms": measured.reindex(everything).to_numpy()})
    if progress is not None:
        progress("predict", 1.0)
    return OnboardResult(
        device=device, space=space, n_measurements=len(ids), predictions=predictions,
        cv_spearman=cv_spearman,
        cv_kendall=float(stats.kendalltau(held_out, latency).statistic), cv_folds=len(parts),
        closest_source=target.closest_source, source_devices=sources, fine_tuned=target.fine_tuned,
        cv_predictions=pd.DataFrame({"arch_id": ids, "measured_ms": latency, "cv_predicted_ms": held_out}),
        pretrained_from=predictor.pretrained_from_, quality=quality,
        start_sources=[t.closest_source for t in (target, *target.others) if t.closest_source is not None],
        settings={"encoding": predictor.encoding, "embedding": predictor.embedding, "pool": predictor.pool_label_,
                  **predictor_options, "eq1_starts": 1 + len(target.others)})  # the starts it took


# the source rows the onboarded device's predictor starts from (see the module's docs)
ONBOARD_STARTS = 2


def check_starts(starts: int | None, sources: list[str]) -> None:
    """Refuse more starts (``eq1_starts``, ``onboard --starts``) than there are source devices to
    start from (the estimator would quietly take fewer)."""
    if isinstance(starts, int) and starts > len(sources):
        raise MultipredictError(f"--starts {starts} (eq1_starts) asks for more starts than the {len(sources)} source "
                                f"devices ({', '.join(sources)}); pass at most {len(sources)}")


def final_starts(predictor, options: dict) -> int:
    """How many starts the onboarded device's own predictor takes: ``eq1_starts`` where the caller
    set it (``onboard --starts``), else `ONBOARD_STARTS` with the ``table`` embedding (the others have
    no Eq. 1 rows). Only the device's own predictor takes them: the cross-validation folds and the
    out-of-bag members always take one."""
    if "eq1_starts" in options:
        return int(options["eq1_starts"])
    return ONBOARD_STARTS if predictor.embedding == "table" else 1


CALIBRATION_DIR = Path(__file__).resolve().parents[1] / "data" / "calibration"
OOB_MEMBERS = 8


def load_calibration(space: str, directory: Path | None = None) -> dict | None:
    """The calibration `benchmarks/calibration.py --fit` wrote for ``space`` (None if absent)."""
    import json

    path = (directory or CALIBRATION_DIR) / f"onboard_{space}.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def quality_estimate(space: str, oob: dict, eq1: float | None, n: int, calibration: dict | None = None, *,
                     cv: float | None = None, starts: int | None = None) -> dict:
    """The estimated Spearman on the unseen archs, with an interval and advice.

    With a calibration (``data/calibration/onboard_<space>.json``, fitted by
    ``benchmarks/calibration.py`` on HELP devices never seen in pretraining): ``true ~ a + b * oob +
    c * eq1 (+ d * cv)`` (the features it names) and that fit's residual quantiles. Without one: the out-of-bag estimate and the 10th-90th
    percentiles of its members (not calibrated, and said so). ``starts``: how many starts the device's
    predictor took (`ONBOARD_STARTS`); a calibration fitted for another number says so."""
    calibration = load_calibration(space) if calibration is None else calibration
    raw = oob["spearman"]
    values = {"oob": raw, "eq1": eq1 if eq1 is not None and np.isfinite(eq1) else raw,
              "cv": cv if cv is not None and np.isfinite(cv) else raw}
    if calibration and np.isfinite(raw):
        coef = calibration["coef"]
        estimate = float(coef[0] + sum(c * values[f] for c, f in zip(coef[1:], calibration["features"])))
        estimate = min(estimate, 1.0)
        low = min(estimate + calibration["residual_low"], 1.0)
        high = min(estimate + calibration["residual_high"], 1.0)
        level = float(calibration["level"])
        source = (f"calibrated on {len(calibration['devices'])} public {space} devices held out from pretraining, "
                  f"{calibration['samples']} measurements each")
        # the fitted line can dip below zero near a perfect estimate; more measurements do not cost rank
        # correlation on average, so the expected gain is at least zero
        gain = max(float(calibration["gain_coef"][0] + calibration["gain_coef"][1] * (1 - estimate)), 0.0)
        caveats = [f"you gave {n}"] if n != calibration["samples"] else []
        fitted_starts = int(calibration.get("starts", 1))  # calibrations before the field scored one start
        if starts is not None and starts != fitted_starts:
            caveats.append(f"your predictor took {starts} start(s), it was fitted for {fitted_starts}")
        if caveats:
            source += "; " + " and ".join(caveats) + ", so the interval is a rough guide"
    else:
        members = oob.get("member_spearman") or [raw]
        estimate, level = float(raw), 0.8
        low, high = (float(v) for v in np.quantile(members, [0.1, 0.9]))
        source = "bootstrap spread, not calibrated (no calibration file for this space)"
        gain = float("nan")
    if np.isfinite(gain):
        advice = (f"measuring 10 more archs is expected to add {gain:+.3f}"
                  + (" (likely worth it)" if gain >= 0.01 or high - low > 0.15 else " (little to gain)"))
    else:
        advice = "no calibration to predict what 10 more archs would add"
    return {"spearman_estimate": round(estimate, 4), "spearman_low": round(low, 4), "spearman_high": round(high, 4),
            "level": level, "interval_from": source, "expected_gain_10": None if not np.isfinite(gain) else round(gain, 4),
            "advice": advice, "oob_spearman": round(float(raw), 4),
            "eq1_spearman": None if eq1 is None or not np.isfinite(eq1) else round(float(eq1), 4)}


def concordance(prediction, truth) -> tuple[float, int]:
    """(concordant pairs, pairs) over the pairs with distinct true values; a tie in the prediction
    counts half."""
    p, y = np.asarray(prediction, dtype=float), np.asarray(truth, dtype=float)
    i, j = np.triu_indices(len(y), 1)
    keep = y[i] != y[j]
    agree = np.sign(p[i] - p[j])[keep] * np.sign(y[i] - y[j])[keep]
    return float((agree > 0).sum() + 0.5 * (agree == 0).sum()), int(keep.sum())


def tau_to_spearman(tau: float) -> float:
    """Spearman's rho implied by Kendall's tau under a Gaussian copula (Greiner's and Kruskal's
    relations): rho = 6/pi * arcsin(sin(pi tau / 2) / 2)."""
    return float(6 / np.pi * np.arcsin(np.sin(np.pi * tau / 2) / 2))


def bootstrap_estimate(predictor, device: str, ids, latency, *, members: int = 8, seed: int = 0) -> dict:
    """Out-of-bag quality estimate of a few-shot device: ``members`` fine-tunes, each on a bootstrap
    resample of the measured archs, each scored on the archs it did not see. Pairs of out-of-bag
    archs are pooled over members (a pair is judged by one model, so no scale mixes between models,
    unlike a pooled k-fold Spearman), giving Kendall's tau and the Spearman it implies.
    Returns ``tau``, ``spearman``, ``pairs`` and the per-member values ``member_spearman``."""
    from .predictors.fewshot import TargetSamples

    ids, latency = np.asarray(ids, dtype=np.int64), np.asarray(latency, dtype=float)
    n = len(ids)
    rng = np.random.default_rng([int(seed), len(device), n])
    targets, outs = [], []
    while len(targets) < members:
        draw = np.unique(rng.choice(n, size=n, replace=True))
        out = np.setdiff1d(np.arange(n), draw)
        if len(draw) < 3 or len(out) < 2:
            continue
        targets.append(TargetSamples(f"{device}#oob{len(targets)}", ids[draw], latency[draw], starts=1))
        outs.append(out)
    added = predictor.add_devices(targets)
    concordant, pairs, member = 0.0, 0, []
    for target, out in zip(added, outs):
        c, m = concordance(predictor.predict(target.name, ids[out]), latency[out])
        concordant, pairs = concordant + c, pairs + m
        if m:
            member.append(tau_to_spearman(2 * c / m - 1))
        del predictor.targets_[target.name]
    tau = 2 * concordant / pairs - 1 if pairs else float("nan")
    return {"tau": tau, "spearman": tau_to_spearman(tau) if pairs else float("nan"), "pairs": pairs,
            "member_spearman": member}


def write_table(frame: pd.DataFrame, path) -> Path:
    """Write CSV or parquet atomically (a crash never leaves a half file at ``path``)."""
    path = check_output_file(path, flag="output file")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json(record: dict, path) -> Path:
    """Write a JSON record atomically."""
    import json

    path = check_output_file(path, flag="summary file")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        Path(tmp).write_text(json.dumps(record, indent=1, default=str) + "\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
