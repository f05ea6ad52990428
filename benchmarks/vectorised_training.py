"""Per-model training loop against stacked training (`multipredict.predictors.stacked`), same run.

    python benchmarks/vectorised_training.py                        # CPU, 1 and 2 threads, 3 epochs
    python benchmarks/vectorised_training.py --device cuda --threads 1
    python benchmarks/vectorised_training.py --quick                # smoke run: tiny data, 1 repeat

Three cases, each trained by both paths on the same inputs, the paths interleaved ``--repeats``
times (median wall time):

- ``nb201_pretrain``: Table 1's pretraining, one GCN predictor per trial (``--models`` trials,
  seeds 0..), 9 source devices x 900 NB201 archs, batch 128, table embedding. Run for
  ``--epochs`` epochs; every epoch has the same steps, so the 250-epoch time is extrapolated per
  epoch (``full_s``).
- ``fbnet_pretrain``: Table 3's, the FBNet MLP (22x9 one-hot), 9 devices x 4000 archs, batch 128
  (``--fbnet-epochs`` epochs, extrapolated likewise).
- ``nb201_finetune``: the transfers of ``--models`` trials x 6 test devices: a copy of the trial's
  pretrained GCN per device, its row added (Eq. 1 copy), fine-tuned on 10 archs for 50 epochs at
  full batch (the paper's protocol: run in full, nothing extrapolated).

The inputs are real encodings of random archs (``ArchEncoder``), the labels random: a step's cost
does not depend on the values. Reported per case and path: wall seconds, model-steps per second,
achieved GFLOP/s (the matmul FLOPs of forward + backward, counted as 3x the forward's; a frozen
body counts its forward only) beside this machine's fp32 matmul peak (a 2048^3 ``torch.mm`` on the
same threads), and the largest weight difference between the two paths' models.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from multipredict import encodings
from multipredict.predictors import LatencyPredictor
from multipredict.predictors.networks import GCNBody, MLPBody
from multipredict.predictors.stacked import FineTuneJob, FitJob, fine_tune_many, fit_many

RESULTS = Path(__file__).resolve().parent / "results"
SOURCE_DEVICES, TARGET_DEVICES, SHOTS = 9, 6, 10
PAPER_EPOCHS = {"nb201_pretrain": 250, "fbnet_pretrain": 250, "nb201_finetune": 50}
QUICK = {"models": 3, "epochs": 1, "fbnet_epochs": 1, "repeats": 1, "nb201_per_device": 60, "fbnet_per_device": 100,
         "target_epochs": 3, "threads": [1]}


# ------------------------------------------------------------------------------------ FLOPs


def forward_matmul_flops(net: nn.Module, body_input_shape: tuple[int, ...], *, body_trained: bool = True) -> tuple[float, float]:
    """(body, rest) matmul FLOPs of one sample's forward pass through a `LatencyNet`."""
    body = net.body
    flops_body = 0.0
    if isinstance(body, GCNBody):
        nodes = body_input_shape[0]
        last = len(body.convs) - 1
        for i, conv in enumerate(body.convs):
            rows = nodes if i < last else 1  # the last layer computes the global node only
            flops_body += 2 * rows * nodes * conv.in_features  # aggregation A @ H
            flops_body += 2 * rows * conv.in_features * conv.out_features
        linears = [m for m in body.readout if isinstance(m, nn.Linear)]
    elif isinstance(body, MLPBody):
        linears = [m for m in body.net if isinstance(m, nn.Linear)]
    else:
        raise TypeError(type(body))
    flops_body += sum(2 * m.in_features * m.out_features for m in linears)
    flops_head = sum(2 * m.in_features * m.out_features for m in net.head if isinstance(m, nn.Linear))
    return flops_body, flops_head


def training_flops(model: LatencyPredictor, X, samples_per_epoch: int, epochs: int, train: str = "all") -> float:
    body, head = forward_matmul_flops(model.network_, X.body.shape[1:])
    per_sample = 3 * (body + head) if train == "all" else body + 3 * head
    return per_sample * samples_per_epoch * epochs


