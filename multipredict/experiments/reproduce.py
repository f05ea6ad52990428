"""Rerun the paper's Tables 1-4 and put our Spearman rho beside the published one.

``reproduce("table1", repeats=10, out_dir="repro")`` runs the table's specs (through the results
store under ``out_dir/store``, so an interrupted reproduction resumes) and writes

- ``out_dir/table1.csv``: ``table, space, source_samples, method, samples, protocol, device,
  spearman_mean, spearman_std, n, paper, errors`` (``device == "mean"``: each method's mean over
  the test devices, averaged per repeat first; ``paper`` empty where the paper has no number);
- ``out_dir/table1.txt``: ours beside the paper as a text table, headed by the settings used;
- ``out_dir/table1_trials.csv``: every trial row, for a closer look.

``quick=True`` is a smoke run of the whole pipeline (minutes on two cores), not a reproduction: one
repeat, each method's cheaper settings (``methods.*_QUICK``: fewer epochs / episodes) and, for the
larger tables, fewer methods. Its settings are written at the top of the text table.

HELP runs under HELP's own protocol (the paper quotes HELP's published numbers), every TL method
and the BRP-NAS / FLOPs baselines under the paper's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MultipredictError, UnknownNameError
from ..protocols import SOURCE_SAMPLES
from . import methods as method_registry
from .paper_numbers import FIGURES, TABLES, paper_numbers
from .runner import TrialResult
from .spec import ExperimentSpec
from .store import ParquetStore, ResultStore, run_cached_many
from .summary import summarise

SUMMARY_COLUMNS = ["table", "space", "source_samples", "method", "samples", "protocol", "device", "spearman_mean",
                   "spearman_std", "kendall_mean", "n", "failed", "paper", "errors"]
TITLES = {
    "table1": "Table 1: NB201, HELP's device split (Spearman rho)",
    "table2": "Table 2: adversarial device sets, 20 samples (Spearman rho)",
    "table3": "Table 3: FBNet, HELP's device split (Spearman rho)",
    "table4": "Table 4: fewer pretraining samples per training device (Spearman rho)",
    "fig6": "Fig 6: NB201 latency predictors from scratch against total hardware measurements (Spearman rho)",
    "fig16": "Fig 16: the same on NB201's adversarial devices (Spearman rho)",
    "fig17": "Fig 17: the same on FBNet (Spearman rho)",
}
QUICK_REPEATS = 1


@dataclass(frozen=True)
class TablePart:
    """One spec of a table: a device-set preset, methods with their budgets, shared options."""

    preset: str
    budgets: dict[str, tuple[int, ...]]
    quick_methods: tuple[str, ...]  # the subset a quick run keeps
    options: dict[str, Any] = field(default_factory=dict)
    source_samples: int | None = None  # Table 4's pretraining samples per training device
    quick_options: dict[str, Any] = field(default_factory=dict)  # over the methods' own quick settings

    @property
    def label(self) -> str:
        """How ``parts=`` names it: the preset, and Table 4's pretraining size (``nb201-default-50``)."""
        return self.preset + (f"-{self.source_samples}" if self.source_samples else "")


