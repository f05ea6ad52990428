"""`multipredict encode` and `multipredict predict`: the command-line face of this package.

``multipredict/cli.py`` only calls `register(subparsers)`.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import MultipredictError
from ..outputs import TABLE_SUFFIXES, check_output_file


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _warn(message: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(f"multipredict: warning: {message}", file=sys.stderr)


def cmd_encode(args: argparse.Namespace) -> int:
    check_output_file(args.out, suffixes=TABLE_SUFFIXES, inputs={"--models": args.models})
    from ..measure.protocol import make_protocol
    from .encode import default_profiles, encode_models
    from .sources import parse_input_shape

    profiles = _split(args.profiles) or list(default_profiles())
    protocol = make_protocol(repeats=args.repeats, warmup=args.warmup)
    result = encode_models(args.models, args.out, profiles=profiles, input_shape=parse_input_shape(args.input_shape),
                           protocol=protocol, progress=not args.quiet, warn=_warn)
    print(result.summary())
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .predict import predict_latency, summary_path

    summary = args.summary or summary_path(args.out)
    inputs = {"--encodings": args.encodings, "--measurements": args.measurements}
    check_output_file(args.out, suffixes=TABLE_SUFFIXES, inputs=inputs)
    check_output_file(summary, flag="--summary", suffixes=(".json",), inputs={**inputs, "--out": args.out})
    from ..onboard import write_json, write_table

    folds = None if args.folds is None else ("loo" if args.folds == "loo" else _folds(args.folds))
    result = predict_latency(args.encodings, args.measurements, encoding=args.encoding, predictor=args.predictor,
                             references=_split(args.references) or None, folds=folds, seed=args.seed)
    print(result.summary())
    write_table(result.predictions, args.out)
    write_json(result.summary_record(), summary)
    print(f"wrote predicted latency of {len(result.predictions)} models to {args.out} and the summary to {summary}")
    return 0


def _folds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise MultipredictError(f"--folds {text!r} must be 'loo' or a whole number >= 2")
    return value


def register(subparsers) -> None:
    """Add ``encode`` and ``predict`` to the CLI's sub-parsers."""
    from .names import CPU_PROFILES, CUDA_PROFILE, DEFAULT_PREDICTOR, ENCODINGS, PREDICTOR_NAMES

    encode = subparsers.add_parser(
        "encode", help="ZCP + HWL encodings of your own models (a folder of ONNX files), resumable",
        description="Compute the zero-cost proxies and the latency on reference profiles of every .onnx file in "
                    "a folder, one row per model. Rerunning with the same --out skips models already done.")
    encode.add_argument("--models", required=True, help="a folder of .onnx files (or one .onnx file)")
    encode.add_argument("--out", required=True, help="the encoding table, .parquet or .csv")
    encode.add_argument("--profiles", default="",
                        help=f"comma list of `multipredict measure --list-profiles` names or profile files "
                             f"(default {','.join(CPU_PROFILES)}, plus {CUDA_PROFILE} when a GPU is present)")
    encode.add_argument("--input-shape", default=None, help="C,H,W for ONNX files with a dynamic input, e.g. 3,224,224")
    encode.add_argument("--repeats", type=int, default=30, help="timed calls per measurement (median kept)")
    encode.add_argument("--warmup", type=int, default=10, help="untimed calls before timing")
    encode.add_argument("--quiet", action="store_true", help="no progress bar")
    encode.set_defaults(func=cmd_encode)

    predict = subparsers.add_parser(
        "predict", help="predict your device's latency for every encoded model from k measured ones",
        description="Fit a few-shot latency predictor on k models you measured on your device (CSV model,latency_ms;"
                    " 5-20 recommended) and predict all encoded models, with a cross-validated Spearman estimate.")
    predict.add_argument("--encodings", required=True, help="the table `multipredict encode` wrote")
    predict.add_argument("--measurements", required=True, help="CSV (or parquet) with columns model,latency_ms")
    predict.add_argument("--out", required=True, help="predictions: model, predicted_ms, measured_ms (.csv/.parquet)")
    predict.add_argument("--summary", default=None, help="JSON summary (default: --out with the suffix .json)")
    predict.add_argument("--encoding", default="hwl", choices=ENCODINGS, help="features (default hwl)")
    predict.add_argument("--predictor", default=DEFAULT_PREDICTOR, choices=[DEFAULT_PREDICTOR, *PREDICTOR_NAMES],
                         help="estimator (default auto: nnls on hwl, mlp on zcp and hwlzcp; see "
                              "benchmarks/README.md)")
    predict.add_argument("--references", default="", help="comma list of the table's profiles HWL reads "
                                                          "(default: all)")
    predict.add_argument("--folds", default=None, help="'loo' or a number of folds (default: leave-one-out up to 20 "
                                                      "measurements, else 5)")
    predict.add_argument("--seed", type=int, default=0)
    predict.set_defaults(func=cmd_predict)
