"""Serve the workbench with Voila: ``python -m mpwidgets.serve [--port 8866] [--space fbnet]``.

Listens on 127.0.0.1 only (pass ``--ip`` to choose otherwise, knowingly: the dashboard runs code on
this machine for whoever reaches it) and culls idle kernels, since Voila starts one per page visit.
Settings are in ``notebooks/voila.json``, which Voila also reads when started by hand from
``notebooks/``; the options below override it.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
DASHBOARD = NOTEBOOKS / "dashboard.ipynb"
LOOPBACK = "127.0.0.1"


def json_object(text: str) -> str:
    """An argparse type: ``text`` if it is a JSON object (kept as text: it travels in the environment)."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r} is not a JSON object; expected keyword arguments, "
                                         "e.g. '{\"source_epochs\": 2}'")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mpwidgets.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8866, help="port to listen on (default 8866; 0: any free port)")
    parser.add_argument("--ip", default=LOOPBACK, help="address to listen on (default 127.0.0.1, this machine only)")
    parser.add_argument("--space", choices=("nb201", "fbnet"), help="search space the page starts with")
    parser.add_argument("--preset", help="device set the page starts with, e.g. fbnet-adversarial")
    parser.add_argument("--data", choices=("benchmarks", "local", "all"),
                        help="benchmarks: the public files (default); local: this repository's data/ only, no "
                             "download; all: both (sets $MULTIPREDICT_DATA)")
    parser.add_argument("--results", help="results store folder (default $MULTIPREDICT_RESULTS or ./results)")
    parser.add_argument("--plugin", action="append", default=[],
                        help="module that registers extra methods when imported (repeatable)")
    parser.add_argument("--demo", action="store_true",
                        help="also offer a DEMO method with synthetic numbers (no training; to try the UI)")
    parser.add_argument("--onboard-options", metavar="JSON", type=json_object,
                        help="keyword arguments for the onboarding panel's multipredict.onboard.onboard, e.g. "
                             "'{\"source_epochs\": 2}' (small settings for a quick try or a test; sets "
                             "$MPWIDGETS_ONBOARD_OPTIONS; the page says they are not the defaults)")
    parser.add_argument("--cull-idle-timeout", type=int, default=600,
                        help="shut down a kernel idle this many seconds once its page is gone (default 600)")
    parser.add_argument("--open", action="store_true", help="open a browser")
    parser.add_argument("--notebook", default=str(DASHBOARD), help="notebook to serve (default: the dashboard)")
    return parser


def voila_argv(args: argparse.Namespace) -> list[str]:
    """The Voila command line for ``args`` (also what the tests check)."""
    return [
        str(Path(args.notebook).resolve()),
        f"--Voila.ip={args.ip}",
        f"--Voila.port={args.port}",
        "--Voila.port_retries=0",
        f"--Voila.open_browser={args.open}",
        f"--Voila.config_file_paths={NOTEBOOKS}",
        f"--MappingKernelManager.cull_idle_timeout={args.cull_idle_timeout}",
        f"--MappingKernelManager.cull_interval={max(10, min(60, args.cull_idle_timeout // 2))}",
        "--VoilaConfiguration.show_tracebacks=False",
    ]


def prepare_environment(args: argparse.Namespace) -> None:
    """What the dashboard's kernels inherit: start space / device set, plugins, results folder."""
    if args.space:
        os.environ["MPWIDGETS_SPACE"] = args.space
    if args.preset:
        os.environ["MPWIDGETS_PRESET"] = args.preset
    plugins = list(args.plugin) + (["mpwidgets._demo"] if args.demo else [])
    if plugins:
        os.environ["MPWIDGETS_PLUGINS"] = ",".join(plugins)
    if args.data:
        os.environ["MULTIPREDICT_DATA"] = args.data
    if args.onboard_options:
        os.environ["MPWIDGETS_ONBOARD_OPTIONS"] = args.onboard_options
    results = args.results or os.environ.get("MULTIPREDICT_RESULTS") or "results"
    # absolute: Voila starts each kernel in the notebook's folder
    os.environ["MULTIPREDICT_RESULTS"] = str(Path(results).expanduser().resolve())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not Path(args.notebook).exists():
        print(f"mpwidgets.serve: error: notebook {args.notebook!r} not found; pass --notebook PATH "
              "(the dashboard lives in the repository's notebooks/ folder)", file=sys.stderr)
        return 2
    try:
        loopback = ipaddress.ip_address(args.ip).is_loopback
    except ValueError:
        loopback = args.ip == "localhost"
    if not loopback:
        print(f"mpwidgets.serve: warning: listening on {args.ip}: anyone who reaches this address can run "
              "experiments (code) on this machine", file=sys.stderr)
    prepare_environment(args)
    from voila.app import Voila

    Voila.launch_instance(argv=voila_argv(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
