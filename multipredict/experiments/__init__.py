"""Experiments: a validated ExperimentSpec, a runner over any executor, a results store, and the
paper's tables to reproduce.

    from multipredict.experiments import ExperimentSpec, run_cached
    spec = ExperimentSpec.from_preset("nb201-default", methods=["TL Vec ET", "HELP"], samples=[10, 20], repeats=3)
    results = run_cached(spec)            # one row per trial x test device; stored under spec.spec_hash()

Method implementations (``multipredict.transfer``, ``multipredict.baselines.*``) are imported only
when a trial runs, so specs can be built and validated without torch models loaded.
"""

from .methods import Method, MethodRegistry, register, use_registry
from .methods import names as method_names
from .paper_numbers import paper_numbers
from .reproduce import format_comparison, reproduce, summarise, table_specs
from .runner import COLUMNS, Trial, TrialResult, expand_trials, run
from .spec import ExperimentSpec, preset_names, valid_devices
from .store import MemoryStore, ParquetStore, ResultStore, default_store, run_cached

__all__ = [
    "ExperimentSpec", "preset_names", "valid_devices",
    "Method", "MethodRegistry", "register", "use_registry", "method_names",
    "run", "expand_trials", "Trial", "TrialResult", "COLUMNS",
    "ResultStore", "ParquetStore", "MemoryStore", "default_store", "run_cached",
    "paper_numbers", "reproduce", "summarise", "format_comparison", "table_specs",
]
