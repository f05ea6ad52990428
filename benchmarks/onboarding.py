"""Onboarding a device: how good (quality) and how fast (speed), measured as a user meets it.

Quality: for each test device of a space's default split, draw 20 of its archs (seeded), write them
as the user's CSV would be, run `multipredict.onboard.onboard` pretrained on the split's training
devices (one pretraining, cached by content key and shared across devices), then score the
predictions on every arch the device was not measured on, beside the cross-validated estimate the
tool reports and the paper's TL ET number (Table 1 / Table 3, 10 samples).

Speed (``--speed``): the wall time of the command a user types,
``multipredict onboard --space nb201 --measurements my20.csv --out pred.csv`` (20 rows), in a fresh
process each time: ``warm`` (the default pretraining is in the user cache), ``repeat`` (the same
onboarding again: its stored result is read back, `multipredict.onboardstore`), ``fresh cache`` (an
empty ``MULTIPREDICT_CACHE``: the benchmark files are copied from the mirror and verified, and the
default model shipped in ``data/pretrained`` is loaded), and, with ``--cold-epochs N``, a cold run
that has to pretrain (N source epochs instead of 250, so it finishes; it shows the progress bar).
Every case but ``repeat`` passes ``--recompute``, so that it onboards.

    python benchmarks/onboarding.py --space nb201 --samples 20 --csv benchmarks/results/onboarding_nb201.csv
    python benchmarks/onboarding.py --speed --csv benchmarks/results/onboarding_speed.csv
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from multipredict import onboard, tasks
from multipredict.methods.protocol import device_latency

ROOT = Path(__file__).resolve().parents[1]
PAPER_TL_ET = {  # Table 1 TL Vec ET (10) / Table 3 TL ET (10)
    "nb201": {"titan_rtx_256": .99, "gold_6226": .95, "pixel2": .88, "raspi4": .90, "eyeriss": .90, "fpga": .99},
    "fbnet": {"fpga": .96, "raspi4": .95, "eyeriss": .98},
}


def user_sample(space: str, device: str, samples: int, seed: int) -> pd.DataFrame:
    """``samples`` archs of a public device as the user's CSV would hold them."""
    latency = device_latency(space, device)
    measured = np.flatnonzero(np.isfinite(latency))
    ids = np.random.default_rng([seed, len(device)]).choice(measured, samples, replace=False)
    return pd.DataFrame({"arch": ids, "latency_ms": latency[ids]})


def quality(args) -> pd.DataFrame:
    split = tasks.device_set(f"{args.space}-default")
    train, test = list(split.train), list(split.test)
    options = {"source_epochs": args.source_epochs}
    if args.quick:
        train, test = train[:2], test[:1]
        options.update(source_samples=200, target_epochs=5)
    rows = []
    for device in test:
        started = time.perf_counter()
        result = onboard.onboard(args.space, user_sample(args.space, device, args.samples, args.seed),
                                 device=f"user_{device}", source_devices=train, seed=args.seed, **options)
        unseen = result.predictions["measured_ms"].isna().to_numpy()
        truth = device_latency(args.space, device)[result.predictions["arch_id"].to_numpy()[unseen]]
        rho = stats.spearmanr(result.predictions["predicted_ms"].to_numpy()[unseen], truth).statistic
        rows.append({"space": args.space, "device": device, "samples": args.samples, "seed": args.seed,
                     "true_spearman": round(float(rho), 4), "estimate": result.quality.get("spearman_estimate"),
                     "low": result.quality.get("spearman_low"), "high": result.quality.get("spearman_high"),
                     "cv_estimate": round(result.cv_spearman, 4), "started_from": ", ".join(result.start_sources),
                     "fine_tuned": result.fine_tuned,
                     "paper_tl_et_10": PAPER_TL_ET[args.space].get(device),
                     "seconds": round(time.perf_counter() - started, 1), "source_epochs": args.source_epochs,
                     "pretrained_from": Path(result.pretrained_from).name})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format="{:.3f}".format))
    print(f"mean true {table.true_spearman.mean():.3f} (paper TL ET {table.paper_tl_et_10.mean():.3f}), "
          f"mean estimate {table.estimate.mean():.3f}, mean CV estimate {table.cv_estimate.mean():.3f}")
    return table


def _timed_onboard(csv: Path, out: Path, env: dict, extra: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "multipredict.cli", "onboard", "--space", "nb201", "--measurements",
                           str(csv), "--out", str(out), "--quiet", *extra], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"onboard failed ({done.returncode}): {done.stderr.strip()}")
    summary = done.stdout.splitlines()[0]
    if "stored result reused" in summary:
        return seconds, "stored result"
    return seconds, summary.rsplit("pretrained model: ", 1)[-1]


def speed(args) -> pd.DataFrame:
    folder = Path(tempfile.mkdtemp(prefix="onboard-speed-"))
    csv = folder / "my20.csv"
    user_sample("nb201", "raspi4", 20, args.seed).to_csv(csv, index=False)
    env = dict(os.environ)
    rows = []

    def record(case: str, seconds: float, source: str) -> None:
        rows.append({"case": case, "seconds": round(seconds, 2), "pretrained_from": Path(source.split()[-1]).name
                     if source.startswith("loaded") else source, "cpus": os.cpu_count(),
                     "load_average_1min": round(os.getloadavg()[0], 2), "torch_threads": 1})
        print(rows[-1], flush=True)

    repeats = 1 if args.quick else 3
    for _ in range(repeats):  # warm: the user cache already holds the default pretraining
        record("warm", *_timed_onboard(csv, folder / "pred.csv", env, ["--recompute"]))
    for _ in range(repeats):  # the same onboarding again: read back from the store the warm runs wrote
        record("repeat (stored result)", *_timed_onboard(csv, folder / "pred.csv", env, []))
    if not args.quick:
        fresh = dict(env, MULTIPREDICT_CACHE=str(folder / "fresh-cache"))
        record("fresh cache (shipped model, data copied and verified)",
               *_timed_onboard(csv, folder / "pred.csv", fresh, ["--recompute"]))
    if args.cold_epochs:
        cold = dict(env, MULTIPREDICT_CACHE=str(folder / "cold-cache"))
        record(f"cold: pretrain {args.cold_epochs} source epochs (the default is 250)",
               *_timed_onboard(csv, folder / "pred.csv", cold, ["--recompute", "--source-epochs",
                                                                  str(args.cold_epochs)]))
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nb201", choices=["nb201", "fbnet"])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--source-epochs", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed", action="store_true", help="time the onboard command instead")
    parser.add_argument("--cold-epochs", type=int, default=0, help="--speed: also time a run that pretrains")
    parser.add_argument("--csv", help="write the table here")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 source devices, 2 epochs, 1 device")
    args = parser.parse_args()
    if args.quick and not args.speed:
        args.source_epochs = min(args.source_epochs, 2)
    torch.set_num_threads(1)
    table = speed(args) if args.speed else quality(args)
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
