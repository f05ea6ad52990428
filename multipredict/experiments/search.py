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
        "random": ("random", ""), "evolution": ("evolution", ""), "zero-shot": ("zero-shot", ""),
        "ZCP warm": ("predictor", "zcp")}
WARM_ARMS = ("ZCP warm",)  # pretrained on NB201's other two datasets (`search.pretrain_other_tasks`)
DEFAULT_ARMS = tuple(a for a in ARMS if a not in WARM_ARMS)  # the warm arm pretrains per trial: ask for it
CHECKPOINTS = (10, 20, 30, 40, 50, 60, 80, 100, 150, 200)
NEAR = 0.5
PAPER_CLAIM = ("ZCP-based predictors find a near-optimal arch in about 40 trained archs where Vec needs over 100 "
               "(NB101; NB201 behaves alike)")


def _unit(dataset: str, arm: str, seed: int, budget: int, quick: bool) -> list[dict]:
    from ..predictors.tasktransfer import AccuracyOptions

    strategy, encoding = ARMS[arm]
    options = AccuracyOptions(epochs=30) if quick else None
    warm = None
    if arm in WARM_ARMS:
        warm = engine.pretrain_other_tasks(dataset, encoding=encoding, seed=seed, options=options)
    frame = engine.search(dataset, strategy, encoding=encoding or "zcp", budget=budget, seed=seed, options=options,
                          warm=warm)
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
    arms = list(arms or DEFAULT_ARMS)
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


# ---- latency-budgeted search (issue 19; beyond the paper) ------------------------------------------

BUDGET_REVISION = 1
BUDGET_DEVICES = ("titan_rtx_256", "pixel2", "eyeriss")  # a GPU, a phone, an accelerator: HELP meta-test devices
BUDGET_PERCENTILES = (25, 50, 75)
# arm -> (how latency is known, conformal level; None = no margin)
BUDGET_ARMS = {"oracle": ("table", None), "onboard": ("onboard", "default"), "onboard-nomargin": ("onboard", None),
               "flops": ("flops", "default"), "flops-nomargin": ("flops", None)}
BUDGET_CHECKPOINTS = (10, 20, 30, 40, 50, 60, 80, 100, 150, 200)
BUDGET_GOAL = ("regret within 0.3 accuracy points of the oracle-latency search, under 5% violations, from 20 latency "
               "measurements (issue 19)")


def _measured_draw(device: str, seed: int, k: int) -> np.ndarray:
    import zlib

    return np.random.default_rng([seed, zlib.crc32(device.encode()), 19]).choice(15625, size=k, replace=False)


def _budget_unit(device: str, seed: int, datasets: list, arms: list, percentiles: list, budget: int, k: int,
                 level: float, sources: list, quick: bool) -> list[dict]:
    from .. import latencybudget as lb
    from ..predictors.tasktransfer import AccuracyOptions

    oracle = lb.from_table("nb201", device)
    truth = oracle.predicted_ms
    ids = _measured_draw(device, seed, k)
    frame = pd.DataFrame({"arch_id": ids, "latency_ms": truth[ids]})
    options = {}
    if quick:
        options = {"source_samples": 200, "source_epochs": 3, "target_epochs": 5}
    estimates = {"table": oracle, "flops": lb.from_flops(frame, device=device)}
    if any(BUDGET_ARMS[a][0] == "onboard" for a in arms):
        from ..onboard import onboard

        estimates["onboard"] = lb.from_onboarding(onboard("nb201", frame, device=device, source_devices=sources,
                                                          seed=seed, **options))
    accuracy_options = AccuracyOptions(epochs=30) if quick else None
    rows = []
    for p in percentiles:
        max_ms = float(np.percentile(truth, p))
        truly = truth <= max_ms
        for dataset in datasets:
            table = engine.space_table(dataset)
            best_feasible = float(np.max(table.test[truly]))
            for arm in arms:
                source, arm_level = BUDGET_ARMS[arm]
                estimate = estimates[source]
                use_level = level if arm_level == "default" else arm_level
                allowed = estimate.feasible(max_ms, use_level)
                base = {"device": device, "seed": seed, "percentile": p, "max_ms": max_ms, "dataset": dataset,
                        "arm": arm, "allowed": int(allowed.sum()), "truly_feasible": int(truly.sum()),
                        "falsely_allowed": int((allowed & ~truly).sum()), "factor": estimate.factor(use_level),
                        "best_feasible_test": best_feasible,
                        "measurements": estimate.n_measurements if source != "table" else np.nan}
                if allowed.sum() < budget:
                    rows.append({**base, "n_trained": budget, "status": "too few allowed archs"})
                    continue
                trajectory = engine.search(dataset, "predictor", encoding="zcp", budget=budget, seed=seed,
                                           allowed=allowed, options=accuracy_options)
                for n in [c for c in BUDGET_CHECKPOINTS if c < budget] + [budget]:
                    row = trajectory.iloc[n - 1]
                    arch = int(row["returned_arch"])
                    rows.append({**base, "n_trained": n, "status": "ok", "returned_arch": arch,
                                 "returned_test": float(row["returned_test"]), "returned_ms": float(truth[arch]),
                                 "violated": bool(truth[arch] > max_ms),
                                 "regret": best_feasible - float(row["returned_test"])})
                verified, spent = lb.verify(lb.shortlist(trajectory)["arch_id"], truth, max_ms,
                                            known=ids if source != "table" else range(15625))
                rows[-1].update({"verified_arch": verified, "verify_measurements": spent,
                                 "verified_regret": (best_feasible - float(table.test[verified])
                                                     if verified is not None else np.nan)})
    return rows


