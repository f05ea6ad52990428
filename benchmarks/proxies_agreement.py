"""How closely our zero-cost proxies rank architectures like the published ones.

Per proxy, Spearman rho between our scores (seeded synthetic batch: no CIFAR images here) and
- NB201: NAS-Bench-Suite-Zero's CIFAR-10 proxies (NASLib ``zc_nasbench201.json``, ~725 cells; zen
  from NASLib's ``nb201_zen.zip``), real CIFAR-10 batch of 32 in the original;
- FBNet: ``zc_fbnet.json`` (all 5,000 HELP archs), real CIFAR-100 batch of 16 in the original.
Archs are a seeded sample; sentinel (-1e8) and non-finite values are left out pairwise.

    python benchmarks/proxies_agreement.py --nb201 200 --fbnet 200 --workers 2
    python benchmarks/proxies_agreement.py --nb201 725 --fbnet 0          # every NASLib NB201 cell
    python benchmarks/proxies_agreement.py --quick --out-dir /tmp/zcp     # smoke run: 4 archs per space

Scores go to resumable tables (``--out-dir``, default the cache folder), so an interrupted or
extended run (more archs) only computes what is missing. ``zen (logits)`` is zen read at the
logits instead of before global pooling, the variant the published files used.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from multipredict import config
from multipredict.data.formats import load_json, load_zip_json, source_file
from multipredict.proxies import ALL_PROXIES, expected_l2_norm_score
from multipredict.proxies.runner import run_zcp
from multipredict.spaces import fbnet, models, nb201

NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
EXPECTED_L2 = "l2_norm (rms)"  # l2_norm's root-mean-square over initialisations: no init noise
SENTINEL = -1e7  # NASLib marks failed proxies with -1e8
TARGET = {"synflow": .95, "params": .95, "flops": .95, "l2_norm": .95, "zen": .95, EXPECTED_L2: .95}
QUICK = {"nb201": 4, "fbnet": 4, "nb201_batch": 8, "fbnet_batch": 4, "ceiling": 3}


def naslib_to_arch_string(key: str) -> str:
    a = [NASLIB_OPS[int(x)] for x in key.strip("()").split(",")]
    return f"|{a[0]}~0|+|{a[1]}~0|{a[3]}~1|+|{a[2]}~0|{a[4]}~1|{a[5]}~2|"


def published_nb201() -> pd.DataFrame:
    """NAS-Bench-Suite-Zero CIFAR-10 proxies by NB201 index (13 columns, zen from the zip)."""
    records = load_json(source_file("NASLib", "naslib/data/zc_nasbench201.json"))["cifar10"]
    rows = {}
    for key, record in records.items():
        row = {p: v["score"] for p, v in record.items() if isinstance(v, dict) and "score" in v}
        rows[nb201.arch_id(naslib_to_arch_string(key))] = row
    zen = {}
    for name, members in load_zip_json(source_file("NASLib", "run/results/benchmarks/nb201_zen.zip")).items():
        if "--cifar10--" in name:
            for record in members:
                zen[nb201.arch_id(naslib_to_arch_string(record["arch"]))] = record["zen"]["score"]
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["zen"] = pd.Series(zen)
    table.index.name = "arch_id"
    return table[list(ALL_PROXIES)]


def published_fbnet() -> pd.DataFrame:
    records = load_json(source_file("nasflat_latency", "fbnet_zcp/zc_fbnet.json"))
    table = pd.DataFrame([records[fbnet.arch_key(i)] for i in range(fbnet.N_ARCHS)])
    table.index.name = "arch_id"
    return table[list(ALL_PROXIES)]


def agreement(ours: pd.DataFrame, theirs: pd.DataFrame, columns) -> dict[str, tuple[float, int]]:
    joined = ours.merge(theirs.add_suffix("_published"), left_on="arch_id", right_index=True, how="inner")
    out = {}
    for ours_col, their_col in columns:
        x = joined[ours_col].to_numpy(float)
        y = joined[f"{their_col}_published"].to_numpy(float)
        ok = np.isfinite(x) & np.isfinite(y) & (y > SENTINEL) & (x > SENTINEL)
        out[ours_col] = (float(spearmanr(x[ok], y[ok])[0]) if ok.sum() > 2 else float("nan"), int(ok.sum()))
    return out


def score_space(space: str, ids: list[int], out_dir: Path, batch_size: int, workers: int, seed: int) -> pd.DataFrame:
    main = run_zcp(space, ids, out_dir / f"{space}_b{batch_size}_s{seed}.parquet", workers=workers,
                   batch_size=batch_size, seed=seed)
    logits = run_zcp(space, ids, out_dir / f"{space}_b{batch_size}_s{seed}_zen_logits.parquet", workers=workers,
                     batch_size=batch_size, seed=seed, proxies=["zen"], zen_output="logits")
    main = main[main["arch_id"].isin(ids)]
    logits = logits[logits["arch_id"].isin(ids)].set_index("arch_id")["zen"].rename("zen (logits)")
    return main.join(logits, on="arch_id")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nb201", type=int, default=200, help="NB201 archs (of the ~725 NASLib cells)")
    parser.add_argument("--fbnet", type=int, default=200, help="FBNet archs (of 5,000)")
    parser.add_argument("--nb201-batch", type=int, default=32, help="NAS-Bench-Suite-Zero used 32")
    parser.add_argument("--fbnet-batch", type=int, default=16, help="zc_fbnet.json used 16")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="batch and model-init seed")
    parser.add_argument("--sample-seed", type=int, default=0, help="which archs are sampled")
    parser.add_argument("--ceiling", type=int, default=0,
                        help="also score this many of the archs with seed+1 (batch and init) and report the "
                             "seed-to-seed rho: how well a proxy can agree with any single published run")
    parser.add_argument("--out-dir", type=Path, default=None)
    parser.add_argument("--csv", default=None, help="write one row per space and proxy here")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run in seconds: {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:  # the same defaults as a smoke run; flags given explicitly still win
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out_dir = args.out_dir or config.cache_dir() / "benchmarks" / "proxies"
    rng = np.random.default_rng(args.sample_seed)
    results, counts, timing, ceilings = {}, {}, {}, {}
    columns = [(p, p) for p in ALL_PROXIES] + [("zen (logits)", "zen"), (EXPECTED_L2, "l2_norm")]
    for space, n, batch_size, published in [("nb201", args.nb201, args.nb201_batch, published_nb201),
                                            ("fbnet", args.fbnet, args.fbnet_batch, published_fbnet)]:
        if n <= 0:
            continue
        theirs = published()
        # a prefix of one seeded permutation: asking for more archs later keeps (and reuses) these
        order = rng.permutation(np.array(sorted(theirs.index)))
        ids = sorted(int(i) for i in order[:n])
        started = time.perf_counter()
        ours = score_space(space, ids, out_dir, batch_size, args.workers, args.seed)
        ours[EXPECTED_L2] = [expected_l2_norm_score(models.build_model(space, i)) for i in ours["arch_id"]]
        timing[space] = (time.perf_counter() - started, float(ours["seconds"].mean()), batch_size)
        results[space] = agreement(ours, theirs, columns)
        counts[space] = len(ids)
        if args.ceiling > 0:
            subset = sorted(int(i) for i in order[:min(args.ceiling, n)])
            other = score_space(space, subset, out_dir, batch_size, args.workers, args.seed + 1)
            other[EXPECTED_L2] = [expected_l2_norm_score(models.build_model(space, i)) for i in other["arch_id"]]
            reference = ours[ours["arch_id"].isin(subset)].set_index("arch_id")
            ceilings[space] = agreement(other, reference, [(c, c) for c, _ in columns])

    spaces = list(results)
    header = f"{'proxy':14s}" + "".join(f"{s + ' rho (n)':>22s}" for s in spaces) + "   target"
    print(header)
    print("-" * len(header))
    for name, _ in columns:
        cells = "".join(f"{results[s][name][0]:>15.3f} ({results[s][name][1]:>4d})" for s in spaces)
        target = f">= {TARGET[name]:.2f}" if name in TARGET else "> 0"
        print(f"{name:14s}{cells}   {target}")
    if ceilings:
        print()
        print("seed-to-seed rho (ours, seed vs seed+1: batch and init redrawn) - the ceiling for any one run")
        for name, _ in columns:
            cells = "".join(f"{ceilings[s][name][0]:>15.3f} ({ceilings[s][name][1]:>4d})" for s in ceilings)
            print(f"{name:14s}{cells}")
    for s in spaces:
        wall, per_arch, batch_size = timing[s]
        print(f"{s}: {counts[s]} archs, synthetic batch {batch_size}, seed {args.seed}; "
              f"{per_arch:.2f} s/arch (fused engine, 1 thread per worker); this run {wall:.0f} s wall")
    print(f"tables: {out_dir}")
    if args.csv:
        rows = [{"space": s, "proxy": name, "archs": counts[s], "batch_size": timing[s][2], "seed": args.seed,
                 "spearman": results[s][name][0], "n": results[s][name][1],
                 "seed_to_seed": ceilings[s][name][0] if s in ceilings else float("nan")}
                for s in spaces for name, _ in columns]
        pd.DataFrame(rows).to_csv(args.csv, index=False, float_format="%.4f")
    return 0


if __name__ == "__main__":
    sys.exit(main())
