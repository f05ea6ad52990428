"""The paper's accuracy experiments, rerun: Fig 8 (from scratch), Fig 9/18/19 (transfer across the
28 tasks) and Fig 15 (ZCP ablation).

``reproduce_accuracy("fig9", repeats=10, out_dir="repro")`` splits the figure into units of work
(one pretraining and everything that uses it), keeps each unit's rows under ``out_dir/store`` (an
interrupted run resumes; a rerun with the same settings only re-summarises), shows progress, and
writes ``<fig>_trials.csv`` (every trial), ``<fig>.csv`` (the summary), ``<fig>.txt`` (ours beside
the paper's claim) and ``<fig>.html`` (plotly figures).

Every repeat is a true reset: a seed gives new few-shot and source draws and fresh weights.
"""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pandas as pd

from ..data import accuracy as tasks_data
from ..errors import MultipredictError, UnknownNameError
from ..methods import accuracy as protocol
from ..predictors.tasktransfer import AccuracyOptions, scale_labels
from .units import NO_PLOTLY_HTML, Plan, Unit, figures_page, plotly_or_none, run_and_write, unit_key

FIGURES = ("fig8", "fig9", "fig15")
REVISION = 1  # bump when a change alters the rows a unit computes

FIG8_TASK = "nb201/cifar10"
FIG8_SAMPLES = (10, 20, 50, 100, 200, 400)
FIG8_ARMS = ("Vec", "ZCP", "ZCPVec", "BRP-NAS GCN")
FIG9_SAMPLES = (10, 20)
FIG9_ARMS = ("Vec scratch", "ZCP scratch", "ZCP transfer", "ZCP multi-task")
# the multi-task arm's adaptations, all from one pretraining (TaskTransferPredictor.adapt modes)
MULTITASK_ARMS = {"ZCP multi-task": "finetune", "ZCP multi-task ensemble": "ensemble",
                  "ZCP multi-task ensemble+finetune": "ensemble+finetune"}
MULTITASK_REVISION = 2
MULTITASK_COLUMNS = ("multitask", "multitask_ensemble", "multitask_ensemble_finetune")
FIG15_SAMPLES = 100
QUICK_TASKS = ("nb201/cifar10", "nb201/cifar100", "nb301/cifar10", "tnb101_micro/class_scene")
QUICK_OPTIONS = {"epochs": 40, "transfer_epochs": 20}

PAPER_CLAIMS = {
    "fig8": "ZCP matches BRP-NAS's GCN with less than half the samples (NB201 CIFAR-10).",
    "fig9": "Transfer beats Vec from scratch in over 85% of the 28 x 28 task pairs; consistent improvement on "
            "NB201's three and NB301's data-sets.",
    "fig15": "Every proxy contributes; removing the best proxies first degrades the predictor fastest.",
}


def _key(figure: str, **parts) -> str:
    return unit_key(figure, REVISION, **parts)


# --------------------------------------------------------------------------------------------
# unit bodies (module-level: they run in worker processes)


def _fig8_unit(arm: str, seed: int, samples: tuple[int, ...], options: dict) -> list[dict]:
    o = AccuracyOptions(**options)
    proxies = tasks_data.PAPER_PROXIES
    rows = []
    if arm == "BRP-NAS GCN":
        from ..encodings import ArchFeatures, graph_adjacency, graph_features
        from ..predictors import LatencyPredictor

        data = protocol.task_data(FIG8_TASK, "zcp", proxies)
        ids = np.asarray(data.ids, dtype=np.int64)
        X = ArchFeatures(graph_features("nb201", ids), None, "graph", graph_adjacency("nb201"))
        for n in samples:
            train, test = protocol.few_shot(data, n, seed)
            # BRP-NAS's recipe (the latency baseline's): lr 4e-4, batch 128, cosine, L1; epochs as the arms
            model = LatencyPredictor(body="gcn", embedding="none", seed=seed, device="cpu", epochs=o.epochs)
            model.fit(X.subset(train), scale_labels(data.y[train]))
            rows.append({"arm": arm, "samples": n, "seed": seed,
                         **protocol.score(model.predict(X.subset(test)), data.y[test])})
        return rows
    encoding = {"Vec": "vec", "ZCP": "zcp", "ZCPVec": "zcpvec"}[arm]
    data = protocol.task_data(FIG8_TASK, encoding, proxies)
    for n in samples:
        rows.append({"arm": arm, "samples": n, "seed": seed, **protocol.scratch(data, n, seed, o)})
    return rows


