"""Fig 9's share of pairs against other "from scratch" baselines: where the paper's 85% comes from.

The authors' released ``transfer_experiments.py`` compares transfer against a predictor trained only
50 full-batch steps at lr 4e-4 (DESIGN/NOTES: its "no transfer" baseline). This script takes a full
`multipredict reproduce fig9` run (``--transfer``) and a run of the scratch arms under another recipe
(``--baseline``, e.g. the authors'), and reports per k the share of the transfer run's pairs whose
mean Spearman beats each baseline arm's.

    multipredict reproduce fig9 --executor processes --workers 2 --out runs/fig9
    multipredict reproduce fig9 --methods "Vec scratch,ZCP scratch" --option epochs=50 --option lr=4e-4 \\
        --option batch_size=1024 --out runs/fig9_authors_baseline
    python benchmarks/fig9_baselines.py --transfer runs/fig9 --baseline runs/fig9_authors_baseline \\
        --csv benchmarks/results/fig9_baselines.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def compare(transfer_dir: Path, baseline_dir: Path, label: str) -> pd.DataFrame:
    pairs = pd.read_csv(transfer_dir / "fig9_pairs.csv")
    base = pd.read_csv(baseline_dir / "fig9_trials.csv")
    base = base.groupby(["arm", "target", "samples"])["spearman"].mean().unstack("arm").reset_index()
    rows = []
    for k, part in pairs.groupby("samples"):
        merged = part.merge(base[base["samples"] == k], on=["target", "samples"], suffixes=("", f" ({label})"))
        row = {"samples": k, "pairs": len(merged)}
        for arm in ("Vec scratch", "ZCP scratch"):
            row[f"beats {arm} (250 epochs, lr 4e-3)"] = float((merged["ZCP transfer"] > merged[arm]).mean())
            row[f"beats {arm} ({label})"] = float((merged["ZCP transfer"] > merged[f"{arm} ({label})"]).mean())
            row[f"mean {arm} ({label})"] = float(merged[f"{arm} ({label})"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transfer", help="a full reproduce fig9 output folder")
    parser.add_argument("--baseline", help="a reproduce fig9 folder of the scratch arms, other recipe")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny fig9 runs of 2 tasks in a temporary folder")
    parser.add_argument("--label", default="authors' baseline: 50 full-batch steps, lr 4e-4")
    parser.add_argument("--csv", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        import tempfile

        from multipredict.experiments.accuracy import reproduce_accuracy

        tmp = Path(tempfile.mkdtemp())
        tasks = ["nb201/cifar10", "nb201/cifar100"]
        reproduce_accuracy("fig9", out_dir=tmp / "t", quick=True, tasks=tasks, samples=(10,), progress=False)
        reproduce_accuracy("fig9", out_dir=tmp / "b", quick=True, tasks=tasks, samples=(10,), progress=False,
                           arms=("Vec scratch", "ZCP scratch"), options={"epochs": 5, "lr": 4e-4})
        args.transfer, args.baseline = tmp / "t", tmp / "b"
    elif not (args.transfer and args.baseline):
        parser.error("give --transfer and --baseline (or --quick)")
    table = compare(Path(args.transfer), Path(args.baseline), args.label)
    print(table.to_string(index=False, float_format="{:.3f}".format))
    if args.csv:
        table.round(4).to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