_HELP_PROTOCOL = {"HELP": {"protocol": "help"}}
SCRATCH_METHODS = ("Scratch Vec", "Scratch ZCP", "Scratch ZCPVec", "Scratch HWL", "Scratch HWLVec")
SCRATCH_BUDGETS = (5, 10, 20, 40, 80, 160)
# rows whose budget is not a few-shot sample count (FLOPs needs none, BRP-NAS trains on hundreds)
FIXED_BUDGETS = ("FLOPs", "BRP-NAS")
TABLE_PARTS: dict[str, list[TablePart]] = {
    "table1": [TablePart("nb201-default",
                         {"FLOPs": (0,), "BRP-NAS": (900, 3200), "HELP": (20,), "TL Vec Sample": (20,),
                          "TL Vec Index": (10,), "TL Vec ET": (10,), "TL ZCPVec ET": (10,), "TL HWLVec ET": (10,)},
                         quick_methods=("FLOPs", "HELP", "TL Vec ET"))],
    "table2": [TablePart("nb201-adversarial",
                         {"HELP": (20,), "TL Vec ET": (20,), "TL ZCPVec ET": (20,), "TL HWLVec ET": (20,)},
                         quick_methods=("HELP", "TL Vec ET")),
               TablePart("fbnet-adversarial", {"HELP": (20,), "TL Vec ET": (20,)},
                         quick_methods=("HELP", "TL Vec ET"))],
    "table3": [TablePart("fbnet-default",
                         {"HELP": (20,), "TL Vec Sample": (20,), "TL Vec Index": (10,), "TL Vec ET": (10,)},
                         quick_methods=("HELP", "TL Vec ET"))],
    # the protocol's own pretraining size passes no option, so the 4000 / 900 rows are the very trials
    # of Tables 3 / 1 (the same keys: one run into one folder computes them once)
    "table4": [TablePart(f"{space}-default", {"HELP": (20,), "TL Vec ET": (10,)}, quick_methods=("HELP", "TL Vec ET"),
                         options={} if n == SOURCE_SAMPLES[space] else {"source_samples": n}, source_samples=n,
                         # pretraining on 4000 archs per device is the slow part: one epoch keeps quick quick
                         # (and each row keeps its own size, over the methods' quick cap)
                         quick_options={"source_epochs": 1, "source_samples": n})
               for space, n in (("fbnet", 4000), ("fbnet", 1000), ("nb201", 900), ("nb201", 50))],
    # from scratch (Figs 6, 16, 17): the five encodings at growing k against the few-shot methods
    **{figure: [TablePart(preset, {**dict.fromkeys(SCRATCH_METHODS, SCRATCH_BUDGETS), "BRP-NAS": (900,),
                                   "HELP": (20,), "TL Vec ET": (10,)},
                          quick_methods=("Scratch ZCP", "Scratch HWL", "TL Vec ET"),
                          quick_options={"source_epochs": 1})]
       for figure, preset in (("fig6", "nb201-default"), ("fig16", "nb201-adversarial"), ("fig17", "fbnet-default"))},
}


def table_specs(table: str, repeats: int = 10, quick: bool = False, seed: int = 0,
                methods: Sequence[str] | None = None, options: Mapping[str, Any] | None = None,
                pretrain_dir: str | Path | None = None,
                samples: Sequence[int] | None = None,
                parts: Sequence[str] | None = None) -> list[tuple[TablePart, ExperimentSpec]]:
    """The specs that make up one table (quick: one repeat, cheaper settings, the quick methods).

    ``methods``: run only these rows of the table (the others stay empty in the summary; a later
    run into the same folder adds them). ``options``: settings for every chosen method that takes
    them (e.g. ``target_lr``), on top of the table's own. ``pretrain_dir``: where the TL methods
    keep their pretrained weights for reuse. ``samples``: few-shot budgets for the HELP and TL rows
    instead of the table's (``FIXED_BUDGETS`` rows keep theirs); the paper has no value for them.
    ``parts``: run only these parts of a table with several (`TablePart.label`, e.g.
    ``fbnet-adversarial`` of Table 2, ``nb201-default-50`` of Table 4).
    """
    if table not in TABLE_PARTS:
        raise UnknownNameError("table", table, list(TABLE_PARTS), "reproduce covers the paper's Tables 1-4")
    if samples is not None:
        samples = tuple(samples)
        bad = [k for k in samples if isinstance(k, bool) or not isinstance(k, int) or k < 1]
        if not samples or bad:
            raise MultipredictError(f"samples={list(samples)!r} is not valid; expected positive few-shot budgets, "
                                    "e.g. 10,20")
    labels = [part.label for part in TABLE_PARTS[table]]
    for label in parts or ():
        if label not in labels:
            raise UnknownNameError(f"part of {table}", label, labels)
    rows = _method_order(table)
    for name in methods or ():
        if name not in rows:
            raise UnknownNameError(f"method of {table}", name, rows, "Pass the rows' names as the table prints them.")
    specs = []
    for part in TABLE_PARTS[table]:
        if parts and part.label not in parts:
            continue
        names = [m for m in part.budgets if (not quick or m in part.quick_methods) and (not methods or m in methods)]
        if not names:
            continue
        budgets = {m: samples if samples is not None and m not in FIXED_BUDGETS else part.budgets[m]
                   for m in names}
        extra = dict(options or {})
        if pretrain_dir is not None and any(method_registry.get(m).takes("pretrain_dir") for m in names):
            extra["pretrain_dir"] = str(pretrain_dir)
        specs.append((part, ExperimentSpec.from_preset(
            part.preset, name=f"{table} {part.preset}" + (f" source_samples={part.source_samples}"
                                                           if part.source_samples else ""),
            methods=names, samples=budgets[names[0]], method_samples=budgets,
            method_options={m: o for m, o in _HELP_PROTOCOL.items() if m in names},
            options={**({k: v for k, v in part.quick_options.items()
                         if any(method_registry.get(m).takes(k) for m in names)} if quick else {}),
                     **part.options, **extra},
            repeats=QUICK_REPEATS if quick else repeats, seed=seed, quick=quick)))
    if not specs:
        chosen = ", ".join(part.label for part in TABLE_PARTS[table] if not parts or part.label in parts)
        raise MultipredictError(f"none of the rows {list(methods or [])} is in {table}'s part(s) {chosen}"
                                + (" of a quick run (quick rows: HELP, TL Vec ET, FLOPs)" if quick else "")
                                + "; choose rows that part has, or other parts")
    return specs


