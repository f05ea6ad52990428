"""Experiments: a validated ExperimentSpec, a runner over any executor, a results store, and the
paper's tables to reproduce.

    from multipredict.experiments import ExperimentSpec, run_cached
    spec = ExperimentSpec.from_preset("nb201-default", methods=["TL Vec ET", "HELP"], samples=[10, 20], repeats=3)
    results = run_cached(spec)            # one row per trial x test device; stored under spec.spec_hash()
    summarise(results)                    # mean / std of rho per method x samples x device, and a mean
    run_spec(spec, "out/", executor="dask")   # the same into a folder: store/, results.csv, summary.csv

Method implementations (``multipredict.methods.transfer``, ``multipredict.baselines.*``) are imported only
when a trial runs, so specs can be built and validated without torch models loaded.
"""

from .batch import (ExperimentRun, correlation_bound_specs, reproduce_run, run_spec, run_spec_file, run_specs,
                    spec_from_parameters)
from .methods import Method, MethodRegistry, register, use_registry
from .methods import names as method_names
from .paper_numbers import paper_numbers
from .reproduce import compare_with_paper, format_comparison, reproduce, table_specs
from .runner import COLUMNS, Trial, TrialResult, expand_trials, run
from .spec import ExperimentSpec, preset_names, valid_devices
from .store import MemoryStore, ParquetStore, ResultStore, default_store, run_cached
from .summary import summarise

__all__ = [
    "ExperimentSpec", "preset_names", "valid_devices",
    "Method", "MethodRegistry", "register", "use_registry", "method_names",
    "run", "expand_trials", "Trial", "TrialResult", "COLUMNS",
    "ResultStore", "ParquetStore", "MemoryStore", "default_store", "run_cached",
    "run_spec", "run_spec_file", "run_specs", "reproduce_run", "ExperimentRun", "spec_from_parameters",
    "correlation_bound_specs",
    "summarise", "paper_numbers", "reproduce", "compare_with_paper", "format_comparison", "table_specs",
]
