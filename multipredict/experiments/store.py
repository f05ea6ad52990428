"""Results store: finished trials and whole-spec results, so nothing already run is run again.

Layout of a ``ParquetStore`` (default folder ``./results``, or ``$MULTIPREDICT_RESULTS``)::

    <root>/<spec_hash>/spec.yaml          the spec, to see what a folder holds
    <root>/<spec_hash>/results.parquet    the full table, once every trial of the spec is done (its
                                          metadata holds the digest of the trial keys it was made from)
    <root>/trials/<ab>/<trial_key>.parquet  the rows of one trial, saved as soon as it finishes

Trials are keyed by their own content hash (see ``runner.trial_key``), so a killed run resumes
where it stopped and specs that share trials (more repeats, one more method) reuse them. Every
file is written to a temporary name and moved into place (``os.replace``), so a crash never leaves
a half-written file behind. A file that cannot be read all the same (a damaged disk, a copy cut
short, another program) is moved aside as ``<name>.unreadable-<time>`` (kept, for a look) with one
warning naming it, and its trials are computed again. ``MemoryStore`` keeps the same in a dict
(tests, short sessions).
"""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import MultipredictError
from ..outputs import read_or_set_aside, write_atomically
from .spec import ExperimentSpec

RESULTS_ENV = "MULTIPREDICT_RESULTS"
DIGEST_KEY = b"multipredict.trials_digest"
log = logging.getLogger(__name__)


class ResultStore(ABC):
    """Where trial rows and spec results live; ``run`` needs only the first five calls."""

    @abstractmethod
    def load_trial(self, key: str) -> list[dict[str, Any]] | None: ...

    @abstractmethod
    def save_trial(self, key: str, rows: list[dict[str, Any]]) -> None: ...

    @abstractmethod
    def save_spec(self, spec: ExperimentSpec) -> None: ...

    @abstractmethod
    def load_results(self, spec: ExperimentSpec) -> pd.DataFrame | None: ...

    @abstractmethod
    def save_results(self, spec: ExperimentSpec, frame: pd.DataFrame) -> None: ...

    @abstractmethod
    def specs(self) -> pd.DataFrame:
        """One row per stored spec: spec_hash, name, space, methods, trials, complete."""

    def has_results(self, spec: ExperimentSpec) -> bool:
        return self.load_results(spec) is not None


class MemoryStore(ResultStore):
    """Everything in dicts, gone with the process: tests, and sessions that need no files."""

    def __init__(self) -> None:
        self._trials: dict[str, list[dict[str, Any]]] = {}
        self._specs: dict[str, ExperimentSpec] = {}
        self._results: dict[str, pd.DataFrame] = {}

    def load_trial(self, key):
        rows = self._trials.get(key)
        return None if rows is None else [dict(r) for r in rows]

    def save_trial(self, key, rows):
        self._trials[key] = [dict(r) for r in rows]

    def save_spec(self, spec):
        self._specs[spec.spec_hash()] = spec

    def load_results(self, spec):
        frame = self._results.get(spec.spec_hash())
        return None if frame is None else frame.copy()

    def save_results(self, spec, frame):
        self._results[spec.spec_hash()] = frame.copy()

    def specs(self) -> pd.DataFrame:
        return _spec_listing((h, spec, h in self._results) for h, spec in self._specs.items())