def settings_text(table: str, specs: list[ExperimentSpec]) -> str:
    """What a reproduction ran with: repeats, and the options each method ran with where they differ
    from its defaults (for quick runs, the cheaper settings it swapped in)."""
    first = specs[0]
    lines = [TITLES[table], f"repeats: {first.repeats} (seeds {first.seed}..{first.seed + first.repeats - 1})"]
    if first.quick:
        lines.append("QUICK run (a smoke test, not a reproduction): one repeat, methods "
                     + ", ".join(dict.fromkeys(m for s in specs for m in s.methods))
                     + "; quick numbers sit far below the published ones by design")
    for spec in specs:
        for name in spec.methods:
            method = method_registry.get(name)
            changed = {k: v for k, v in spec.options_for(method).items()
                       if k not in method_registry.REPORTING_OPTIONS
                       and ((spec.quick and k in method.quick_options) or (k in spec.options and method.takes(k)))}
            if changed:
                prefix = f"  {spec.name} / {name}: " if len(specs) > 1 else f"  {name}: "
                lines.append(prefix + ", ".join(f"{k}={v}" for k, v in changed.items()))
    return "\n".join(dict.fromkeys(lines))


def reproduce(table: str, repeats: int = 10, quick: bool = False, out_dir: str | Path = "reproduction", *,
              methods: Sequence[str] | None = None, options: Mapping[str, Any] | None = None,
              executor=None, workers: int | None = None, store: ResultStore | None = None, seed: int = 0,
              on_result: Callable[[TrialResult], None] | None = None,
              cancel: threading.Event | None = None, samples: Sequence[int] | None = None,
              parts: Sequence[str] | None = None, scheduler: str | None = None,
              progress: bool = False) -> pd.DataFrame:
    """Run one of the paper's tables (or some of its ``methods``, with extra ``options``); write
    ``<table>.csv``, ``.txt`` and ``_trials.csv`` under ``out_dir``; return the summary
    (``SUMMARY_COLUMNS``). Pretrained TL weights are kept under ``out_dir/pretrained``, so a run that
    changes only target-side options reuses them. ``executor="dask"`` runs the trials on the Dask
    cluster at ``scheduler`` (none: a ``LocalCluster`` of ``workers`` processes, one for every part).
    ``progress``: a tqdm bar over every trial of the table, with an ETA."""
    summary, _ = reproduce_with_trials(table, repeats, quick, out_dir, methods=methods, options=options,
                                       executor=executor, workers=workers, store=store, seed=seed,
                                       on_result=on_result, cancel=cancel, samples=samples, parts=parts,
                                       scheduler=scheduler, progress=progress)
    return summary


