"""Turn an ExperimentSpec into trials, run them, and stream back a tidy results table.

A *trial* is one method at one sample budget and one seed, covering every test device of the spec,
so that a method pretrains once per trial and fine-tunes per test device. Trials run

- serially in this process (``executor=None``), the default and the easiest to debug;
- in local processes (``executor="processes"``, ``workers=N``), one torch thread each: on a few
  cores small models train faster in separate single-thread processes than with shared threads;
- on a Dask cluster (``executor="dask"``): the one at ``scheduler=ADDRESS``, or a ``LocalCluster``
  of ``workers`` processes with one thread each (see ``multipredict.experiments.cluster``); a
  ``distributed.Client`` passed as the executor runs them on its cluster;
- on any other ``concurrent.futures.Executor`` you pass.

Every trial carries this process's ``config.configure`` overrides to whichever process runs it.

``run`` returns one row per trial x test device. A trial that raises records its error in its rows
and the run goes on; ``cancel`` (a ``threading.Event``) stops scheduling new trials and the rows
finished so far come back. With a ``store`` (see ``multipredict.experiments.store``) every finished
trial is saved at once and trials already stored are not rerun, so a killed run resumes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import __version__
from .. import config as _config
from ..errors import MultipredictError
from ..methods.contract import check_rows
from . import methods as method_registry
from .cluster import client_of, dask_client, is_dask
from .spec import ExperimentSpec

COLUMNS = ["method", "space", "device", "samples", "seed", "protocol", "spearman", "kendall", "n_eval",
           "n_fewshot", "pool", "seconds", "repeat", "error", "trial"]
METRICS = ["spearman", "kendall", "n_eval", "n_fewshot", "pool", "seconds"]
# where a trial ran: stored with its rows, so a results table mixing machines says which row ran where
PROVENANCE = ["host", "compute", "torch", "python", "multipredict"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    """One method x sample budget x seed; ``key`` is a content hash of everything that decides its rows."""

    index: int
    method: str
    samples: int
    seed: int
    repeat: int
    protocol: str
    key: str


@dataclass(frozen=True)
class TrialCall:
    """What a worker needs to run one trial: picklable, and free of the registry (workers have none)."""

    target: Any  # "module:function" or a picklable callable
    kwargs: dict[str, Any]
    single_thread: bool = False
    # the caller's config.configure overrides (cache, mirror, data source): a worker applies them
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrialResult:
    """What ``on_result`` receives after each trial: its rows plus progress counts."""

    trial: Trial
    rows: list[dict[str, Any]]
    cached: bool  # came from the store, not from running the method
    completed: int
    total: int

    @property
    def error(self) -> str | None:
        return next((r["error"] for r in self.rows if r.get("error")), None)

    def frame(self) -> pd.DataFrame:
        return _frame(self.rows)


@dataclass
class _Progress:
    total: int
    completed: int = 0
    lost: int = 0  # trials whose worker failed: in the frame, not in the store
    rows: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


def expand_trials(spec: ExperimentSpec) -> list[Trial]:
    """Every trial of a spec, repeat-major: all methods at the first seed come first, so a run
    cancelled early still compares every method."""
    trials = []
    for repeat, seed in enumerate(spec.seeds()):
        for name in spec.methods:
            for samples in spec.budgets(name):
                protocol = spec.protocol_for(name)
                key = trial_key(spec, name, samples, seed, protocol)
                trials.append(Trial(len(trials), name, samples, seed, repeat, protocol, key))
    return trials


def trials_digest(trials: list[Trial]) -> str:
    """One hash of every trial key of a spec: a stored whole-spec result is reused only while it
    matches, so a new package version or method revision recomputes it (from the stored trials that
    are still valid) instead of returning old numbers."""
    return hashlib.sha256("".join(t.key for t in trials).encode()).hexdigest()


def trial_key(spec: ExperimentSpec, method: str, samples: int, seed: int, protocol: str) -> str:
    """Content hash of one trial: equal in any spec that would compute the same rows, so specs that
    differ only in repeats, methods or budgets share their stored trials."""
    implementation = method_registry.get(method)
    options = {k: v for k, v in spec.options_for(implementation).items()
               if k not in method_registry.REPORTING_OPTIONS}
    # the package version is part of the key: a release that changes a method recomputes its trials
    content = {"version": __version__, "space": spec.space, "method": method, "target": implementation.target_path,
               "options": options, "train_devices": list(spec.train_devices),
               "test_devices": list(spec.test_devices), "protocol": protocol, "samples": samples, "seed": seed}
    revision = implementation.revision_for(spec.space)
    if revision != 1:  # left out at 1, so keys from before revisions existed stay valid
        content["revision"] = revision
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def trial_call(spec: ExperimentSpec, trial: Trial, single_thread: bool = False) -> TrialCall:
    implementation = method_registry.get(trial.method)
    kwargs = dict(spec.options_for(implementation), space=spec.space, train_devices=list(spec.train_devices),
                  test_devices=list(spec.test_devices), samples=trial.samples, seed=trial.seed,
                  protocol=trial.protocol)
    return TrialCall(implementation.target, kwargs, single_thread, dict(_config._overrides))


def execute_trial(call: TrialCall) -> dict[str, Any]:
    """Run one trial (in whichever process the executor chose); exceptions become an error record."""
    if call.single_thread:
        # before a first torch import (a fresh Dask worker) the environment decides its thread pools
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
    _config._overrides.update(call.config)
    started = time.perf_counter()
    try:
        target = call.target
        if isinstance(target, str):
            target = method_registry.Method("?", target).resolve()
        rows = check_rows(target(**call.kwargs), getattr(target, "__module__", str(target)))
        return {"rows": [_plain_row(r) for r in rows], "seconds": time.perf_counter() - started,
                "provenance": provenance()}
    except Exception as error:  # a failed trial is a result, not the end of the run
        return {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc(),
                "seconds": time.perf_counter() - started, "provenance": provenance()}


def provenance() -> dict[str, str | None]:
    """The machine and stack this process computes on (the ``PROVENANCE`` columns of a trial's rows).

    ``compute`` is the GPU's name where torch sees one (methods use it by default), else
    ``cpu, N threads`` with torch's thread count, or ``cpu`` for a method that never imported torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        compute = "cpu"
    elif torch.cuda.is_available():
        compute = torch.cuda.get_device_name(0)
    else:
        compute = f"cpu, {torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''}"
    try:
        torch_version = str(torch.__version__) if torch is not None else importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    return {"host": platform.node() or None, "compute": compute, "torch": torch_version,
            "python": platform.python_version(), "multipredict": __version__}


def _plain(value: Any) -> Any:
    """numpy scalars -> Python; anything not a scalar -> JSON text, so rows store as parquet."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return json.dumps(value, default=str)


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    return {str(k): _plain(v) for k, v in dict(row).items()}


def _trial_rows(spec: ExperimentSpec, trial: Trial, outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """The tidy rows of one trial: one per test device, error rows where a device has no result."""
    identity = {"method": trial.method, "space": spec.space, "samples": trial.samples, "seed": trial.seed,
                "protocol": trial.protocol, "repeat": trial.repeat, "trial": trial.key,
                **{k: (outcome.get("provenance") or {}).get(k) for k in PROVENANCE}}
    if outcome.get("error"):
        log.warning("trial %s (%s, %d samples, seed %d) failed: %s", trial.key[:12], trial.method, trial.samples,
                    trial.seed, outcome.get("traceback") or outcome["error"])
    by_device = {r.get("device"): r for r in outcome.get("rows", [])}
    rows = []
    for device in spec.test_devices:
        row = {"device": device, **{m: math.nan for m in METRICS}, "pool": None, "error": outcome.get("error")}
        if device in by_device:
            reported = dict(by_device[device])
            reported["implementation"] = reported.pop("method", None)  # the registered name is the row's method
            row.update(reported)
        elif row["error"] is None:
            row["error"] = f"MissingResult: method {trial.method!r} returned no row for device {device!r}"
        row.setdefault("error", None)
        row.update(identity)
        rows.append(row)
    return rows


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in frame:
            frame[column] = pd.Series(dtype=float if column in METRICS else object)
    for column in PROVENANCE:  # trials stored before these columns existed read as unknown
        if column not in frame:
            frame[column] = pd.Series([None] * len(frame), dtype=object)
    extras = [c for c in frame.columns if c not in COLUMNS + PROVENANCE]
    return arrow_safe(frame[COLUMNS + extras + PROVENANCE].reset_index(drop=True))


def arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns whose values mix Python types become text: methods report e.g. ``pool`` as a count or
    as a label, and one parquet column holds one type."""
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        present = [v for v in frame[column] if not _missing(v)]
        if len({type(v) for v in present}) > 1:
            frame[column] = [None if _missing(v) else str(v) for v in frame[column]]
    return frame


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _init_worker(config_overrides: dict) -> None:
    # spawned workers start clean: carry the parent's configure() overrides and keep torch to one thread
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    from .. import config

    config._overrides.update(config_overrides)


def _make_executor(kind: str, workers: int | None) -> Executor:
    if kind == "threads":
        return ThreadPoolExecutor(max_workers=workers)
    if kind == "processes":
        import multiprocessing

        from .. import config

        # spawn, not fork: forking a process that has torch's thread pools running can deadlock
        return ProcessPoolExecutor(max_workers=workers or os.cpu_count(),
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(dict(config._overrides),))
    raise ValueError(f"unknown executor {kind!r}; expected None (serial), 'serial', 'threads', 'processes', "
                     "'dask', a distributed.Client or a concurrent.futures.Executor")


@contextmanager
def shared_executor(executor: Executor | str | None, workers: int | None = None,
                    scheduler: str | None = None) -> Iterator[Any]:
    """What several ``run`` calls can share: for ``"dask"`` one client (and its LocalCluster) for all
    of them, closed at the end; any other executor as it is (a ``"processes"`` pool starts per run)."""
    _check_scheduler(executor, scheduler)
    if executor == "dask":
        with dask_client(scheduler, workers) as client:
            yield client
    else:
        yield executor


def _check_scheduler(executor: Any, scheduler: str | None) -> None:
    if scheduler and executor != "dask":
        raise MultipredictError(f"scheduler={scheduler!r} is a Dask scheduler address, but the executor is "
                                f"{executor!r}; pass executor='dask' (--executor dask) with it")


def run(spec: ExperimentSpec, executor: Executor | str | None = None, *,
        on_result: Callable[[TrialResult], None] | None = None, cancel: threading.Event | None = None,
        store=None, workers: int | None = None, retry_failed: bool = False,
        scheduler: str | None = None) -> pd.DataFrame:
    """Run every trial of ``spec``; return one row per trial x test device (columns ``COLUMNS`` + extras).

    ``on_result(TrialResult)`` is called after each trial (stored trials first, then in completion
    order). ``frame.attrs`` says whether the run is ``complete`` or was ``cancelled``. ``store``:
    stored trials are reused and new ones saved as they finish. A trial that failed (its method raised,
    or its worker died) is reported in the frame but not stored, so a rerun runs it again (``retry_failed``
    also reruns failed trials that older versions stored).
    ``scheduler``: the Dask scheduler's address for ``executor="dask"`` (none: a ``LocalCluster`` of
    ``workers`` processes); with Dask, ``workers`` otherwise caps how many trials are submitted at once.
    """
    _check_scheduler(executor, scheduler)
    spec.check_data()  # pools and budgets against the data, before any trial starts
    trials = expand_trials(spec)
    progress = _Progress(total=len(trials))
    if store is not None:
        store.save_spec(spec)

    def record(trial: Trial, rows: list[dict[str, Any]], cached: bool, keep: bool = True) -> None:
        # a failed trial is not a result: it is not stored, so the next run retries it
        keep = keep and (cached or not any(r.get("error") for r in rows))
        progress.rows[trial.index] = rows
        progress.completed += 1
        progress.lost += not keep
        if store is not None and not cached and keep:
            store.save_trial(trial.key, rows)
        if on_result is not None:
            on_result(TrialResult(trial, rows, cached, progress.completed, progress.total))

    to_run = []
    for trial in trials:
        stored = store.load_trial(trial.key) if store is not None else None
        if stored is not None and not (retry_failed and any(r.get("error") for r in stored)):
            # a trial stored by another spec may have been a different repeat there
            record(trial, [{**row, "repeat": trial.repeat} for row in stored], cached=True)
        else:
            to_run.append(trial)

    cancelled = cancel.is_set if cancel is not None else (lambda: False)
    if executor in (None, "serial"):
        for trial in to_run:
            if cancelled():
                break
            record(trial, _trial_rows(spec, trial, execute_trial(trial_call(spec, trial))), cached=False)
    elif executor == "dask":
        if to_run:  # everything stored: no cluster to start
            with dask_client(scheduler, workers) as client:
                _run_on(client.get_executor(pure=False), spec, to_run, record, cancelled, workers,
                        single_thread=True)
    elif is_dask(executor):
        _run_on(client_of(executor).get_executor(pure=False), spec, to_run, record, cancelled, workers,
                single_thread=True)
    elif isinstance(executor, str):
        owned = _make_executor(executor, workers)
        try:
            _run_on(owned, spec, to_run, record, cancelled, workers, single_thread=executor == "processes")
        except BaseException:  # Ctrl-C: do not wait for the running trials, their results are lost anyway
            owned.shutdown(wait=False, cancel_futures=True)
            raise
        owned.shutdown()
    else:
        _run_on(executor, spec, to_run, record, cancelled, workers, single_thread=False)

    frame = _frame([row for index in sorted(progress.rows) for row in progress.rows[index]])
    frame.attrs.update(spec_hash=spec.spec_hash(), complete=progress.completed == progress.total and not progress.lost,
                       cancelled=progress.completed < progress.total, trials_digest=trials_digest(trials))
    if store is not None and frame.attrs["complete"]:
        store.save_results(spec, frame)
    return frame


def _window(executor: Executor, workers: int | None, n_trials: int) -> int:
    """How many trials to keep submitted: ``workers`` if given, else what the executor can run at once."""
    if workers:
        return workers
    if getattr(executor, "_max_workers", None):  # the standard library's pools
        return executor._max_workers
    client = getattr(executor, "_client", None)  # dask's ClientExecutor
    if client is not None and hasattr(client, "nthreads"):
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # a client that cannot say: fall back to submitting everything
            pass
    return max(n_trials, 1)


def _run_on(executor: Executor, spec: ExperimentSpec, trials: list[Trial], record, cancelled, workers: int | None,
            single_thread: bool) -> None:
    # Submit a window of trials, not all of them: cancelling then stops scheduling at once, and
    # results stream back while later trials wait.
    window = _window(executor, workers, len(trials))
    waiting = iter(trials)
    pending: dict[Any, Trial] = {}

    def fill() -> None:
        while len(pending) < window and not cancelled():
            trial = next(waiting, None)
            if trial is None:
                return
            pending[executor.submit(execute_trial, trial_call(spec, trial, single_thread))] = trial

    try:
        fill()
        while pending:
            # a timeout so that a cancel set while every trial is busy is seen promptly
            done, _ = wait(list(pending), timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                trial = pending.pop(future)
                if future.cancelled():
                    continue
                try:
                    outcome, keep = future.result(), True
                except Exception as error:  # the worker itself failed (crashed process, unpicklable result)
                    outcome, keep = {"error": f"{type(error).__name__}: {error} (not stored: a rerun runs it)"}, False
                record(trial, _trial_rows(spec, trial, outcome), cached=False, keep=keep)
            if cancelled():
                for future in [f for f in pending if f.cancel()]:
                    del pending[future]
            else:
                fill()
    finally:
        for future in pending:
            future.cancel()
