"""The accuracy tasks of the paper's Table 8: 28 (space, task) pairs with zero-cost proxies and a
validation accuracy per arch, all from NASLib / NAS-Bench-Suite-Zero.

- 19 tasks from the ``zc_<space>.json`` files (NB101 CIFAR-10; NB201 CIFAR-10/-100/ImageNet16-120;
  NB301 CIFAR-10; TransNAS-Bench-101 micro and macro, 7 tasks each), with the proxies the json
  lacks (zen, and synflow for TNB classification tasks) joined from NASLib's whole-space zips;
- 9 tasks from ``9x_all.zip`` (NinaPro, SVHN, Spherical-CIFAR-100 on NB201, NB301, TNB-micro).

The accuracy is always the zc json's (the paper's source): for TNB-101 the zen zips carry other
accuracies (another NASLib commit), compared by :func:`accuracy_disagreement` and shown in
``multipredict data report``.

**Proxies.** The paper's Table 6 lists 12 proxies (``PAPER_PROXIES``; no epe_nas, which is the
failure sentinel in most TNB tasks). Some tasks lack some (NB101: nwot, zen; NB301 CIFAR-10: zen;
TNB autoencoder / normal / segmentsemantic: synflow): ``COMMON_PROXIES`` are the 9 present in all
28. :func:`task_table` always has the 12 columns, all-NaN where the task lacks the proxy.

**Targets.** Every task's value is "higher is better" (room_layout is a negative L2 loss), but
units differ (``Task.unit``). Predictors train on labels min-max scaled per task over the rows they
train on (`multipredict.methods.accuracy`); rank metrics are unchanged by that scaling.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import MultipredictError, UnknownNameError
from . import naslib

PAPER_PROXIES: tuple[str, ...] = ("fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "params",
                                  "plain", "snip", "synflow", "zen")
COMMON_PROXIES: tuple[str, ...] = tuple(p for p in PAPER_PROXIES if p not in ("nwot", "zen", "synflow"))
ACCURACY = naslib.ACCURACY
SPACES: tuple[str, ...] = naslib.SPACES

_UNITS = {
    "cifar10": "% top-1", "cifar100": "% top-1", "ImageNet16-120": "% top-1",
    "ninapro": "% top-1", "svhn": "% top-1", "scifar100": "% top-1",
    "class_scene": "% top-1", "class_object": "% top-1", "jigsaw": "% top-1",
    "autoencoder": "SSIM", "normal": "SSIM", "room_layout": "negative L2 loss", "segmentsemantic": "% pixel acc.",
}
_SHORT = {"nb101": "NB101", "nb201": "NB201", "nb301": "NB301", "tnb101_micro": "TNB-micro",
          "tnb101_macro": "TNB-macro"}


@dataclass(frozen=True)
class Task:
    """One accuracy task: ``space`` (a NASLib space), ``name`` (its dataset or TNB task), where the
    table comes from (``"zc"``: the zc json; ``"9x"``: ``9x_all.zip``) and the unit of its metric."""

    space: str
    name: str
    source: str
    unit: str

    @property
    def key(self) -> str:
        """``space/name``, how command lines and result tables name a task."""
        return f"{self.space}/{self.name}"

    @property
    def label(self) -> str:
        """Short label for plots, e.g. ``NB201 cifar10``."""
        return f"{_SHORT[self.space]} {self.name}"


TASKS: tuple[Task, ...] = tuple(
    [Task(space, name, "zc", _UNITS[name]) for space in SPACES for name in naslib.TASKS[space]]
    + [Task(space, name, "9x", _UNITS[name]) for space in naslib.NINE_X_SPACES for name in naslib.NINE_X_TASKS]
)
TASK_KEYS: tuple[str, ...] = tuple(t.key for t in TASKS)


def check_space(space: str) -> str:
    if space not in SPACES:
        raise UnknownNameError("accuracy search space", space, SPACES)
    return space


def tasks(space: str | None = None) -> list[Task]:
    """The tasks of ``space`` (all 28 when None), in Table 8's order."""
    if space is not None:
        check_space(space)
    return [t for t in TASKS if space is None or t.space == space]


