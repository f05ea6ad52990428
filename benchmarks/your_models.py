"""Your own models, your own device: the product path on CNNs nobody here designed.

1. Generate ``--models`` CNNs from the seeded recipe of `multipredict.yourmodels.zoo` (ResNet
   basic blocks or MobileNet inverted residuals; random widths, depths, kernel sizes 3/5/7,
   expansion ratios 1/3/6, 2-4 stride-2 stages, 32 or 64 pixel inputs; no downloaded weights) and
   export each to ONNX under ``--work`` (default ``runs/your_models/``, kept out of git).
2. Encode the ONNX folder as a user would (`encode_models`, i.e. ``multipredict encode``): the 13
   proxies and the latency on each of ``--profiles`` on this machine (the measurement protocol's
   medians; resumable, so a rerun skips what is done).
3. Hold each profile out in turn as "the user's device": draw ``--samples`` of its models (per
   seed), fit each predictor on HWL from the *other* profiles (and/or ZCP), and score Spearman
   against its measured latency on every model not drawn, beside FLOPs and params ranking the same
   unseen models. The default arm (``nnls`` on HWL) is also run through `predict_latency` itself,
   to put its cross-validated estimate beside the truth.

    python benchmarks/your_models.py --models 40 --seeds 10 --samples 10 \\
        --csv benchmarks/results/your_models.csv --timing-csv benchmarks/results/your_models_encode.csv
    python benchmarks/your_models.py --quick        # 6 models, 2 profiles, seconds
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from multipredict.measure.backends import export_onnx
from multipredict.measure.protocol import MeasurementProtocol
from multipredict.yourmodels import encode_models, predict_latency, read_encodings, zoo
from multipredict.yourmodels.encode import CPU_PROFILES, latency_column
from multipredict.yourmodels.predict import feature_columns, feature_matrix, make_predictor

ARMS = (("hwl", "nnls"), ("hwl", "ridge"), ("hwl", "closest"), ("hwl", "mlp"), ("hwlzcp", "ridge"),
        ("hwlzcp", "mlp"), ("zcp", "ridge"), ("zcp", "mlp"))
BASELINES = ("flops", "params")


def export_zoo(count: int, seed: int, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, factory in zoo(count, seed).items():
        path = folder / f"{name}.onnx"
        if not path.exists():  # the recipe is seeded: an existing file is the same model
            tmp = path.with_suffix(".onnx.tmp")
            export_onnx(factory(), torch.zeros((1, *factory.spec.input_shape)), tmp)
            tmp.replace(path)
        paths[name] = path
    return paths


def arm_spearman(table, rows_all, train_models, truth, encoding, predictor, references, seed):
    """Spearman of one arm's predictions with ``truth`` on the usable models not in ``train_models``."""
    columns = feature_columns(table, encoding, references)
    rows, X = feature_matrix(table, columns)
    names = table["model"].to_numpy()[rows]
    position = {m: i for i, m in enumerate(names)}
    train = np.array([position[m] for m in train_models])
    y = truth.reindex(train_models).to_numpy()
    fitted = make_predictor(predictor, seed).fit(X[train], y)
    unseen = np.array([i for i, m in enumerate(names) if m not in set(train_models) and m in rows_all])
    predicted = fitted.predict(X[unseen])
    return float(stats.spearmanr(predicted, truth.reindex(names[unseen]).to_numpy()).statistic)


def evaluate(table: pd.DataFrame, profiles: list[str], samples: int, seeds: int) -> pd.DataFrame:
    ok = table[table["status"] == "ok"].reset_index(drop=True)
    usable = set(ok["model"])
    trials = []
    for held_out in profiles:
        references = [p for p in profiles if p != held_out]
        truth = ok.set_index("model")[latency_column(held_out)]
        for seed in range(seeds):
            drawn = list(np.random.default_rng([seed, len(held_out)]).choice(ok["model"], samples, replace=False))
            unseen = [m for m in ok["model"] if m not in drawn]
            base = {"held_out": held_out, "seed": seed, "k": samples, "unseen": len(unseen)}
            for column in BASELINES:
                rho = stats.spearmanr(ok.set_index("model").loc[unseen, column], truth.loc[unseen]).statistic
                trials.append({**base, "arm": column, "spearman": float(rho)})
            for encoding, predictor in ARMS:
                rho = arm_spearman(ok, usable, drawn, truth, encoding, predictor, references, seed)
                trials.append({**base, "arm": f"{encoding} {predictor}", "spearman": rho})
            result = predict_latency(ok, pd.DataFrame({"model": drawn, "latency_ms": truth.loc[drawn].to_numpy()}),
                                     encoding="hwl", references=references, seed=seed)
            trials[-len(ARMS)]["cv_estimate"] = result.cv_spearman  # the default ("hwl nnls") row of this trial
        done = [t for t in trials if t["held_out"] == held_out]
        print(f"held out {held_out}: " + ", ".join(
            f"{arm} {np.mean([t['spearman'] for t in done if t['arm'] == arm]):.3f}"
            for arm in (*BASELINES, *(f'{e} {p}' for e, p in ARMS))), flush=True)
    return pd.DataFrame(trials)


