"""Run specs into a folder: what ``multipredict run SPEC.yaml --out DIR``, the notebooks and scripts share.

    from multipredict.experiments import run_spec_file
    experiment = run_spec_file("results/<hash>/spec.yaml", "out/")   # a spec the dashboard stored
    print(experiment.text())

writes, under the output folder,

- ``store/``: every finished trial (a ``ParquetStore``): a rerun resumes, a finished spec returns at once;
- ``results.csv``: one row per trial x test device (the runner's columns);
- ``summary.csv``: the engine's summary (``summarise``), or with ``table=`` ours beside the paper's
  numbers (``compare_with_paper``);
- ``comparison.txt``: the summary as a text table (methods x devices, ``mean±std``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..errors import MultipredictError
from .reproduce import compare_with_paper, format_comparison, reproduce_with_trials
from .runner import COLUMNS, TrialResult
from .spec import ExperimentSpec
from .store import ParquetStore, ResultStore, run_cached_many
from .summary import summarise

RESULTS_FILE = "results.csv"
SUMMARY_FILE = "summary.csv"
TEXT_FILE = "comparison.txt"


@dataclass
class ExperimentRun:
    """What a run into a folder produced: the trial rows, their summary, and where they were written."""

    results: pd.DataFrame
    summary: pd.DataFrame
    out_dir: Path
    specs: list[ExperimentSpec] = field(default_factory=list)
    settings: str = ""  # what a reproduction ran with (``reproduce.settings_text``)

    @property
    def complete(self) -> bool:
        return bool(self.results.attrs.get("complete", True))

    def text(self) -> str:
        """The summary as a text table: rows method (samples), columns devices, cells ``mean±std``."""
        if self.summary.empty:
            return "no trials: nothing to summarise"
        return (self.settings + "\n\n" if self.settings else "") + format_comparison(self.summary)

    def write(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.results.to_csv(self.out_dir / RESULTS_FILE, index=False)
        self.summary.to_csv(self.out_dir / SUMMARY_FILE, index=False)
        (self.out_dir / TEXT_FILE).write_text(self.text() + "\n")


def spec_from_parameters(preset: str, *, space: str | None = None, train_devices: Sequence[str] | None = None,
                         test_devices: Sequence[str] | None = None, **fields: Any) -> ExperimentSpec:
    """A spec from a notebook's parameters: a device-set preset, with ``space`` and the device lists
    replacing the preset's where given (``None``: the preset's)."""
    overrides = {k: v for k, v in {"space": space, "train_devices": train_devices,
                                   "test_devices": test_devices}.items() if v is not None}
    return ExperimentSpec.from_preset(preset, **fields, **overrides)


def correlation_bound_specs(space: str, train_devices: Sequence[str], test_devices: Sequence[str],
                            bounds: Sequence[float], **fields: Any) -> tuple[pd.DataFrame, dict[float, ExperimentSpec]]:
    """Paper Table 12: for each bound, the training devices whose latency Spearman with every test
    device is at most the bound (``tasks.adversarial_train_set``), and a spec that trains on them.

    Returns the table ``bound, train_devices`` (how many are kept), ``devices`` (their names), and
    ``{bound: spec}`` (``fields``: the spec's other fields; no spec where a bound keeps no device, and
    none at all without ``methods``: then it is the device sets only)."""
    from .. import tasks

    kept = {bound: tasks.adversarial_train_set(space, list(train_devices), list(test_devices), bound)
            for bound in bounds}
    table = pd.DataFrame({"bound": list(kept), "train_devices": [len(k) for k in kept.values()],
                          "devices": [", ".join(k) for k in kept.values()]})
    specs = {}
    if fields.get("methods"):
        specs = {bound: ExperimentSpec(space=space, train_devices=devices, test_devices=list(test_devices),
                                       **{"name": f"table12 bound {bound}", **fields})
                 for bound, devices in kept.items() if devices}
    return table, specs


def run_specs(specs: Sequence[ExperimentSpec] | Mapping[Any, ExperimentSpec], out_dir: str | Path, *,
              label: str | None = None, table: str | None = None, executor=None, workers: int | None = None,
              scheduler: str | None = None, store: ResultStore | None = None, progress: bool = False,
              on_result: Callable[[TrialResult], None] | None = None,
              cancel: threading.Event | None = None) -> ExperimentRun:
    """Run every spec (stored trials under ``out_dir/store`` are reused), then write and return the
    results and their summary (see the module docstring).

    ``specs`` as a mapping ``{value: spec}`` with ``label``: each spec's rows get column ``label`` =
    its value and the summary is per value too (e.g. ``label="bound"``). ``table``: the summary puts
    the paper's numbers of that table beside ours. ``executor`` / ``workers`` / ``scheduler``: as
    ``runner.run`` (``"dask"`` starts one cluster for all specs). ``progress``: a tqdm bar of trials.
    """
    if isinstance(specs, Mapping):
        if label is None:
            raise MultipredictError("specs given as a mapping need label=, the column that holds each spec's key "
                                    "(e.g. label='bound')")
        labelled = list(specs.items())
    else:
        if label is not None:
            raise MultipredictError(f"label={label!r} names the keys of a mapping of specs; pass {{value: spec}}")
        labelled = [(None, spec) for spec in specs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = ParquetStore(out / "store") if store is None else store
    specs_ = [spec for _, spec in labelled]
    frames = run_cached_many(specs_, store=store, executor=executor, workers=workers, scheduler=scheduler,
                             on_result=on_result, cancel=cancel, progress=progress)
    frames = [frame.assign(**{label: value}) if label else frame
              for (value, _), frame in zip(labelled, frames, strict=False)]
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS + ([label] if label
                                                                                                  else []))
    results.attrs["complete"] = all(f.attrs.get("complete", True) for f in frames) and len(frames) == len(labelled)
    summary = compare_with_paper(results, table) if table else summarise(results, by=[label] if label else [])
    experiment = ExperimentRun(results, summary, out, [spec for _, spec in labelled])
    experiment.write()
    return experiment


def run_spec(spec: ExperimentSpec, out_dir: str | Path, **options: Any) -> ExperimentRun:
    """Run one spec into ``out_dir`` (``run_specs``' options)."""
    return run_specs([spec], out_dir, **options)


def run_spec_file(path: str | Path, out_dir: str | Path, **options: Any) -> ExperimentRun:
    """Run a stored spec (YAML: ``ExperimentSpec.to_yaml``, e.g. ``<results store>/<hash>/spec.yaml``
    that the dashboard writes) into ``out_dir`` (``run_specs``' options)."""
    if not Path(path).is_file():
        raise MultipredictError(f"spec file {str(path)!r} does not exist; pass a YAML file written by "
                                "ExperimentSpec.to_yaml, e.g. results/<spec hash>/spec.yaml")
    try:
        spec = ExperimentSpec.from_yaml(Path(path))
    except MultipredictError:
        raise
    except (ValueError, yaml.YAMLError) as error:  # pydantic's ValidationError is a ValueError
        raise MultipredictError(f"spec file {str(path)!r} is not a valid ExperimentSpec: {error}") from error
    return run_spec(spec, out_dir, **options)


def reproduce_run(table: str, out_dir: str | Path, **options: Any) -> ExperimentRun:
    """``reproduce`` (the paper's ``table``; its files under ``out_dir``), also writing
    ``results.csv`` / ``summary.csv`` / ``comparison.txt`` like ``run_specs``."""
    summary, trials = reproduce_with_trials(table, out_dir=out_dir, **options)
    experiment = ExperimentRun(trials, summary, Path(out_dir), settings=summary.attrs.get("settings", ""))
    experiment.write()
    return experiment


__all__ = ["ExperimentRun", "correlation_bound_specs", "run_specs", "run_spec", "run_spec_file", "reproduce_run", "spec_from_parameters"]
