"""The paper's Fig 7 (and 20, 21), rerun: HWL latency predictors transferred across search spaces.

``reproduce_crossspace(out_dir=..., repeats=10)``: for each direction (NB201 -> FBNet, FBNet -> NB201),
each of the 22 devices measured in both spaces and each repeat, pretrain an HWL predictor on the
source space (the device's latencies there are the labels), fine-tune on k archs of the other space,
and score on the rest of it, beside HWL and Vec trained from scratch on the same k archs
(`multipredict.methods.crossspace`). Resumable units (one per direction, device and repeat), progress,
and ``fig7_trials.csv`` (every trial), ``fig7.csv`` (median and 25-75% band per direction, device,
arm and k), ``fig7_overview.csv`` (per direction, arm and k: the median over devices, and on how many
devices transfer beats each scratch arm), ``fig7.txt`` and ``fig7.html``.
"""

from __future__ import annotations

import json
from functools import partial

import pandas as pd

from ..errors import MultipredictError, UnknownNameError
from ..methods import crossspace as protocol
from .units import NO_PLOTLY_HTML, Plan, Unit, figures_page, plotly_or_none, run_and_write, unit_key

FIGURES = ("fig7",)
REVISION = 1
SAMPLES = (2, 4, 5, 6, 8, 10, 15, 20, 30, 40)
ARMS = ("HWL transfer", "HWL scratch", "Vec scratch")
QUICK_DEVICES = ("fpga", "eyeriss")
PAPER_CLAIM = ("HWL transfers across search spaces in as few as 4 target samples (NB201 <-> FBNet, 21 devices), "
               "ahead of HWL and Vec from scratch")


def _unit(source: str, device: str, seed: int, samples: tuple[int, ...], source_archs: float, rule: str,
          quick: bool) -> list[dict]:
    options = {}
    if quick:
        options = dict(transfer_options=protocol.TRANSFER_OPTIONS.model_copy(update={"epochs": 20,
                                                                                      "transfer_epochs": 10}),
                       scratch_options=protocol.SCRATCH_OPTIONS.model_copy(update={"epochs": 30}))
    return protocol.trial(source, device, seed, samples, source_archs=source_archs, rule=rule, **options)


def plan(figure: str = "fig7", *, repeats: int = 10, quick: bool = False, devices=None, sources=None,
         samples=None, source_archs: float = 0.15, rule: str = "least", seed: int = 0) -> Plan:
    if figure not in FIGURES:
        raise UnknownNameError("cross-space figure", figure, FIGURES)
    if repeats < 1:
        raise MultipredictError(f"repeats={repeats}: run at least one repeat")
    if rule not in protocol.REFERENCE_RULES:
        raise UnknownNameError("reference-device rule", rule, protocol.REFERENCE_RULES)
    devices = list(devices or (QUICK_DEVICES if quick else protocol.shared_devices()))
    for d in devices:
        protocol.reference_devices(d, rule)  # validates the name
    sources = list(sources or protocol.SPACES)
    for s in sources:
        if s not in protocol.SPACES:
            raise UnknownNameError("source space", s, protocol.SPACES)
        protocol.source_count(s, source_archs)
    samples = tuple(sorted(samples or ((2, 4, 10) if quick else SAMPLES)))
    if samples[0] < 2:
        raise MultipredictError(f"samples={samples[0]}: a latency predictor needs at least 2 measured archs")
    settings = {"repeats": repeats, "quick": quick, "devices": devices, "sources": sources, "samples": samples,
                "source_archs": source_archs, "rule": rule, "seed": seed}
    units = []
    for s in range(seed, seed + repeats):
        for source in sources:
            for device in devices:
                key = unit_key("fig7", REVISION, source=source, device=device, seed=s, samples=samples,
                               source_archs=source_archs, rule=rule, quick=quick)
                units.append(Unit(key, f"{source}->{protocol.other(source)} {device} seed {s}",
                                  partial(_unit, source, device, s, samples, source_archs, rule, quick)))
    return Plan(figure, units, settings)


