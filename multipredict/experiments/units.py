"""Resumable units of work for experiments that are not trial specs (the accuracy figures, the
cross-space latency figures): a `Plan` is a list of `Unit`s, each one pretraining and everything
that uses it; `run_plan` runs the units not yet stored under ``out_dir/store`` (serially or in local
processes), with progress, and returns every unit's rows. A unit's key hashes what it computes, so a
rerun with the same settings only reads the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .store import ParquetStore


def unit_key(figure: str, revision: int, **parts) -> str:
    """A unit's store key: a hash of the figure, the code revision and its parameters."""
    text = json.dumps({"figure": figure, "revision": revision, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Unit:
    """One resumable piece of work: ``call()`` returns its rows."""

    key: str
    label: str
    call: Callable[[], list[dict]] = field(compare=False)


@dataclass
class Plan:
    figure: str
    units: list[Unit]
    settings: dict


def _run_unit(call: Callable[[], list[dict]]) -> tuple[list[dict], float]:
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    return call(), time.perf_counter() - started


def run_plan(plan_: Plan, out_dir, *, workers: int = 1, progress: bool = True,
             on_rows: Callable[[list[dict]], None] | None = None, cancel=None) -> pd.DataFrame:
    """Run the units not yet stored under ``out_dir/store``; return every unit's rows.

    ``cancel``: a `threading.Event`; once set, no new unit starts (finished ones are stored, so a
    rerun resumes), and the frame's ``attrs["cancelled"]`` is True."""
    from tqdm.auto import tqdm

    store = ParquetStore(Path(out_dir) / "store")
    rows: list[dict] = []
    todo = []
    for unit in plan_.units:
        stored = store.load_trial(unit.key)
        if stored is None:
            todo.append(unit)
        else:
            rows += stored
            if on_rows:
                on_rows(stored)
    bar = tqdm(total=len(plan_.units), initial=len(plan_.units) - len(todo), desc=plan_.figure, unit="unit",
               disable=not progress)

    def record(unit: Unit, unit_rows: list[dict], seconds: float) -> None:
        for r in unit_rows:
            r["unit_seconds"] = round(seconds, 3)
        store.save_trial(unit.key, unit_rows)
        rows.extend(unit_rows)
        bar.update(1)
        if on_rows:
            on_rows(unit_rows)

    try:
        if workers <= 1:
            for unit in todo:
                if cancel is not None and cancel.is_set():
                    break
                bar.set_postfix_str(unit.label[:40])
                record(unit, *_run_unit(unit.call))
        else:
            from .runner import _make_executor

            with _make_executor("processes", workers) as pool:
                pending = {}
                waiting = iter(todo)

                def fill():
                    while len(pending) < 2 * workers and not (cancel is not None and cancel.is_set()):
                        unit = next(waiting, None)
                        if unit is None:
                            return
                        pending[pool.submit(_run_unit, unit.call)] = unit

                fill()
                while pending:
                    done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                    for future in done:
                        record(pending.pop(future), *future.result())
                    fill()
    finally:
        bar.close()
    frame = pd.DataFrame(rows)
    frame.attrs["cancelled"] = bool(cancel is not None and cancel.is_set())
    return frame


def atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


NO_PLOTLY_HTML = ("<p>plotly is not installed, so this run wrote no figures: <code>pip install "
                  "'multipredict[workbench]'</code> and rerun (the trials come from the store).</p>\n")


def plotly_or_none():
    """``plotly.graph_objects`` when the workbench extra is installed, else None (figures are an
    optional output of the engine: the CSVs never need plotly)."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        return None
    return go


def figures_page(figures) -> str:
    """Plotly figures as one HTML fragment (plotly.js loaded once, from its CDN)."""
    return "\n".join(f.to_html(include_plotlyjs="cdn" if i == 0 else False, full_html=False)
                     for i, f in enumerate(figures))


def run_and_write(plan_: Plan, out_dir, *, workers: int = 1, progress: bool = True,
                  outputs: dict[str, Callable[[pd.DataFrame], str]] | None = None,
                  prepare: Callable[[pd.DataFrame], None] | None = None) -> pd.DataFrame:
    """`run_plan` into ``out_dir``, then write ``<figure>_trials.csv`` and each of ``outputs``
    (file name -> text made from the trials) atomically; ``prepare(trials)`` may add columns first."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    trials = run_plan(plan_, out, workers=workers, progress=progress)
    if prepare is not None:
        prepare(trials)
    trials.attrs["settings"] = plan_.settings
    trials.attrs["seconds"] = time.perf_counter() - started
    atomic_text(out / f"{plan_.figure}_trials.csv", trials.to_csv(index=False))
    for name, make in (outputs or {}).items():
        atomic_text(out / name, make(trials))
    return trials
