"""Onboard public devices held out from pretraining, as a user would onboard their own.

For each test device of a space's default split: draw 20 of its archs (seeded), write them as the
user's CSV would be, run `multipredict.onboard.onboard` (pretrained on the split's training devices,
shared across devices), then score the predictions on every arch the device was not measured on and
print that beside the cross-validated estimate the tool reports and the paper's TL ET number.

    python benchmarks/onboarding.py --space nb201 --samples 20 [--source-epochs 250]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from scipy import stats

from multipredict import onboard, tasks
from multipredict.data import help

PAPER_TL_ET = {  # Table 1 TL Vec ET (10) / Table 3 TL ET (10)
    "nb201": {"titan_rtx_256": .99, "gold_6226": .95, "pixel2": .88, "raspi4": .90, "eyeriss": .90, "fpga": .99},
    "fbnet": {"fpga": .96, "raspi4": .95, "eyeriss": .98},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nb201", choices=["nb201", "fbnet"])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--source-epochs", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    split = tasks.device_set(f"{args.space}-default")
    rows = []
    started = time.perf_counter()
    for device in split.test:
        latency = help.latency(args.space, device)
        ids = np.random.default_rng([args.seed, len(device)]).choice(len(latency), args.samples, replace=False)
        measurements = pd.DataFrame({"arch": ids, "latency_ms": latency[ids]})
        result = onboard.onboard(args.space, measurements, device=f"user_{device}", source_devices=split.train,
                                 seed=args.seed, source_epochs=args.source_epochs)
        unseen = result.predictions["measured_ms"].isna().to_numpy()
        truth = latency[result.predictions["arch_id"].to_numpy()[unseen]]
        rho = stats.spearmanr(result.predictions["predicted_ms"].to_numpy()[unseen], truth).statistic
        rows.append({"device": device, "true_spearman": rho, "cv_estimate": result.cv_spearman,
                     "closest": result.closest_source, "paper_tl_et_10": PAPER_TL_ET[args.space].get(device)})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format="{:.3f}".format))
    print(f"mean true {table.true_spearman.mean():.3f}, mean CV estimate {table.cv_estimate.mean():.3f}, "
          f"paper {table.paper_tl_et_10.mean():.3f}; {time.perf_counter() - started:.0f} s "
          f"({args.samples} samples, {args.source_epochs} source epochs)")


if __name__ == "__main__":
    main()