def budget_plan(*, repeats: int = 20, quick: bool = False, datasets=None, devices=None, arms=None,
                percentiles=BUDGET_PERCENTILES, budget: int | None = None, k: int = 20,
                level: float | None = None, seed: int = 0) -> Plan:
    """One resumable unit per (device, trial): onboard the device from ``k`` random measurements
    (pretrained on the default split's 9 training devices, none of which is a budget device), fit the
    FLOPs baseline on the same ``k``, and run the ZCP predictor search under each budget (the
    device's ``percentiles`` of true latency) for each dataset and arm."""
    from .. import latencybudget as lb
    from .. import tasks

    if repeats < 1:
        raise MultipredictError(f"repeats={repeats}: run at least one repeat")
    datasets = list(datasets or (("cifar10",) if quick else engine.DATASETS))
    for d in datasets:
        engine.space_table(d)
    devices = list(devices or (BUDGET_DEVICES[:1] if quick else BUDGET_DEVICES))
    for device in devices:
        lb.from_table("nb201", device)
    arms = list(arms or BUDGET_ARMS)
    for a in arms:
        if a not in BUDGET_ARMS:
            raise UnknownNameError("budget arm", a, list(BUDGET_ARMS))
    budget = budget or (30 if quick else 100)
    level = lb.DEFAULT_LEVEL if level is None else level
    sources = list(tasks.device_set("nb201-default").train)
    if quick:
        sources = sources[:2]
    clash = sorted(set(devices) & set(sources))
    if clash:
        raise MultipredictError(f"devices {clash} are in the pretraining set {sources}; pick devices outside it")
    settings = {"repeats": repeats, "quick": quick, "datasets": datasets, "devices": devices, "arms": arms,
                "percentiles": list(percentiles), "budget": budget, "k": k, "level": level, "sources": sources,
                "seed": seed, "encoding": "zcp", "zcp_proxies": {d: list(engine.space_table(d).proxies.columns)
                                                                  for d in datasets}}
    units = [Unit(unit_key("budget", BUDGET_REVISION, device=d, seed=s, **{x: settings[x] for x in settings
                                                                            if x not in ("repeats", "seed")}),
                  f"{d} seed {s}", partial(_budget_unit, d, s, datasets, arms, list(percentiles), budget, k, level,
                                           sources, quick))
             for s in range(seed, seed + repeats) for d in devices]
    return Plan("budget", units, settings)