def reproduce_with_trials(table: str, repeats: int = 10, quick: bool = False, out_dir: str | Path = "reproduction",
                          *, methods=None, options=None, executor=None, workers=None, store=None, seed: int = 0,
                          on_result=None, cancel=None, samples=None, parts=None,
                          scheduler: str | None = None, progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``reproduce``, returning the trial rows (one per trial x test device) beside the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = ParquetStore(out / "store") if store is None else store
    parts = table_specs(table, repeats=repeats, quick=quick, seed=seed, methods=methods, options=options,
                        pretrain_dir=out / "pretrained", samples=samples, parts=parts)
    frames = run_cached_many([spec for _, spec in parts], store=store, executor=executor, workers=workers,
                             scheduler=scheduler, on_result=on_result, cancel=cancel, progress=progress,
                             desc=f"{table} trials")
    frames = [frame.assign(source_samples=part.source_samples) for (part, _), frame in zip(parts, frames, strict=False)]
    trials = pd.concat(frames, ignore_index=True)
    summary = compare_with_paper(trials, table)
    settings = settings_text(table, [spec for _, spec in parts])
    summary.attrs["settings"] = settings
    summary.to_csv(out / f"{table}.csv", index=False)
    trials.to_csv(out / f"{table}_trials.csv", index=False)
    text = settings + "\n\n" + format_comparison(summary) + "\n"
    if table in FIGURES:
        from . import fromscratch

        text += "\n" + fromscratch.write_outputs(table, trials, parts[0][1].train_devices, out) + "\n"
    (out / f"{table}.txt").write_text(text)
    return summary, trials


def compare_with_paper(trials: pd.DataFrame, table: str) -> pd.DataFrame:
    """The engine's summary (``summary.summarise``: mean / std of rho over repeats per method x budget
    x device and a ``mean`` device) per pretraining size, beside the published values of ``table``;
    the table's cells that did not run are rows with ``n == 0``."""
    keys = ["space", "source_samples", "method", "samples", "protocol"]
    trials = trials.copy()
    trials["source_samples"] = trials.get("source_samples", pd.Series(np.nan, index=trials.index)).astype("Int64")
    ours = summarise(trials, by=["source_samples"])
    # keep the protocol of each method for the paper cells it meets
    published = paper_numbers(table).rename(columns={"value": "paper"}).drop(columns="table")
    protocols = ours[["method", "protocol"]].drop_duplicates("method")
    published = published.merge(protocols, on="method", how="left")
    merged = ours.merge(published, on=keys + ["device"], how="outer")
    merged["table"] = table
    merged["n"] = merged["n"].fillna(0).astype(int)
    merged["failed"] = merged["failed"].fillna(0).astype(int)
    # per space: the paper's column order, then any other test device in the order the specs list them
    device_order = {}
    for space in merged["space"].unique():
        devices = list(published.loc[published["space"] == space, "device"]) + list(
            trials.loc[trials["space"] == space, "device"])
        named = [d for d in dict.fromkeys(devices) if d != "mean"]
        device_order.update({(space, d): i for i, d in enumerate(named + ["mean"])})
    merged["_order"] = [device_order.get(key, 0) for key in zip(merged["space"], merged["device"], strict=True)]
    method_order = {m: i for i, m in enumerate(_method_order(table))}
    merged["_method"] = merged["method"].map(lambda m: method_order.get(m, len(method_order)))
    merged = merged.sort_values(["space", "source_samples", "_method", "samples", "_order"], ascending=[
        True, False, True, True, True], na_position="first")
    return merged[SUMMARY_COLUMNS].reset_index(drop=True)


def _method_order(table: str) -> list[str]:
    return list(dict.fromkeys(m for part in TABLE_PARTS[table] for m in part.budgets))


def _device_order(summary: pd.DataFrame) -> list[str]:
    """Devices in the order of the (sorted) summary rows, ``mean`` last."""
    devices = [d for d in dict.fromkeys(summary["device"]) if d != "mean"]
    return devices + ["mean"]


def format_comparison(summary: pd.DataFrame, digits: int = 2) -> str:
    """Ours beside the paper, one block per space (and pretraining budget): rows method (samples),
    columns devices; each cell ``ours±std [paper]``. Takes ``compare_with_paper``'s table or the
    engine's ``summarise`` (no paper column: cells ``ours±std`` only)."""
    summary = summary.copy()
    beside_paper = "paper" in summary
    for column in ("source_samples", "paper"):
        if column not in summary:
            summary[column] = np.nan
    blocks = []
    group_keys = ["space", "source_samples"]
    for (space, source_samples), block in summary.groupby(group_keys, dropna=False, sort=False):
        title = f"{space}" + ("" if pd.isna(source_samples) else f", {source_samples} pretraining samples per device")
        devices = _device_order(block)
        header = ["method"] + devices
        lines = []
        for (method, samples), rows in block.groupby(["method", "samples"], sort=False, dropna=False):
            label = method if not samples else f"{method} ({int(samples)})"
            cells = {r.device: _cell(r, digits) for r in rows.itertuples()}
            lines.append([label] + [cells.get(d, "") for d in devices])
        widths = [max(len(str(row[i])) for row in [header] + lines) for i in range(len(header))]
        text = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
        text += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
        blocks.append("\n".join(text))
    legend = "ours mean±std over repeats [published]; '-' not run" if beside_paper else "mean±std over repeats"
    return "\n\n".join(blocks) + f"\n\ncells: {legend}, 'ERR' failed"


def _cell(row, digits: int) -> str:
    if row.n:
        ours = f"{row.spearman_mean:.{digits}f}"
        if not pd.isna(row.spearman_std):
            ours += f"±{row.spearman_std:.{digits}f}"
    else:
        ours = "ERR" if isinstance(row.errors, str) else "-"
    paper = "" if pd.isna(row.paper) else f" [{row.paper:.{digits}f}]"
    return ours + paper


__all__ = ["reproduce", "reproduce_with_trials", "compare_with_paper", "format_comparison", "table_specs", "TABLE_PARTS",
           "TABLES", "settings_text"]
