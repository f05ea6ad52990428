#!/usr/bin/env python3
"""Regenerate the project's own default data set in data/ (no public file is copied there).

    .venv/bin/python scripts/make_default_data.py [--zcp] [--latency] [--workers 2]

- data/zcp/nb201_nbsz_synthetic_b32_s0.parquet: our 13 zero-cost proxies (synthetic batch of 32,
  seed 0 -- NAS-Bench-Suite-Zero's batch size) for the NB201 cells that NAS-Bench-Suite-Zero covers,
  so the ZCP encoding's public pool can be compared with ours and extended;
- data/zcp/nb201_latency-sample_synthetic_b32_s0.parquet: the same proxies for the latency sample
  below, so every encoding works on the archs measured here with no download;
- data/latency/nb201_<profile>.csv: this machine's CPU latency of a fixed NB201 sample
  (HELP's 10 reference archs + 90 seeded random cells) under a few device profiles (torch eager and
  onnxruntime, batch 1 and 8).

`MULTIPREDICT_DATA=local` makes the library, the dashboard and the notebooks read this folder
only (no download); see `multipredict.data.local`.

Both steps resume where they stopped (rerun the same command after an interruption).
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZCP_OUT = ROOT / "data" / "zcp" / "nb201_nbsz_synthetic_b32_s0.parquet"
ZCP_SAMPLE_OUT = ROOT / "data" / "zcp" / "nb201_latency-sample_synthetic_b32_s0.parquet"
LATENCY_DIR = ROOT / "data" / "latency"
LATENCY_SELECTION = "reference,random:90:0"
PROFILES = ("cpu-1t-b1", "ort-cpu-1t-b1", "cpu-1t-b8", "ort-cpu-1t-b8")


def make_zcp(workers: int) -> None:
    from multipredict.data import naslib
    from multipredict.proxies.runner import run_zcp
    from multipredict.spaces.selection import select_archs

    ids = sorted(naslib.nb201_proxies("cifar10").index.tolist())
    ZCP_OUT.parent.mkdir(parents=True, exist_ok=True)
    run_zcp("nb201", ids, ZCP_OUT, workers=workers, batch_size=32, seed=0)
    sample = sorted(set(select_archs("nb201", LATENCY_SELECTION)))
    run_zcp("nb201", sample, ZCP_SAMPLE_OUT, workers=workers, batch_size=32, seed=0)


def make_latency() -> None:
    from multipredict.measure import get_profile, measure_archs
    from multipredict.spaces.selection import select_archs

    ids = list(dict.fromkeys(select_archs("nb201", LATENCY_SELECTION)))
    LATENCY_DIR.mkdir(parents=True, exist_ok=True)
    for name in PROFILES:
        measure_archs("nb201", ids, get_profile(name), LATENCY_DIR / f"nb201_{name}.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zcp", action="store_true")
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    both = not (args.zcp or args.latency)
    if args.zcp or both:
        make_zcp(args.workers)
    if args.latency or both:
        make_latency()


if __name__ == "__main__":
    main()
