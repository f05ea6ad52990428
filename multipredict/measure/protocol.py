"""The timing protocol: warm up, time single inferences, summarise robustly, re-measure when noisy.

One *attempt* is ``warmup`` untimed calls (continued until ``min_warmup_seconds`` have passed, so
that caches, allocators and CPU clocks settle) followed by ``repeats`` individually timed calls.
The summary is the median (robust to the odd interrupt) and the inter-quartile range as the spread.
When the relative spread ``IQR / median`` exceeds ``max_relative_spread`` the machine was likely
busy: the attempt is repeated up to ``max_attempts`` times and the least noisy attempt kept; if
none is quiet enough, the result is *flagged* as an outlier rather than silently trusted.

Garbage collection is paused while timing, because a collection inside one timed call would be
charged to that architecture.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import MultipredictError

# Tukey's fences: a sample beyond 1.5 IQR outside the quartiles counts as an outlying sample
TUKEY_FENCE = 1.5


class MeasurementProtocol(BaseModel):
    """How many calls to warm up with and time, and when a measurement is too noisy to trust."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warmup: int = Field(10, ge=0, description="untimed calls before timing")
    min_warmup_seconds: float = Field(0.2, ge=0, description="keep warming up at least this long")
    repeats: int = Field(30, ge=3, description="timed calls per attempt (>= 3 for quartiles)")
    max_relative_spread: float = Field(0.25, gt=0, description="IQR / median above this re-measures")
    max_attempts: int = Field(3, ge=1, description="attempts before a noisy arch is flagged")


def make_protocol(**fields) -> MeasurementProtocol:
    """A protocol from keyword fields, with an error that names the bad value and the rule it broke."""
    try:
        return MeasurementProtocol(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})"
                             for e in exc.errors())
        raise MultipredictError(f"invalid measurement protocol: {problems}") from None


@dataclass(frozen=True)
class LatencyStats:
    """Robust summary of one attempt's timed calls, in milliseconds."""

    median_ms: float
    spread_ms: float  # inter-quartile range
    q25_ms: float
    q75_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    repeats: int
    outlying_samples: int  # samples beyond Tukey's fences

    @property
    def relative_spread(self) -> float:
        return self.spread_ms / self.median_ms if self.median_ms > 0 else float("inf")


@dataclass(frozen=True)
class Measurement:
    """The kept attempt's statistics, how many attempts it took, and whether it stayed too noisy."""

    stats: LatencyStats
    attempts: int
    outlier: bool
    samples_ms: tuple[float, ...]

    @property
    def latency_ms(self) -> float:
        return self.stats.median_ms

    def as_row(self) -> dict:
        row = asdict(self.stats)
        row.update(attempts=self.attempts, outlier=self.outlier, relative_spread=self.stats.relative_spread)
        return row


def summarize(samples_ms: Sequence[float]) -> LatencyStats:
    """Median, IQR and friends of timed calls (ms). Needs at least 3 finite, non-negative samples."""
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.ndim != 1 or len(values) < 3:
        raise MultipredictError(f"latency statistics need at least 3 timed calls; got {len(values)}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise MultipredictError(f"timed calls must be finite and non-negative; got {values.tolist()!r}")
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    iqr = q75 - q25
    outlying = int(np.sum((values < q25 - TUKEY_FENCE * iqr) | (values > q75 + TUKEY_FENCE * iqr)))
    return LatencyStats(median_ms=float(median), spread_ms=float(iqr), q25_ms=float(q25), q75_ms=float(q75),
                        mean_ms=float(values.mean()), min_ms=float(values.min()), max_ms=float(values.max()),
                        repeats=len(values), outlying_samples=outlying)


def time_calls(run_once: Callable[[], object], protocol: MeasurementProtocol,
               clock: Callable[[], int] = time.perf_counter_ns) -> list[float]:
    """One attempt: warm up, then time ``protocol.repeats`` calls one by one (ms each).

    ``run_once`` must return only when its work is finished (a CUDA backend synchronises inside it).
    ``clock`` returns nanoseconds; tests pass a fake one.
    """
    start = clock()
    calls = 0
    min_warmup_ns = protocol.min_warmup_seconds * 1e9
    while calls < protocol.warmup or (clock() - start) < min_warmup_ns:
        run_once()
        calls += 1
    samples = []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # no full collect first: on a process holding torch that alone takes ~0.1-0.3 s
    try:
        for _ in range(protocol.repeats):
            t0 = clock()
            run_once()
            samples.append((clock() - t0) / 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def measure_latency(run_once: Callable[[], object], protocol: MeasurementProtocol | None = None,
                    clock: Callable[[], int] = time.perf_counter_ns) -> Measurement:
    """Time ``run_once`` by the protocol; re-measure while the spread is too large (see module doc)."""
    protocol = protocol or MeasurementProtocol()
    best: tuple[LatencyStats, list[float]] | None = None
    attempts = 0
    for attempts in range(1, protocol.max_attempts + 1):
        samples = time_calls(run_once, protocol, clock)
        stats = summarize(samples)
        if best is None or stats.relative_spread < best[0].relative_spread:
            best = (stats, samples)
        if stats.relative_spread <= protocol.max_relative_spread:
            break
    stats, samples = best
    return Measurement(stats=stats, attempts=attempts, outlier=stats.relative_spread > protocol.max_relative_spread,
                       samples_ms=tuple(samples))
