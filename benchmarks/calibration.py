"""How sure is an onboarding estimate? Candidate quality estimates against the truth (issue 21).

For each HELP device of a space that the default split's training devices do not include (18 per
space: the meta-valid, meta-test and the other HELP devices, none seen in pretraining), and each
seed: draw ``--samples`` of its archs at random, add the device to the predictor pretrained on the
9 training devices, and record, beside the true Spearman on every other arch:

- ``cv``: today's 5-fold cross-validated Spearman (onboard's printed estimate);
- ``oob``: the out-of-bag pooled-pair estimate (`onboard.bootstrap_estimate`) and its members' spread;
- ``eq1``: the closest training device's Spearman with the k measurements (Eq. 1's correlation);
- ``insample``: the fitted predictor's Spearman on its own k archs;
- ``true_plus10``: the true Spearman after 10 more random archs (what measuring more would gain).

``true`` and ``true_plus10`` score the device's predictor as ``onboard`` fits it
(`onboard.ONBOARD_STARTS` starts, column ``starts``); ``true_one_start`` scores its first start
alone, the paper's predictor (Eq. 1's pick), bit for bit. The features stay one-start fits, as in
``onboard``.

With ``--pretrain halves`` the held-out devices are cut into two halves and each half is scored
with the predictor pretrained on the training devices **plus the other half** (18 source devices
for NB201 and FBNet instead of 9): closer to ``onboard``'s default, which pretrains on every public
device. ``--check FILE`` scores a fitted calibration (the JSON ``onboard`` reads) on the rows: its
error and its interval's coverage where the pretraining differs from the one it was fitted on.

    python benchmarks/calibration.py --space fbnet --seeds 5 --csv benchmarks/results/calibration_fbnet.csv
    python benchmarks/calibration.py --space nb201 --seeds 3 --pretrain halves --check data/calibration/onboard_nb201.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from multipredict import onboard, tasks
from multipredict.data import help
from multipredict.methods.protocol import device_latency
from multipredict.methods.transfer import BenchmarkTransfer


def run(args) -> pd.DataFrame:
    torch.set_num_threads(1)
    split = tasks.device_set(f"{args.space}-default")
    train = list(split.train)
    devices = [d for d in help.devices(args.space) if d not in train]
    options = {}
    if args.quick:
        train, devices = train[:2], devices[:2 if args.pretrain == "halves" else 1]
        options.update(source_samples=200, source_epochs=3, target_epochs=5)
    if args.pretrain == "split":
        groups = [(train, devices)]
    else:  # each half scored with the training devices and the other half as sources
        halves = [devices[0::2], devices[1::2]]
        groups = [(train + halves[1 - i], halves[i]) for i in range(2)]
    rows = []
    for sources, scored in groups:
        predictor = BenchmarkTransfer(args.space, sources, seed=0, **options).fit()
        rows += _score(args, predictor, scored, len(sources))
    return pd.DataFrame(rows)


def _score(args, predictor, devices, n_sources: int) -> list[dict]:
    pool = predictor.pool_ids_
    starts = onboard.final_starts(predictor, {})  # the onboarded device's predictor, as `onboard` fits it
    rows = []
    for device in devices:
        truth = device_latency(args.space, device)
        for seed in range(args.seeds):
            started = time.perf_counter()
            rng = np.random.default_rng([seed, len(device), 7])
            ids = rng.choice(pool, size=args.samples, replace=False)
            lat = truth[ids]
            held = np.empty(len(ids))
            for k, test in enumerate(onboard._folds(len(ids), 5, seed)):
                train_rows = np.setdiff1d(np.arange(len(ids)), test)
                predictor.add_device(f"cv{k}", ids[train_rows], lat[train_rows])
                held[test] = predictor.predict(f"cv{k}", ids[test])
                del predictor.targets_[f"cv{k}"]
            boot = onboard.bootstrap_estimate(predictor, device, ids, lat, members=args.members, seed=seed)
            target = predictor.add_device("target", ids, lat, starts=starts)
            unseen = np.setdiff1d(pool, ids)
            true = stats.spearmanr(predictor.predict("target", unseen), truth[unseen]).statistic
            insample = stats.spearmanr(predictor.predict("target", ids), lat).statistic
            # the first start alone is the one-start predictor (Eq. 1's pick; the paper's), bit for bit
            predictor.targets_["target"] = dataclasses.replace(target, others=[])
            true_one_start = stats.spearmanr(predictor.predict("target", unseen), truth[unseen]).statistic
            del predictor.targets_["target"]
            more = np.concatenate([ids, rng.choice(np.setdiff1d(pool, ids), size=10, replace=False)])
            predictor.add_device("plus10", more, truth[more], starts=starts)
            rest = np.setdiff1d(pool, more)
            true_plus10 = stats.spearmanr(predictor.predict("plus10", rest), truth[rest]).statistic
            del predictor.targets_["plus10"]
            rows.append({"space": args.space, "device": device, "seed": seed, "samples": args.samples,
                         "true": round(float(true), 4), "true_one_start": round(float(true_one_start), 4),
                         "starts": starts, "cv": round(float(stats.spearmanr(held, lat).statistic), 4),
                         "oob": round(boot["spearman"], 4), "oob_member_sd": round(float(np.std(boot["member_spearman"])), 4),
                         "oob_pairs": boot["pairs"], "eq1": round(float(max(target.correlations.values())), 4),
                         "closest": target.closest_source, "insample": round(float(insample), 4),
                         "true_plus10": round(float(true_plus10), 4), "sources": n_sources,
                         "seconds": round(time.perf_counter() - started, 1)})
            print(rows[-1], flush=True)
    return rows


FEATURES = ("cv", "oob", "eq1")


def check(table: pd.DataFrame, calibration: dict) -> dict:
    """A fitted calibration scored on ``table``'s rows, applied by ``onboard.quality_estimate`` (what
    ``onboard`` prints): the estimate's mean absolute error and how often its interval covers the truth."""
    space = table["space"].iloc[0]
    rated = [onboard.quality_estimate(space, {"spearman": r.oob}, r.eq1, int(calibration["samples"]), calibration,
                                      cv=r.cv) for r in table.itertuples()]
    estimate, low, high = (np.array([q[f"spearman_{part}"] for q in rated]) for part in ("estimate", "low", "high"))
    truth = table["true"].to_numpy(float)
    return {"rows": len(table), "devices": int(table["device"].nunique()), "mae": float(np.mean(np.abs(estimate - truth))),
            "max_error": float(np.max(np.abs(estimate - truth))), "level": float(calibration["level"]),
            "coverage": float(np.mean((truth >= low) & (truth <= high))), "mean_true": float(truth.mean()),
            "mean_estimate": float(estimate.mean())}


