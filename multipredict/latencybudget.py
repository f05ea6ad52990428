"""A device's latency over the whole NB201 space, and which archs fit a latency budget on it.

Three ways to know a device's latency (`LatencyEstimate.source`):

- ``table``: a public device measured on every arch (HELP, EAGLE, HW-NAS-Bench): the truth. In the
  benchmark this is the oracle.
- ``onboard``: a device known only by k measurements: the transfer predictor pretrained on public
  devices and fine-tuned on them (`multipredict.onboard.onboard`), predicting every arch in ms.
- ``flops``: the same k measurements with latency fitted as a power of FLOPs (least squares of
  log latency on log FLOPs): common practice, the baseline.

How the predictor's uncertainty is handled: an arch nobody measured counts as feasible when its
predicted latency times a **conformal factor** is under the budget. The factor is the
``level`` quantile of measured / predicted latency over the k measured archs, each predicted by a
fit that never saw it (the cross-validated predictions `onboard` makes anyway; leave-one-out for
FLOPs), with split-conformal's finite-sample rank ceil((k + 1) level) (the largest ratio when that
rank exceeds k). A measured arch is feasible when its measurement is under the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import MultipredictError

SPACE_SIZE = 15625
DEFAULT_LEVEL = 0.95  # with k = 20 measurements: the largest cross-validated ratio


@dataclass(frozen=True)
class LatencyEstimate:
    """Latency in ms of every NB201 arch on one device (``predicted_ms[arch_id]``), how it is known
    (``source``), the measured archs (``measured``: arch id -> ms) and the log ratios measured /
    cross-validated prediction on them (``log_residuals``; empty for a table)."""

    device: str
    source: str
    predicted_ms: np.ndarray = field(repr=False)
    measured: pd.Series = field(default_factory=lambda: pd.Series(dtype=float), repr=False)
    log_residuals: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def n_measurements(self) -> int:
        """Latency measurements this estimate cost (a table: 0 here; it is someone else's)."""
        return len(self.measured)

    def factor(self, level: float | None = DEFAULT_LEVEL) -> float:
        """The conformal factor at ``level`` (1 for a table, and for ``level=None``: no margin)."""
        if level is None:
            return 1.0
        if not 0 < level < 1:
            raise MultipredictError(f"level={level}: the conformal level must lie strictly between 0 and 1 "
                                    f"(e.g. 0.9)")
        r = np.sort(self.log_residuals)
        if self.source == "table" or len(r) == 0:
            return 1.0
        rank = min(math.ceil((len(r) + 1) * level), len(r))
        return float(np.exp(r[rank - 1]))

    def bounded_ms(self, level: float | None = DEFAULT_LEVEL) -> np.ndarray:
        """What is compared with the budget: measurements where measured, else prediction x factor."""
        bound = self.predicted_ms * self.factor(level)
        if len(self.measured):
            bound = bound.copy()
            bound[self.measured.index.to_numpy(np.int64)] = self.measured.to_numpy(float)
        return bound

    def feasible(self, max_ms: float, level: float | None = DEFAULT_LEVEL) -> np.ndarray:
        """Boolean mask over arch ids: counted under ``max_ms`` (see the module's rule)."""
        return self.bounded_ms(level) <= max_ms

    def check_budget(self, max_ms: float, level: float | None = DEFAULT_LEVEL, *, at_least: int = 1) -> np.ndarray:
        """`feasible`, or a one-line error when fewer than ``at_least`` archs fit: the budget, the
        fastest arch and its (bounded) latency, and what to do."""
        if not (isinstance(max_ms, (int, float)) and math.isfinite(max_ms) and max_ms > 0):
            raise MultipredictError(f"max latency {max_ms!r} ms: expected a positive number of milliseconds")
        mask = self.feasible(max_ms, level)
        if mask.sum() >= at_least:
            return mask
        from .spaces import nb201

        bound = self.bounded_ms(level)
        order = np.argsort(bound, kind="stable")
        fastest = int(order[0])
        how = ("measured" if self.source == "table" else "predicted, no margin" if level is None
               else f"predicted x the {level:.0%} conformal margin {self.factor(level):.3f}")
        if mask.sum() == 0:
            raise MultipredictError(
                f"max latency {max_ms:g} ms is below every arch on {self.device!r}: the fastest is "
                f"{nb201.arch_string(fastest)} (id {fastest}) at {bound[fastest]:.4g} ms ({how}); raise "
                f"--max-latency-ms to at least that")
        needed = float(bound[order[at_least - 1]])
        raise MultipredictError(
            f"max latency {max_ms:g} ms leaves {int(mask.sum())} archs on {self.device!r} ({how}), fewer than the "
            f"{at_least} the search trains; lower --budget to at most {int(mask.sum())} or raise --max-latency-ms "
            f"to at least {needed:.4g}")

    def percentiles(self, q=(25, 50, 75)) -> dict[int, float]:
        """The device's latency percentiles over the whole space (of the estimate: the truth for a table)."""
        return {int(p): float(v) for p, v in zip(q, np.nanpercentile(self.predicted_ms, q))}


def from_table(space: str, device: str) -> LatencyEstimate:
    """A public device measured on every arch of ``space`` (only NB201 is searchable)."""
    from .methods.protocol import device_latency

    _check_space(space)
    latency = device_latency(space, device)
    if len(latency) < SPACE_SIZE or np.isnan(latency[:SPACE_SIZE]).any():
        missing = SPACE_SIZE - int(np.isfinite(latency[:SPACE_SIZE]).sum())
        raise MultipredictError(f"device {device!r} lacks latency for {missing} of the {SPACE_SIZE} NB201 archs; "
                                f"search needs a device measured on the whole space (a HELP device) or your own "
                                f"measurements (--measurements)")
    return LatencyEstimate(device, "table", latency[:SPACE_SIZE].astype(float))


def from_onboarding(result) -> LatencyEstimate:
    """From an `onboard.OnboardResult` that predicted every arch of NB201."""
    if result.space != "nb201":
        _check_space(result.space)
    predicted = np.full(SPACE_SIZE, np.nan)
    frame = result.predictions
    predicted[frame["arch_id"].to_numpy(np.int64)] = frame["predicted_ms"].to_numpy(float)
    if np.isnan(predicted).any():
        raise MultipredictError(f"the onboarding of {result.device!r} predicted {len(frame)} of the {SPACE_SIZE} "
                                f"NB201 archs; search needs every arch (onboard with predict_archs=None)")
    cv = result.cv_predictions
    return LatencyEstimate(result.device, "onboard", predicted,
                           pd.Series(cv["measured_ms"].to_numpy(float), index=cv["arch_id"].to_numpy(np.int64)),
                           np.log(cv["measured_ms"].to_numpy(float) / cv["cv_predicted_ms"].to_numpy(float)))


def onboarded(measurements, *, device: str = "my_device", source_devices=None, seed: int = 0,
              progress=None, store: bool = False) -> LatencyEstimate:
    """Onboard a device from its measurements (a CSV path or a frame: ``arch,latency_ms``) and
    predict every NB201 arch (`onboard.onboard`, cached pretraining; ``store``: keep the result,
    or read back the one an equal onboarding kept)."""
    from .onboard import onboard

    return from_onboarding(onboard("nb201", measurements, device=device, source_devices=source_devices, seed=seed,
                                   progress=progress, store=store))


def from_flops(measurements, *, device: str = "my_device", flops: np.ndarray | None = None) -> LatencyEstimate:
    """The FLOPs baseline: log latency = a + b log FLOPs fitted on the measured archs (a frame
    ``arch_id, latency_ms`` or a path), leave-one-out residuals for the conformal factor."""
    from .onboard import read_measurements

    table = read_measurements("nb201", measurements)
    flops = whole_space_flops() if flops is None else np.asarray(flops, dtype=float)
    ids, latency = table["arch_id"].to_numpy(np.int64), table["latency_ms"].to_numpy(float)
    x, y = np.log(flops[ids]), np.log(latency)
    loo = np.empty(len(ids))
    for i in range(len(ids)):
        keep = np.arange(len(ids)) != i
        loo[i] = np.polyval(_line(x[keep], y[keep]), x[i])
    predicted = np.exp(np.polyval(_line(x, y), np.log(flops)))
    return LatencyEstimate(device, "flops", predicted, pd.Series(latency, index=ids), y - loo)


def _line(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # archs with equal FLOPs (NB201 has many) leave x constant: then latency is its mean
    if np.ptp(x) == 0:
        return np.array([0.0, float(np.mean(y))])
    return np.polyfit(x, y, 1)


def whole_space_flops() -> np.ndarray:
    """FLOPs of every NB201 cell, computed by this project (``data/wholespace``)."""
    from .search import whole_space_proxies

    table = whole_space_proxies()
    if "flops" not in table.columns or table["flops"].reindex(range(SPACE_SIZE)).isna().any():
        raise MultipredictError("the whole-space NB201 FLOPs table (data/wholespace/nb201_*.parquet) is missing; "
                                "restore it from git")
    return table["flops"].reindex(range(SPACE_SIZE)).to_numpy(float)


def _check_space(space: str) -> None:
    if space != "nb201":
        raise MultipredictError(f"latency-budgeted search covers --space nb201 (the space with whole-space "
                                f"accuracies); got {space!r}")


def pareto_front(accuracy: np.ndarray, latency: np.ndarray) -> np.ndarray:
    """Indices of the archs no other arch beats on both (higher accuracy, lower latency), by
    increasing latency."""
    accuracy, latency = np.asarray(accuracy, dtype=float), np.asarray(latency, dtype=float)
    order = np.lexsort((-accuracy, latency))
    front, best = [], -np.inf
    for i in order:
        if accuracy[i] > best:
            front.append(int(i))
            best = accuracy[i]
    return np.asarray(front, dtype=np.int64)


def shortlist(trajectory: pd.DataFrame) -> pd.DataFrame:
    """The trained archs of a budgeted search, best validation accuracy first: the order in which to
    measure them on the device, keeping the first one truly under the budget (each of them was
    counted under it). Columns ``arch_id, val, test``."""
    trained = trajectory[["arch_id", "val", "test"]].drop_duplicates("arch_id")
    return trained.sort_values("val", ascending=False, kind="stable").reset_index(drop=True)


def verify(candidates, true_ms: np.ndarray, max_ms: float, known=()) -> tuple[int | None, int]:
    """Walk a `shortlist`'s arch ids, measuring each (``true_ms``) until one is under ``max_ms``:
    returns (that arch or None, measurements spent; archs in ``known`` cost nothing)."""
    known, spent = set(int(a) for a in known), 0
    for arch in candidates:
        arch = int(arch)
        spent += arch not in known
        if true_ms[arch] <= max_ms:
            return arch, spent
    return None, spent
