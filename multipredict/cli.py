"""`multipredict ...`: the command-line front end over the engine's public API."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from . import suggest
from .errors import MultipredictError
from .messages import debug_requested, one_line, user_message
from .outputs import TABLE_SUFFIXES, check_output_dir, check_output_file
from .stopping import terminate_as_interrupt

FORMATS = ("table", "csv", "json")
DEBUG_HELP = "show the traceback of an error (also MULTIPREDICT_DEBUG=1)"


class UsageError(MultipredictError):
    """A command line argparse refused (unknown flag, bad choice, wrong type)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a refused command line is one `multipredict: error:` line like every other error."""

    def error(self, message: str):
        raise UsageError(f"{message}; see `{self.prog} --help`")


def _int_at_least(minimum: int, why: str = ""):
    """An argparse type: a whole number >= ``minimum`` (``why`` says what a smaller one would mean)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is too small: expected a whole number >= {minimum}"
                                             + (f" ({why})" if why else ""))
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


def _emit(frame: pd.DataFrame, fmt: str, float_format: str = "{:.4f}") -> None:
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        print(frame.to_json(orient="records", indent=1))
    else:
        print(frame.to_string(index=False, float_format=float_format.format))


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _int_value(flag: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise MultipredictError(f"{flag} {text!r} is not a whole number; pass e.g. {flag} 10,20") from None


def parse_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as an int, a float, true/false/none, or else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise MultipredictError(f"--option {text!r} is not KEY=VALUE (e.g. --option target_lr=4e-4)")
    value = value.strip()
    for cast in (int, float):
        try:
            return key.strip(), cast(value)
        except ValueError:
            pass
    return key.strip(), {"true": True, "false": False, "none": None}.get(value.lower(), value)


# ---------------------------------------------------------------- data
def cmd_data_fetch(args: argparse.Namespace) -> int:
    from .data import fetch, sources

    if args.all and args.sources:
        raise MultipredictError(f"pass either --all or source names, not both (got --all and "
                                f"{' '.join(args.sources)}); drop one of them")
    if not args.all and not args.sources:
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
    disagreement = report.accuracy_disagreement()
    print(f"\nTNB-101 accuracy: zc json (used) against the zen zips, {len(disagreement)} tasks")
    print(report.ACCURACY_SOURCE_NOTE)
    _emit(disagreement, args.format)
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


def cmd_tasks(args: argparse.Namespace) -> int:
    from .data import accuracy

    if args.space is not None:
        accuracy.check_space(args.space)
    table = accuracy.catalogue(args.space).drop(columns=["space", "name"])
    _emit(table, args.format, "{:.4g}")
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
    tasks.check_split(args.space, train, test)
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


# ---------------------------------------------------------------- experiments
def _check_reproduce(args: argparse.Namespace, options: dict) -> dict:
    """Every input of `reproduce`, before its output folder is created or a trial runs."""
    from . import config
    from .experiments import methods as method_registry
    from .experiments.reproduce import QUICK_REPEATS, table_specs

    if config.data_source() == "local":
        raise MultipredictError("reproduce reruns the paper's tables on the public benchmark devices, but "
                                "MULTIPREDICT_DATA=local holds only this machine's profiles; unset MULTIPREDICT_DATA "
                                "(or set it to benchmarks or all) and rerun")
    if args.repeats is not None and args.repeats < 1:
        raise MultipredictError(f"--repeats {args.repeats} is not valid; expected a whole number >= 1 (e.g. --repeats "
                                f"10, the paper's)")
    if args.quick and args.repeats not in (None, QUICK_REPEATS):
        raise MultipredictError(f"--quick runs {QUICK_REPEATS} repeat, so --repeats {args.repeats} would be ignored; "
                                f"drop --repeats, or drop --quick for a full run")
    check_output_dir(args.out)
    specs = table_specs(args.table, repeats=args.repeats or 10, quick=args.quick, seed=args.seed,
                        methods=_split(args.methods) or None, options=options,
                        samples=[_int_value("--samples", v) for v in _split(args.samples)] or None,
                        parts=_split(args.parts) or None)
    for _, spec in specs:  # pools and budgets against the data, before the output folder exists
        spec.check_data()
    if options:
        method_registry.validate_options(list(dict.fromkeys(m for _, spec in specs for m in spec.methods)), options)
    return options


ACCURACY_FIGURES = ("fig8", "fig9", "fig15")
FROM_SCRATCH_FIGURES = ("fig6", "fig16", "fig17")  # `experiments.paper_numbers.FIGURES`, run like the tables


def _figure_run(args: argparse.Namespace, default_repeats: int, not_for: dict[str, object] | None = None,
                settings: str = "") -> tuple[int, int]:
    """The checks every ``reproduce figN`` shares (quick vs repeats, the executor, flags that belong to
    other figures); returns (repeats, workers)."""
    if args.quick and args.repeats not in (None, 1):
        raise MultipredictError(f"--quick runs 1 repeat, so --repeats {args.repeats} would be ignored; drop --repeats, "
                                f"or drop --quick for a full run")
    if args.repeats is not None and args.repeats < 1:
        raise MultipredictError(f"--repeats {args.repeats} is not valid; expected a whole number >= 1 (e.g. "
                                f"{default_repeats})")
    if args.executor not in (None, "serial", "processes"):
        raise MultipredictError(f"--executor {args.executor} is not offered for {args.table}; use serial or processes "
                                f"(--workers N)")
    for flag, value in (not_for or {}).items():
        if value:
            raise MultipredictError(f"{flag} does not apply to {args.table}; its settings are {settings}")
    repeats = 1 if args.quick else (args.repeats or default_repeats)
    return repeats, args.workers or (1 if args.executor in (None, "serial") else 2)


def _figure_done(args: argparse.Namespace, files: str) -> int:
    print(Path(args.out, f"{args.table}.txt").read_text())
    print(f"wrote {args.out}/{files} (a rerun resumes from {args.out}/store)")
    return 0


def _reproduce_accuracy(args: argparse.Namespace) -> int:
    """``reproduce fig8|fig9|fig15``: the accuracy experiments (`experiments.accuracy`)."""
    from .experiments import accuracy as figures

    repeats, workers = _figure_run(args, 10)
    if not 0 < args.source_fraction <= 1:
        raise MultipredictError(f"--source-fraction {args.source_fraction} is outside (0, 1]; e.g. 0.15 (15% of "
                                f"each source task's pool) or 1 (the whole pool)")
    options = dict(parse_option(text) for text in args.option)
    proxy_set = args.proxy_set if args.proxy_set in ("common", "all") else _split(args.proxy_set)
    plan_options = dict(options=options, tasks=_split(args.tasks) or None, proxy_set=proxy_set,
                        samples=tuple(_int_value("--samples", v) for v in _split(args.samples)) or None,
                        arms=tuple(_split(args.methods)) or None, source_fraction=args.source_fraction,
                        seed=args.seed, multitask_repeats=args.multitask_repeats)
    if args.table == "fig15" and args.methods:
        raise MultipredictError("--methods picks the arms of fig8 and fig9; fig15 has none. Drop --methods")
    if args.table != "fig9":
        for name in ("tasks", "proxy_set", "multitask_repeats"):
            plan_options.pop(name)
        plan_options.pop("source_fraction")
    if args.table == "fig15":
        plan_options.pop("arms")
    figures.plan(args.table, repeats=repeats, quick=args.quick, **plan_options)  # every input, before the folder
    check_output_dir(args.out)
    figures.reproduce_accuracy(args.table, out_dir=args.out, repeats=repeats, quick=args.quick, workers=workers,
                               progress=not args.quiet, **plan_options)
    return _figure_done(args, f"{args.table}.csv, {args.table}.txt, {args.table}.html and {args.table}_trials.csv")


def _reproduce_crossspace(args: argparse.Namespace) -> int:
    """``reproduce fig7``: latency transfer across search spaces (`experiments.crossspace`)."""
    from .experiments import crossspace

    repeats, workers = _figure_run(args, 10, {"--methods": args.methods, "--option": args.option,
                                              "--tasks": args.tasks},
                                   "--devices, --sources, --samples, --source-archs and --reference-rule")
    plan_options = dict(devices=_split(args.devices) or None, sources=_split(args.sources) or None,
                        samples=tuple(_int_value("--samples", v) for v in _split(args.samples)) or None,
                        source_archs=args.source_archs, rule=args.reference_rule, seed=args.seed)
    crossspace.plan("fig7", repeats=repeats, quick=args.quick, **plan_options)  # every input, before the folder
    check_output_dir(args.out)
    crossspace.reproduce_crossspace("fig7", out_dir=args.out, repeats=repeats, quick=args.quick, workers=workers,
                                    progress=not args.quiet, **plan_options)
    return _figure_done(args, "fig7.csv, fig7_overview.csv, fig7.txt, fig7.html and fig7_trials.csv")


def _reproduce_search(args: argparse.Namespace) -> int:
    """``reproduce fig10``: predictor-guided search on the whole NB201 space (`experiments.search`)."""
    from .experiments import search as figure

    repeats, workers = _figure_run(args, 20, {"--option": args.option, "--tasks": args.tasks,
                                              "--devices": args.devices, "--sources": args.sources,
                                              "--samples": args.samples},
                                   "--datasets, --methods (arms) and --budget")
    plan_options = dict(datasets=_split(args.datasets) or None, arms=_split(args.methods) or None,
                        budget=args.budget, seed=args.seed)
    figure.plan("fig10", repeats=repeats, quick=args.quick, **plan_options)
    check_output_dir(args.out)
    figure.reproduce_search("fig10", out_dir=args.out, repeats=repeats, quick=args.quick, workers=workers,
                            progress=not args.quiet, **plan_options)
    return _figure_done(args, "fig10.csv, fig10_near_optimal.csv, fig10_regret.csv, fig10.txt, fig10.html and "
                              "fig10_trials.csv")


def _reproduce_budget(args: argparse.Namespace) -> int:
    """``reproduce budget``: latency-budgeted search on three HELP devices (`experiments.search`)."""
    from .experiments import search as figure

    repeats, workers = _figure_run(args, 20, {"--option": args.option, "--tasks": args.tasks,
                                              "--sources": args.sources, "--samples": args.samples},
                                   "--datasets, --devices, --methods (arms) and --budget")
    plan_options = dict(datasets=_split(args.datasets) or None, devices=_split(args.devices) or None,
                        arms=_split(args.methods) or None, budget=args.budget, seed=args.seed)
    figure.budget_plan(repeats=repeats, quick=args.quick, **plan_options)
    check_output_dir(args.out)
    figure.reproduce_budget(out_dir=args.out, repeats=repeats, quick=args.quick, workers=workers,
                            progress=not args.quiet, **plan_options)
    return _figure_done(args, "budget.csv, budget_overview.csv, budget.txt, budget.html and budget_trials.csv")


def cmd_search(args: argparse.Namespace) -> int:
    from . import latencybudget, searchjob

    if args.space != "nb201":
        raise MultipredictError(f"search covers --space nb201 (the space with whole-space accuracies); got "
                                f"{args.space!r}")
    if args.level is not None and not 0 < args.level < 1:
        raise MultipredictError(f"--level {args.level}: the conformal level must lie strictly between 0 and 1 "
                                f"(default 0.95)")
    if args.level is not None and args.no_margin:
        raise MultipredictError(f"--level {args.level} and --no-margin contradict each other: give one")
    if args.max_latency_ms is not None and args.device is None and args.measurements is None:
        raise MultipredictError(f"--max-latency-ms {args.max_latency_ms:g} needs a device: give --device NAME (a "
                                f"public device) or --measurements FILE (your device's arch,latency_ms)")
    check_output_dir(args.out)
    # store: the onboarding `onboard --measurements` made of the same file is read back, not redone
    latency = searchjob.latency_for(device=args.device, measurements=args.measurements, store=True)
    out = Path(args.out)
    result = searchjob.run_search(args.task, strategy=args.strategy, encoding=args.encoding, budget=args.budget,
                                  seed=args.seed, latency=latency, max_ms=args.max_latency_ms,
                                  level=None if args.no_margin else
                                  args.level if args.level is not None else latencybudget.DEFAULT_LEVEL,
                                  state_path=out / "search_state.json", progress=not args.quiet)
    written = searchjob.write_search(result, out)
    record = result.summary()
    line = (f"after {record['trained_archs']} trained archs: {record['arch']} (id {record['arch_id']}), validation "
            f"{record['val_accuracy']:.2f}, test {record['test_accuracy']:.2f}")
    if args.max_latency_ms is not None:
        line += (f"; {record['archs_counted_feasible']} archs counted under {args.max_latency_ms:g} ms on "
                 f"{record['device']} (their best test {record['best_test_accuracy_counted_feasible']:.2f}); chosen "
                 f"arch at {record['chosen_latency_ms']:.4g} ms ({record['latency_from']})")
        if not record["chosen_latency_certain"]:
            line += (f". Its latency is predicted: measure the archs of {out}/shortlist.csv in order and keep the "
                     f"first under {args.max_latency_ms:g} ms")
    else:
        line += f" (the space's best test {record['best_test_accuracy_in_space']:.2f})"
    print(line)
    print(f"wrote {out}/{', '.join(written)} (build it in torch with "
          f"multipredict.spaces.models.build_nb201({record['arch_id']}); a rerun resumes from "
          f"{out}/search_state.json)")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:

    from .experiments.reproduce import format_comparison, reproduce

    if args.table in ACCURACY_FIGURES:
        return _reproduce_accuracy(args)
    if args.table == "fig7":
        return _reproduce_crossspace(args)
    if args.table == "budget":
        return _reproduce_budget(args)
    if args.table == "fig10":
        return _reproduce_search(args)
    for flag, value in (("--devices", args.devices), ("--sources", args.sources)):
        if value:
            raise MultipredictError(f"{flag} applies to fig7 only; {args.table}'s devices are its device sets "
                                    f"(--parts)")
    options = dict(parse_option(text) for text in args.option)
    options = _check_reproduce(args, options)
    summary = reproduce(args.table, repeats=args.repeats or 10, quick=args.quick, out_dir=args.out,
                        methods=_split(args.methods) or None, options=options, executor=args.executor,
                        workers=args.workers, seed=args.seed, progress=not args.quiet,
                        samples=[_int_value("--samples", v) for v in _split(args.samples)] or None,
                        parts=_split(args.parts) or None, scheduler=args.scheduler)
    settings = summary.attrs.get("settings")
    if settings:
        print(f"settings: {settings}")
    print(format_comparison(summary))
    extra = ""
    if args.table in FROM_SCRATCH_FIGURES:
        text = Path(args.out, f"{args.table}.txt").read_text()
        print("\n" + text[text.rindex("paper: "):].rstrip())
        extra = f", {args.table}_curve.csv, {args.table}_claim.csv, {args.table}.html"
    print(f"\nwrote {args.out}/{args.table}.csv (ours beside the paper), {args.table}.txt{extra} and "
          f"{args.table}_trials.csv")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .experiments.batch import RESULTS_FILE, SUMMARY_FILE, run_spec_file

    check_output_dir(args.out)
    experiment = run_spec_file(args.spec, args.out, executor=args.executor, workers=args.workers,
                               scheduler=args.scheduler, progress=not args.quiet)
    print(experiment.text())
    print(f"\nwrote {args.out}/{RESULTS_FILE} (one row per trial x test device) and {SUMMARY_FILE}; trials are kept "
          f"under {args.out}/store, so a rerun resumes")
    return 0 if experiment.complete else 1


def _add_executor_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", choices=["serial", "threads", "processes", "dask"], default=None,
                        help="where trials run (default: serially here); dask: on --scheduler, or on a local "
                             "Dask cluster of --workers processes")
    parser.add_argument("--workers", type=_int_at_least(1), default=None,
                        help="local processes (default: the CPU count); on a remote Dask cluster, trials submitted "
                             "at once")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="a Dask scheduler, e.g. tcp://10.0.0.5:8786 (with --executor dask)")