class ParquetStore(ResultStore):
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_root()

    def spec_dir(self, spec: ExperimentSpec) -> Path:
        return self.root / spec.spec_hash()

    def trial_path(self, key: str) -> Path:
        return self.root / "trials" / key[:2] / f"{key}.parquet"

    def load_trial(self, key):
        path = self.trial_path(key)
        return read_or_set_aside(path, lambda: pq.read_table(path).to_pylist())

    def save_trial(self, key, rows):
        write_atomically(self.trial_path(key), lambda tmp: pq.write_table(_table(pd.DataFrame(rows)), tmp))

    def save_spec(self, spec):
        path = self.spec_dir(spec) / "spec.yaml"
        if not path.exists():
            write_atomically(path, lambda tmp: Path(tmp).write_text(spec.to_yaml()))

    def load_results(self, spec):
        path = self.spec_dir(spec) / "results.parquet"
        table = read_or_set_aside(path, lambda: pq.read_table(path))
        if table is None:
            return None
        frame = table.to_pandas()
        digest = (table.schema.metadata or {}).get(DIGEST_KEY)
        frame.attrs["trials_digest"] = digest.decode() if digest else None
        return frame

    def save_results(self, spec, frame):
        self.save_spec(spec)

        def write(tmp: str) -> None:
            table = _table(frame)
            digest = frame.attrs.get("trials_digest")
            if digest:
                table = table.replace_schema_metadata({**(table.schema.metadata or {}), DIGEST_KEY: digest.encode()})
            pq.write_table(table, tmp)

        write_atomically(self.spec_dir(spec) / "results.parquet", write)

    def specs(self) -> pd.DataFrame:
        entries = ((path, read_or_set_aside(path, lambda path=path: ExperimentSpec.from_yaml(path)))
                   for path in sorted(self.root.glob("*/spec.yaml")))
        return _spec_listing((path.parent.name, spec, (path.parent / "results.parquet").exists())
                             for path, spec in entries if spec is not None)

    def load_spec(self, spec_hash: str) -> ExperimentSpec:
        path = self.root / spec_hash / "spec.yaml"
        if not path.exists():
            raise MultipredictError(f"no stored spec {spec_hash!r} under {str(self.root)!r}; "
                                    "ParquetStore(root).specs() lists the stored ones")
        return ExperimentSpec.from_yaml(path)


def _spec_listing(entries) -> pd.DataFrame:
    rows = [{"spec_hash": spec_hash, "name": spec.name, "space": spec.space, "methods": ", ".join(spec.methods),
             "trials": spec.n_trials(), "complete": complete} for spec_hash, spec, complete in entries]
    return pd.DataFrame(rows, columns=["spec_hash", "name", "space", "methods", "trials", "complete"])


def default_root() -> Path:
    return Path(os.environ.get(RESULTS_ENV) or Path.cwd() / "results")


def default_store() -> ParquetStore:
    return ParquetStore(default_root())


def _table(frame: pd.DataFrame) -> pa.Table:
    # from a DataFrame rather than from_pylist: the latter takes its columns from the first row only
    from .runner import arrow_safe

    return pa.Table.from_pandas(arrow_safe(frame.copy()), preserve_index=False)


def run_cached(spec: ExperimentSpec, executor=None, *, store: ResultStore | None = None, **run_options) -> pd.DataFrame:
    """The results of ``spec``: straight from the store when it holds them, else ``run`` (resuming
    from the stored trials) and store them. ``run_options`` go to ``runner.run``."""
    from .runner import expand_trials, run, trials_digest

    store = default_store() if store is None else store
    stored = store.load_results(spec)
    # results stored by another package version or method revision are computed again
    if stored is not None and stored.attrs.get("trials_digest") == trials_digest(expand_trials(spec)):
        stored.attrs.update(spec_hash=spec.spec_hash(), complete=True, cancelled=False, cached=True)
        return stored
    frame = run(spec, executor, store=store, **run_options)
    frame.attrs["cached"] = False
    return frame


def run_cached_many(specs: Sequence[ExperimentSpec], *, store: ResultStore, executor=None, workers: int | None = None,
                    scheduler: str | None = None, on_result: Callable[[Any], None] | None = None,
                    cancel: threading.Event | None = None, progress: bool = False,
                    desc: str = "trials") -> list[pd.DataFrame]:
    """``run_cached`` for each spec in turn on one shared executor (``runner.shared_executor``), with
    one tqdm bar over all their trials (``progress``; stored trials count as they load, so the bar's
    ETA is about the trials left). Once ``cancel`` is set, the specs after the current one do not start."""
    from tqdm.auto import tqdm

    from .runner import shared_executor

    bar = tqdm(total=sum(spec.n_trials() for spec in specs), desc=desc, unit="trial", disable=not progress)

    def report(result) -> None:
        bar.update(1)
        if on_result is not None:
            on_result(result)

    frames = []
    try:
        with shared_executor(executor, workers, scheduler) as pool:
            for spec in specs:
                if frames and cancel is not None and cancel.is_set():
                    break
                frame = run_cached(spec, pool, store=store, workers=workers, on_result=report, cancel=cancel)
                if frame.attrs.get("cached"):
                    bar.update(spec.n_trials())
                frames.append(frame)
    finally:
        bar.close()
    return frames
