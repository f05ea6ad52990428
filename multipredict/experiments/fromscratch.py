"""Figs 6, 16 and 17: latency predictors against the total number of hardware measurements they need.

The trials are those of `experiments.reproduce` (tables ``fig6``, ``fig16``, ``fig17``: the five
encodings trained from scratch at growing k, BRP-NAS, HELP and TL Vec ET); this module counts what
each cost and draws the curves. The counting rule (`total_measurements`):

- trained from scratch on the target (Vec, ZCP, ZCPVec, BRP-NAS): the k target samples. Zero-cost
  proxies cost compute, not hardware measurements;
- HWL, HWLVec: the k target samples **plus the R reference devices' latencies of those k archs**
  (k x (1 + R)). Predicting an arch also needs its R reference latencies; the total leaves those
  out (they exist for every arch of a public benchmark; for new archs, add R per arch predicted);
- HELP, TL Vec ET: the pretraining measurements (training devices x pretraining archs per device)
  plus the k target samples;
- FLOPs: none.

Outputs beside ``<fig>.csv``: ``<fig>_curve.csv`` (per method and k: the total, the mean Spearman
over the test devices, and the 25th-75th percentiles over every device x repeat) and
``<fig>_claim.csv`` (per from-scratch method: the fewest total measurements at which its mean
reaches HELP's, against HELP's total).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..protocols import SOURCE_SAMPLES
from .paper_numbers import FIGURE_CLAIMS

PRETRAINED = ("HELP", "TL")


def total_measurements(method: str, samples: int, space: str, n_train: int, n_hwl: int,
                       source_samples: int | None = None) -> int:
    """The hardware measurements a method needs for one target device (the module's rule)."""
    k = int(samples)
    if method == "FLOPs":
        return 0
    if method == "HELP" or method.startswith("TL "):
        return n_train * int(source_samples or SOURCE_SAMPLES[space]) + k
    if "HWL" in method:
        return k * (1 + n_hwl)
    return k


def curve(trials: pd.DataFrame, train_devices) -> pd.DataFrame:
    """Per method and k: total measurements, mean Spearman over devices (each device's mean over
    repeats), and the 25th / 75th percentiles over every device x repeat."""
    ok = trials[trials["spearman"].notna()].copy()
    n_train = len(list(train_devices))
    hwl = ok["hwl_devices"] if "hwl_devices" in ok else pd.Series(None, index=ok.index)
    ok["n_hwl"] = [len(str(h).split(",")) if isinstance(h, str) and h else 0 for h in hwl]
    source = ok["source_samples"] if "source_samples" in ok else pd.Series(np.nan, index=ok.index)
    ok["total_measurements"] = [total_measurements(m, k, sp, n_train, h, None if pd.isna(s) else int(s))
                                for m, k, sp, h, s in zip(ok["method"], ok["samples"], ok["space"], ok["n_hwl"],
                                                          source, strict=True)]
    rows = []
    for (space, method, k), part in ok.groupby(["space", "method", "samples"], sort=False):
        per_device = part.groupby("device")["spearman"].mean()
        rows.append({"space": space, "method": method, "samples": int(k),
                     "total_measurements": int(part["total_measurements"].iloc[0]),
                     "spearman_mean": float(per_device.mean()),
                     "spearman_q25": float(part["spearman"].quantile(0.25)),
                     "spearman_q75": float(part["spearman"].quantile(0.75)),
                     "devices": int(per_device.size), "trials": int(len(part))})
    return pd.DataFrame(rows).sort_values(["space", "method", "total_measurements"]).reset_index(drop=True)


def claim(curve_: pd.DataFrame, references=("HELP", "TL Vec ET")) -> pd.DataFrame:
    """Per space, pretrained reference method that ran (HELP at its budget, TL Vec ET at its) and
    method trained from scratch: the fewest total measurements at which the method's mean Spearman
    reaches the reference's, and the saving factor. Both references, because HELP can be the weaker
    one (NB201's adversarial devices: HELP .44, TL Vec ET .73)."""
    rows = []
    for space, part in curve_.groupby("space", sort=False):
        for reference in [r for r in references if (part["method"] == r).any()]:
            rows += _reaching(part, reference, space)
    return pd.DataFrame(rows)


def _reaching(part: pd.DataFrame, reference: str, space: str) -> list[dict]:
    ref = part[part["method"] == reference]
    ref_rho, ref_total = float(ref["spearman_mean"].max()), int(ref["total_measurements"].iloc[0])
    rows = []
    for method, mine in part[~part["method"].str.startswith(PRETRAINED)].groupby("method", sort=False):
        reached = mine[mine["spearman_mean"] >= ref_rho].sort_values("total_measurements")
        best = mine.loc[mine["spearman_mean"].idxmax()]
        total = int(reached["total_measurements"].iloc[0]) if len(reached) else None
        rows.append({"space": space, "method": method, "reference": reference, "reference_spearman": ref_rho,
                     "reference_total": ref_total, "reaches_at_total": total,
                     "at_samples": int(reached["samples"].iloc[0]) if len(reached) else None,
                     "saving": round(ref_total / total, 1) if total else None,
                     "best_spearman": float(best["spearman_mean"]), "best_at_total": int(best["total_measurements"])})
    return rows


def claim_text(figure: str, claim_: pd.DataFrame) -> str:
    lines = [f"paper: {FIGURE_CLAIMS[figure]}", "ours (mean Spearman over the test devices):"]
    for r in claim_.itertuples():
        if r.reaches_at_total is None or pd.isna(r.reaches_at_total):
            lines.append(f"  {r.method}: does not reach {r.reference}'s {r.reference_spearman:.3f} (best "
                         f"{r.best_spearman:.3f} at {r.best_at_total} measurements; {r.reference}: {r.reference_total})")
        else:
            lines.append(f"  {r.method}: reaches {r.reference}'s {r.reference_spearman:.3f} at {int(r.reaches_at_total)} "
                         f"total measurements (k = {int(r.at_samples)}) against {r.reference_total}: "
                         f"{r.saving:g}x fewer")
    return "\n".join(lines)


def figures(figure: str, curve_: pd.DataFrame) -> list:
    """One plotly figure per space of ``curve_``: mean Spearman against total hardware measurements
    (log x), bars at the 25th-75th percentiles; ``[]`` without plotly."""
    from .units import plotly_or_none

    go = plotly_or_none()
    if go is None:
        return []
    parts = []
    for space, part in curve_.groupby("space", sort=False):
        fig = go.Figure()
        for method, line in part.groupby("method", sort=False):
            x = [max(int(v), 1) for v in line["total_measurements"]]
            fig.add_trace(go.Scatter(x=x, y=line["spearman_mean"].tolist(), mode="lines+markers", name=method,
                                     customdata=line[["samples", "spearman_q25", "spearman_q75"]],
                                     hovertemplate=f"<b>{method}</b><br>%{{x}} measurements (k = %{{customdata[0]}}): "
                                                   "Spearman %{y:.3f} (25-75%: %{customdata[1]:.3f} to "
                                                   "%{customdata[2]:.3f})<extra></extra>",
                                     error_y={"type": "data", "symmetric": False,
                                              "array": (line["spearman_q75"] - line["spearman_mean"]).tolist(),
                                              "arrayminus": (line["spearman_mean"] - line["spearman_q25"]).tolist()}))
        fig.update_layout(title=f"{figure}, {space}: Spearman against total hardware measurements (bars: 25-75%)",
                          xaxis_title="total hardware measurements (log)", xaxis_type="log",
                          yaxis_title="Spearman rho")
        parts.append(fig)
    return parts


def figure_html(figure: str, curve_: pd.DataFrame) -> str:
    from .units import NO_PLOTLY_HTML, figures_page

    parts = figures(figure, curve_)
    return figures_page(parts) if parts else NO_PLOTLY_HTML


def write_outputs(figure: str, trials: pd.DataFrame, train_devices, out) -> str:
    """Write ``<figure>_curve.csv``, ``<figure>_claim.csv`` and ``<figure>.html``; return the claim text."""
    from pathlib import Path

    from .units import atomic_text

    out = Path(out)
    c = curve(trials, train_devices)
    k = claim(c)
    atomic_text(out / f"{figure}_curve.csv", c.to_csv(index=False))
    atomic_text(out / f"{figure}_claim.csv", k.to_csv(index=False))
    atomic_text(out / f"{figure}.html", figure_html(figure, c))
    return claim_text(figure, k)