def cmd_zcp(args: argparse.Namespace) -> int:
    from .proxies.runner import run_zcp
    from .spaces.selection import select_archs

    check_output_file(args.out, suffixes=TABLE_SUFFIXES)
    if args.images is not None and not Path(args.images).is_dir():
        raise MultipredictError(f"--images {args.images!r} is not a folder; give a folder with one sub-folder of "
                                f"images per class, or leave --images out for the seeded synthetic batch")
    from .proxies.runner import ALL_PROXIES
    from .proxies.scores import validate_proxies

    proxies = validate_proxies(_split(args.proxies) or ALL_PROXIES)
    ids = select_archs(args.space, args.archs)
    table = run_zcp(args.space, ids, args.out, workers=args.workers, batch=args.images, batch_size=args.batch_size,
                    seed=args.seed, progress=not args.quiet, proxies=proxies)
    print(f"{len(table)} archs with {args.space} zero-cost proxies in {args.out} (a rerun resumes)")
    return 0


class _StageBars:
    """``progress(stage, fraction)`` as one tqdm bar per stage (percent done, elapsed, ETA)."""

    def __init__(self, disable: bool = False):
        self.disable, self.bar, self.stage = disable, None, None

    def __call__(self, stage: str, fraction: float) -> None:
        from tqdm.auto import tqdm

        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=100, desc=stage, unit="%", disable=self.disable,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
        self.bar.update(round(100 * fraction) - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> _StageBars:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cmd_onboard(args: argparse.Namespace) -> int:
    if args.out:  # first, before the engine is even imported: a bad --out must not cost a pretraining
        check_output_file(args.out, suffixes=TABLE_SUFFIXES, inputs={"--measurements": args.measurements})
    if args.summary:
        check_output_file(args.summary, flag="--summary", suffixes=(".json",), inputs={"--measurements": args.measurements,
                                                                    **({"--out": args.out} if args.out else {})})
    from . import onboard, tasks

    sources = _split(args.sources)
    if sources:
        tasks.check_devices(args.space, sources, "source")
        if args.name in sources:
            raise MultipredictError(f"--name {args.name!r} is one of the --sources devices used for pretraining; "
                                    f"give your device another name")
    measurements = onboard.read_measurements(args.space, args.measurements)
    options = {}
    for name in ("source_epochs", "target_epochs"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.starts is not None:
        from .data import help

        onboard.check_starts(args.starts, sources or help.devices(args.space))
        options["eq1_starts"] = args.starts
    with _StageBars(disable=args.quiet) as bars:
        result = onboard.onboard(args.space, measurements, device=args.name, folds=args.folds, seed=args.seed,
                                 source_devices=sources or None, progress=bars, store=True,
                                 recompute=args.recompute, **options)
    print(result.summary())
    if args.out:
        onboard.write_table(result.predictions, args.out)
        print(f"wrote predicted latency of {len(result.predictions)} archs to {args.out}")
    if args.summary:
        onboard.write_json(result.summary_record(), args.summary)
        print(f"wrote the summary to {args.summary}")
    return 0


def cmd_suggest(args: argparse.Namespace) -> int:
    inputs = {"--candidates": args.candidates, "--measured": args.measured}
    check_output_file(args.out, suffixes=TABLE_SUFFIXES, inputs={k: v for k, v in inputs.items() if v})
    from . import onboard, tasks

    if args.space not in suggest.DEFAULT_STRATEGIES:
        raise MultipredictError(f"unknown space {args.space!r} for suggest; valid: "
                                f"{', '.join(suggest.DEFAULT_STRATEGIES)} (the spaces with public latency profiles)")
    strategy = args.strategy or suggest.default_strategy(args.space)
    sources = _split(args.sources)
    if sources:
        tasks.check_devices(args.space, sources, "source")
    candidates = suggest.read_archs(args.space, args.candidates, flag="--candidates")[0] if args.candidates else None
    measured, measured_ms = (suggest.read_archs(args.space, args.measured, flag="--measured", with_latency=True)
                             if args.measured else (None, None))
    if strategy == "active" and measured is not None and measured_ms is None:
        raise MultipredictError(f"--strategy active needs the latencies of the measured archs: give {args.measured} a "
                                f"latency_ms column")
    ids = suggest.suggest(args.space, args.k, strategy=strategy, candidates=candidates, measured=measured,
                          measured_ms=measured_ms, sources=sources or None, seed=args.seed)
    onboard.write_table(suggest.suggestion_table(args.space, ids), args.out)
    print(f"wrote {len(ids)} archs to measure next ({strategy}) to {args.out}, in the order to measure them")
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="multipredict", description=__doc__)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
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

    search_parser = sub.add_parser("search", help="predictor-guided architecture search on the whole NB201 space")
    search_parser.add_argument("--space", default="nb201")
    search_parser.add_argument("--task", default="cifar10", choices=["cifar10", "cifar100", "ImageNet16-120"])
    search_parser.add_argument("--strategy", default="predictor", choices=["predictor", "random", "evolution",
                                                                          "zero-shot"])
    search_parser.add_argument("--encoding", default="zcpvec", help="the predictor's encoding: vec, zcp or zcpvec")
    search_parser.add_argument("--budget", type=_int_at_least(10), default=100, help="archs to train (default 100)")
    search_parser.add_argument("--seed", type=int, default=0)
    search_parser.add_argument("--device", default=None, help="a public NB201 device (its measured latency of every "
                                                              "arch); see `multipredict devices --space nb201`")
    search_parser.add_argument("--measurements", default=None, help="your device: a CSV/parquet of arch,latency_ms "
                                                                    "(5+ rows; 20 recommended); it is onboarded")
    search_parser.add_argument("--max-latency-ms", type=float, default=None,
                               help="search only archs under this latency on the device")
    search_parser.add_argument("--level", type=float, default=None,
                               help="conformal level of the latency margin for a device known by measurements "
                                    "(default 0.95: with 20 measurements, the largest cross-validated ratio)")
    search_parser.add_argument("--no-margin", action="store_true",
                               help="count an arch under the budget by its predicted latency alone, then measure "
                                    "shortlist.csv in order: better archs for about 2 more measurements, but the "
                                    "chosen arch may be over the budget until you do (benchmarks: 'Search under a "
                                    "latency budget')")
    search_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    search_parser.add_argument("--out", required=True, help="folder for trajectory.csv, chosen.json, chosen.onnx "
                                                             "(+ pareto.csv, shortlist.csv with a device; search.html)")
    search_parser.set_defaults(func=cmd_search)

    suggest_parser = sub.add_parser("suggest", help="which archs to measure next on a new device (for onboard)")
    suggest_parser.add_argument("--space", required=True, help="nb201 or fbnet")
    suggest_parser.add_argument("--k", type=_int_at_least(1), required=True, help="how many archs to suggest")
    suggest_parser.add_argument("--candidates", default=None, help="CSV with an 'arch' column: the archs you can "
                                                                   "measure (default: the whole space)")
    suggest_parser.add_argument("--measured", default=None, help="CSV 'arch[,latency_ms]' of archs already measured: "
                                                                 "suggest the next batch given them")
    defaults = ", ".join(f"{strategy} on {space}" for space, strategy in suggest.DEFAULT_STRATEGIES.items())
    suggest_parser.add_argument("--strategy", default=None, choices=suggest.STRATEGIES,
                                help=f"how to choose (default {defaults}, each measured best for its space in "
                                     "benchmarks/selection.py: design takes the archs that best cover how the "
                                     "pretrained predictor sees the space (experimental design), reference+design "
                                     "takes HELP's 10 reference archs first); random is the paper's; stratified "
                                     "spreads over the public devices' latency ranks, kcenter and representative "
                                     "cover them (farthest points, k-means centres); herding matches the whole space "
                                     "as the pretrained predictor sees it, reference adds random archs to HELP's "
                                     "reference archs; active needs --measured with latencies")
    suggest_parser.add_argument("--sources", default="", help="public devices whose latency ranks form the profile "
                                                             "and that the predictor of design, herding and active "
                                                             "is pretrained on (default: every HELP device of the "
                                                             "space, pretrained predictor shipped; others pretrain "
                                                             "once, minutes)")
    suggest_parser.add_argument("--seed", type=int, default=0)
    suggest_parser.add_argument("--out", required=True, help="CSV (or parquet) to write: order, arch, arch_id")
    suggest_parser.set_defaults(func=cmd_suggest)

    tasks_parser = sub.add_parser("tasks", help="the accuracy task catalogue (paper Table 8): pools and proxies")
    tasks_parser.add_argument("--space", default=None, help="nb101, nb201, nb301, tnb101_micro or tnb101_macro "
                                                            "(default: all 28 tasks)")
    tasks_parser.add_argument("--format", choices=FORMATS, default="table")
    tasks_parser.set_defaults(func=cmd_tasks)

    reproduce = sub.add_parser("reproduce", help="rerun a table or figure of the paper; prints ours beside the "
                                                 "published")
    reproduce.add_argument("table", choices=["table1", "table2", "table3", "table4", *FROM_SCRATCH_FIGURES, "fig7",
                                             *ACCURACY_FIGURES,
                                             "fig10", "budget"],
                           help="table1-4: latency transfer; fig6, fig16, fig17 (latency predictors from scratch "
                                "against total measurements: NB201, its adversarial devices, FBNet); fig7 (latency "
                                "transfer across search spaces); fig8 "
                                "(accuracy from scratch), fig9 (accuracy transfer across the 28 tasks), fig15 (ZCP "
                                "ablation), fig10 (predictor-guided search), budget (search under a latency budget "
                                "on three devices; beyond the paper)")
    reproduce.add_argument("--datasets", default=None, help="fig10, budget: NB201 datasets (default cifar10, "
                                                           "cifar100, ImageNet16-120)")
    reproduce.add_argument("--budget", type=int, default=None, help="fig10, budget: trained archs per search (default "
                                                                           "100)")
    reproduce.add_argument("--devices", default=None, help="fig7: comma list of the devices measured in both spaces "
                                                          "(default: all 22); budget: NB201 devices (default "
                                                          "titan_rtx_256, pixel2, eyeriss)")
    reproduce.add_argument("--sources", default=None, help="fig7: source spaces, nb201 and/or fbnet (default both "
                                                          "directions)")
    reproduce.add_argument("--source-archs", type=float, default=0.15,
                           help="fig7: source archs, a share of the source space (0.15: the paper's text) or a count "
                                "(100: the authors' code)")
    reproduce.add_argument("--reference-rule", default="least", choices=["least", "most", "all"],
                           help="fig7: HWL reference devices: the 16 least (authors' code) or most correlated with "
                                "the target on NB201, or all 21 others")
    reproduce.add_argument("--tasks", default=None, help="fig9: comma list of tasks as space/task (default: all 28; "
                                                        "see `multipredict tasks`)")
    reproduce.add_argument("--proxy-set", default="common", help="fig9: common (the 9 proxies all tasks have), all "
                                                                "(12, missing ones masked) or a comma list")
    reproduce.add_argument("--multitask-repeats", type=int, default=None,
                           help="fig9: run the multi-task arms (a pretraining on all other tasks per target and "
                                "repeat) on the first N repeats only (default: all)")
    reproduce.add_argument("--source-fraction", type=float, default=0.15,
                           help="fig9: share of each source task's pool to pretrain on (default 0.15)")
    reproduce.add_argument("--repeats", type=int, default=None, help="repeats (seeds) per trial (default 10)")
    reproduce.add_argument("--quick", action="store_true", help="a smoke run (< 3 min on 2 cores): fewer epochs, "
                                                                "1 repeat, fewer methods")
    reproduce.add_argument("--out", required=True, help="output folder (a rerun resumes from its store)")
    reproduce.add_argument("--methods", default=None, help="comma list of the table's rows to run (default: all), "
                                                          "e.g. 'TL Vec ET,HELP'; a later run into --out adds others")
    reproduce.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                           help="a setting for every chosen method that takes it, e.g. target_lr=4e-4 (repeatable)")
    reproduce.add_argument("--samples", default=None, help="few-shot budgets for the HELP and TL rows instead of "
                                                          "the table's, e.g. 20 or 10,20 (FLOPs and BRP-NAS keep "
                                                          "theirs; the paper has no value for other budgets)")
    reproduce.add_argument("--parts", default=None, help="comma list of a table's parts to run (default: all): "
                                                        "table2 nb201-adversarial,fbnet-adversarial; table4 "
                                                        "fbnet-default-4000, fbnet-default-1000, nb201-default-900, "
                                                        "nb201-default-50")
    _add_executor_flags(reproduce)
    reproduce.add_argument("--seed", type=int, default=0)
    reproduce.add_argument("--quiet", action="store_true")
    reproduce.set_defaults(func=cmd_reproduce)

    run = sub.add_parser("run", help="run a stored ExperimentSpec (YAML, e.g. the spec.yaml the dashboard writes "
                                     "under results/<hash>/) into a folder; prints the summary")
    run.add_argument("spec", help="the spec's YAML file (ExperimentSpec.to_yaml)")
    run.add_argument("--out", required=True, help="output folder: store/ (a rerun resumes), results.csv, "
                                                  "summary.csv, comparison.txt")
    _add_executor_flags(run)
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)

    onboard = sub.add_parser("onboard", help="a few-shot latency predictor for your own device from a CSV "
                                             "of arch,latency_ms")
    onboard.add_argument("--space", required=True)
    onboard.add_argument("--measurements", required=True, help="CSV (or parquet) with columns arch,latency_ms; "
                                                               "arch = id or arch string")
    onboard.add_argument("--out", help="write predicted latency for every arch (.csv or .parquet)")
    onboard.add_argument("--summary", default=None, help="write a JSON summary: spearman_estimate, spearman_low, "
                                                         "spearman_high, n_measurements, closest_source, "
                                                         "start_sources, advice, ...")
    onboard.add_argument("--name", default="my_device", help="your device's name")
    onboard.add_argument("--sources", default="", help="public devices to pretrain on (default: all HELP devices)")
    onboard.add_argument("--folds", type=_int_at_least(2, "each fold is predicted by a model fitted on the others"),
                         default=5, help="cross-validation folds for the quality estimate (>= 2)")
    onboard.add_argument("--seed", type=int, default=0)
    onboard.add_argument("--source-epochs", type=_int_at_least(1), default=None, help="pretraining epochs (paper: 250)")
    onboard.add_argument("--target-epochs", type=_int_at_least(1), default=None, help="fine-tuning epochs (paper: 50)")
    onboard.add_argument("--starts", type=_int_at_least(1, "the number of source devices the fine-tunes start from"),
                         default=None, help="fine-tune your device from the N public devices Eq. 1 ranks closest to "
                                            "it and average their predictions (default 2; 1: the paper's predictor, "
                                            "Eq. 1's pick alone; the interval is calibrated for 2)")
    onboard.add_argument("--quiet", action="store_true", help="no progress bars")
    onboard.add_argument("--recompute", action="store_true",
                         help="onboard anew even if these measurements were onboarded before with the same settings "
                              "and code (otherwise the stored result is read back: about a second)")
    onboard.set_defaults(func=cmd_onboard)

    from .spaces.selection import SELECTION_HELP

    zcp = sub.add_parser("zcp", help="compute the 13 zero-cost proxies for NB201 / FBNet archs (resumable)")
    zcp.add_argument("--space", required=True, help="nb201 or fbnet")
    zcp.add_argument("--archs", required=True, help=SELECTION_HELP)
    zcp.add_argument("--out", required=True, help="output table (.csv or .parquet); rerunning resumes it")
    zcp.add_argument("--workers", type=_int_at_least(1), default=1, help="local processes")
    zcp.add_argument("--images", default=None, help="an image folder (one sub-folder per class, read with "
                                                    "Pillow) for a real batch; default: a seeded synthetic batch")
    zcp.add_argument("--batch-size", type=_int_at_least(1), default=64)
    zcp.add_argument("--proxies", default="", help="comma list of proxies to compute (default: all 13), e.g. "
                                                  "flops,params,synflow (the cheap ones)")
    zcp.add_argument("--seed", type=int, default=0)
    zcp.add_argument("--quiet", action="store_true")
    zcp.set_defaults(func=cmd_zcp)

    from .measure.command import add_measure_parser

    add_measure_parser(sub)

    from .yourmodels.cli import register as add_yourmodels_parsers

    add_yourmodels_parsers(sub)  # encode, predict

    _add_debug_flag(parser)
    return parser


