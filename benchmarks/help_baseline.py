"""Reproduce HELP's own meta-test numbers with our re-implementation (multipredict.baselines.help).

HELP's protocol and device splits (Lee et al., NeurIPS 2021), 10 few-shot samples, HELP's meta-test
devices. Published (HELP README): NB201 titan_rtx_256 .987, gold_6226 .989, fpga .985, pixel2 .802,
raspi4 .890, eyeriss .940 (mean .932); FBNet fpga .892, raspi4 .887, eyeriss .943 (mean .910).

    python benchmarks/help_baseline.py                          # both spaces, full length, seed 0
    python benchmarks/help_baseline.py --spaces fbnet --episodes 1000 --seeds 0,1
    python benchmarks/help_baseline.py --quick             # smoke run: NB201, 2 episodes, 2 MC samples

Every seed meta-trains once and is scored twice from the same adapted models: Spearman of the MC
mean (ours, the default) and of the last MC sample (HELP's released evaluation). Prints both beside
the published numbers, the episodes run, seconds per episode (validation passes included) and the
wall time; ``--csv`` writes every row. Single-threaded by default (faster on a shared CPU).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

if __package__ in (None, ""):  # run as a file: the repository root holds the `benchmarks.replication` package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.replication.help_readme import HELP_README_MEAN, HELP_README_SPEARMAN
from multipredict.baselines import help as help_baseline

QUICK = {"spaces": "nb201", "episodes": 2, "eval_every": 1, "mc_samples": 2}


def run_space(space: str, seed: int, args) -> list[dict]:
    splits = help_baseline.HELP_DEVICE_SPLITS[space]
    episodes = args.episodes or help_baseline.DEFAULT_EPISODES[space]
    last_report = [0.0]

    def progress(stage: str, fraction: float) -> None:
        if stage == "meta-train" and time.perf_counter() - last_report[0] > args.report_every:
            last_report[0] = time.perf_counter()
            record = model.history_[-1] if model.history_ else {}
            valid = [r["valid_spearman"] for r in model.history_ if "valid_spearman" in r]
            print(f"  [{space} seed {seed}] episode {record.get('episode', 0)}/{episodes} "
                  f"mse {record.get('mse', float('nan')):.4f} "
                  f"last valid rho {valid[-1] if valid else float('nan'):.3f} "
                  f"({record.get('seconds', 0.0) / max(record.get('episode', 1), 1):.3f} s/episode)",
                  file=sys.stderr, flush=True)

    model = help_baseline.HELPPredictor(space, episodes=episodes, mc_samples=args.mc_samples,
                                        eval_every=args.eval_every, seed=seed, progress=progress)
    model.meta_train(splits["meta_train"], splits["meta_valid"])
    rows = []
    for spearman_from in help_baseline.SPEARMAN_FROM:
        model.spearman_from = spearman_from
        # the z draws advance a generator: reseed so both readings score the same adapted models
        model._z_generator.manual_seed(seed + 2)
        for row in model.score(splits["meta_test"], samples=args.samples, seed=seed):
            row.update(space=space, seed=seed, spearman_from=spearman_from, episodes=episodes,
                       best_episode=model.best_episode_, valid_spearman=model.best_valid_spearman_,
                       meta_train_seconds=model.meta_train_seconds_,
                       seconds_per_episode=model.meta_train_seconds_ / max(episodes, 1),
                       published=HELP_README_SPEARMAN[space][row["device"]])
            rows.append(row)
    return rows


def report(frame: pd.DataFrame) -> None:
    for space, part in frame.groupby("space", sort=False):
        table = part.pivot_table(index="device", columns="spearman_from", values="spearman", aggfunc="mean",
                                 sort=False)
        table["published"] = [HELP_README_SPEARMAN[space][d] for d in table.index]
        table.loc["mean"] = table.mean()
        table.loc["mean", "published"] = HELP_README_MEAN[space]
        first = part.iloc[0]
        print(f"\nHELP on {space}: {first.episodes} episodes, best valid episode(s) "
              f"{sorted(part.best_episode.unique().tolist())}, {part.seconds_per_episode.mean():.3f} s/episode, "
              f"meta-train {part.meta_train_seconds.unique().sum():.0f} s over {part.seed.nunique()} seed(s)")
        print(table[["mc_mean", "last_sample", "published"]].round(3).to_string())
        gap = table.loc["mean", "mc_mean"] - table.loc["mean", "published"]
        print(f"mean gap to published (mc_mean): {gap:+.3f} ({'within' if abs(gap) <= 0.03 else 'outside'} 0.03)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", default="nb201,fbnet", help="comma list of nb201 and/or fbnet")
    parser.add_argument("--episodes", type=int, default=None, help="default: HELP's (2000 NB201 / 4000 FBNet)")
    parser.add_argument("--seeds", default="0", help="comma list of seeds")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--mc-samples", type=int, default=10)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report-every", type=float, default=60.0, help="seconds between progress lines")
    parser.add_argument("--csv", default=None, help="write every row here")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run in seconds: {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:  # the same defaults as a smoke run; flags given explicitly still win
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    rows = []
    for space in args.spaces.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            rows += run_space(space.strip(), seed, args)
    frame = pd.DataFrame(rows)
    report(frame)
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    if args.csv:
        frame.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
