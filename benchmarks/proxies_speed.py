"""Seconds per arch: the fused proxy engine against one pass per proxy, on the same archs.

    python benchmarks/proxies_speed.py                       # 3 NB201 + 3 FBNet archs, batch 64, 2 repeats
    python benchmarks/proxies_speed.py --archs 5 --batch-size 32 --threads 2
    python benchmarks/proxies_speed.py --quick               # smoke run: 1 arch per space, batch 8, 1 run

Both paths compute all 13 proxies on the same models and batch; the script also prints the largest
relative difference between their scores (they compute the same numbers) and where the time of the
one-pass-per-proxy path goes. Archs are a seeded sample; the model and batch seed is fixed.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd
import torch

from multipredict.proxies import ALL_PROXIES, compute_proxies, compute_proxy, make_batch, resolve_device
from multipredict.spaces import fbnet, models, nb201

QUICK = {"archs": 1, "batch_size": 8, "repeats": 1}


def time_arch(space: str, arch_id: int, batch, device, repeats: int, proxies) -> tuple[float, float, dict, float]:
    """Fastest of ``repeats`` alternating runs of each path: on a shared machine the minimum is the
    estimate least disturbed by other load."""
    model = models.build_model(space, arch_id, seed=0)
    fused_seconds = float("inf")
    per_proxy = {name: float("inf") for name in proxies}
    separate = {}
    for _ in range(repeats):
        started = time.perf_counter()
        fused = compute_proxies(model, batch, proxies, device=device)
        fused_seconds = min(fused_seconds, time.perf_counter() - started)
        for name in proxies:
            started = time.perf_counter()
            separate[name] = compute_proxy(model, batch, name, device=device)
            per_proxy[name] = min(per_proxy[name], time.perf_counter() - started)
    worst = max(abs(fused[k] - separate[k]) / max(abs(separate[k]), 1e-12) for k in proxies
                if np.isfinite(separate[k]))
    return fused_seconds, sum(per_proxy.values()), per_proxy, worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=3, help="archs per space")
    parser.add_argument("--spaces", default="nb201,fbnet")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--proxies", default=",".join(ALL_PROXIES),
                        help="comma list; e.g. all but grasp, the costliest, to see the speed-up without it")
    parser.add_argument("--repeats", type=int, default=2, help="time each path this often, keep the fastest")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--csv", default=None, help="write one row per space here")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run in seconds: {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:  # the same defaults as a smoke run; flags given explicitly still win
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    proxies = [p for p in args.proxies.split(",") if p]
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    rng = np.random.default_rng(args.sample_seed)
    print(f"device {device}, {torch.get_num_threads()} thread(s), synthetic batch {args.batch_size}, "
          f"fastest of {args.repeats} runs per path")
    print(f"{'space':6s} {'arch':>6s} {'fused s':>9s} {'per-proxy s':>12s} {'speedup':>8s} {'max rel diff':>13s}")
    summary, rows = {}, []
    for space in args.spaces.split(","):
        n_archs = {"nb201": nb201.N_ARCHS, "fbnet": fbnet.N_ARCHS}[space]
        batch = make_batch(space, batch_size=args.batch_size, seed=0)
        ids = sorted(int(i) for i in rng.choice(n_archs, size=args.archs, replace=False))
        # untimed warm-up: the first pass over new layer shapes pays one-off kernel setup costs
        compute_proxies(models.build_model(space, ids[0], seed=0), batch, proxies, device=device)
        fused_all, separate_all, worst_all, breakdown = [], [], [], {p: 0.0 for p in proxies}
        for arch_id in ids:
            fused_s, separate_s, per_proxy, worst = time_arch(space, arch_id, batch, device, args.repeats, proxies)
            fused_all.append(fused_s)
            separate_all.append(separate_s)
            worst_all.append(worst)
            for k, v in per_proxy.items():
                breakdown[k] += v / len(ids)
            print(f"{space:6s} {arch_id:>6d} {fused_s:>9.2f} {separate_s:>12.2f} {separate_s / fused_s:>7.2f}x "
                  f"{worst:>13.1e}")
        summary[space] = (np.mean(fused_all), np.mean(separate_all), breakdown)
        rows.append({"space": space, "proxies": len(proxies), "archs": args.archs, "batch_size": args.batch_size,
                     "threads": torch.get_num_threads(), "device": str(device), "repeats": args.repeats,
                     "fused_s_per_arch": np.mean(fused_all), "per_proxy_s_per_arch": np.mean(separate_all),
                     "speedup": np.mean(separate_all) / np.mean(fused_all), "max_rel_diff": max(worst_all)})
    print()
    print(f"{'space':6s} {'fused s/arch':>13s} {'per-proxy s/arch':>17s} {'speedup':>8s}")
    for space, (fused_s, separate_s, _) in summary.items():
        print(f"{space:6s} {fused_s:>13.2f} {separate_s:>17.2f} {separate_s / fused_s:>7.2f}x")
    print()
    print("per-proxy path, mean seconds per proxy:")
    print(f"{'proxy':10s}" + "".join(f"{s:>9s}" for s in summary))
    for name in proxies:
        print(f"{name:10s}" + "".join(f"{summary[s][2][name]:>9.2f}" for s in summary))
    if args.csv:
        pd.DataFrame(rows).to_csv(args.csv, index=False, float_format="%.4g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