def _add_debug_flag(parser: argparse.ArgumentParser, seen: set | None = None) -> None:
    """``--debug`` after any (sub)command too; SUPPRESS keeps a sub-parser from resetting it."""
    seen = set() if seen is None else seen
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if id(child) not in seen:
                    seen.add(id(child))
                    child.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
                    _add_debug_flag(child, seen)


def report_error(error: BaseException, debug: bool) -> int:
    """The command line's one error boundary: 2 and one line for an expected failure, 1 and one line
    naming --debug for an internal error; the traceback only with --debug / MULTIPREDICT_DEBUG=1."""
    if debug:
        traceback.print_exception(error)
    message = user_message(error)
    if message is not None:
        print(f"multipredict: error: {message}", file=sys.stderr)
        return 2
    detail = one_line(f"{type(error).__name__}: {error}")
    print(f"multipredict: internal error (a bug, not your input): {detail}; rerun with --debug "
          f"(or MULTIPREDICT_DEBUG=1) for the traceback and report it", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    try:
        with terminate_as_interrupt():
            args = build_parser().parse_args(argv)
            return args.func(args)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt as stop:
        print(f"multipredict: {stop or 'interrupted'}; finished work was saved, a rerun resumes", file=sys.stderr)
        return 130
    except Exception as error:
        return report_error(error, debug)


if __name__ == "__main__":
    sys.exit(main())
