"""`multipredict ...`: the command-line front end over the engine's public API."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import pandas as pd

from .errors import MultipredictError

FORMATS = ("table", "csv", "json")


def _emit(frame: pd.DataFrame, fmt: str, float_format: str = "{:.4f}") -> None:
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        print(frame.to_json(orient="records", indent=1))
    else:
        print(frame.to_string(index=False, float_format=float_format.format))


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


# ---------------------------------------------------------------- data
def cmd_data_fetch(args: argparse.Namespace) -> int:
    from .data import fetch, sources

    if args.all == bool(args.sources):
        raise MultipredictError("name the sources to fetch or pass --all; sources: " + ", ".join(sources.groups()))
    groups = sources.groups() if args.all else args.sources
    files = [f for g in groups for f in sources.files_in(g)]
    fetch.fetch(files, progress=not args.quiet)
    print(f"{len(files)} files present and verified (sha256) under {fetch.cached_path(files[0]).parents[3]}")
    return 0


def cmd_data_report(args: argparse.Namespace) -> int:
    from .data import report

    files = report.files_report()
    print("Source files (cache: present / pinned)")
    _emit(files, "table")
    if args.files_only:
        return 0
    missing = report.missing_files()
    if missing:
        print(f"\n{len(missing)} files are not in the cache; tables below fetch them first "
              f"(`multipredict data fetch --all` does so at once).")
    tables = report.tables_report(progress=not args.quiet)
    print("\nTables (missing = NaN cells; sentinels = upstream -1e8 / -1 values turned into NaN)")
    summary = tables.groupby("table", sort=False).agg(
        rows=("rows", "first"), columns=("column", "count"), missing=("missing", "sum"), sentinels=("sentinels", "sum"))
    _emit(summary.reset_index(), args.format)
    if args.columns:
        print()
        _emit(tables[tables["missing"] > 0], args.format)
    return 0


# ---------------------------------------------------------------- devices / distance
def cmd_devices(args: argparse.Namespace) -> int:
    from .data import catalogue

    table = catalogue.catalogue(args.space, coverage=args.coverage)
    _emit(table, args.format, "{:.3f}")
    return 0


def cmd_distance(args: argparse.Namespace) -> int:
    from . import tasks

    train, test = _split(args.train), _split(args.test)
    if args.preset:
        preset = tasks.device_set(args.preset)
        if preset.space != args.space:
            raise MultipredictError(f"device set {args.preset!r} is for space {preset.space!r}, not {args.space!r}; "
                                    f"pass --space {preset.space}")
        train, test = train or list(preset.train), test or list(preset.test)
    if args.max_correlation is not None:
        kept = tasks.adversarial_train_set(args.space, train, test, args.max_correlation)
        print(f"# training devices with Spearman <= {args.max_correlation} to every test device: "
              f"{len(kept)} of {len(train)}", file=sys.stderr)
        train = kept
    pairs = tasks.correlation_pairs(args.space, train, test)
    if args.format == "csv":
        pairs[["train", "test", "spearman", "kendall"]].to_csv(sys.stdout, index=False, float_format="%.4f")
        return 0
    closest = tasks.closest_training_device(args.space, train, test)
    if args.format == "json":
        print(json.dumps({"pairs": json.loads(pairs.to_json(orient="records")),
                          "closest": json.loads(closest.to_json(orient="records"))}, indent=1))
        return 0
    matrix = pairs.pivot(index="train", columns="test", values="spearman").loc[train, test]
    print(f"Spearman rank correlation of latencies, {args.space}: train (rows) x test (columns)")
    print(matrix.to_string(float_format="{:.2f}".format))
    print("\nClosest training device of each test device")
    print(closest.to_string(index=False, float_format="{:.3f}".format))
    return 0


# ---------------------------------------------------------------- main job
def cmd_main(args: argparse.Namespace) -> int:
    """The README's run command: a headless task-distance report for the paper's device sets."""
    from . import tasks

    for name in ("nb201-default", "fbnet-default"):
        preset = tasks.device_set(name)
        print(f"== {name}: {preset.description}")
        cmd_distance(argparse.Namespace(space=preset.space, train="", test="", preset=name, format="table",
                                        max_correlation=None))
        print()
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="multipredict", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="fetch and inspect the public benchmark files")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("fetch", help="download (or copy from MULTIPREDICT_MIRROR) and verify files")
    fetch.add_argument("sources", nargs="*", help="source groups (see `multipredict data report`)")
    fetch.add_argument("--all", action="store_true", help="every pinned source")
    fetch.add_argument("--quiet", action="store_true")
    fetch.set_defaults(func=cmd_data_fetch)
    report = data_sub.add_parser("report", help="what is present, sizes, missing values per table")
    report.add_argument("--format", choices=FORMATS, default="table")
    report.add_argument("--files-only", action="store_true", help="only the file list (no download, no parsing)")
    report.add_argument("--columns", action="store_true", help="also list every column with missing values")
    report.add_argument("--quiet", action="store_true")
    report.set_defaults(func=cmd_data_report)

    devices = sub.add_parser("devices", help="the device catalogue of a search space")
    devices.add_argument("--space", required=True)
    devices.add_argument("--format", choices=FORMATS, default="table")
    devices.add_argument("--coverage", action="store_true", help="load the data: archs covered, distinct values")
    devices.set_defaults(func=cmd_devices)

    distance = sub.add_parser("distance", help="task distance: train x test latency rank correlation")
    distance.add_argument("--space", required=True)
    distance.add_argument("--train", default="", help="comma-separated training devices")
    distance.add_argument("--test", default="", help="comma-separated test devices")
    distance.add_argument("--preset", help="a named device set: nb201-default, fbnet-default, nb201-adversarial, "
                                           "fbnet-adversarial (explicit --train/--test override it)")
    distance.add_argument("--max-correlation", type=float, help="drop training devices correlated above this bound "
                                                                "with any test device (paper Table 12)")
    distance.add_argument("--format", choices=FORMATS, default="table")
    distance.set_defaults(func=cmd_distance)

    main_job = sub.add_parser("main", help="the README's run command")
    main_job.set_defaults(func=cmd_main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (MultipredictError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"multipredict: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
