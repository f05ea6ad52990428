"""Prediction targets: a metric of an arch in a space, a device's latency or a task's accuracy.

One interface over the tidy tables, so that code which compares or predicts targets (the
task-distance tool, the predictors' trial protocol) does not care which kind it holds::

    targets("nb201")                       # every Target of the space, both kinds
    values("nb201", "accuracy", "cifar10")  # pd.Series per arch id, unit in .attrs["unit"]
    frame("nb201", "latency", ["pixel2", "fpga"])  # archs x targets, NaN = not measured

Latency (``ms``) exists for ``nb201`` and ``fbnet`` (`tables.latencies`); accuracy for the
NASLib spaces (`accuracy.task_table`). NB201 has both, on the same arch ids (the NB201 index).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..errors import UnknownNameError
from ..spaces import ALL_SPACES, LATENCY_SPACES
from . import accuracy, tables

KINDS: tuple[str, ...] = ("latency", "accuracy")


@dataclass(frozen=True)
class Target:
    space: str
    kind: str
    name: str
    unit: str


def _check(space: str, kind: str | None) -> None:
    if space not in ALL_SPACES:
        raise UnknownNameError("search space", space, ALL_SPACES)
    if kind is not None and kind not in KINDS:
        raise UnknownNameError("target kind", kind, KINDS)


def kinds(space: str) -> list[str]:
    """The target kinds that have data for ``space``."""
    _check(space, None)
    return [k for k in KINDS if (k == "latency" and space in LATENCY_SPACES)
            or (k == "accuracy" and space in accuracy.SPACES)]


def targets(space: str, kind: str | None = None) -> list[Target]:
    """Every target of ``space`` (of one ``kind`` when given), devices first."""
    _check(space, kind)
    out: list[Target] = []
    if kind in (None, "latency") and space in LATENCY_SPACES:
        out += [Target(space, "latency", str(d), "ms") for d in tables.latencies(space).columns]
    if kind in (None, "accuracy") and space in accuracy.SPACES:
        out += [Target(space, "accuracy", t.name, t.unit) for t in accuracy.tasks(space)]
    return out


def names(space: str, kind: str) -> list[str]:
    return [t.name for t in targets(space, kind)]


def _check_name(space: str, kind: str, name: str) -> None:
    valid = names(space, kind)
    if name not in valid:
        what = "device" if kind == "latency" else "accuracy task"
        raise UnknownNameError(f"{space} {what}", name, valid)


def values(space: str, kind: str, name: str) -> pd.Series:
    """One target's value per arch id (only archs that have one); ``attrs["unit"]``."""
    _check(space, kind)
    if kind not in kinds(space):
        raise UnknownNameError(f"target kind with data for {space}", kind, kinds(space))
    _check_name(space, kind, name)
    if kind == "latency":
        series = tables.latencies(space)[name].dropna()
        unit = "ms"
    else:
        series = accuracy.accuracy(space, name)
        unit = accuracy.task(space, name).unit
    series = series.rename(name)
    series.attrs = {"unit": unit, "space": space, "kind": kind}
    return series


def frame(space: str, kind: str, target_names=None) -> pd.DataFrame:
    """Archs x targets of one kind (all of the space's when ``target_names`` is None), outer-joined
    on arch id: NaN where a target has no value for an arch."""
    chosen = names(space, kind) if target_names is None else list(target_names)
    if kind == "latency" and space in LATENCY_SPACES:
        for name in chosen:
            _check_name(space, kind, name)
        return tables.latencies(space)[chosen].copy()
    columns = [values(space, kind, name) for name in chosen]
    out = pd.concat(columns, axis=1, join="outer") if columns else pd.DataFrame()
    out.columns.name = "target"
    return out
