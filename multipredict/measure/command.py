"""`multipredict measure ...`: the command-line face of :func:`measure_archs`.

Kept next to the engine so that ``cli.py`` only has to register it::

    from .measure.command import add_measure_parser
    add_measure_parser(sub)
"""

from __future__ import annotations

import argparse


from ..errors import MultipredictError
from ..outputs import TABLE_SUFFIXES, check_output_file
from ..spaces.selection import SELECTION_HELP, select_archs

ARCH_SELECTION_HELP = SELECTION_HELP
parse_arch_selection = select_archs  # one selection syntax for every command


def cmd_measure(args: argparse.Namespace) -> int:
    from .profiles import BUILTIN_PROFILES, get_profile
    from .protocol import make_protocol
    from .runner import measure_archs, metadata_path

    if args.list_profiles:
        for profile in BUILTIN_PROFILES.values():
            print(f"{profile.name:16s} {profile.backend:16s} threads={profile.threads:<3d} batch={profile.batch:<4d} "
                  f"{profile.description}")
        return 0
    missing = [flag for flag, value in (("--space", args.space), ("--device", args.device), ("--archs", args.archs),
                                        ("--out", args.out)) if not value]
    if missing:
        raise MultipredictError(f"measure needs {', '.join(missing)}; e.g. `multipredict measure --space nb201 "
                                f"--device cpu-1t-b1 --archs reference --out lat.csv` (--list-profiles lists devices)")
    profile_file = args.device if args.device not in BUILTIN_PROFILES else None
    check_output_file(args.out, suffixes=TABLE_SUFFIXES, inputs={"--device": profile_file})
    profile = get_profile(args.device)
    protocol = make_protocol(warmup=args.warmup, min_warmup_seconds=args.min_warmup_seconds,
                             repeats=args.repeats, max_relative_spread=args.max_spread,
                             max_attempts=args.max_attempts)
    archs = parse_arch_selection(args.space, args.archs)
    table = measure_archs(args.space, archs, profile, args.out, protocol=protocol, progress=not args.quiet)
    print(f"{len(table)} archs of {args.space} on {profile.name}: median latency "
          f"{table['latency_ms'].min():.3f}..{table['latency_ms'].max():.3f} ms, "
          f"{int(table['outlier'].sum())} flagged as too noisy")
    print(f"table: {args.out}\nprofile and machine: {metadata_path(args.out)}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer; got {text}")
    return value


def add_measure_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``measure`` on the CLI's sub-parsers."""
    from .protocol import MeasurementProtocol

    defaults = MeasurementProtocol()
    parser = subparsers.add_parser(
        "measure", help="measure architectures' latency on this machine (resumable)",
        description="Measure latencies with torch (CPU/CUDA) or onnxruntime. Rerunning with the same --out "
                    "resumes: only archs not yet measured are timed.")
    parser.add_argument("--space", help="nb201 or fbnet")
    parser.add_argument("--device", help="a built-in profile (see --list-profiles) or a .yaml/.json profile file")
    parser.add_argument("--archs", help=ARCH_SELECTION_HELP)
    parser.add_argument("--out", help="results table, .csv or .parquet (its .meta.json goes beside it)")
    parser.add_argument("--warmup", type=_positive_int, default=defaults.warmup, help="untimed calls per attempt")
    parser.add_argument("--min-warmup-seconds", type=float, default=defaults.min_warmup_seconds)
    parser.add_argument("--repeats", type=_positive_int, default=defaults.repeats, help="timed calls per attempt")
    parser.add_argument("--max-spread", type=float, default=defaults.max_relative_spread,
                        help="IQR/median above which an arch is re-measured, then flagged")
    parser.add_argument("--max-attempts", type=_positive_int, default=defaults.max_attempts)
    parser.add_argument("--list-profiles", action="store_true", help="print the built-in device profiles")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_measure)
    return parser