def summarise(trials: pd.DataFrame) -> pd.DataFrame:
    """Median and 25-75% band over repeats per direction, device, arm and k."""
    g = trials.groupby(["source", "target_space", "device", "arm", "samples"])["spearman"]
    return g.agg(median="median", q25=lambda v: v.quantile(0.25), q75=lambda v: v.quantile(0.75),
                 mean="mean", n="count").reset_index()


def overview(trials: pd.DataFrame) -> pd.DataFrame:
    """Per direction, arm and k: the median over devices of each device's median, and on how many
    devices HWL transfer's median beats each scratch arm's."""
    per_device = summarise(trials).pivot_table(index=["source", "target_space", "samples", "device"],
                                               columns="arm", values="median")
    rows = []
    for (source, goal, k), part in per_device.groupby(level=[0, 1, 2]):
        row = {"direction": f"{source} -> {goal}", "samples": k, "devices": len(part)}
        for arm in ARMS:
            if arm in part:
                row[f"median {arm}"] = float(part[arm].median())
        if "HWL transfer" in part:
            for arm in ("HWL scratch", "Vec scratch"):
                if arm in part:
                    row[f"devices transfer > {arm}"] = int((part["HWL transfer"] > part[arm]).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_text(trials: pd.DataFrame, settings: dict) -> str:
    table = overview(trials)
    lines = ["fig7: ours beside the paper's claim", f"paper: {PAPER_CLAIM}",
             "settings: " + json.dumps(settings, default=str), "", table.round(3).to_string(index=False)]
    at4 = table[table["samples"] == 4]
    for _, row in at4.iterrows():
        if "devices transfer > HWL scratch" in row:
            lines.append(f"k = 4, {row['direction']}: transfer ahead of HWL from scratch on "
                         f"{row['devices transfer > HWL scratch']} of {row['devices']} devices and of Vec from scratch "
                         f"on {row.get('devices transfer > Vec scratch', float('nan'))}")
    return "\n".join(lines) + "\n"


def figures_html(trials: pd.DataFrame) -> str:
    go = plotly_or_none()
    if go is None:
        return NO_PLOTLY_HTML

    parts = []
    per_device = summarise(trials)
    for (source, goal), part in per_device.groupby(["source", "target_space"]):
        fig = go.Figure()
        for arm, curve in part.groupby("arm"):
            band = curve.groupby("samples")["median"].quantile([0.25, 0.5, 0.75]).unstack()
            fig.add_trace(go.Scatter(x=list(band.index) + list(band.index[::-1]),
                                     y=list(band[0.75]) + list(band[0.25][::-1]), fill="toself", opacity=0.2,
                                     line={"width": 0}, showlegend=False, name=f"{arm} 25-75%"))
            fig.add_trace(go.Scatter(x=band.index, y=band[0.5], mode="lines+markers", name=arm))
        fig.update_layout(title=f"fig7: {source} -> {goal}, median over devices of each device's median "
                                f"(band: 25-75% over devices)", xaxis_title="target samples k",
                          yaxis_title="Spearman", xaxis_type="log")
        parts.append(fig)
    return figures_page(parts)


def reproduce_crossspace(figure: str = "fig7", *, out_dir, repeats: int = 10, quick: bool = False, workers: int = 1,
                         progress: bool = True, **plan_options) -> pd.DataFrame:
    """Run (or resume) ``figure`` into ``out_dir``; returns the trials."""
    plan_ = plan(figure, repeats=repeats, quick=quick, **plan_options)
    return run_and_write(plan_, out_dir, workers=workers, progress=progress, outputs={
        f"{figure}.csv": lambda t: summarise(t).to_csv(index=False),
        f"{figure}_overview.csv": lambda t: overview(t).to_csv(index=False),
        f"{figure}.txt": lambda t: comparison_text(t, plan_.settings),
        f"{figure}.html": figures_html})