def budget_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per device, percentile, dataset and arm, at the final budget: mean and median regret to the
    best truly feasible arch, the share of returned archs over the budget, and the verified result
    (measure the shortlist until one is truly under it). ``skipped``: trials where fewer archs than
    the budget were counted feasible (no search ran)."""
    final = rows[rows["n_trained"].eq(rows["n_trained"].max())].copy()
    for column in ("regret", "violated", "verified_regret", "verify_measurements"):
        if column not in final:
            final[column] = np.nan
    final["violated"] = final["violated"].astype(float)
    final["skipped"] = final["status"].ne("ok")
    g = final.groupby(["device", "percentile", "dataset", "arm"], sort=False)
    out = g.agg(trials=("seed", "count"), skipped=("skipped", "sum"), max_ms=("max_ms", "first"),
                regret_mean=("regret", "mean"),
                regret_median=("regret", "median"), violations=("violated", "mean"),
                verified_regret_mean=("verified_regret", "mean"),
                verify_measurements_mean=("verify_measurements", "mean"), measurements=("measurements", "mean"),
                allowed_mean=("allowed", "mean"), falsely_allowed_mean=("falsely_allowed", "mean")).reset_index()
    return out


def budget_overview(rows: pd.DataFrame) -> pd.DataFrame:
    """Per device kind and arm over datasets and budgets: the gap to the oracle arm's regret, the
    violation rate, and the total latency measurements (k + verification)."""
    s = budget_summary(rows)
    if s.empty:
        return s
    oracle = s[s["arm"].eq("oracle")].set_index(["device", "percentile", "dataset"])["regret_mean"]
    s["gap_to_oracle"] = s["regret_mean"] - oracle.reindex(pd.MultiIndex.from_frame(
        s[["device", "percentile", "dataset"]])).to_numpy()
    s["verified_gap_to_oracle"] = s["verified_regret_mean"] - oracle.reindex(pd.MultiIndex.from_frame(
        s[["device", "percentile", "dataset"]])).to_numpy()
    g = s.groupby(["device", "arm"], sort=False)
    return g.agg(regret_mean=("regret_mean", "mean"), gap_to_oracle=("gap_to_oracle", "mean"),
                 worst_gap=("gap_to_oracle", "max"), violations=("violations", "mean"),
                 verified_gap_to_oracle=("verified_gap_to_oracle", "mean"),
                 latency_measurements=("measurements", "mean"),
                 extra_verify_measurements=("verify_measurements_mean", "mean")).reset_index()


def budget_text(rows: pd.DataFrame, settings: dict) -> str:
    lines = ["latency-budgeted search: ours against the goal", f"goal: {BUDGET_GOAL}",
             "settings: " + json.dumps(settings, default=str), "", "per device and arm (mean over datasets and "
             "budgets; regret in test accuracy points to the best truly feasible arch):",
             budget_overview(rows).round(3).to_string(index=False), "", "per budget:",
             budget_summary(rows).round(3).to_string(index=False)]
    return "\n".join(lines) + "\n"


def budget_html(rows: pd.DataFrame) -> str:
    go = plotly_or_none()
    if go is None:
        return NO_PLOTLY_HTML
    ok = rows[rows["status"].eq("ok")] if "status" in rows else rows.iloc[:0]
    parts = []
    for (device, dataset), part in ok.groupby(["device", "dataset"], sort=False):
        fig = go.Figure()
        for (arm, p), curve in part.groupby(["arm", "percentile"], sort=False):
            mean = curve.groupby("n_trained")["regret"].mean()
            fig.add_trace(go.Scatter(x=mean.index.tolist(), y=mean.tolist(), mode="lines",
                                     name=f"{arm}, L = p{p}"))
        fig.update_layout(title=f"latency-budgeted search, {device}, NB201 {dataset}: regret to the best truly "
                                f"feasible arch (mean over trials)", xaxis_title="trained archs",
                          yaxis_title="regret (test accuracy points)")
        parts.append(fig)
    return figures_page(parts)


def reproduce_budget(*, out_dir, repeats: int = 20, quick: bool = False, workers: int = 1, progress: bool = True,
                     **plan_options) -> pd.DataFrame:
    plan_ = budget_plan(repeats=repeats, quick=quick, **plan_options)
    return run_and_write(plan_, out_dir, workers=workers, progress=progress, outputs={
        "budget.csv": lambda t: budget_summary(t).to_csv(index=False),
        "budget_overview.csv": lambda t: budget_overview(t).to_csv(index=False),
        "budget.txt": lambda t: budget_text(t, plan_.settings),
        "budget.html": budget_html})
