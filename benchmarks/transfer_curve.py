"""TL ET against the number of target samples on one pretraining, beside the same network trained
from scratch on many target samples: how far the few-shot regime is from what the data allows.

    python benchmarks/transfer_curve.py --space fbnet --seed 0 --pretrain-dir DIR

``--pretrain-dir`` reuses pretrainings stored by `multipredict reproduce` (DIR/pretrained).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from multipredict import tasks, transfer
from multipredict.baselines import brpnas


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
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    split = tasks.device_set(f"{args.space}-default")
    common = dict(space=args.space, train_devices=list(split.train), test_devices=list(split.test), seed=args.seed)
    for k in (int(v) for v in args.samples.split(",")):
        for name, options in (("paper", {}), ("lr 4e-4, matched", {"target_lr": 4e-4, "target_labels": "matched"})):
            started = time.perf_counter()
            rows = transfer.fit_and_score(samples=k, pretrain_dir=args.pretrain_dir, **common, **options)
            print(_line(f"TL ET, {k} samples, {name}", rows, time.perf_counter() - started), flush=True)
    for k in (int(v) for v in args.scratch.split(",") if v):
        started = time.perf_counter()
        rows = brpnas.fit_and_score(samples=k, **common)
        print(_line(f"from scratch (BRP-NAS), {k} samples", rows, time.perf_counter() - started), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