def _fig9_scratch_unit(target: str, seed: int, samples: tuple[int, ...], options: dict, proxy_set,
                       arms: tuple[str, ...] = ("Vec scratch", "ZCP scratch")) -> list[dict]:
    o = AccuracyOptions(**options)
    rows = []
    for arm, encoding in (("Vec scratch", "vec"), ("ZCP scratch", "zcp")):
        if arm not in arms:
            continue
        data = protocol.task_data(target, encoding, proxy_set, pool_proxy_set=proxy_set)
        for k in samples:
            rows.append({"arm": arm, "source": "", "target": target, "samples": k, "seed": seed,
                         **protocol.scratch(data, k, seed, o)})
    return rows


def _fig9_transfer_unit(source: str, targets: tuple[str, ...], seed: int, samples: tuple[int, ...], options: dict,
                        proxy_set, fraction: float) -> list[dict]:
    o = AccuracyOptions(**options)
    model = protocol.pretrain([protocol.task_data(source, "zcp", proxy_set)], seed, o, fraction=fraction)
    rows = []
    for target in targets:
        data = protocol.task_data(target, "zcp", proxy_set)
        for k in samples:
            rows.append({"arm": "ZCP transfer", "source": source, "target": target, "samples": k, "seed": seed,
                         **protocol.transfer(model, data, k, seed)})
    return rows


def _fig9_multitask_unit(target: str, sources: tuple[str, ...], seed: int, samples: tuple[int, ...], options: dict,
                         proxy_set, fraction: float) -> list[dict]:
    o = AccuracyOptions(**options)
    model = protocol.pretrain([protocol.task_data(s, "zcp", proxy_set) for s in sources], seed, o, fraction=fraction)
    data = protocol.task_data(target, "zcp", proxy_set)
    return [{"arm": arm, "source": "all others", "target": target, "samples": k, "seed": seed,
             **protocol.transfer(model, data, k, seed, mode)} for k in samples for arm, mode in MULTITASK_ARMS.items()]


def proxy_ranking(task_key: str = FIG8_TASK) -> list[tuple[str, float]]:
    """The paper proxies of a task by |Spearman| with its accuracy over its pool, best first."""
    data = tasks_data.task_table(*task_key.split("/", 1)).dropna(subset=list(tasks_data.PAPER_PROXIES))
    rho = {p: abs(float(data[p].corr(data[tasks_data.ACCURACY], method="spearman"))) for p in tasks_data.PAPER_PROXIES}
    return sorted(rho.items(), key=lambda kv: -kv[1])


def _fig15_unit(order: str, seed: int, samples: int, options: dict, max_removed: int) -> list[dict]:
    o = AccuracyOptions(**options)
    ranked = [p for p, _ in proxy_ranking()]
    if order == "worst first":
        ranked = ranked[::-1]
    pool = protocol.task_data(FIG8_TASK, "zcp", tasks_data.PAPER_PROXIES)
    rows = []
    for removed in range(0, max_removed + 1):
        kept = tuple(p for p in tasks_data.PAPER_PROXIES if p not in ranked[:removed])
        data = protocol.task_data(FIG8_TASK, "zcp", kept, pool_proxy_set=tasks_data.PAPER_PROXIES)
        assert data.ids == pool.ids
        rows.append({"order": order, "removed": removed, "last_removed": ranked[removed - 1] if removed else "",
                     "proxies": len(kept), "samples": samples, "seed": seed,
                     **protocol.scratch(data, samples, seed, o)})
    return rows


# --------------------------------------------------------------------------------------------
# plans


def _options(quick: bool, options: dict | None) -> dict:
    merged = {**(QUICK_OPTIONS if quick else {}), **(options or {})}
    return AccuracyOptions.parse(merged, "accuracy predictor").model_dump()


