"""How sure is an onboarding estimate? Candidate quality estimates against the truth (issue 21).

For each HELP device of a space that the default split's training devices do not include (18 per
space: the meta-valid, meta-test and the other HELP devices, none seen in pretraining), and each
seed: draw ``--samples`` of its archs at random, add the device to the predictor pretrained on the
9 training devices, and record, beside the true Spearman on every other arch:

- ``cv``: today's 5-fold cross-validated Spearman (onboard's printed estimate);
- ``oob``: the out-of-bag pooled-pair estimate (`onboard.bootstrap_estimate`) and its members' spread;
- ``eq1``: the closest training device's Spearman with the k measurements (Eq. 1's correlation);
- ``insample``: the fitted predictor's Spearman on its own k archs.

    python benchmarks/calibration.py --space fbnet --seeds 5 --csv benchmarks/results/calibration_fbnet.csv
"""

from __future__ import annotations

import argparse
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
        train, devices = train[:2], devices[:1]
        options.update(source_samples=200, source_epochs=3, target_epochs=5)
    predictor = BenchmarkTransfer(args.space, train, seed=0, **options).fit()
    pool = predictor.pool_ids_
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
            target = predictor.add_device("target", ids, lat)
            unseen = np.setdiff1d(pool, ids)
            true = stats.spearmanr(predictor.predict("target", unseen), truth[unseen]).statistic
            insample = stats.spearmanr(predictor.predict("target", ids), lat).statistic
            del predictor.targets_["target"]
            rows.append({"space": args.space, "device": device, "seed": seed, "samples": args.samples,
                         "true": round(float(true), 4), "cv": round(float(stats.spearmanr(held, lat).statistic), 4),
                         "oob": round(boot["spearman"], 4), "oob_member_sd": round(float(np.std(boot["member_spearman"])), 4),
                         "oob_pairs": boot["pairs"], "eq1": round(float(max(target.correlations.values())), 4),
                         "closest": target.closest_source, "insample": round(float(insample), 4),
                         "seconds": round(time.perf_counter() - started, 1)})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", choices=["nb201", "fbnet"], default="fbnet")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--csv", default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.members = 1, 3
    started = time.perf_counter()
    table = run(args)
    for name in ("cv", "oob", "eq1", "insample"):
        error = table[name] - table["true"]
        print(f"{name:9s} mean error {error.mean():+.3f}  MAE {error.abs().mean():.3f}  "
              f"corr with truth {table[name].corr(table['true']):.2f}")
    print(f"{time.perf_counter() - started:.0f} s")
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
