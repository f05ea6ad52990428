"""TL ET against the number of target samples on one pretraining, beside the same network trained
from scratch on many target samples: how far the few-shot regime is from what the data allows.

    python benchmarks/transfer_curve.py --space fbnet --seed 0 --pretrain-dir DIR
    python benchmarks/transfer_curve.py --quick           # smoke run: tiny pretraining, 10 and 50 samples

``--pretrain-dir`` reuses pretrainings stored by `multipredict reproduce` (DIR/pretrained).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from multipredict import tasks
from multipredict.methods import transfer
from multipredict.baselines import brpnas

QUICK = {"samples": "10", "scratch": "50"}
QUICK_OPTIONS = {"transfer": {"source_samples": 50, "source_epochs": 1, "target_epochs": 2},
                 "scratch": {"epochs": 2}}


def _line(label: str, rows: list[dict], seconds: float) -> str:
    cells = " ".join(f"{r['device']} {r['spearman']:.3f}" for r in rows)
    return f"{label:44s} {cells}  mean {np.mean([r['spearman'] for r in rows]):.3f} ({seconds:.0f} s)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="fbnet", choices=["nb201", "fbnet"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", default="10,20,50,100,400,1000")
    parser.add_argument("--scratch", default="1000,4000", help="target samples for the from-scratch network")
    parser.add_argument("--pretrain-dir", default=None)
    parser.add_argument("--quick", action="store_true", help=f"a smoke run in seconds: {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:  # the same defaults as a smoke run; flags given explicitly still win
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    sized = QUICK_OPTIONS if args.quick else {"transfer": {}, "scratch": {}}
    torch.set_num_threads(1)
    split = tasks.device_set(f"{args.space}-default")
    common = dict(space=args.space, train_devices=list(split.train), test_devices=list(split.test), seed=args.seed)
    for k in (int(v) for v in args.samples.split(",")):
        for name, options in (("paper", {}), ("lr 4e-4, matched", {"target_lr": 4e-4, "target_labels": "matched"})):
            started = time.perf_counter()
            rows = transfer.fit_and_score(samples=k, pretrain_dir=args.pretrain_dir, **common, **options,
                                          **sized["transfer"])
            print(_line(f"TL ET, {k} samples, {name}", rows, time.perf_counter() - started), flush=True)
    for k in (int(v) for v in args.scratch.split(",") if v):
        started = time.perf_counter()
        rows = brpnas.fit_and_score(samples=k, **common, **sized["scratch"])
        print(_line(f"from scratch (BRP-NAS), {k} samples", rows, time.perf_counter() - started), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