def fit(table: pd.DataFrame, features=FEATURES, level: float = 0.8) -> dict:
    """The onboarding estimate's calibration: least squares ``true ~ 1 + features``, the residual
    quantiles of a ``level`` interval, the gain of 10 more archs ``~ 1 + (1 - estimate)``, and the
    same rule's leave-one-device-out error and coverage (what a device never seen would get)."""
    def design(d):
        return np.column_stack([np.ones(len(d))] + [d[f].to_numpy(float) for f in features])

    def rule(d):
        beta = np.linalg.lstsq(design(d), d["true"].to_numpy(float), rcond=None)[0]
        residual = d["true"].to_numpy(float) - design(d) @ beta
        return beta, np.quantile(residual, [(1 - level) / 2, (1 + level) / 2])

    beta, (q_low, q_high) = rule(table)

    def leave_one_device_out(at_level):
        nonlocal level
        saved, level = level, at_level
        errors, covered, widths = [], [], []
        for device in table["device"].unique():
            train, test = table[table["device"] != device], table[table["device"] == device]
            b, (lo, hi) = rule(train)
            estimate = np.minimum(design(test) @ b, 1.0)
            truth = test["true"].to_numpy(float)
            errors += list(np.abs(estimate - truth))
            covered += list((truth >= np.minimum(estimate + lo, 1)) & (truth <= np.minimum(estimate + hi, 1)))
            widths += list(np.minimum(estimate + hi, 1) - np.minimum(estimate + lo, 1))
        level = saved
        return errors, covered, widths

    reliability = {str(p): float(np.mean(leave_one_device_out(p)[1])) for p in (0.5, 0.8, 0.9)}
    errors, covered, widths = leave_one_device_out(level)
    gain = (table["true_plus10"] - table["true"]).to_numpy(float)
    gain_beta = np.linalg.lstsq(np.column_stack([np.ones(len(table)), 1 - design(table) @ beta]), gain,
                                rcond=None)[0]
    starts = int(table["starts"].iloc[0]) if "starts" in table else 1  # rows before the column: one start
    return {"space": str(table["space"].iloc[0]), "samples": int(table["samples"].iloc[0]), "starts": starts,
            "features": list(features),
            "coef": [float(v) for v in beta], "level": level, "residual_low": float(q_low),
            "residual_high": float(q_high), "gain_coef": [float(v) for v in gain_beta],
            "devices": sorted(table["device"].unique().tolist()), "rows": len(table),
            "leave_one_device_out": {"mae": float(np.mean(errors)), "max_error": float(np.max(errors)),
                                     "coverage": float(np.mean(covered)), "mean_width": float(np.mean(widths)),
                                     "reliability": reliability}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", choices=["nb201", "fbnet"], default="fbnet")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--csv", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--from-csv", default=None, help="skip the runs: read a CSV this script wrote earlier")
    parser.add_argument("--reliability", default=None, help="write the reliability table (CSV): each estimate's "
                                                           "error, the calibrated interval's coverage at 50/80/90%%")
    parser.add_argument("--pretrain", choices=["split", "halves"], default="split",
                        help="split: pretrain on the default split's training devices; halves: on those plus the "
                             "other half of the held-out devices (see above)")
    parser.add_argument("--check", default=None, metavar="JSON",
                        help="score this fitted calibration on the rows (error, coverage of its interval)")
    parser.add_argument("--check-csv", default=None, help="write --check's result here (one row)")
    parser.add_argument("--fit", default=None, help="write the calibration (JSON) onboard reads, e.g. "
                                                    "data/calibration/onboard_fbnet.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.members = 1, 3
    started = time.perf_counter()
    table = pd.read_csv(args.from_csv) if args.from_csv else run(args)
    for name in ("cv", "oob", "eq1", "insample"):
        error = table[name] - table["true"]
        print(f"{name:9s} mean error {error.mean():+.3f}  MAE {error.abs().mean():.3f}  "
              f"corr with truth {table[name].corr(table['true']):.2f}")
    print(f"{time.perf_counter() - started:.0f} s")
    if args.csv and not args.from_csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv, index=False)
    if args.check:
        import json

        result = check(table, json.loads(Path(args.check).read_text()))
        print(f"{args.check} on {result['rows']} rows ({result['devices']} devices): MAE {result['mae']:.3f} (max "
              f"{result['max_error']:.3f}), its {result['level']:.0%} interval covers {result['coverage']:.0%}; mean "
              f"true {result['mean_true']:.3f}, mean estimate {result['mean_estimate']:.3f}")
        if args.check_csv:
            Path(args.check_csv).parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame([{"space": table["space"].iloc[0],
                           "sources": int(table["sources"].max()) if "sources" in table else None, **result}]
                         ).round(3).to_csv(args.check_csv, index=False)
    if len(table["device"].unique()) > 1:
        calibration = fit(table)
        loo = calibration["leave_one_device_out"]
        print(f"calibrated rule (true ~ 1 + {' + '.join(calibration['features'])}), leave one device out: MAE "
              f"{loo['mae']:.3f} (max {loo['max_error']:.3f}), {calibration['level']:.0%} interval covers "
              f"{loo['coverage']:.0%}, mean width {loo['mean_width']:.3f}")
        if args.reliability:
            rows = [{"space": calibration["space"], "estimate": name, "mae": float((table[name] - table["true"]).abs().mean()),
                     "max_error": float((table[name] - table["true"]).abs().max())} for name in ("cv", "oob", "eq1")]
            rows.append({"space": calibration["space"], "estimate": "calibrated (leave one device out)",
                         "mae": loo["mae"], "max_error": loo["max_error"],
                         **{f"covers_{float(p):.0%}": c for p, c in loo["reliability"].items()},
                         "width_80%": loo["mean_width"]})
            Path(args.reliability).parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).round(3).to_csv(args.reliability, index=False)
        if args.fit:
            import json
            import subprocess

            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                    cwd=Path(__file__).parent).stdout.strip() or None
            calibration.update(source=args.from_csv or args.csv, commit=commit,
                               command="python " + " ".join(["benchmarks/calibration.py", *(argv or sys.argv[1:])]))
            Path(args.fit).parent.mkdir(parents=True, exist_ok=True)
            Path(args.fit).write_text(json.dumps(calibration, indent=1) + "\n")
            print(f"wrote {args.fit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