def plan(figure: str, *, repeats: int = 10, quick: bool = False, options: dict | None = None,
         tasks: list[str] | None = None, samples: tuple[int, ...] | None = None, proxy_set="common",
         source_fraction: float = protocol.SOURCE_FRACTION, seed: int = 0, arms: tuple[str, ...] | None = None,
         sources: list[str] | None = None, targets: list[str] | None = None,
         multitask_repeats: int | None = None) -> Plan:
    """The units of ``figure`` (validated: unknown figures, tasks, arms or budgets raise here).

    fig9: ``tasks`` are both the sources and the targets (default: all 28; quick: 4), or give
    ``sources`` / ``targets`` apart; ``arms`` picks among ``FIG9_ARMS``; ``multitask_repeats``
    runs the multi-task arms (one pretraining on all other tasks per target and repeat: the costly
    part) on the first N repeats only (default: all)."""
    if figure not in FIGURES:
        raise UnknownNameError("accuracy figure", figure, FIGURES)
    if repeats < 1:
        raise MultipredictError(f"repeats={repeats}: run at least one repeat")
    opts = _options(quick, options)
    seeds = range(seed, seed + repeats)
    settings = {"repeats": repeats, "quick": quick, "options": opts, "seed": seed}
    if figure == "fig8":
        samples = tuple(samples or ((10, 50) if quick else FIG8_SAMPLES))
        arms = tuple(arms or FIG8_ARMS)
        bad = [a for a in arms if a not in FIG8_ARMS]
        if bad:
            raise UnknownNameError("fig8 arm", bad[0], FIG8_ARMS)
        pool = len(protocol.task_data(FIG8_TASK, "zcp", tasks_data.PAPER_PROXIES))
        too_big = [n for n in samples if n >= pool]
        if too_big:
            raise MultipredictError(f"samples={too_big[0]} is not below {FIG8_TASK}'s pool of {pool} archs")
        settings.update(task=FIG8_TASK, samples=samples, arms=arms, proxies="all 12 (pool: archs with all 12)")
        units = [Unit(_key("fig8", arm=a, seed=s, samples=samples, options=opts), f"{a} seed {s}",
                      partial(_fig8_unit, a, s, samples, opts)) for s in seeds for a in arms]
        return Plan(figure, units, settings)
    if figure == "fig15":
        n = (samples or (FIG15_SAMPLES,))[0]
        max_removed = 3 if quick else len(tasks_data.PAPER_PROXIES) - 1
        settings.update(task=FIG8_TASK, samples=n, max_removed=max_removed, ranking=proxy_ranking())
        units = [Unit(_key("fig15", order=o, seed=s, samples=n, options=opts, max_removed=max_removed),
                      f"{o} seed {s}", partial(_fig15_unit, o, s, n, opts, max_removed))
                 for s in seeds for o in ("best first", "worst first")]
        return Plan(figure, units, settings)
    # fig9
    targets = list(targets or tasks or (QUICK_TASKS if quick else tasks_data.TASK_KEYS))
    sources = list(sources or tasks or (QUICK_TASKS if quick else tasks_data.TASK_KEYS))
    chosen = list(dict.fromkeys(sources + targets))
    for t in chosen:
        tasks_data.task(t)
    arms = tuple(arms or FIG9_ARMS)
    bad = [a for a in arms if a not in FIG9_ARMS]
    if bad:
        raise UnknownNameError("fig9 arm", bad[0], FIG9_ARMS)
    if not any(s_ != t for s_ in sources for t in targets) and set(arms) & {"ZCP transfer", "ZCP multi-task"}:
        raise MultipredictError(f"no source task differs from a target task (sources {sources}, targets {targets}); "
                                "a task transferred to itself says nothing: pick another source or target")
    samples = tuple(samples or FIG9_SAMPLES)
    if min(samples) < 2:
        raise MultipredictError(f"samples={min(samples)}: an accuracy predictor needs at least 2 labelled archs")
    for t in chosen:
        pool = len(protocol.task_data(t, "zcp", proxy_set))
        if max(samples) >= pool:
            raise MultipredictError(f"samples={max(samples)} is not below task {t}'s pool of {pool} archs; use at most "
                                    f"{pool - 1} samples")
    ps = proxy_set if isinstance(proxy_set, str) else tuple(proxy_set)
    if multitask_repeats is not None and not 0 <= multitask_repeats <= repeats:
        raise MultipredictError(f"multitask_repeats={multitask_repeats} is outside 0..{repeats} (the repeats)")
    settings.update(sources=sources, targets=targets, arms=arms, samples=samples, proxy_set=ps,
                    source_fraction=source_fraction,
                    multitask_repeats=repeats if multitask_repeats is None else multitask_repeats)
    common = dict(samples=samples, options=opts, proxy_set=ps)
    scratch_arms = tuple(a for a in ("Vec scratch", "ZCP scratch") if a in arms)
    units = []
    for s in seeds:
        if scratch_arms:
            for t in targets:
                units.append(Unit(_key("fig9-scratch", target=t, seed=s, arms=scratch_arms, **common),
                                  f"scratch {t} seed {s}",
                                  partial(_fig9_scratch_unit, t, s, samples, opts, ps, scratch_arms)))
        if "ZCP transfer" in arms:
            for src in sources:
                others = tuple(t for t in targets if t != src)
                if others:
                    units.append(Unit(_key("fig9-transfer", source=src, targets=others, seed=s,
                                           fraction=source_fraction, **common), f"transfer from {src} seed {s}",
                                      partial(_fig9_transfer_unit, src, others, s, samples, opts, ps,
                                              source_fraction)))
    for s in list(seeds)[:multitask_repeats]:  # after every seed's cheaper arms: the costly pretrainings last
        if "ZCP multi-task" in arms:
            for t in targets:
                others = tuple(x for x in sources if x != t)
                if others:
                    units.append(Unit(_key("fig9-multitask", target=t, sources=others, seed=s, mt=MULTITASK_REVISION,
                                           fraction=source_fraction, **common), f"multi-task to {t} seed {s}",
                                      partial(_fig9_multitask_unit, t, others, s, samples, opts, ps,
                                              source_fraction)))
    return Plan(figure, units, settings)