def task_names(space: str) -> list[str]:
    return [t.name for t in tasks(space)]


def task(space_or_key: str, name: str | None = None) -> Task:
    """A task by ``("nb201", "cifar10")`` or by its key ``"nb201/cifar10"``."""
    if name is None:
        space, _, name = space_or_key.partition("/")
        if not name:
            raise MultipredictError(f"task {space_or_key!r} is not 'space/task'; valid tasks: {', '.join(TASK_KEYS)}")
    else:
        space = space_or_key
    check_space(space)
    for t in TASKS:
        if t.space == space and t.name == name:
            return t
    raise UnknownNameError(f"{space} accuracy task", name, task_names(space))


@cache
def _task_table(space: str, name: str) -> pd.DataFrame:
    t = task(space, name)
    raw = naslib.nine_x(space, name) if t.source == "9x" else naslib.space_proxies(space, name, with_whole_space=True)
    out = pd.DataFrame(index=raw.index)
    for proxy in PAPER_PROXIES:
        out[proxy] = raw[proxy].astype(float) if proxy in raw.columns else np.nan
    out[ACCURACY] = raw[ACCURACY].astype(float)
    out = out[np.isfinite(out[ACCURACY].to_numpy())]
    out.attrs = {**raw.attrs, "task": t.key, "unit": t.unit}
    return out


def task_table(space: str, name: str) -> pd.DataFrame:
    """Index arch id (the space's canonical key, see `multipredict.data.naslib`), the 12
    ``PAPER_PROXIES`` (NaN where the task or the arch lacks one) and ``val_accuracy``; archs without
    an accuracy are dropped. A shallow copy of a per-process cache."""
    return _task_table(*task(space, name).key.split("/", 1)).copy(deep=False)


def accuracy(space: str, name: str) -> pd.Series:
    """The task's validation accuracy per arch id (unit: ``task(space, name).unit``)."""
    t = task(space, name)
    series = task_table(space, name)[ACCURACY].rename(t.key)
    series.attrs = {"unit": t.unit, "task": t.key}
    return series


def proxies_present(space: str, name: str) -> list[str]:
    """The paper proxies the task has for at least one arch."""
    table = task_table(space, name)
    return [p for p in PAPER_PROXIES if table[p].notna().any()]


def catalogue(space: str | None = None) -> pd.DataFrame:
    """One row per task: ``task, space, name, source, unit, archs, archs_all_present`` (archs
    with every proxy the task has), ``accuracy_min, accuracy_max, proxies_missing``."""
    rows = []
    for t in tasks(space):
        table = task_table(t.space, t.name)
        present = proxies_present(t.space, t.name)
        acc = table[ACCURACY]
        rows.append({"task": t.key, "space": t.space, "name": t.name, "source": t.source, "unit": t.unit,
                     "archs": len(table), "archs_all_present": int(table[present].notna().all(axis=1).sum()),
                     "accuracy_min": float(acc.min()), "accuracy_max": float(acc.max()),
                     "proxies_missing": ", ".join(p for p in PAPER_PROXIES if p not in present) or "-"})
    return pd.DataFrame(rows)


def accuracy_disagreement() -> pd.DataFrame:
    """TNB-101's zc-json accuracies against the zen zips' (another NASLib commit), per task:
    ``task, n_archs, spearman, max_abs_diff``. The zc json is the one used everywhere."""
    rows = []
    for space in ("tnb101_micro", "tnb101_macro"):
        for name in naslib.TASKS[space]:
            ours = accuracy(space, name)
            other = naslib.full_space_proxy(space, "zen", name)
            if ACCURACY not in other.columns:
                continue
            both = ours.to_frame("zc").join(other[ACCURACY].rename("zip"), how="inner").dropna()
            rho = float(stats.spearmanr(both["zc"], both["zip"]).statistic) if len(both) > 2 else float("nan")
            rows.append({"task": f"{space}/{name}", "n_archs": len(both), "spearman": rho,
                         "max_abs_diff": float((both["zc"] - both["zip"]).abs().max()) if len(both) else float("nan")})
    return pd.DataFrame(rows, columns=["task", "n_archs", "spearman", "max_abs_diff"])
