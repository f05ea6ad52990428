"""Which archs to measure: selection strategies for onboarding a device, compared (issue 21).

For each test device of a space's default split (HELP's meta-test devices), and each seed: pick k
archs with each strategy of `multipredict.suggest` (the profile is built from the split's training
devices only: the test device's own latencies are never looked at), add the device to the
transfer predictor pretrained on the training devices (one pretraining, cached), and score the
prediction on every pool arch the strategy did not pick. Random at 2k is the reference the issue
sets: each space's default strategy at k should match it. ``active`` starts from k/2 stratified archs and
asks for the other k/2 sequentially.

    python benchmarks/selection.py --space nb201 --seeds 10 --csv benchmarks/results/selection_nb201.csv
    python benchmarks/selection.py --space fbnet --seeds 10 --csv benchmarks/results/selection_fbnet.csv

A trial depends only on its device, strategy, k and seed (not on what ran before it in the process),
so seeds can be split over processes (``--first-seed``) and their ``--trials`` files summarised
together with ``--from-trials``.

``--draws N`` asks instead how much room a choice of archs has: per test device, N random draws of
k and of 2k archs, each onboarded as above, with what Eq. 1 made of it (the source device it copied
the embedding from, against the source device that ranks the whole pool most like the test device)
and what fine-tuning trained (``target_train=auto``: the body too when no source correlates
>= ``freeze_above`` on the draw). The spread of the k-draws (median, 10th percentile, best) is
what a selection rule could gain at most by picking good draws without measuring them:

    python benchmarks/selection.py --space nb201 --draws 30 --csv benchmarks/results/selection_draws_nb201.csv

``--copy-from closest`` asks what Eq. 1's pick costs each strategy: every trial starts the test
device from the embedding row of the training device that ranks the whole pool most like it (known
only because the benchmark has the device's whole table), instead of the row Eq. 1 picks from the k
measurements. Its trials carry ``start=closest`` and summarise beside the ordinary ones
(``start=eq1``). ``--starts N`` fine-tunes each test device from the N source rows Eq. 1 ranks first
and averages their predictions (the estimator's ``eq1_starts``); its trials carry ``start=topN``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from multipredict import suggest, tasks
from multipredict.predictors.fewshot import source_correlations
from multipredict.methods.protocol import device_latency
from multipredict.methods.transfer import BenchmarkTransfer

STRATEGIES = suggest.STRATEGIES


def test_devices(space: str, train: list[str], which: str) -> list[str]:
    """``meta-test``: the split's test devices (HELP's); ``held-out``: every HELP device of the space
    the training devices do not include (the calibration benchmark's 18 per space)."""
    if which == "meta-test":
        return list(tasks.device_set(f"{space}-default").test)
    from multipredict.data import help

    return [d for d in help.devices(space) if d not in train]


def setup(args) -> tuple[list[str], list[str], BenchmarkTransfer, np.ndarray]:
    """The training and test devices, the predictor pretrained on the training devices (one, cached)
    and its pool; ``--quick`` shrinks all of it."""
    torch.set_num_threads(1)
    train = list(tasks.device_set(f"{args.space}-default").train)
    test = test_devices(args.space, train, args.devices)
    options = {}
    if args.quick:
        train, test = train[:2], test[:1]
        options.update(source_samples=200, source_epochs=3, target_epochs=5)
    if args.starts > 1:
        options.update(eq1_starts=args.starts)
    predictor = BenchmarkTransfer(args.space, train, seed=0, **options).fit()
    return train, test, predictor, predictor.pool_ids_


def whole_pool_closest(space: str, device: str, train: list[str], pool: np.ndarray) -> tuple[str, dict[str, float]]:
    """The training device whose latencies rank the whole pool most like ``device`` (Eq. 1 with every
    arch measured), and each training device's Spearman with it over the pool."""
    truth = device_latency(space, device)
    whole = source_correlations(truth[pool], {d: device_latency(space, d)[pool] for d in train})
    return max(whole, key=whole.get), whole


def start_label(args) -> str:
    """How a trial's test device starts: ``eq1`` (Eq. 1's pick, as for a user), ``closest`` or ``topN``."""
    return f"top{args.starts}" if args.starts > 1 else args.copy_from


def run(args) -> pd.DataFrame:
    train, test, predictor, pool = setup(args)
    strategies = (args.strategies or ",".join(STRATEGIES)).split(",")
    rows = []
    for device in test:
        truth = device_latency(args.space, device)
        copy_from = whole_pool_closest(args.space, device, train, pool)[0] if args.copy_from == "closest" else None
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            plans = [(s, args.k) for s in strategies] + [("random", 2 * args.k)]
            for strategy, k in plans:
                started = time.perf_counter()
                if strategy == "active":
                    first = suggest.suggest(args.space, k // 2, strategy="stratified", candidates=pool,
                                            sources=train, seed=seed)
                    more = suggest.suggest(args.space, k - len(first), strategy="active", candidates=pool,
                                           measured=first, measured_ms=truth[first], sources=train, seed=seed,
                                           predictor=predictor, ensemble=args.ensemble)
                    chosen = first + more
                else:
                    chosen = suggest.suggest(args.space, k, strategy=strategy, candidates=pool, sources=train,
                                             seed=seed, predictor=predictor)
                name = f"sel_{device}"
                target = predictor.add_device(name, chosen, truth[chosen], copy_from=copy_from)
                unseen = np.setdiff1d(pool, chosen)
                rho = stats.spearmanr(predictor.predict(name, unseen), truth[unseen]).statistic
                predictor.targets_.pop(name, None)
                rows.append({"space": args.space, "device": device, "strategy": strategy, "k": k, "seed": seed,
                             "start": start_label(args), "source": target.closest_source,
                             "spearman": round(float(rho), 4), "seconds": round(time.perf_counter() - started, 2)})
                print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def draws(args) -> pd.DataFrame:
    """Every trial of ``--draws``: device, k, draw, Spearman, Eq. 1's pick and how close it is."""
    train, test, predictor, pool = setup(args)
    rows = []
    for device in test:
        truth = device_latency(args.space, device)
        # the Spearman of each source device with the test device over the whole pool: what Eq. 1 estimates
        whole = whole_pool_closest(args.space, device, train, pool)[1]
        for k in (args.k, 2 * args.k):
            for draw in range(args.draws):
                chosen = suggest.suggest(args.space, k, strategy="random", candidates=pool, sources=train,
                                         seed=1000 + draw)
                target = predictor.add_device("draw", chosen, truth[chosen])
                unseen = np.setdiff1d(pool, chosen)
                rho = stats.spearmanr(predictor.predict("draw", unseen), truth[unseen]).statistic
                predictor.targets_.pop("draw", None)
                rows.append({"device": device, "k": k, "draw": draw, "spearman": float(rho),
                             "eq1_source": target.closest_source, "eq1_source_rho": whole[target.closest_source],
                             "best_source_rho": max(whole.values()), "trained": target.fine_tuned})
            print(device, k, f"{np.mean([r['spearman'] for r in rows[-args.draws:]]):.4f}", flush=True)
    return pd.DataFrame(rows)


def draws_summary(trials: pd.DataFrame) -> pd.DataFrame:
    """Per device and k: the draws' Spearman (mean, median, 10th percentile, best), the share of
    draws that reach the mean of the 2k draws (what a rule choosing k archs must hit every time to
    match 2k random ones), how often Eq. 1 copied the best source device, the mean Spearman when it
    did and when it did not, and how often fine-tuning trained every weight."""
    right = np.isclose(trials["eq1_source_rho"], trials["best_source_rho"])
    frame = trials.assign(right=right, all=trials["trained"].eq("all"))
    double = frame.groupby(["device", "k"]).spearman.mean()
    out = []
    for (device, k), group in frame.groupby(["device", "k"], sort=False):
        goal = double.get((device, 2 * k), np.nan)
        out.append({"device": device, "k": k, "mean": group.spearman.mean(), "median": group.spearman.median(),
                    "p10": group.spearman.quantile(0.1), "best": group.spearman.max(),
                    "reach_2k_mean": (group.spearman >= goal).mean() if np.isfinite(goal) else np.nan,
                    "eq1_best_source": group.right.mean(),
                    "mean_eq1_best": group.spearman[group.right].mean(),
                    "mean_eq1_other": group.spearman[~group.right].mean(),
                    "trains_all": group["all"].mean()})
    return pd.DataFrame(out)


def read_trials(paths) -> pd.DataFrame:
    """Trials written by ``--trials``, concatenated; a trial run twice (random at 2k comes with every
    run) is kept once, after checking that both runs scored it the same."""
    trials = pd.concat([pd.read_csv(path) for path in paths], ignore_index=True)
    # trials from before --copy-from started from Eq. 1's pick
    trials["start"] = trials["start"].fillna("eq1") if "start" in trials.columns else "eq1"
    key = [c for c in ("space", "device", "strategy", "start", "k", "seed") if c in trials.columns]
    spread = trials.groupby(key).spearman.agg(["min", "max"])
    differ = spread[spread["max"] - spread["min"] > 0]
    if len(differ):
        raise SystemExit(f"{len(differ)} trials were scored differently in different files (e.g. "
                         f"{dict(zip(key, differ.index[0]))}); summarise runs of one code revision")
    return trials.drop_duplicates(key).reset_index(drop=True)


def summary(trials: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per device (and their mean): each strategy's mean Spearman over the seeds, one column per
    strategy@k (``strategy@k closest`` for trials started from the whole-pool closest device)."""
    start = trials["start"].map(lambda s: "" if s == "eq1" else f" {s}")  # every run and read_trials set it
    label = trials["strategy"] + "@" + trials["k"].astype(str) + start
    table = trials.assign(arm=label).pivot_table(index="device", columns="arm", values="spearman", aggfunc="mean")
    table.loc["mean"] = table.mean()
    return table.reset_index()


def against_random(trials: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per strategy at k: its mean Spearman over devices (of every space in ``trials``) beside
    random's at k and 2k, and on how many devices it is at least level with random at k, below it
    by more than one and two standard errors of the difference (of the two means over the seeds),
    and at least level with random at 2k."""
    if "start" in trials.columns:  # strategies as they run for a user: from Eq. 1's pick
        trials = trials[trials["start"].eq("eq1")]
    keys = ["strategy", "k"] + (["space"] if "space" in trials.columns else []) + ["device"]
    stats_ = trials.groupby(keys).spearman.agg(["mean", "var", "count"])
    base, double = stats_.loc[("random", k)], stats_.loc[("random", 2 * k)]
    out = []
    for strategy in trials.loc[trials["k"].eq(k) & trials["strategy"].ne("random"), "strategy"].unique():
        arm = stats_.loc[(strategy, k)]
        gap = arm["mean"] - base["mean"]
        se = np.sqrt(arm["var"] / arm["count"] + base["var"] / base["count"])
        out.append({"strategy": f"{strategy}@{k}", "devices": len(arm), "mean": arm["mean"].mean(),
                    f"random@{k}": base["mean"].mean(), f"random@{2 * k}": double["mean"].mean(),
                    f"level_with_random@{k}": int((gap >= 0).sum()), "below_by_1se": int((gap < -se).sum()),
                    "below_by_2se": int((gap < -2 * se).sum()),
                    f"level_with_random@{2 * k}": int((arm["mean"] >= double["mean"]).sum())})
    return pd.DataFrame(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", choices=["nb201", "fbnet"], default="nb201")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--devices", choices=["meta-test", "held-out"], default="meta-test",
                        help="test devices: HELP's meta-test devices of the split, or every HELP device its 9 "
                             "training devices leave out")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--strategies", default=None,
                        help="comma-separated (default: all); with --from-trials, the ones to summarise "
                             "(random at k and 2k always)")
    parser.add_argument("--draws", type=int, default=0, help="instead of the strategies: N random draws of k and "
                                                                "2k archs per device, and their spread")
    parser.add_argument("--ensemble", type=int, default=5, help="active: fine-tunes in the ensemble")
    parser.add_argument("--copy-from", choices=["eq1", "closest"], default="eq1",
                        help="the embedding row a test device starts from: Eq. 1's pick from the k archs, or the "
                             "training device closest over the whole pool (a diagnostic: what Eq. 1's pick costs)")
    parser.add_argument("--starts", type=int, default=1,
                        help="fine-tune each test device from the N source rows Eq. 1 ranks first and average the "
                             "predictions (eq1_starts; 1: Eq. 1's pick alone)")
    parser.add_argument("--csv", default=None, help="write the per-device summary here")
    parser.add_argument("--trials", default=None, help="write every trial (device, strategy, k, seed) here")
    parser.add_argument("--from-trials", nargs="+", default=None, metavar="CSV",
                        help="summarise trials written by --trials (runs over different seeds, concatenated) "
                             "instead of running any")
    parser.add_argument("--against-random", action="store_true",
                        help="with --from-trials: per strategy, on how many devices it is level with or below "
                             "random at k (by one and two standard errors) and level with random at 2k")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 training devices, 1 test device, "
                                                             "few epochs")
    args = parser.parse_args(argv)
    if args.starts < 1 or (args.starts > 1 and args.copy_from != "eq1"):
        parser.error(f"--starts {args.starts}: give N >= 1, and N > 1 only with Eq. 1's pick (--copy-from eq1)")
    if args.quick:
        args.seeds, args.k, args.ensemble, args.draws = 1, 10, 2, min(args.draws, 3)
    started = time.perf_counter()
    if args.from_trials:
        trials = read_trials(args.from_trials)
        if args.strategies:
            trials = trials[trials["strategy"].isin(args.strategies.split(",") + ["random"])]
        table = against_random(trials, args.k) if args.against_random else summary(trials, args.k)
    elif args.draws:
        trials = draws(args)
        table = draws_summary(trials)
    else:
        trials = run(args)
        table = summary(trials, args.k)
    print(table.to_string(index=False, float_format="{:.3f}".format))
    print(f"{time.perf_counter() - started:.0f} s")
    if args.csv:
        path = Path(args.csv)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.round(4).to_csv(path, index=False)
    if args.trials:
        Path(args.trials).parent.mkdir(parents=True, exist_ok=True)
        trials.to_csv(args.trials, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