def summarise(trials: pd.DataFrame) -> pd.DataFrame:
    order = {arm: i for i, arm in enumerate((*(f"{e} {p}" for e, p in ARMS), *BASELINES))}
    summary = (trials.groupby(["held_out", "arm"], sort=False)
               .agg(k=("k", "first"), unseen=("unseen", "first"), seeds=("seed", "nunique"),
                    spearman_mean=("spearman", "mean"), spearman_std=("spearman", "std"),
                    spearman_min=("spearman", "min"), cv_estimate_mean=("cv_estimate", "mean"))
               .reset_index())
    summary["order"] = summary["arm"].map(order)
    overall = (summary.groupby("arm", sort=False)
               .agg(k=("k", "first"), unseen=("unseen", "first"), seeds=("seeds", "sum"),
                    spearman_mean=("spearman_mean", "mean"), spearman_std=("spearman_std", "mean"),
                    spearman_min=("spearman_min", "min"), cv_estimate_mean=("cv_estimate_mean", "mean"),
                    order=("order", "first")).reset_index())
    overall.insert(0, "held_out", "mean over held-out profiles")
    summary = pd.concat([summary, overall], ignore_index=True).sort_values(["order"], kind="stable")
    return summary.drop(columns="order").round(4).reset_index(drop=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=40)
    parser.add_argument("--zoo-seed", type=int, default=0)
    parser.add_argument("--profiles", default=",".join(CPU_PROFILES))
    parser.add_argument("--samples", type=int, default=10, help="k: the user's measured models")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per measurement")
    parser.add_argument("--work", default=None, help="folder for the ONNX files and the encoding table "
                                                    "(default runs/your_models, --quick runs/your_models_quick)")
    parser.add_argument("--csv", default=None, help="the summary CSV (per held-out profile and arm)")
    parser.add_argument("--timing-csv", default=None, help="the encode wall time CSV")
    parser.add_argument("--quick", action="store_true", help="6 models, 2 profiles, 3 samples, 2 seeds")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.profiles, args.samples, args.seeds, args.repeats = 6, "cpu-1t-b1,ort-cpu-1t-b1", 3, 2, 5
    work = Path(args.work or ("runs/your_models_quick" if args.quick else "runs/your_models"))
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]

    started = time.perf_counter()
    export_zoo(args.models, args.zoo_seed, work / "models")
    exported = time.perf_counter() - started
    protocol = MeasurementProtocol(repeats=args.repeats, warmup=2 if args.quick else 10,
                                   min_warmup_seconds=0.02 if args.quick else 0.2)
    result = encode_models(work / "models", work / "encodings.parquet", profiles=profiles, protocol=protocol,
                           progress=not args.quick)
    print(result.summary())
    table = read_encodings(work / "encodings.parquet")
    table = table[table["model"].isin(result.table["model"])]
    timing = pd.DataFrame([{
        "models": len(table), "ok": int((table["status"] == "ok").sum()), "profiles": " ".join(profiles),
        "repeats": args.repeats, "encoded_now": result.encoded, "export_s": round(exported, 1),
        "encode_wall_s": round(result.seconds, 1), "sum_model_s": round(float(table["seconds"].sum()), 1),
        "median_model_s": round(float(table["seconds"].median()), 2), "max_model_s": round(float(table["seconds"].max()), 2),
        "latency_ms_min": round(float(table[[latency_column(p) for p in profiles]].min().min()), 3),
        "latency_ms_max": round(float(table[[latency_column(p) for p in profiles]].max().max()), 3)}])
    print(timing.to_string(index=False))

    trials = evaluate(table, profiles, args.samples, args.seeds)
    trials.to_csv(work / "trials.csv", index=False)
    summary = summarise(trials)
    print(summary.to_string(index=False))
    if args.csv:
        summary.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    if args.timing_csv:
        timing.to_csv(args.timing_csv, index=False)
        print(f"wrote {args.timing_csv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