# --------------------------------------------------------------------------------------------
# running


# --------------------------------------------------------------------------------------------
# summaries


def _band(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    g = frame.groupby(by, sort=False)["spearman"]
    return g.agg(spearman_mean="mean", spearman_std="std", n="count").reset_index()


def summarise(figure: str, trials: pd.DataFrame) -> pd.DataFrame:
    if figure == "fig8":
        return _band(trials, ["arm", "samples"]).sort_values(["arm", "samples"], kind="stable")
    if figure == "fig15":
        out = _band(trials, ["order", "removed"])
        last = trials.groupby(["order", "removed"], sort=False)["last_removed"].first().reset_index()
        return out.merge(last, on=["order", "removed"]).sort_values(["order", "removed"], kind="stable")
    return _band(trials, ["arm", "source", "target", "samples"])


def fig9_pairs(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per (source, target, k): the transfer arm's mean Spearman beside the target's
    from-scratch arms and the multi-task arm, means over repeats."""
    mean = trials.groupby(["arm", "source", "target", "samples"])["spearman"].mean().reset_index()
    base = mean[mean["source"].isin(["", "all others"])].pivot_table(
        index=["target", "samples"], columns="arm", values="spearman").reset_index()
    pairs = mean[mean["arm"] == "ZCP transfer"].rename(columns={"spearman": "ZCP transfer"}).drop(columns="arm")
    out = pairs.merge(base, on=["target", "samples"], how="left")
    for arm in ("Vec scratch", "ZCP scratch", *MULTITASK_ARMS):
        if arm not in out:
            out[arm] = np.nan
    for column, arm in (("beats_vec_scratch", "Vec scratch"), ("beats_zcp_scratch", "ZCP scratch")):
        out[column] = np.where(out[arm].notna(), (out["ZCP transfer"] > out[arm]).astype(float), np.nan)
    return out


def fig9_targets(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (target, k): each arm's mean Spearman (transfer: the mean and the best over sources),
    and the share of sources whose transfer beats each scratch arm."""
    pairs = fig9_pairs(trials)
    g = pairs.groupby(["target", "samples"])
    out = g.agg(vec_scratch=("Vec scratch", "first"), zcp_scratch=("ZCP scratch", "first"),
                transfer_mean=("ZCP transfer", "mean"), transfer_best=("ZCP transfer", "max"),
                share_beats_vec=("beats_vec_scratch", "mean"), share_beats_zcp=("beats_zcp_scratch", "mean"))
    for arm, column in zip(MULTITASK_ARMS, MULTITASK_COLUMNS):
        out[column] = g[arm].first()
    return out.reset_index()


def fig9_overview(trials: pd.DataFrame) -> pd.DataFrame:
    """Per k: how many pairs and targets, the share of pairs where single-source ZCP transfer
    beats Vec / ZCP from scratch, and on how many targets each transfer arm beats ZCP from scratch
    (means over repeats)."""
    pairs, targets = fig9_pairs(trials), fig9_targets(trials)
    rows = []
    for k, part in pairs.groupby("samples"):
        t = targets[targets["samples"] == k]
        rows.append({"samples": k, "pairs": len(part), "targets": len(t),
                     "transfer_beats_vec_scratch": part["beats_vec_scratch"].mean(),
                     "transfer_beats_zcp_scratch": part["beats_zcp_scratch"].mean(),
                     **{f"targets_{c}_beats_zcp": int((t[c] > t["zcp_scratch"]).sum()) for c in MULTITASK_COLUMNS},
                     **{f"targets_{c}_beats_vec": int((t[c] > t["vec_scratch"]).sum()) for c in MULTITASK_COLUMNS},
                     "targets_best_source_beats_zcp": int((t["transfer_best"] > t["zcp_scratch"]).sum()),
                     "targets_mean_source_beats_zcp": int((t["transfer_mean"] > t["zcp_scratch"]).sum()),
                     "mean_vec_scratch": t["vec_scratch"].mean(), "mean_zcp_scratch": t["zcp_scratch"].mean(),
                     "mean_transfer": t["transfer_mean"].mean(), "mean_transfer_best": t["transfer_best"].mean(),
                     **{f"mean_{c}": t[c].mean() for c in MULTITASK_COLUMNS}})
    return pd.DataFrame(rows)


def comparison_text(figure: str, trials: pd.DataFrame, settings: dict) -> str:
    lines = [f"{figure}: ours beside the paper's claim", f"paper: {PAPER_CLAIMS[figure]}",
             "settings: " + json.dumps({k: v for k, v in settings.items() if k != "ranking"}, default=str), ""]
    if figure == "fig8":
        table = summarise(figure, trials).pivot(index="samples", columns="arm", values="spearman_mean")
        lines.append(table.round(3).to_string())
        if {"ZCP", "BRP-NAS GCN"} <= set(table.columns):
            lines.append("")
            for n, value in table["BRP-NAS GCN"].items():
                reach = table.index[table["ZCP"] >= value]
                lines.append(f"BRP-NAS GCN at {n} samples (rho {value:.3f}): ZCP reaches it at "
                             + (f"{reach.min()} samples" if len(reach) else "no budget tried"))
    elif figure == "fig15":
        table = summarise(figure, trials).pivot(index="removed", columns="order", values="spearman_mean")
        lines.append("proxy ranking (|Spearman| with accuracy over the pool): "
                     + ", ".join(f"{p} {r:.2f}" for p, r in settings.get("ranking", [])))
        lines.append(table.round(3).to_string())
    else:
        pairs = fig9_pairs(trials)
        targets = fig9_targets(trials)
        for k, part in pairs.groupby("samples"):
            lines.append(f"k = {k}: ZCP transfer beats Vec from scratch in {part['beats_vec_scratch'].mean():.0%} "
                         f"of {len(part)} pairs (paper: over 85%), ZCP from scratch in "
                         f"{part['beats_zcp_scratch'].mean():.0%}")
            t = targets[targets["samples"] == k]
            for c in MULTITASK_COLUMNS:
                if t[c].notna().any():
                    lines.append(f"  {c} ahead of ZCP from scratch on {(t[c] > t['zcp_scratch']).sum()} of "
                                 f"{len(t)} targets (mean rho {t[c].mean():.3f} vs {t['zcp_scratch'].mean():.3f})")
            lines.append(f"  single-source transfer ahead of ZCP from scratch on "
                         f"{(t['transfer_mean'] > t['zcp_scratch']).sum()} of {len(t)} targets averaged over sources, "
                         f"{(t['transfer_best'] > t['zcp_scratch']).sum()} with the best source (chosen after the fact)")
        lines.append("")
        lines.append(targets.round(3).to_string(index=False))
    return "\n".join(lines) + "\n"


def figures_html(figure: str, trials: pd.DataFrame) -> str:
    go = plotly_or_none()
    if go is None:
        return NO_PLOTLY_HTML
    from plotly.subplots import make_subplots

    parts = []
    if figure in ("fig8", "fig15"):
        x, series = ("samples", "arm") if figure == "fig8" else ("removed", "order")
        summary = summarise(figure, trials)
        fig = go.Figure()
        for name, part in summary.groupby(series, sort=False):
            fig.add_trace(go.Scatter(x=part[x], y=part["spearman_mean"], name=str(name), mode="lines+markers",
                                     error_y={"type": "data", "array": part["spearman_std"].fillna(0)}))
        fig.update_layout(title=f"{figure}: Spearman on unseen archs", xaxis_title=x, yaxis_title="Spearman",
                          xaxis_type="log" if figure == "fig8" else "linear")
        parts.append(fig)
    else:
        pairs = fig9_pairs(trials)
        order = [t for t in tasks_data.TASK_KEYS if t in set(pairs["target"]) | set(pairs["source"])]
        for k, part in pairs.groupby("samples"):
            fig = make_subplots(rows=1, cols=3, subplot_titles=("ZCP transfer (Spearman)",
                                                                "transfer - Vec from scratch",
                                                                "transfer - ZCP from scratch"))
            for col, value in enumerate([part["ZCP transfer"], part["ZCP transfer"] - part["Vec scratch"],
                                         part["ZCP transfer"] - part["ZCP scratch"]], start=1):
                grid = part.assign(v=value).pivot(index="source", columns="target", values="v").reindex(
                    index=order, columns=order)
                fig.add_trace(go.Heatmap(z=grid.to_numpy(), x=order, y=order, zmid=None if col == 1 else 0, colorscale="Viridis" if col == 1 else "RdBu",
                                         showscale=col != 1), row=1, col=col)
            fig.update_layout(title=f"fig9, k = {k}: rows source task, columns target task", height=700,
                              width=2000)
            parts.append(fig)
    return figures_page(parts)


def reproduce_accuracy(figure: str, *, out_dir, repeats: int = 10, quick: bool = False, workers: int = 1,
                       progress: bool = True, **plan_options) -> pd.DataFrame:
    """Run (or resume) ``figure`` into ``out_dir``; returns the trials."""
    plan_ = plan(figure, repeats=1 if quick and repeats == 10 else repeats, quick=quick, **plan_options)

    def prepare(trials: pd.DataFrame) -> None:
        # every row says which proxies its ZCP features used (fig9's option; fig8/15 use all 12)
        trials["proxy_set"] = str(plan_.settings.get("proxy_set", "all 12"))

    outputs = {f"{figure}.csv": lambda t: summarise(figure, t).to_csv(index=False)}
    if figure == "fig9":
        outputs.update({"fig9_pairs.csv": lambda t: fig9_pairs(t).to_csv(index=False),
                        "fig9_targets.csv": lambda t: fig9_targets(t).to_csv(index=False),
                        "fig9_overview.csv": lambda t: fig9_overview(t).to_csv(index=False)})
    outputs.update({f"{figure}.txt": lambda t: comparison_text(figure, t, plan_.settings),
                    f"{figure}.html": lambda t: figures_html(figure, t)})
    return run_and_write(plan_, out_dir, workers=workers, progress=progress, outputs=outputs, prepare=prepare)
