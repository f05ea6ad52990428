"""Why the paper's TL Sample / TL Index rows are weaker than ours: the authors' evaluation lookup.

In the authors' released code (``fsh_advanced_training.py`` / ``utils.py`` of the AutoML-Conf code
submission) a ``sample`` / ``index`` device's embedding is looked up by the device's position in
their *full device list* while training and fine-tuning (``device_idx_to_emb[device_name_idx]``),
but by its position in *train + transfer devices* when the fine-tuned predictor is scored
(``device_idx_to_emb[device_idx_mapper[name]]``). A target device is therefore scored with the
embedding of another device: the one at the target's train+transfer position in the full list.
(The ``learnable`` table path looks rows up one way throughout and is not affected.)

This runs the Sample / Index rows of Tables 1 and 3 exactly as ``multipredict reproduce`` does
(`multipredict.methods.transfer.prepare_trial`, the same pretraining, few-shot draw and fine-tuning; stored
pretrainings are reused) and scores each fine-tuned target twice: with its own embedding (our
result, equal to the stored trial's) and with the embedding the authors' lookup would hand it.
Ours are still our sample embeddings (HELP's 10 reference archs, min-max over those 10; the
authors' draw 8 random archs per run). Index codes are by default the device's position among our
source devices; ``--authors-codes`` codes every device by its position in the full list, as the
authors' code does (the ``index_position`` hook `authors_code.authors_index_position`), and the lookup then hands a target the code of its
train+transfer position. A device the lookup names that is not a source device gets its own
sample vector, or its index code (with the default order: a code no device was trained with).

    python benchmarks/replication/authors_embedding_lookup.py --dir table1=runs/t1 --dir table3=runs/t3 --seeds 0,1,2
    python benchmarks/replication/authors_embedding_lookup.py --tables table1 --dir table1=runs/auth_t1 \
        --option source_samples=100 --option source_epochs=2250    # with the code's pretraining set too
    python benchmarks/replication/authors_embedding_lookup.py --tables table3 --dir table3=runs/t3 --authors-codes
    python benchmarks/replication/authors_embedding_lookup.py --quick --dir table3=/tmp/lookup   # smoke run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # run as a file: the repository root holds the `benchmarks.replication` package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.replication.authors_code import authors_index_position, looked_up_device, looked_up_row
from multipredict.cli import parse_option
from multipredict.experiments import methods as registry
from multipredict.experiments.paper_numbers import paper_numbers
from multipredict.experiments.reproduce import table_specs
from multipredict.methods.protocol import device_latency, rank_correlations
from multipredict.methods.transfer import TrialHooks, prepare_trial

METHODS = ("TL Vec Sample", "TL Vec Index")
# a smoke run: tiny pretraining and fine-tuning (the numbers mean nothing), one seed, FBNet
QUICK = {"tables": "table3", "seeds": "0"}
QUICK_OPTIONS = {"source_samples": 50, "source_epochs": 1, "target_epochs": 2}


def score_both(space, train, test, method, samples, seed, protocol, options, paper: dict,
               authors_codes: bool = False) -> list[dict]:
    """``paper``: the published cells, ``{(method, samples, device): value}``; ``authors_codes``:
    index codes by the authors' device list."""
    hooks = TrialHooks(index_position=authors_index_position) if authors_codes else None
    model, draws, _ = prepare_trial(space=space, train_devices=train, test_devices=test, samples=samples, seed=seed,
                                    protocol=protocol, hooks=hooks, **options)
    model.fit()
    rows = []
    for name in test:
        split_, shots = draws[name]
        latency = device_latency(space, name)
        target = model.add_device(name, shots, latency[shots])
        scored = split_.scored_ids(shots)
        features = model.encoder_.transform(scored)
        own = target.predictor.predict(features, np.full(len(scored), target.row))
        other = looked_up_device(space, list(train), list(test), name)
        predictor = target.predictor.copy()
        row = looked_up_row(model, predictor, list(train), list(test), other, authors_codes=authors_codes)
        looked_up = predictor.predict(features, np.full(len(scored), row))
        truth = latency[scored]
        other_latency = device_latency(space, other)[scored]
        finite = np.isfinite(other_latency)
        rows.append({"space": space, "method": method, "seed": seed, "device": name, "looked_up": other,
                     "looked_up_is_source": other in model.source_devices,
                     "ours": rank_correlations(own, truth)[0], "authors_lookup": rank_correlations(looked_up, truth)[0],
                     "device_vs_looked_up": rank_correlations(other_latency[finite], truth[finite])[0],
                     "paper": paper.get((method, samples, name), float("nan"))})
        del model.targets_[name]
    return rows


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", action="append", default=[], metavar="TABLE=DIR",
                        help="a reproduce output folder whose pretrained/ to reuse (default: reproduction/TABLE)")
    parser.add_argument("--tables", default="table1,table3")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--csv", default=None)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a transfer setting, as for `multipredict reproduce --option` (repeatable)")
    parser.add_argument("--authors-codes", action="store_true",
                        help="index codes by the devices' positions in the authors' full device list")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run in seconds: {QUICK}, options {QUICK_OPTIONS}")
    args = parser.parse_args(argv)
    if args.quick:  # the same defaults as a smoke run; flags given explicitly still win
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    extra = {**(QUICK_OPTIONS if args.quick else {}), **dict(parse_option(text) for text in args.option)}
    dirs = dict(item.split("=", 1) for item in args.dir)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for table in args.tables.split(","):
        out = Path(dirs.get(table, Path("reproduction") / table))
        published = paper_numbers(table)
        paper = {(r.method, int(r.samples), r.device): float(r.value) for r in published.itertuples()}
        for _, spec in table_specs(table, repeats=max(seeds) + 1, methods=list(METHODS), options=extra,
                                  pretrain_dir=out / "pretrained"):
            for method in spec.methods:
                options = spec.options_for(registry.get(method))
                for seed in seeds:
                    for samples in spec.budgets(method):
                        rows += score_both(spec.space, list(spec.train_devices), list(spec.test_devices), method,
                                           samples, seed, spec.protocol_for(method), options, paper,
                                           authors_codes=args.authors_codes)
                        print(pd.DataFrame(rows[-len(spec.test_devices):]).round(3).to_string(index=False), flush=True)
    frame = pd.DataFrame(rows)
    if args.csv:
        frame.to_csv(args.csv, index=False)
    summary = (frame.groupby(["space", "method", "device", "looked_up"], sort=False)
               [["ours", "authors_lookup", "device_vs_looked_up", "paper"]].mean())
    means = frame.groupby(["space", "method"], sort=False)[["ours", "authors_lookup", "paper"]].mean()
    print("\nper device, mean over seeds", seeds)
    print(summary.round(3).to_string())
    print("\nmeans")
    print(means.round(3).to_string())
    return frame


if __name__ == "__main__":
    main()
