"""Reproduce the few-shot latency transfer rows of the Multi-Predict paper, by hand.

Table 1 (NB201, HELP's meta-train devices -> titan_rtx_256, gold_6226, pixel2, raspi4, eyeriss,
fpga): TL Vec ET, 10 samples, paper mean .94. Table 3 (FBNet -> fpga, raspi4, eyeriss): TL ET, 10
samples, paper mean .96. The FLOPs baseline is printed alongside (no training).

    python benchmarks/latency_transfer.py --repeats 3               # both tables, paper defaults
    python benchmarks/latency_transfer.py --tables 1 --head-layers 2 --head-width 1000 --score-on all
    python benchmarks/latency_transfer.py --also target_lr=4e-4 --also target_lr=4e-4,target_labels=matched
    python benchmarks/latency_transfer.py --quick         # smoke run: Table 3, 1 repeat, tiny pretraining

``--also`` adds a variant of the target-side options (target_lr, target_epochs, target_labels,
target_batch_size, target_train, eq1_correlation, score_on) evaluated on the same pretrained model
(the in-process cache), so a variant costs only its fine-tuning.

Each repeat is a seed (0..repeats-1): its own source-sample draw, pretraining and few-shot draw.
Prints mean +- std over repeats per device beside the paper's number, and the wall time; ``--csv``
writes every row. Single-threaded by default (small models train faster that way on a shared CPU).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd
import torch

from multipredict.methods import transfer
from multipredict.baselines import flops
from multipredict.cli import parse_option

NB201_TRAIN = ["1080ti_1", "1080ti_32", "1080ti_256", "silver_4114", "silver_4210r", "samsung_a50", "pixel3",
               "essential_ph_1", "samsung_s7"]
FBNET_TRAIN = ["1080ti_1", "1080ti_32", "1080ti_64", "silver_4114", "silver_4210r", "samsung_a50", "pixel3",
               "essential_ph_1", "samsung_s7"]

# Spearman rho the paper reports (Akhauri & Abdelfattah, AutoML-Conf 2023, Tables 1 and 3).
PAPER = {
    "1": {"space": "nb201", "train": NB201_TRAIN, "row": "TL Vec ET (10)",
          "devices": {"titan_rtx_256": .99, "gold_6226": .95, "pixel2": .88, "raspi4": .90, "eyeriss": .90,
                      "fpga": .99},
          "flops": {"titan_rtx_256": .95, "gold_6226": .83, "pixel2": .77, "raspi4": .85, "eyeriss": .44,
                    "fpga": .90},
          "mean": .94, "flops_mean": .79},
    "3": {"space": "fbnet", "train": FBNET_TRAIN, "row": "TL ET (10)",
          "devices": {"fpga": .96, "raspi4": .95, "eyeriss": .98}, "flops": {}, "mean": .96, "flops_mean": None},
}
QUICK = {"tables": "3", "repeats": 1, "source_epochs": 1, "target_epochs": 2, "source_samples": 50}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default="1,3", help="comma list of 1 and/or 3")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--source-epochs", type=int, default=250)
    parser.add_argument("--source-samples", type=int, default=None, help="pretraining archs per device (default: the paper's)")
    parser.add_argument("--target-epochs", type=int, default=50)
    parser.add_argument("--head-layers", type=int, default=4)
    parser.add_argument("--head-width", type=int, default=200)
    parser.add_argument("--source-lr", type=float, default=4e-4)
    parser.add_argument("--target-lr", type=float, default=1e-3)
    parser.add_argument("--score-on", default="heldout", choices=["heldout", "all"])
    parser.add_argument("--encoding", default="vec")
    parser.add_argument("--embedding", default="table")
    parser.add_argument("--protocol", default="paper")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--csv", default=None, help="write every result row here")
    parser.add_argument("--also", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]",
                        help="a target-side variant to score on the same pretraining (repeatable)")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run in seconds: {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:  # the same defaults as a smoke run; flags given explicitly still win
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    variants = {"default": {}}
    for text in args.also:
        variants[text] = dict(parse_option(item) for item in text.split(","))

    all_rows = []
    started_all = time.perf_counter()
    for table in args.tables.split(","):
        spec = PAPER[table.strip()]
        devices = list(spec["devices"])
        started = time.perf_counter()
        for seed in range(args.repeats):
            for variant, overrides in variants.items():
                t0 = time.perf_counter()
                options = dict(encoding=args.encoding, embedding=args.embedding, source_epochs=args.source_epochs,
                               target_epochs=args.target_epochs, head_layers=args.head_layers,
                               head_width=args.head_width, source_lr=args.source_lr, target_lr=args.target_lr,
                               score_on=args.score_on)
                if args.source_samples is not None:
                    options["source_samples"] = args.source_samples
                options.update(overrides)
                rows = transfer.fit_and_score(space=spec["space"], train_devices=spec["train"], test_devices=devices,
                                              samples=args.samples, seed=seed, protocol=args.protocol, **options)
                rows += flops.fit_and_score(space=spec["space"], train_devices=spec["train"], test_devices=devices,
                                            samples=args.samples, seed=seed, protocol=args.protocol,
                                            score_on=options["score_on"])
                for row in rows:
                    row.update(table=table, variant=variant)
                all_rows += rows
                ours = np.mean([r["spearman"] for r in rows if r["method"] == "transfer"])
                print(f"  table {table} seed {seed} {variant}: mean rho {ours:.3f}  ({time.perf_counter() - t0:.0f} s)",
                      flush=True)
        for variant in variants:
            frame = pd.DataFrame([r for r in all_rows if r["table"] == table and r["variant"] == variant])
            _print_table(table, spec, frame, args, time.perf_counter() - started, variant)
    print(f"total wall time {time.perf_counter() - started_all:.0f} s", flush=True)
    if args.csv:
        pd.DataFrame(all_rows).to_csv(args.csv, index=False)
    return 0


def _print_table(table: str, spec: dict, frame: pd.DataFrame, args, seconds: float, variant: str) -> None:
    print(f"\nTable {table} ({spec['space']}), {spec['row']} [{variant}]: {args.encoding}/{args.embedding}, "
          f"{args.repeats} repeats, {args.source_epochs}/{args.target_epochs} epochs, head {args.head_layers}x"
          f"{args.head_width}, score_on={args.score_on}, protocol={args.protocol}")
    print(f"{'device':16s} {'ours':>13s} {'paper':>6s}   {'FLOPs ours':>10s} {'paper':>6s}")
    ours_means, flops_means = [], []
    for device, paper in spec["devices"].items():
        tl = frame[(frame.method == "transfer") & (frame.device == device)].spearman
        fl = frame[(frame.method == "flops") & (frame.device == device)].spearman
        ours_means.append(tl.mean())
        flops_means.append(fl.mean())
        paper_flops = spec["flops"].get(device)
        print(f"{device:16s} {tl.mean():6.3f}+-{tl.std(ddof=0):5.3f} {paper:6.2f}   {fl.mean():10.3f} "
              f"{'' if paper_flops is None else f'{paper_flops:6.2f}'}")
    flops_paper = "" if spec["flops_mean"] is None else f"{spec['flops_mean']:6.2f}"
    print(f"{'mean':16s} {np.mean(ours_means):6.3f}        {spec['mean']:6.2f}   {np.mean(flops_means):10.3f} "
          f"{flops_paper}")
    per_seed = frame[frame.method == "transfer"].groupby("seed").spearman.mean()
    print(f"per-seed means: {', '.join(f'{v:.3f}' for v in per_seed)}; wall time (all variants) {seconds:.0f} s; pool "
          f"{frame.pool.iloc[0]}\n", flush=True)


if __name__ == "__main__":
    sys.exit(main())
