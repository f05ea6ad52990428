"""Why the paper's BRP-NAS rows (Table 1: .79 / .81) are far below ours (.97): BRP-NAS's own code.

The paper does not say how it ran BRP-NAS; the candidate is BRP-NAS's released code
(SamsungLabs/eagle). Our BRP-NAS (the method "BRP-NAS") is the Multi-Predict predictor trained
from scratch, as the Multi-Predict paper describes it. This runs the method "BRP-NAS (released
recipe)" instead: BRP-NAS's own cell graph, GCN and training loop (`brpnas_eagle`, beside this
script), and prints two things per test device beside the paper:

- ``graph ceiling``: the best Spearman any predictor of BRP-NAS's cell graph can reach on the
  device, i.e. the ranking by the mean latency of the cells that share a graph (computed on every
  cell the device measured; no training). The graph drops ``none`` edges, contracts skips and
  prunes ops whose output no path uses; NAS-Bench-201's cells still run those ops, so 15,625 cells
  fall into 8,687 graphs.
- ``eagle``: BRP-NAS trained by its released recipe (paper protocol, 900 training + 100
  validation archs of the target), mean over the seeds; the trials are stored under ``--out``,
  so a rerun resumes.
- with ``--help-query``: the same trainings again (same seed, same draw, same network), each also
  scored on HELP's trimmed query set (the 800 archs between the 10th and 90th latency percentile
  of indices 900-1899, less any the model trained on), on which the paper's FLOPs row is computed.

    python benchmarks/replication/brpnas_recipes.py --ceiling-only
    python benchmarks/replication/brpnas_recipes.py --out runs/brp_eagle --seeds 0 --devices titan_rtx_256,pixel2,raspi4
    python benchmarks/replication/brpnas_recipes.py --help-query --seeds 0 --devices titan_rtx_256,pixel2,raspi4
    python benchmarks/replication/brpnas_recipes.py --quick --out /tmp/brp   # smoke run: 1 device, 20 archs, 2 epochs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

if __package__ in (None, ""):  # run as a file: the repository root holds the `benchmarks.replication` package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.replication import BRPNAS_RELEASED, brpnas_eagle, register_methods
from multipredict.experiments.paper_numbers import NB201_TEST, paper_numbers
from multipredict.experiments.reproduce import table_specs
from multipredict.experiments.store import ParquetStore, run_cached
from multipredict.methods.protocol import device_latency, rank_correlations
from multipredict.protocols import help_split
from multipredict.spaces import nb201

QUICK = {"devices": "pixel2", "budgets": "20", "epochs": 2}
EPOCHS = brpnas_eagle.ReleasedOptions.defaults()["epochs"]


def graph_ceiling(device: str) -> float:
    """Spearman of the device's latency against the mean latency of the cells sharing its BRP-NAS graph."""
    latency = device_latency("nb201", device)[:nb201.N_ARCHS]
    ids = np.flatnonzero(np.isfinite(latency))
    adjacency, features = brpnas_eagle.brpnas_graphs(ids)
    flat = np.concatenate([adjacency.reshape(len(ids), -1), features.reshape(len(ids), -1)], axis=1)
    _, graph = np.unique(flat, axis=0, return_inverse=True)
    mean_of_graph = pd.Series(latency[ids]).groupby(graph.ravel()).transform("mean").to_numpy()
    return float(stats.spearmanr(mean_of_graph, latency[ids])[0])


def both_scores(device: str, samples: int, seed: int, validation: int = 100, epochs: int = EPOCHS) -> dict:
    """Train as the released recipe does for this device, seed and budget (the trial's own draw, so the
    same network), then score on the trial's held-out archs and on HELP's trimmed query set."""
    latency = device_latency("nb201", device)
    pool, split, shots, held = brpnas_eagle.eagle_draw("paper", device, samples, validation, seed)
    network, epochs_run = brpnas_eagle.fit_eagle(shots, latency[shots], held, latency[held], epochs=epochs, seed=seed)
    drawn = np.concatenate([shots, held])
    heldout = split.scored_ids(drawn)
    query = np.setdiff1d(help_split("nb201", device, latency, pool).eval_ids, drawn)
    return {"heldout": rank_correlations(brpnas_eagle.predict_eagle(network, heldout), latency[heldout])[0],
            "help query": rank_correlations(brpnas_eagle.predict_eagle(network, query), latency[query])[0],
            "n help query": len(query), "epochs run": epochs_run}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="reproduction/brpnas_eagle", help="store folder (resumable)")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--budgets", default="900", help="training archs per device: 900 and/or 3200")
    parser.add_argument("--devices", default=",".join(NB201_TEST), help="Table 1 test devices to run")
    parser.add_argument("--ceiling-only", action="store_true", help="print the graph ceiling, train nothing")
    parser.add_argument("--help-query", action="store_true", help="retrain and score on HELP's trimmed query set too")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="most training epochs (early stopping ends most runs sooner)")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run in seconds: {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:  # the same defaults as a smoke run; flags given explicitly still win
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    devices = args.devices.split(",")
    budgets = tuple(int(b) for b in args.budgets.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    paper = paper_numbers("table1")
    paper = paper[paper["method"] == "BRP-NAS"].set_index(["samples", "device"])["value"]
    rows = [{"device": d, "graph ceiling": graph_ceiling(d)} for d in devices]
    frame = pd.DataFrame(rows).set_index("device")
    if args.help_query:
        for device in devices:
            for samples in budgets:
                for seed in seeds:
                    for key, value in both_scores(device, samples, seed, epochs=args.epochs).items():
                        frame.loc[device, f"{key} {samples} seed {seed}"] = value
            print(frame.loc[[device]].round(3).to_string(), flush=True)
    elif not args.ceiling_only:
        register_methods()
        # the default epochs stay out of the options, so that stores of earlier runs keep their keys
        options = {"epochs": args.epochs} if args.epochs != EPOCHS else {}
        (_, base), = table_specs("table1", methods=["BRP-NAS"])  # Table 1's BRP-NAS row: its devices
        store = ParquetStore(Path(args.out) / "store")
        for device in devices:  # one spec per device, so that devices split across processes share a store
            for seed in seeds:
                spec = type(base).model_validate({**base.model_dump(), "methods": (BRPNAS_RELEASED,),
                                                  "test_devices": (device,), "samples": budgets,
                                                  "method_samples": {}, "options": options, "seed": seed,
                                                  "repeats": 1})
                result = run_cached(spec, "serial", store=store)
                failed = result[result["error"].notna()]
                if len(failed):
                    raise SystemExit(f"{device} seed {seed}: {failed['error'].iloc[0]}")
                for row in result.itertuples():
                    frame.loc[device, f"eagle {row.samples} seed {seed}"] = row.spearman
                    frame.loc[device, f"epochs run {row.samples} seed {seed}"] = row.epochs_run
                print(frame.loc[[device]].round(3).to_string(), flush=True)
        for samples in budgets:
            columns = [f"eagle {samples} seed {seed}" for seed in seeds]
            frame[f"eagle {samples}"] = frame[columns].mean(axis=1)
    for samples in budgets:
        frame[f"paper {samples}"] = [paper.get((samples, d), np.nan) for d in frame.index]
    frame.loc["mean"] = frame.mean(numeric_only=True)
    print(frame.round(3).to_string())


if __name__ == "__main__":
    main()
