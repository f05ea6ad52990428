"""How reliably does Eq. 1 pick the closest source device from a few samples? (no training)

For each test device of HELP's NB201 / FBNet splits: the source device that is closest over the
whole space (Spearman on every arch), and over ``--draws`` seeded draws of ``--samples`` archs how
often each correlation measure picks it (hit rate) and the expected loss in whole-space rho of the
device it picks instead (regret). ``spearman`` is the paper's Eq. 1; ``pearson_log`` is the
``eq1_correlation`` option of `multipredict.methods.transfer`.

    python benchmarks/eq1_choice.py --draws 300 --samples 10 --csv benchmarks/results/eq1_choice.csv
    python benchmarks/eq1_choice.py --quick            # smoke run: 3 draws
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
from scipy import stats

from multipredict import tasks
from multipredict.methods.protocol import device_latency
from multipredict.methods.transfer import EQ1_CORRELATIONS, source_correlations

SPLITS = {"nb201": "nb201-default", "fbnet": "fbnet-default"}
N_ARCHS = {"nb201": 15625, "fbnet": 5000}
QUICK = {"draws": 3}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--csv", default=None, help="write one row per test device here")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run in seconds: {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:  # the same defaults as a smoke run; flags given explicitly still win
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    print(f"{'space':6s} {'test device':14s} {'closest source':16s}" + "".join(
        f"{m + ' hit / regret':>26s}" for m in EQ1_CORRELATIONS))
    rows = []
    for space, preset in SPLITS.items():
        split = tasks.device_set(preset)
        lat = {d: device_latency(space, d) for d in split.train + split.test}
        for test in split.test:
            whole = {d: stats.spearmanr(lat[d], lat[test])[0] for d in split.train}
            best = max(whole, key=whole.get)
            hits = dict.fromkeys(EQ1_CORRELATIONS, 0)
            regret = dict.fromkeys(EQ1_CORRELATIONS, 0.0)
            for draw in range(args.draws):
                ids = np.random.default_rng(draw).choice(N_ARCHS[space], args.samples, replace=False)
                sources = {d: lat[d][ids] for d in split.train}
                for method in EQ1_CORRELATIONS:
                    rho = {d: v for d, v in source_correlations(lat[test][ids], sources, method).items()
                           if np.isfinite(v)}
                    pick = max(rho, key=rho.get)
                    hits[method] += pick == best
                    regret[method] += whole[best] - whole[pick]
            print(f"{space:6s} {test:14s} {best + f' {whole[best]:.3f}':16s}" + "".join(
                f"{hits[m] / args.draws:>19.2f} / {regret[m] / args.draws:.3f}" for m in EQ1_CORRELATIONS), flush=True)
            rows.append({"space": space, "test": test, "closest": best, "closest_spearman": whole[best],
                         "draws": args.draws, "samples": args.samples,
                         **{f"{m}_hit": hits[m] / args.draws for m in EQ1_CORRELATIONS},
                         **{f"{m}_regret": regret[m] / args.draws for m in EQ1_CORRELATIONS}})
    if args.csv:
        pd.DataFrame(rows).to_csv(args.csv, index=False, float_format="%.4f")
    return 0


if __name__ == "__main__":
    sys.exit(main())
