"""The paper's Fig 10, rerun on the whole NB201 space: predictor-guided search with Vec, ZCP and
ZCPVec against random search, regularized evolution and zero-shot ranking by the best single proxy.

``reproduce_search(out_dir=..., repeats=20)``: one resumable unit per (dataset, arm, trial); writes
``fig10_trials.csv`` (every trained arch of every trial), ``fig10.csv`` (per dataset, arm and number
of trained archs: the mean and std of the returned arch's test accuracy and regret),
``fig10_near_optimal.csv`` (how many trained archs each arm needs to return an arch within 0.5 points
of the space's best test accuracy), ``fig10_regret.csv`` (mean regret after 20/40/60/100 archs),
``fig10.txt`` and ``fig10.html``.
"""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pandas as pd

from .. import search as engine
from ..errors import MultipredictError, UnknownNameError
from .units import NO_PLOTLY_HTML, Plan, Unit, figures_page, plotly_or_none, run_and_write, unit_key

REVISION = 1
ARMS = {"Vec": ("predictor", "vec"), "ZCP": ("predictor", "zcp"), "ZCPVec": ("predictor", "zcpvec"),
        "random": ("random", ""), "evolution": ("evolution", ""), "zero-shot": ("zero-shot", "")}
CHECKPOINTS = (10, 20, 30, 40, 50, 60, 80, 100, 150, 200)
NEAR = 0.5
PAPER_CLAIM = ("ZCP-based predictors find a near-optimal arch in about 40 trained archs where Vec needs over 100 "
               "(NB101; NB201 behaves alike)")


def _unit(dataset: str, arm: str, seed: int, budget: int, quick: bool) -> list[dict]:
    from ..predictors.tasktransfer import AccuracyOptions

    strategy, encoding = ARMS[arm]
    options = AccuracyOptions(epochs=30) if quick else None
    frame = engine.search(dataset, strategy, encoding=encoding or "zcp", budget=budget, seed=seed, options=options)
    frame["arm"] = arm
    frame["proxies"] = ",".join(engine.space_table(dataset).proxies.columns)
    return frame.to_dict("records")


def plan(figure: str = "fig10", *, repeats: int = 20, quick: bool = False, datasets=None, arms=None,
         budget: int | None = None, seed: int = 0) -> Plan:
    if figure != "fig10":
        raise UnknownNameError("search figure", figure, ("fig10",))
    if repeats < 1:
        raise MultipredictError(f"repeats={repeats}: run at least one repeat")
    datasets = list(datasets or (("cifar10",) if quick else engine.DATASETS))
    for d in datasets:
        engine.space_table(d)
    arms = list(arms or ARMS)
    for a in arms:
        if a not in ARMS:
            raise UnknownNameError("fig10 arm", a, list(ARMS))
    budget = budget or (30 if quick else 100)
    if not 10 <= budget <= 15625:
        raise MultipredictError(f"budget={budget} must lie in 10..15625 (the 10 initial archs .. the whole space)")
    proxies = {d: list(engine.space_table(d).proxies.columns) for d in datasets}
    settings = {"repeats": repeats, "quick": quick, "datasets": datasets, "arms": arms, "budget": budget,
                "seed": seed, "zcp_proxies": proxies}
    units = [Unit(unit_key("fig10", REVISION, dataset=d, arm=a, seed=s, budget=budget, quick=quick,
                           proxies=proxies[d]), f"{a} {d} seed {s}", partial(_unit, d, a, s, budget, quick))
             for s in range(seed, seed + repeats) for d in datasets for a in arms]
    return Plan(figure, units, settings)


def summarise(trials: pd.DataFrame) -> pd.DataFrame:
    at = trials[trials["n_trained"].isin(CHECKPOINTS)]
    g = at.groupby(["dataset", "arm", "n_trained"], sort=False)
    return g.agg(returned_test_mean=("returned_test", "mean"), returned_test_std=("returned_test", "std"),
                 regret_mean=("regret", "mean"), regret_median=("regret", "median"),
                 n=("seed", "count")).reset_index()


def regret_table(trials: pd.DataFrame, at=(20, 40, 60, 100)) -> pd.DataFrame:
    """Per dataset and arm: the mean regret (test accuracy points) after 20, 40, 60, 100 trained archs."""
    chosen = trials[trials["n_trained"].isin(at)]
    table = chosen.pivot_table(index=["dataset", "arm"], columns="n_trained", values="regret", aggfunc="mean",
                               sort=False)
    table.columns = [f"regret@{n}" for n in table.columns]
    return table.reset_index()


def near_optimal(trials: pd.DataFrame, within: float = NEAR) -> pd.DataFrame:
    """Per dataset and arm: trained archs until the returned arch is within ``within`` points of the
    space's best test accuracy (trials that never get there count as not reached)."""
    rows = []
    for (dataset, arm), part in trials.groupby(["dataset", "arm"], sort=False):
        needed = []
        for _, trial in part.groupby("seed"):
            hit = trial.loc[trial["regret"] <= within, "n_trained"]
            needed.append(int(hit.min()) if len(hit) else np.nan)
        needed = np.asarray(needed, dtype=float)
        rows.append({"dataset": dataset, "arm": arm, "trials": len(needed),
                     "reached": int(np.isfinite(needed).sum()),
                     "median_trained": float(np.nanmedian(needed)) if np.isfinite(needed).any() else np.nan,
                     "mean_trained_if_reached": float(np.nanmean(needed)) if np.isfinite(needed).any() else np.nan})
    return pd.DataFrame(rows)


def comparison_text(trials: pd.DataFrame, settings: dict) -> str:
    lines = ["fig10: ours beside the paper's claim", f"paper: {PAPER_CLAIM}",
             "settings: " + json.dumps(settings, default=str), "",
             f"trained archs to an arch within {NEAR} points of the best test accuracy:",
             near_optimal(trials).round(1).to_string(index=False), "", "mean regret (test accuracy points):"]
    table = summarise(trials).pivot_table(index=["dataset", "n_trained"], columns="arm", values="regret_mean")
    lines.append(table.round(2).to_string())
    return "\n".join(lines) + "\n"


def figures_html(trials: pd.DataFrame) -> str:
    go = plotly_or_none()
    if go is None:
        return NO_PLOTLY_HTML

    parts = []
    for dataset, part in trials.groupby("dataset", sort=False):
        fig = go.Figure()
        for arm, curve in part.groupby("arm", sort=False):
            stats = curve.groupby("n_trained")["returned_test"].agg(["mean", "std"])
            fig.add_trace(go.Scatter(x=stats.index.tolist(), y=stats["mean"].tolist(), name=arm, mode="lines"))
        fig.update_layout(title=f"fig10, NB201 {dataset}: test accuracy of the returned arch (mean over trials)",
                          xaxis_title="trained archs", yaxis_title="test accuracy (%)")
        parts.append(fig)
    return figures_page(parts)


def reproduce_search(figure: str = "fig10", *, out_dir, repeats: int = 20, quick: bool = False, workers: int = 1,
                     progress: bool = True, **plan_options) -> pd.DataFrame:
    plan_ = plan(figure, repeats=repeats, quick=quick, **plan_options)
    return run_and_write(plan_, out_dir, workers=workers, progress=progress, outputs={
        "fig10.csv": lambda t: summarise(t).to_csv(index=False),
        "fig10_near_optimal.csv": lambda t: near_optimal(t).to_csv(index=False),
        "fig10_regret.csv": lambda t: regret_table(t).to_csv(index=False),
        "fig10.txt": lambda t: comparison_text(t, plan_.settings),
        "fig10.html": figures_html})
