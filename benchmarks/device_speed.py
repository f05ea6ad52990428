"""Where a GPU helps: the two slow stages of the latency tables (TL pretraining, HELP meta-training),
timed on the CPU (one torch thread, as the table runners use) and on a GPU, on the same data and seed.

    python benchmarks/device_speed.py --devices cpu,cuda --set fbnet-adversarial
    python benchmarks/device_speed.py --quick          # smoke run: CPU only, 1 epoch, 2 episodes

Short runs (a few epochs / episodes), so the times are per epoch / per episode; the Spearman column
is there to show both devices computed the same thing, not as a result.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from multipredict import tasks
from multipredict.methods import transfer
from multipredict.baselines import help as help_baseline

QUICK = {"devices": "cpu", "tl_epochs": 1, "help_episodes": 2, "source_samples": 50}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="cpu,cuda", help="torch devices to compare, e.g. cpu,cuda")
    parser.add_argument("--set", default="fbnet-adversarial", help="device set (preset) to pretrain / meta-train on")
    parser.add_argument("--tl-epochs", type=int, default=10)
    parser.add_argument("--help-episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source-samples", type=int, default=None, help="TL pretraining archs per device (default: the paper's)")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run in seconds: {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:  # the same defaults as a smoke run; flags given explicitly still win
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    torch.set_num_threads(1)
    split = tasks.device_set(args.set)
    common = dict(space=split.space, train_devices=list(split.train), test_devices=list(split.test)[:1],
                  samples=20, seed=args.seed)
    print(f"{args.set}: {len(split.train)} train devices, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}")
    print(f"{'stage':34s} {'device':6s} {'seconds':>8s} {'per unit':>9s}  spearman")
    for device in args.devices.split(","):
        if device.startswith("cuda") and not torch.cuda.is_available():
            print(f"skip {device}: torch sees no GPU")
            continue
        started = time.perf_counter()
        sized = {} if args.source_samples is None else {"source_samples": args.source_samples}
        row = transfer.fit_and_score(**common, **sized, source_epochs=args.tl_epochs, device=device)[0]
        seconds = row["pretrain_seconds"]
        print(f"{f'TL Vec ET pretraining, {args.tl_epochs} epochs':34s} {device:6s} {seconds:8.1f} "
              f"{seconds / args.tl_epochs:8.2f}s  {row['spearman']:.3f} ({time.perf_counter() - started:.0f} s in all)")
        started = time.perf_counter()
        row = help_baseline.fit_and_score(**common, episodes=args.help_episodes, eval_every=args.help_episodes,
                                          device=device)[0]
        seconds = row["meta_train_seconds"]
        print(f"{f'HELP meta-training, {args.help_episodes} episodes':34s} {device:6s} {seconds:8.1f} "
              f"{seconds / args.help_episodes:8.3f}s  {row['spearman']:.3f} ({time.perf_counter() - started:.0f} s in all)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