def matmul_peak_gflops(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = float("inf")
    for _ in range(repeats + 1):
        _sync(device)
        started = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------ inputs


def pretrain_jobs(space: str, n_models: int, per_device: int, seed: int = 0) -> list[FitJob]:
    """One dataset per trial: ``per_device`` random archs on each of 9 source devices, rows 0..8."""
    form = "graph" if space == "nb201" else "flat"
    n_archs = len(encodings.latency_table(space))
    encoder = encodings.ArchEncoder(space, "vec", form=form).fit(np.arange(10))
    rng = np.random.default_rng(seed)
    jobs = []
    for _ in range(n_models):
        ids = np.concatenate([rng.choice(n_archs, per_device, replace=False) for _ in range(SOURCE_DEVICES)])
        jobs.append(FitJob(encoder.transform(ids), rng.uniform(0, 1, len(ids)).astype(np.float32),
                           np.repeat(np.arange(SOURCE_DEVICES), per_device), n_devices=SOURCE_DEVICES))
    return jobs


def predictor(body: str, seed: int, epochs: int, device: str) -> LatencyPredictor:
    return LatencyPredictor(body=body, embedding="table", epochs=epochs, batch_size=128, seed=seed, device=device)


def finetune_setup(pretrained: list[LatencyPredictor], jobs: list[FitJob], epochs: int, train: str, seed: int = 1):
    """Per trial and target: a copy of the pretrained model with a row copied from a source, and
    its 10-shot fine-tune job."""
    rng = np.random.default_rng(seed)
    models, tunes = [], []
    for model, job in zip(pretrained, jobs):
        for target in range(TARGET_DEVICES):
            copy = model.copy()
            row = copy.add_device(copy_from=target)
            shots = rng.choice(len(job.X), SHOTS, replace=False)
            models.append(copy)
            tunes.append(FineTuneJob(job.X.subset(shots), rng.uniform(0, 1, SHOTS).astype(np.float32),
                                     np.full(SHOTS, row), lr=1e-3, epochs=epochs, train=train))
    return models, tunes


# ------------------------------------------------------------------------------------ timing


def timed(device: torch.device, path) -> tuple[float, list[LatencyPredictor]]:
    """Seconds of ``path = (setup, run)``'s ``run(*setup())``; the setup (copies) is not timed."""
    setup, run = path
    arguments = setup()
    _sync(device)
    started = time.perf_counter()
    models = run(*arguments)
    _sync(device)
    return time.perf_counter() - started, models


def max_weight_difference(first: list[LatencyPredictor], second: list[LatencyPredictor]) -> float:
    return max(float((a.detach() - b.detach()).abs().max()) for m1, m2 in zip(first, second)
               for a, b in zip(m1.network_.parameters(), m2.network_.parameters()))


def run_case(case: str, paths: dict, device: torch.device, repeats: int) -> dict:
    """Interleave the paths (``(setup, run)`` pairs) ``repeats`` times; median seconds per path and
    the last run's models."""
    seconds = {name: [] for name in paths}
    models = {}
    for _ in range(repeats):
        for name, run in paths.items():
            elapsed, models[name] = timed(device, run)
            seconds[name].append(elapsed)
    return {name: statistics.median(values) for name, values in seconds.items()}, models


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts to run (default 1,2)")
    parser.add_argument("--models", type=int, default=10, help="trials trained together (default 10)")
    parser.add_argument("--epochs", type=int, default=3, help="NB201 pretraining epochs timed (default 3)")
    parser.add_argument("--fbnet-epochs", type=int, default=1, help="FBNet pretraining epochs timed (default 1)")
    parser.add_argument("--target-epochs", type=int, default=50, help="fine-tuning epochs (default 50, the paper's)")
    parser.add_argument("--fine-tune-part", default="all", choices=["all", "head"])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per path (median; default 3)")
    parser.add_argument("--cases", default="nb201_pretrain,fbnet_pretrain,nb201_finetune")
    parser.add_argument("--out", type=Path, default=None,
                        help="CSV to write (default benchmarks/results/vectorised_training_<device>.csv)")
    parser.add_argument("--quick", action="store_true", help="smoke run on tiny inputs; writes no CSV unless --out")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device is available here; use --device cpu", file=sys.stderr)
        return 2
    threads = [int(t) for t in args.threads.split(",")]
    cases = args.cases.split(",")
    unknown = sorted(set(cases) - set(PAPER_EPOCHS))
    if unknown:
        print(f"unknown case {unknown[0]!r}; choose from {sorted(PAPER_EPOCHS)}", file=sys.stderr)
        return 2
    settings = dict(models=args.models, epochs=args.epochs, fbnet_epochs=args.fbnet_epochs, repeats=args.repeats,
                    nb201_per_device=900, fbnet_per_device=4000, target_epochs=args.target_epochs, threads=threads)
    if args.quick:
        settings.update(QUICK)
    n_models, repeats = settings["models"], settings["repeats"]
    dev = str(device)

    nb201 = pretrain_jobs("nb201", n_models, settings["nb201_per_device"]) if {"nb201_pretrain", "nb201_finetune"} & set(cases) else None
    fbnet = pretrain_jobs("fbnet", n_models, settings["fbnet_per_device"]) if "fbnet_pretrain" in cases else None

    records = []
    for n_threads in settings["threads"]:
        torch.set_num_threads(n_threads)
        peak = matmul_peak_gflops(device)
        print(f"\n== {n_threads} thread(s), {dev}: fp32 matmul peak {peak:.1f} GFLOP/s "
              f"(2048^3 torch.mm, best of 5)")
        pretrained = None
        for case in cases:
            if case == "nb201_finetune":
                if pretrained is None:  # pretrained GCNs to fine-tune from: the loop's, 1 epoch
                    pretrained = [predictor("gcn", s, 1, dev).fit(j.X, j.y, j.devices, n_devices=j.n_devices)
                                  for s, j in enumerate(nb201)]
                epochs = settings["target_epochs"]
                part = args.fine_tune_part

                def setup(epochs=epochs, part=part):
                    return finetune_setup(pretrained, nb201, epochs, part)

                def loop_run(models, tunes):
                    return [m.fine_tune(t.X, t.y, t.devices, lr=t.lr, epochs=t.epochs, train=t.train)
                            for m, t in zip(models, tunes)]

                def stacked_run(models, tunes):
                    return fine_tune_many(models, tunes, stack=True)

                loop, stacked = (setup, loop_run), (setup, stacked_run)

                n_trained = n_models * TARGET_DEVICES
                steps_per_model = epochs  # full batch: one step per epoch
                flops = training_flops(pretrained[0], nb201[0].X, SHOTS, epochs, part) * n_trained
            else:
                body, jobs = ("gcn", nb201) if case == "nb201_pretrain" else ("mlp", fbnet)
                epochs = settings["epochs"] if case == "nb201_pretrain" else settings["fbnet_epochs"]

                def setup(body=body, epochs=epochs):
                    return ([predictor(body, s, epochs, dev) for s in range(n_models)],)

                def loop_run(models, jobs=jobs):
                    return [m.fit(j.X, j.y, j.devices, n_devices=j.n_devices) for m, j in zip(models, jobs)]

                def stacked_run(models, jobs=jobs):
                    return fit_many(models, jobs, stack=True)

                loop, stacked = (setup, loop_run), (setup, stacked_run)

                n_trained = n_models
                samples = len(jobs[0].y)
                steps_per_model = -(-samples // 128) * epochs
                probe = predictor(body, 0, 0, dev).fit(jobs[0].X, jobs[0].y, jobs[0].devices,
                                                       n_devices=jobs[0].n_devices)
                flops = training_flops(probe, jobs[0].X, samples, epochs) * n_trained
            medians, models = run_case(case, {"loop": loop, "stacked": stacked}, device, repeats)
            difference = max_weight_difference(models["loop"], models["stacked"])
            scale = PAPER_EPOCHS[case] / epochs
            for path, seconds in medians.items():
                records.append({
                    "case": case, "path": path, "device": dev, "threads": n_threads, "models": n_trained,
                    "epochs_timed": epochs, "paper_epochs": PAPER_EPOCHS[case], "steps_per_model": steps_per_model,
                    "seconds": round(seconds, 3), "full_s": round(seconds * scale, 1),
                    "model_steps_per_s": round(n_trained * steps_per_model / seconds, 1),
                    "gflop": round(flops / 1e9, 2), "gflops": round(flops / seconds / 1e9, 2),
                    "peak_gflops": round(peak, 1), "speedup": round(medians["loop"] / seconds, 2),
                    "max_weight_diff": difference, "repeats": repeats,
                })
            row = {r["path"]: r for r in records[-2:]}
            print(f"{case:15s} loop {row['loop']['seconds']:8.2f} s  stacked {row['stacked']['seconds']:8.2f} s  "
                  f"x{row['stacked']['speedup']:.2f}  | GFLOP/s {row['loop']['gflops']:.1f} / "
                  f"{row['stacked']['gflops']:.1f} of {peak:.0f}  | {PAPER_EPOCHS[case]} epochs: "
                  f"{row['loop']['full_s']:.0f} s vs {row['stacked']['full_s']:.0f} s  | max |dw| {difference:.1e}")

    table = pd.DataFrame(records)
    print()
    print(table.pivot_table(index=["case", "threads"], columns="path",
                            values=["seconds", "model_steps_per_s", "gflops"]).round(2).to_string())
    out = args.out
    if out is None and not args.quick:
        out = RESULTS / f"vectorised_training_{device.type}.csv"
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.assign(torch=torch.__version__, machine=platform.processor() or platform.machine()).to_csv(out, index=False)
        print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
