"""Accuracy mode of the workbench: few-shot accuracy predictors transferred across NAS tasks
(the paper's Fig 9), on the engine's ``multipredict.experiments.accuracy``.

``AccuracyModel`` holds the state (space, source and target tasks, proxy set, arms, the budget k,
repeats, quick), validates it with the engine's ``plan`` (its one-line message when a choice cannot
run), runs ``run_plan`` in a background thread with its units kept under the results folder (a
rerun of the same choices comes back at once), and fills ``trials`` / ``pairs`` (the engine's
``fig9_pairs``) / ``per_target`` as each unit finishes. ``AccuracyPanel`` is its view: the
task-distance heatmap of the space (Spearman of two tasks' accuracies over their shared archs),
source / target pickers, the settings, Run / Cancel, and an improvement heatmap (transfer minus
training from scratch, sources x targets) with a table of each target's arms.

    from mpwidgets import AccuracyModel, AccuracyPanel
    AccuracyPanel(space="nb201")                                     # in a notebook
    model = AccuracyModel(space="nb201", quick=True, repeats=1)      # in a script or a test
    model.sources = model.targets = ["nb201/cifar10", "nb201/cifar100"]
    model.run(); model.wait()
    model.pairs                                                      # fig9_pairs of the trials

The engine (and torch) is imported on first use, not when the dashboard is built.
"""

from __future__ import annotations

import functools
import html
import logging
import threading
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from traitlets import Bool, Dict, HasTraits, Instance, Int, List, Unicode, observe

from multipredict import config
from multipredict import tasks as engine_tasks
from multipredict.data import accuracy as catalogue
from multipredict.messages import user_message

from . import figures
from .model import (CANCELLED, CANCELLING, DONE, FAILED, IDLE, RUNNING, ChoiceError, KernelUpdates, explain_error,
                    join_threads, request_cancel, start_loader)
from .views import _download_link, error_box, figure_widget, replace_figure, sync_figure_state

log = logging.getLogger(__name__)

ALL = "all"  # the space choice that offers all 28 tasks (sources and targets from different spaces)
# the engine's FIG9_ARMS, named here so that building the page does not import torch (a test checks they agree)
ARMS = ("Vec scratch", "ZCP scratch", "ZCP transfer", "ZCP multi-task")
ARM_HELP = {"Vec scratch": "Vec encoding, trained on the target's k samples only",
            "ZCP scratch": "zero-cost proxies (ZCP), trained on the target's k samples only",
            "ZCP transfer": "ZCP, pretrained on one source task, fine-tuned on the target's k samples",
            "ZCP multi-task": "ZCP, pretrained on all chosen sources at once (task embeddings), then fine-tuned"}
PROXY_SETS = {"common": "common: the 9 proxies every task has",
              "all": "all: the paper's 12, missing ones masked"}
# improvement heatmap: what a cell shows -> (minuend, subtrahend or None for the arm itself)
METRICS = {"transfer - ZCP from scratch": ("ZCP transfer", "ZCP scratch"),
           "transfer - Vec from scratch": ("ZCP transfer", "Vec scratch"),
           "transfer (Spearman ρ)": ("ZCP transfer", None)}
DEFAULT_TASKS = 3  # tasks of the space picked at the start (NB201: CIFAR-10, CIFAR-100, ImageNet16-120)
MIN_SAMPLES = 2  # multipredict.methods.accuracy.few_shot: a predictor needs at least 2 labelled archs


def space_tasks(space: str) -> list[str]:
    """Task keys of an accuracy space (all 28 for ``ALL``), in Table 8's order."""
    return list(catalogue.TASK_KEYS) if space == ALL else [t.key for t in catalogue.tasks(space)]


def space_label(space: str) -> str:
    return f"all {len(catalogue.TASK_KEYS)} tasks (5 spaces)" if space == ALL else space


@config.cache_per_data_source(maxsize=8)
def task_distance(space: str) -> pd.DataFrame:
    """Task x task Spearman of accuracies over shared archs (``multipredict.tasks.target_correlation``),
    indexed by task key; for ``ALL`` the spaces' blocks, NaN across spaces (no shared archs).
    ``attrs["n_archs"]``: the pair counts."""
    spaces = catalogue.SPACES if space == ALL else (space,)
    keys = space_tasks(space)
    matrix = pd.DataFrame(np.nan, index=keys, columns=keys)
    counts = pd.DataFrame(0, index=keys, columns=keys)
    for s in spaces:
        block = engine_tasks.target_correlation(s, "accuracy")
        names = {n: f"{s}/{n}" for n in block.index}
        block = block.rename(index=names, columns=names)
        n = block.attrs.get("n_archs")
        matrix.loc[block.index, block.columns] = block.to_numpy()
        if n is not None:
            counts.loc[block.index, block.columns] = n.rename(index=names, columns=names).to_numpy()
    matrix = matrix.rename_axis(index="source", columns="target")
    matrix.attrs["n_archs"] = counts
    return matrix


def closest_sources(matrix: pd.DataFrame | None, sources, targets) -> pd.DataFrame:
    """Each target's most correlated chosen source (another task): ``target, source, spearman``."""
    rows = []
    if matrix is not None:
        for t in targets:
            if t not in matrix.columns:
                continue
            column = matrix.loc[[s for s in sources if s != t and s in matrix.index], t].dropna()
            if len(column):
                rows.append({"target": t, "source": str(column.idxmax()), "spearman": float(column.max())})
    return pd.DataFrame(rows, columns=["target", "source", "spearman"])


# ==================================================================== figures
def _star_marks(closest: pd.DataFrame):
    xs, ys, texts = [], [], []
    for r in closest.itertuples(index=False):
        xs.append(r.target)
        ys.append(r.source)
        texts.append(f"closest chosen source of <b>{r.target}</b>: <b>{r.source}</b><br>Spearman ρ = {r.spearman:.3f}")
    return xs, ys, texts


def distance_figure(matrix: pd.DataFrame, sources=(), targets=(), closest: pd.DataFrame | None = None) -> go.Figure:
    """The task-distance heatmap: rows source candidates, columns target candidates; chosen sources
    framed blue, chosen targets orange, a star on each target's closest chosen source."""
    keys = [str(k) for k in matrix.index]
    n_archs = matrix.attrs.get("n_archs")
    counts = n_archs.reindex(index=keys, columns=keys).fillna(0).astype(int).to_numpy() if n_archs is not None \
        else np.zeros((len(keys), len(keys)), dtype=int)
    finite = matrix.stack().dropna()
    heat = go.Heatmap(z=matrix.to_numpy(), x=keys, y=keys, customdata=counts, colorscale="Viridis",
                      zmin=min(0.0, float(finite.min())) if len(finite) else 0.0, zmax=1.0,
                      colorbar={"title": {"text": "Spearman ρ"}, "thickness": 12},
                      hovertemplate="source <b>%{y}</b><br>target <b>%{x}</b><br>Spearman ρ of their accuracies = "
                                    "%{z:.3f}<br>over %{customdata} shared archs<extra></extra>",
                      hoverongaps=False, name="task distance")
    fig = go.Figure(heat)
    xs, ys, texts = _star_marks(closest if closest is not None else closest_sources(matrix, sources, targets))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", hovertext=texts, showlegend=False,
                             hovertemplate="%{hovertext}<extra></extra>", name="closest source",
                             marker={"symbol": "star", "size": 11, "color": "white",
                                     "line": {"width": 1, "color": "black"}}))
    fig.update_layout(
        shapes=figures.selection_shapes(keys, keys, sources, targets),
        xaxis={"title": {"text": "target task"}, "type": "category", "tickangle": -45, "tickfont": {"size": 9},
               "range": [-0.5, len(keys) - 0.5]},
        yaxis={"title": {"text": "source task"}, "type": "category", "range": [len(keys) - 0.5, -0.5],
               "tickfont": {"size": 9}},
        height=max(360, 16 * len(keys) + 240), margin={"l": 10, "r": 10, "t": 10, "b": 10}, clickmode="event")
    return fig


def improvement_grid(pairs: pd.DataFrame | None, sources, targets, samples: int, metric: str):
    """(z, text, customdata) of the improvement heatmap: rows sources, columns targets; NaN where
    the pair has not finished (or is a task with itself)."""
    value, base = METRICS[metric]
    z = np.full((len(sources), len(targets)), np.nan)
    text = [["" for _ in targets] for _ in sources]
    custom = [[[None, None] for _ in targets] for _ in sources]
    if pairs is not None and len(pairs):
        part = pairs[pairs["samples"] == samples]
        row_of, col_of = {s: i for i, s in enumerate(sources)}, {t: j for j, t in enumerate(targets)}
        for r in part.to_dict("records"):
            i, j = row_of.get(r["source"]), col_of.get(r["target"])
            if i is None or j is None:
                continue
            top = r.get(value)
            bottom = r.get(base) if base else 0.0
            if top is None or bottom is None or not np.isfinite(top) or not np.isfinite(bottom):
                continue
            z[i, j] = top - bottom
            text[i][j] = f"{z[i, j]:+.2f}" if base else f"{z[i, j]:.2f}"
            custom[i][j] = [float(top), float(r[base]) if base else None]
    for i, s in enumerate(sources):
        for j, t in enumerate(targets):
            if s == t:
                text[i][j] = "·"
    return z, text, custom


def improvement_figure(pairs: pd.DataFrame | None, sources, targets, samples: int,
                       metric: str = "transfer - ZCP from scratch") -> go.Figure:
    """Sources x targets heatmap of what transfer gains over training from scratch on the target's
    k samples (blue: transfer ahead), or of the transfer's own Spearman ρ; cells fill in as the
    engine's units finish."""
    value, base = METRICS[metric]
    z, text, custom = improvement_grid(pairs, sources, targets, samples, metric)
    finite = z[np.isfinite(z)]
    if base:
        reach = max(0.1, float(np.abs(finite).max())) if finite.size else 0.5
        scale = {"colorscale": "RdBu", "zmin": -reach, "zmax": reach, "zmid": 0}
        hover = (f"source <b>%{{y}}</b> → target <b>%{{x}}</b><br>{value}: ρ = %{{customdata[0]:.3f}}"
                 f"<br>{base}: ρ = %{{customdata[1]:.3f}}<br>difference %{{z:+.3f}}<extra></extra>")
    else:
        scale = {"colorscale": "Viridis", "zmin": min(0.0, float(finite.min())) if finite.size else 0.0, "zmax": 1.0}
        hover = f"source <b>%{{y}}</b> → target <b>%{{x}}</b><br>{value}: ρ = %{{z:.3f}}<extra></extra>"
    heat = go.Heatmap(z=z, x=list(targets), y=list(sources), text=text, texttemplate="%{text}", customdata=custom,
                      hovertemplate=hover, hoverongaps=False, name=metric,
                      colorbar={"title": {"text": "Δ Spearman ρ" if base else "Spearman ρ"}, "thickness": 12},
                      **scale)
    fig = go.Figure(heat)
    fig.update_layout(
        title={"text": f"{metric}, k = {samples} (mean over repeats)"},
        xaxis={"title": {"text": "target task (k samples)"}, "type": "category", "tickangle": -45,
               "tickfont": {"size": 9}, "range": [-0.5, len(targets) - 0.5]},
        yaxis={"title": {"text": "source task (pretrained on)"}, "type": "category", "tickfont": {"size": 9},
               "range": [len(sources) - 0.5, -0.5]},
        height=max(320, 28 * len(sources) + 220), margin={"l": 10, "r": 10, "t": 40, "b": 10}, plot_bgcolor="#eee")
    return fig


def per_target_table(trials: pd.DataFrame | None, pairs: pd.DataFrame | None, targets, samples: int,
                     arms=ARMS) -> pd.DataFrame:
    """One row per target: each arm's mean Spearman over repeats (transfer: the mean and the best
    over sources) and how many sources' transfer beats ZCP from scratch; NaN until computed."""
    rows = []
    means = pd.Series(dtype=float)
    multitask = ["ZCP multi-task"]
    if trials is not None and len(trials) and "spearman" in trials:
        part = trials[trials["samples"] == samples]
        means = part.groupby(["arm", "target"])["spearman"].mean()
        # the engine may adapt the multi-task pretraining in more than one way (one column each)
        multitask += [a for a in dict.fromkeys(part["arm"]) if str(a).startswith("ZCP multi-task ")]
    columns = ["target", "Vec scratch", "ZCP scratch", "ZCP transfer (mean over sources)", "best source",
               "best transfer", *multitask, "sources ahead of ZCP scratch"]
    for t in targets:
        row: dict[str, Any] = {"target": t}
        for arm in ("Vec scratch", "ZCP scratch", *multitask):
            row[arm] = float(means.get((arm, t), np.nan))
        mine = pairs[(pairs["target"] == t) & (pairs["samples"] == samples)] if pairs is not None and len(pairs) \
            else pd.DataFrame()
        transfer = mine["ZCP transfer"].dropna() if len(mine) else pd.Series(dtype=float)
        row["ZCP transfer (mean over sources)"] = float(transfer.mean()) if len(transfer) else np.nan
        if len(transfer):
            best = mine.loc[transfer.idxmax()]
            row["best source"], row["best transfer"] = str(best["source"]), float(best["ZCP transfer"])
            beats = mine["beats_zcp_scratch"].dropna() if "beats_zcp_scratch" in mine else pd.Series(dtype=float)
            row["sources ahead of ZCP scratch"] = f"{int(beats.sum())} of {len(beats)}" if len(beats) else ""
        else:
            row["best source"], row["best transfer"], row["sources ahead of ZCP scratch"] = "", np.nan, ""
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


# ==================================================================== the model
class AccuracyModel(HasTraits):
    """State of the accuracy mode. Set the choices; ``error`` says what cannot run (the engine's
    words); ``run()`` starts the units in a thread and ``status``, ``completed`` / ``total``,
    ``message``, ``trials``, ``pairs`` and ``per_target`` follow them."""

    space = Unicode("nb201", help="an accuracy search space of multipredict.data.accuracy.SPACES, or 'all'")
    sources = List(Unicode(), help="task keys the predictor pretrains on (one transfer per source)")
    targets = List(Unicode(), help="task keys it is fine-tuned on with k samples each, and scored on")
    proxy_set = Unicode("common", help="zero-cost proxies of the ZCP encoding: 'common' (9) or 'all' (12, masked)")
    arms = List(Unicode(), default_value=list(ARMS), help="which of Fig 9's arms run")
    samples = Int(10, help="k: the target's few-shot samples")
    repeats = Int(3)
    seed = Int(0)
    quick = Bool(False, help="fewer epochs (the engine's QUICK_OPTIONS): a smoke test, not the paper's settings")
    options = Dict(help="AccuracyOptions overrides (epochs, transfer_epochs, width, ...); {} for the defaults")
    metric = Unicode(next(iter(METRICS)), help="what the improvement heatmap shows (a key of METRICS)")

    # ---- derived ----
    distance = Instance(pd.DataFrame, allow_none=True, help="task x task Spearman of the space's accuracies")
    distance_error = Unicode("", help="why the task distance could not be computed, in words")
    units = Int(0, help="units of work the current choices make (0: they cannot run)")
    input_error = Unicode("", help="why the current choices cannot run, the engine's one line")
    run_error = Unicode("")
    error = Unicode("")

    # ---- the run ----
    status = Unicode(IDLE)
    completed = Int(0)
    total = Int(0)
    message = Unicode("")
    running = Dict(help="the settings of the run shown: sources, targets, samples, arms")
    trials = Instance(pd.DataFrame, allow_none=True, help="every finished unit's rows (the engine's trial rows)")
    pairs = Instance(pd.DataFrame, allow_none=True, help="multipredict.experiments.accuracy.fig9_pairs(trials)")
    per_target = Instance(pd.DataFrame, allow_none=True, help="per_target_table of the run")

    def __init__(self, space: str = "nb201", *, out_dir: str | Path | None = None, options: dict | None = None,
                 load: str = "background", **traits: Any):
        """``out_dir``: where the units' rows are kept (default ``<results folder>/accuracy``);
        ``load``: ``background`` (a thread), ``now``, or ``lazy`` (when ``activate()`` is called:
        the dashboard does so when its accuracy mode is first shown)."""
        self._updates = KernelUpdates(what="accuracy")
        self._thread: threading.Thread | None = None
        self._loader: threading.Thread | None = None
        self._cancel: threading.Event | None = None
        self._run = 0
        self._token = 0
        self._active = False
        self._building = True
        self._rows: list[dict] = []
        if out_dir is None:
            from multipredict.experiments.store import default_root

            out_dir = default_root() / "accuracy"
        self.out_dir = Path(out_dir)
        self._load_mode = load
        super().__init__(space=space, options=dict(options or {}), **traits)
        if space != ALL:
            catalogue.check_space(space)
        if not (traits.get("sources") or traits.get("targets")):
            self.reset_tasks()
        self._building = False
        if load != "lazy":
            self.activate()

    # ---------------------------------------------------------------- choices on offer
    def spaces(self) -> list[tuple[str, str]]:
        return [(s, s) for s in catalogue.SPACES] + [(space_label(ALL), ALL)]

    def task_keys(self) -> list[str]:
        return space_tasks(self.space)

    def task_label(self, key: str) -> str:
        task = catalogue.task(key)
        return f"{key} ({task.unit})"

    def reset_tasks(self) -> None:
        keys = self.task_keys()
        picked = keys[:DEFAULT_TASKS] if self.space != ALL else [k for k in keys if k.startswith("nb201/")][:3]
        with self.hold_trait_notifications():
            self.sources, self.targets = list(picked), list(picked)

    def toggle(self, role: str, key: str) -> None:
        """Add ``key`` to (or remove it from) the ``source`` or ``target`` tasks."""
        if role not in ("source", "target"):
            raise ChoiceError(f"role {role!r}: expected 'source' or 'target'")
        trait = f"{role}s"
        chosen = list(getattr(self, trait))
        chosen = [k for k in chosen if k != key] if key in chosen else chosen + [key]
        setattr(self, trait, self._ordered(chosen))

    def _ordered(self, keys) -> list[str]:
        rank = {k: i for i, k in enumerate(catalogue.TASK_KEYS)}
        return sorted(dict.fromkeys(keys), key=lambda k: rank.get(k, len(rank)))

    # ---------------------------------------------------------------- loading and checking
    def activate(self) -> None:
        """Load the task distance (and the engine) and check the choices; once."""
        if self._active:
            return
        self._active = True
        self._start_distance()

    def _start_distance(self) -> None:
        self._token += 1
        token, space = self._token, self.space
        self.distance, self.distance_error = None, ""

        def compute() -> pd.DataFrame:
            matrix = task_distance(space)
            from multipredict.experiments import accuracy  # noqa: F401  torch: off the kernel's thread
            return matrix

        self._loader = start_loader(
            compute, lambda matrix, problem: self._updates.post(functools.partial(self._loaded, token, matrix, problem)),
            now=self._load_mode == "now", name="mpwidgets-accuracy-distance",
            context=f"the task distance of {space} could not be computed")

    def _loaded(self, token: int, matrix: pd.DataFrame | None, problem: str) -> None:
        if token != self._token:  # another space was chosen since
            return
        with self.hold_trait_notifications():
            self.distance, self.distance_error = matrix, problem
            self.check()

    def wait_for_distance(self, timeout: float | None = None) -> bool:
        return join_threads([self._loader], timeout, self._updates.apply)

    def build_plan(self):
        """The engine's fig9 plan of the current choices; raises its validation error."""
        if not self.sources:
            raise ChoiceError("no source task chosen: tick at least one task to pretrain on")
        if not self.targets:
            raise ChoiceError("no target task chosen: tick at least one task to fine-tune on and score")
        if not self.arms:
            raise ChoiceError(f"no arm chosen: tick at least one of {', '.join(ARMS)}")
        if self.samples < MIN_SAMPLES:
            raise ChoiceError(f"k={self.samples}: an accuracy predictor needs at least {MIN_SAMPLES} labelled archs")
        from multipredict.experiments import accuracy as engine

        return engine.plan("fig9", repeats=self.repeats, quick=self.quick, options=dict(self.options),
                           sources=list(self.sources), targets=list(self.targets), samples=(int(self.samples),),
                           arms=tuple(a for a in ARMS if a in self.arms), proxy_set=self.proxy_set, seed=self.seed)

    def check(self):
        """Validate the choices: the plan, or None and ``input_error`` says why."""
        try:
            plan, error = self.build_plan(), ""
        except Exception as exc:  # the engine's MultipredictError, pydantic's, or a surprise: shown, never raised
            if user_message(exc) is None and not isinstance(exc, ChoiceError):
                log.exception("checking the accuracy choices failed")
            plan, error = None, explain_error(exc)
        with self.hold_trait_notifications():
            self.input_error = error
            self.units = len(plan.units) if plan is not None else 0
        return plan

    @observe("sources", "targets", "proxy_set", "arms", "samples", "repeats", "seed", "quick", "options")
    def _on_choice(self, change: dict) -> None:
        if self._building:
            return
        if self.status not in (RUNNING, CANCELLING):
            self.run_error = ""
        if self._active:
            self.check()

    @observe("space")
    def _on_space(self, change: dict) -> None:
        if self._building:
            return
        with self.hold_trait_notifications():
            self.reset_tasks()
            self.run_error = ""
        if self._active:
            self._start_distance()

    @observe("input_error", "run_error")
    def _on_error(self, change: dict) -> None:
        self.error = "\n".join(e for e in (self.input_error, self.run_error) if e)

    # ---------------------------------------------------------------- the run
    def run(self) -> bool:
        """Start the current choices in the background; False (``error`` says why) when they
        cannot run or a run is going."""
        if self.status in (RUNNING, CANCELLING):
            self.run_error = "a run is already going: wait for it or press Cancel first"
            return False
        self.activate()  # a run before the panel was shown: load its task distance too
        plan = self.check()
        if plan is None:
            return False
        self._run += 1
        self._cancel = threading.Event()
        self._rows = []
        with self.hold_trait_notifications():
            self.run_error = ""
            self.running = {"sources": list(self.sources), "targets": list(self.targets), "samples": int(self.samples),
                            "arms": [a for a in ARMS if a in self.arms], "space": self.space}
            self.trials = self.pairs = None
            self.per_target = per_target_table(None, None, self.running["targets"], self.samples)
            self.completed, self.total = 0, len(plan.units)
            self.status = RUNNING
            self.message = f"running {len(plan.units)} units of work (each: one pretraining or training and its scores)"
        self._thread = threading.Thread(target=self._work, args=(self._run, plan, self._cancel), daemon=True,
                                        name="mpwidgets-accuracy")
        self._thread.start()
        return True

    def cancel(self) -> None:
        """Stop after the unit that is running (its rows are kept, and stored)."""
        request_cancel(self, self._cancel, "cancelling: the unit that is running finishes first")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends and its rows are in the model (scripts, tests)."""
        return join_threads([self._thread], timeout, self._updates.apply)

    def _work(self, run: int, plan, cancel: threading.Event) -> None:
        from multipredict.experiments.units import run_plan

        def on_rows(rows: list[dict]) -> None:
            self._updates.post(functools.partial(self._add_rows, run, [dict(r) for r in rows]))

        try:  # a set cancel event stops run_plan between units (finished units are stored)
            run_plan(plan, self.out_dir, workers=1, progress=False, on_rows=on_rows, cancel=cancel)
        except Exception as error:  # shown in the panel, never a traceback and never a dead kernel
            if user_message(error) is None:
                log.exception("accuracy run failed")
            self._updates.post(functools.partial(self._fail, run, error))
            return
        self._updates.post(functools.partial(self._finish, run, cancel.is_set()))

    def _add_rows(self, run: int, rows: list[dict]) -> None:
        if run != self._run:
            return
        from multipredict.experiments.accuracy import fig9_pairs

        self._rows.extend(rows)
        trials = pd.DataFrame(self._rows)
        try:
            pairs = fig9_pairs(trials) if (trials.get("arm") == "ZCP transfer").any() else None
        except Exception:  # a partial frame the summary cannot take yet: the next unit brings it
            log.debug("fig9_pairs of a partial run", exc_info=True)
            pairs = self.pairs
        label = _unit_label(rows)
        with self.hold_trait_notifications():
            self.trials, self.pairs = trials, pairs
            self.per_target = per_target_table(trials, pairs, self.running["targets"], self.running["samples"])
            self.completed = min(self.completed + 1, self.total)
            if self.status == RUNNING:
                self.message = f"{self.completed} of {self.total} units done (last: {label})"

    def _fail(self, run: int, error: Exception) -> None:
        if run != self._run:
            return
        with self.hold_trait_notifications():
            self.run_error = f"the run stopped: {explain_error(error)}"
            self.status = FAILED
            self.message = f"failed after {self.completed} of {self.total} units"

    def _finish(self, run: int, cancelled: bool) -> None:
        if run != self._run:
            return
        with self.hold_trait_notifications():
            cancelled = cancelled and self.completed < self.total
            self.status = CANCELLED if cancelled else DONE
            self.message = (f"cancelled after {self.completed} of {self.total} units (they are kept: a rerun "
                            "resumes)" if cancelled else f"done: {self.total} units; rows kept under {self.out_dir}")


def _unit_label(rows: list[dict]) -> str:
    if not rows:
        return "a unit"
    first = rows[0]
    arm, source, target, seed = (first.get(k, "") for k in ("arm", "source", "target", "seed"))
    if arm == "ZCP transfer":
        return f"transfer from {source}, seed {seed}"
    if arm == "ZCP multi-task":
        return f"multi-task to {target}, seed {seed}"
    return f"from scratch on {target}, seed {seed}"


# ==================================================================== the view
class TaskPicker(w.VBox):
    """The tasks of the space as tick boxes, for one role (source or target), grouped by space."""

    def __init__(self, model: AccuracyModel, role: str):
        super().__init__(layout=w.Layout(width="50%"))
        self.model, self.role = model, role
        self.add_class(f"mp-acc-{role}s")
        self.count = w.HTML()
        self.groups = w.VBox(layout=w.Layout(max_height="320px", overflow="auto"))
        self.boxes: dict[str, w.Checkbox] = {}
        self._syncing = False
        model.observe(self._rebuild, "space")
        model.observe(self._sync, f"{role}s")
        self.children = [self.count, self.groups]
        self._rebuild()

    def _rebuild(self, change=None) -> None:
        keys = self.model.task_keys()
        self.boxes, sections = {}, []
        by_space: dict[str, list[str]] = {}
        for key in keys:
            by_space.setdefault(key.split("/", 1)[0], []).append(key)
        for space, members in by_space.items():
            boxes = []
            for key in members:
                box = w.Checkbox(description=key, indent=False, tooltip=self.model.task_label(key),
                                 layout=w.Layout(width="auto", margin="0 12px 0 0"),
                                 style={"description_width": "initial"})
                box.add_class(f"mp-acc-{self.role}")
                box.observe(functools.partial(self._on_box, key), "value")
                self.boxes[key] = box
                boxes.append(box)
            row = w.HBox(boxes, layout=w.Layout(flex_flow="row wrap", flex="0 0 auto"))
            header = [w.HTML(f"<i>{html.escape(space)}</i>")] if len(by_space) > 1 else []
            sections.append(w.VBox(header + [row], layout=w.Layout(flex="0 0 auto")))
        self.groups.children = sections
        self._sync()

    def _sync(self, change=None) -> None:
        chosen = set(getattr(self.model, f"{self.role}s"))
        self._syncing = True
        try:
            for key, box in self.boxes.items():
                box.value = key in chosen
        finally:
            self._syncing = False
        what = {"source": "Source tasks</b> (pretrained on, one transfer each)",
                "target": "Target tasks</b> (fine-tuned on k samples, scored on the rest)"}[self.role]
        self.count.value = f"<b>{what}: {len(chosen)} chosen"

    def _on_box(self, key: str, change) -> None:
        if self._syncing:
            return
        if change["new"] != (key in getattr(self.model, f"{self.role}s")):
            self.model.toggle(self.role, key)


class AccuracyPanel(w.VBox):
    """Task distance, source / target tasks, settings, Run, and what transfer gains per pair:
    ``AccuracyPanel(space="nb201")`` or ``AccuracyPanel(model=AccuracyModel(...))``."""

    def __init__(self, space: str = "nb201", options: dict | None = None, *, model: AccuracyModel | None = None,
                 **traits: Any):
        super().__init__(layout=w.Layout(width="100%"))
        self.model = model if model is not None else AccuracyModel(space=space, options=options, **traits)
        m = self.model
        style = {"description_width": "110px"}
        help_text = w.HTML(
            "<h3 style='margin:4px 0'>Accuracy predictors across NAS tasks</h3>A few-shot accuracy predictor on "
            "zero-cost proxies (ZCP) pretrained on a <b>source</b> task and fine-tuned on k samples of a "
            "<b>target</b> task, against predictors trained on the target's k samples alone (the paper's Fig 9). "
            "Pick tasks in the lists or click the heatmap, press Run; each finished unit fills in the results, "
            "and the units are kept, so choices already run come back at once.")
        self.space = w.Dropdown(options=m.spaces(), value=m.space, description="search space", style=style)
        self.space.add_class("mp-acc-space")
        self.space.observe(self._on_space, "value")
        self.proxy_set = w.Dropdown(options=[(v, k) for k, v in PROXY_SETS.items()], value=m.proxy_set,
                                    description="ZCP proxies", style=style, layout=w.Layout(width="400px"))
        self.proxy_set.add_class("mp-acc-proxy-set")
        w.link((m, "proxy_set"), (self.proxy_set, "value"))
        self.samples = w.BoundedIntText(value=m.samples, min=0, max=1_000_000, description="k (samples)",
                                        style=style, layout=w.Layout(width="200px"),
                                        tooltip="few-shot samples of each target task")
        self.repeats = w.BoundedIntText(value=m.repeats, min=1, max=100, description="repeats (seeds)", style=style,
                                        layout=w.Layout(width="200px"))
        self.quick = w.Checkbox(value=m.quick, indent=False, layout=w.Layout(width="auto"),
                                description="quick (fewer epochs: a smoke test, not the paper's settings)")
        for name in ("samples", "repeats", "quick"):
            getattr(self, name).add_class(f"mp-acc-{name}")
            w.link((m, name), (getattr(self, name), "value"))
        self.arm_boxes: dict[str, w.Checkbox] = {}
        for arm in ARMS:
            box = w.Checkbox(value=arm in m.arms, description=arm, indent=False, tooltip=ARM_HELP[arm],
                             layout=w.Layout(width="auto", margin="0 12px 0 0"))
            box.add_class("mp-acc-arm")
            box.observe(functools.partial(self._on_arm, arm), "value")
            self.arm_boxes[arm] = box
        m.observe(self._sync_arms, "arms")
        self.sources = TaskPicker(m, "source")
        self.targets = TaskPicker(m, "target")
        # the task-distance heatmap: a fresh figure when its data comes (the panel is on screen by then)
        self.click_mode = w.ToggleButtons(options=[("click adds/removes a source (row)", "source"),
                                                   ("... a target (column)", "target")],
                                          value="target", style={"button_width": "auto"})
        self.click_mode.add_class("mp-acc-click-mode")
        self.distance_note = w.HTML()
        self.distance_box = w.Box(layout=w.Layout(width="100%"))
        self.distance_figure: go.FigureWidget | None = None
        # run
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.run_button.add_class("mp-acc-run")
        self.run_button.on_click(self._on_run)
        self.cancel_button = w.Button(description="Cancel", button_style="warning", icon="stop", disabled=True)
        self.cancel_button.add_class("mp-acc-cancel")
        self.cancel_button.on_click(lambda _: self.model.cancel())
        self.progress = w.IntProgress(value=0, min=0, max=1, description="units", layout=w.Layout(width="320px"))
        self.status = w.HTML()
        self.status.add_class("mp-acc-status")
        self.errors = w.HTML()
        self.errors.add_class("mp-acc-error")
        # results
        self.metric = w.Dropdown(options=list(METRICS), value=m.metric, description="heatmap shows", style=style,
                                 layout=w.Layout(width="400px"))
        self.metric.add_class("mp-acc-metric")
        w.link((m, "metric"), (self.metric, "value"))
        self.improvement_box = w.Box(layout=w.Layout(width="100%"))
        self.improvement_figure: go.FigureWidget | None = None
        self._shape: tuple | None = None
        self.table = w.HTML()
        self.table.add_class("mp-acc-table")
        self.downloads = w.HTML()
        self.downloads.add_class("mp-acc-downloads")

        m.observe(self._show_distance, ["distance", "distance_error"])
        m.observe(self._reframe, ["sources", "targets"])
        m.observe(self._settle, "status")  # first: the final results are on the page before the status says done
        m.observe(self._refresh, ["status", "completed", "total", "message", "error", "units"])
        m.observe(self._show_results, ["per_target", "metric"])
        self._show_distance()
        self._refresh()
        self._show_results()
        settings = w.VBox([
            w.HBox([self.space, self.proxy_set], layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self.samples, self.repeats, self.quick], layout=w.Layout(flex_flow="row wrap",
                                                                             grid_gap="12px")),
            w.HBox([w.HTML("<b>Arms</b>&nbsp;", layout=w.Layout(width="auto"))] + list(self.arm_boxes.values()),
                   layout=w.Layout(flex_flow="row wrap")),
        ])
        pickers = w.HBox([self.sources, self.targets], layout=w.Layout(width="100%", grid_gap="16px"))
        self.children = [
            help_text, settings, pickers,
            w.VBox([self.click_mode, self.distance_note, self.distance_box], layout=w.Layout(width="100%")),
            self.errors, w.HBox([self.run_button, self.cancel_button, self.progress]), self.status,
            self.metric, self.improvement_box, self.table, self.downloads,
        ]
        self.add_class("mp-accuracy")

    # ---------------------------------------------------------------- input
    def activate(self) -> None:
        """Start loading (the dashboard calls this when its accuracy mode is first shown)."""
        self.model.activate()

    def _on_space(self, change) -> None:
        self._guard("changing the space", setattr, self.model, "space", change["new"])

    def _on_arm(self, arm: str, change) -> None:
        chosen = set(self.model.arms) | {arm} if change["new"] else set(self.model.arms) - {arm}
        if chosen != set(self.model.arms):
            self.model.arms = [a for a in ARMS if a in chosen]

    def _sync_arms(self, change=None) -> None:
        for arm, box in self.arm_boxes.items():
            box.value = arm in self.model.arms

    def _on_run(self, _button) -> None:
        self._guard("Run", self.model.run)

    def _guard(self, what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as error:
            log.exception("%s failed", what)
            self.model.run_error = f"{what}: {explain_error(error)}"

    def _on_click(self, trace, points, state) -> None:
        if not points.xs:
            return
        role = self.click_mode.value
        key = points.ys[0] if role == "source" else points.xs[0]
        self._guard("heatmap click", self.model.toggle, role, key)

    # ---------------------------------------------------------------- output
    def _refresh(self, change=None) -> None:
        m = self.model
        busy = m.status in (RUNNING, CANCELLING)
        self.run_button.disabled = busy or bool(m.input_error)
        self.run_button.tooltip = "fix the choices shown in red first" if m.input_error else (
            f"{m.units} units" if m.units else "")
        self.cancel_button.disabled = m.status != RUNNING
        for widget in (self.space, self.proxy_set, self.samples, self.repeats, self.quick,
                       *self.arm_boxes.values(), *self.sources.boxes.values(), *self.targets.boxes.values()):
            widget.disabled = busy
        self.progress.max = max(m.total, 1)
        self.progress.value = min(m.completed, self.progress.max)
        self.progress.bar_style = {DONE: "success", FAILED: "danger", CANCELLING: "warning"}.get(m.status, "")
        text = m.message or (f"ready: {m.units} units of work" if m.units else "")
        self.status.value = f"<span class='mp-status-{m.status}'>{html.escape(text)}</span>" if text else ""
        self.errors.value = error_box(m.error)

    def _show_distance(self, change=None) -> None:
        m = self.model
        matrix = m.distance
        if matrix is None and m.distance_error:
            self.distance_note.value = f"<span style='color:#b00'>{html.escape(m.distance_error)}</span>"
            self.distance_box.children = []
            self.distance_figure = None
            return
        if matrix is None:
            self.distance_note.value = (f"<i>computing the task distance (Spearman of accuracies) of every pair of "
                                        f"{html.escape(space_label(m.space))} tasks...</i>")
            self.distance_box.children = []
            self.distance_figure = None
            return
        self.distance_note.value = (
            "Spearman rank correlation of two tasks' accuracies over the archs both have"
            + (" (blank: different spaces, no shared archs)" if m.space == ALL else "")
            + f"; <span style='color:{figures.TRAIN_COLOUR}'>blue</span> frames: source tasks, "
            f"<span style='color:{figures.TEST_COLOUR}'>orange</span>: target tasks, stars: each target's "
            "closest chosen source.")
        figure = figure_widget(f"task_distance_{m.space}_accuracy")
        figure.add_class("mp-acc-distance-figure")
        replace_figure(figure, distance_figure(matrix, m.sources, m.targets))
        figure.data[0].on_click(self._on_click)
        self.distance_figure = figure
        self.distance_box.children = [figure]

    def _reframe(self, change=None) -> None:
        matrix, figure = self.model.distance, self.distance_figure
        if matrix is None or figure is None or not figure.data:
            return
        keys = [str(k) for k in matrix.index]
        xs, ys, texts = _star_marks(closest_sources(matrix, self.model.sources, self.model.targets))
        with figure.batch_update():
            figure.layout.shapes = figures.selection_shapes(keys, keys, self.model.sources, self.model.targets)
            stars = figure.data[1]
            stars.x, stars.y, stars.hovertext = xs, ys, texts
        sync_figure_state(figure)

    def _layout_of_run(self) -> tuple | None:
        run = self.model.running
        if not run:
            return None
        return tuple(run["sources"]), tuple(run["targets"]), run["samples"], self.model.metric

    def build_improvement(self) -> go.Figure | None:
        shape = self._layout_of_run()
        if shape is None:
            return None
        sources, targets, samples, metric = shape
        return improvement_figure(self.model.pairs, sources, targets, samples, metric)

    def _show_results(self, change=None) -> None:
        m = self.model
        shape = self._layout_of_run()
        if shape is None:
            self.improvement_box.children = []
            self.improvement_figure = None
            self.table.value = "<i>the results fill in here as units finish</i>"
            self.downloads.value = ""
            return
        needs = METRICS[m.metric]
        missing = [a for a in needs if a and a not in m.running["arms"]]
        fresh = self.build_improvement()
        if missing:
            self.improvement_box.children = [w.HTML(f"<i>the heatmap '{html.escape(m.metric)}' needs the arm(s) "
                                                    f"{html.escape(', '.join(missing))}, which this run has not</i>")]
            self.improvement_figure = None
        elif self.improvement_figure is not None and shape == self._shape:
            # same cells as shown: restyle them in place (one message per finished unit)
            figure, new = self.improvement_figure, fresh.data[0]
            with figure.batch_update():
                heat = figure.data[0]
                heat.z, heat.text, heat.customdata = new.z, new.text, new.customdata
                heat.zmin, heat.zmax = new.zmin, new.zmax
            sync_figure_state(figure)
        else:
            self._new_improvement(fresh)
        self._shape = shape
        self.table.value = self._table_html()
        self._show_downloads()

    def _new_improvement(self, fresh: go.Figure) -> None:
        figure = figure_widget("accuracy_transfer_improvement")
        figure.add_class("mp-acc-improvement-figure")
        replace_figure(figure, fresh)
        self.improvement_figure = figure
        self.improvement_box.children = [figure]

    def _settle(self, change) -> None:
        """At the end of a run, the final heatmap in a fresh widget (as the latency results plot
        does: an edit message lost on a loaded machine must not leave a stale figure)."""
        if change["new"] not in (DONE, CANCELLED, FAILED):
            return
        fresh = self.build_improvement() if self.improvement_figure is not None else None
        if fresh is not None:
            self._new_improvement(fresh)
        self.table.value = self._table_html()  # pending cells: "…" while running, "–" once it ended
        self._show_downloads()

    def _table_html(self) -> str:
        table = self.model.per_target
        if table is None or table.empty:
            return ""
        running = self.model.status in (RUNNING, CANCELLING)
        pending = "…" if running else "–"
        arms = self.model.running.get("arms", ARMS)

        def cell(value, arm: str | None = None) -> str:
            if arm is not None and arm not in arms:
                return "<td style='color:#999'>not run</td>"
            if isinstance(value, str):
                return f"<td>{html.escape(value) or pending}</td>"
            return f"<td style='text-align:right'>{pending if pd.isna(value) else f'{value:.3f}'}</td>"

        arm_of = {"Vec scratch": "Vec scratch", "ZCP scratch": "ZCP scratch",
                  "ZCP transfer (mean over sources)": "ZCP transfer", "best source": "ZCP transfer",
                  "best transfer": "ZCP transfer", "sources ahead of ZCP scratch": "ZCP transfer"}
        arm_of.update({c: "ZCP multi-task" for c in table.columns if str(c).startswith("ZCP multi-task")})
        head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
        body = "".join("<tr>" + f"<th style='text-align:left'>{html.escape(r['target'])}</th>"
                       + "".join(cell(r[c], arm_of.get(c)) for c in table.columns[1:]) + "</tr>"
                       for r in table.to_dict("records"))
        k = self.model.running.get("samples")
        return (f"<div style='overflow:auto'><table class='mp-table'><tr>{head}</tr>{body}</table></div>"
                f"<small>cells: Spearman ρ on the target's unseen archs with k = {k} samples, mean over repeats"
                f"{' (… still running)' if running else ''}</small>")

    def _show_downloads(self) -> None:
        m = self.model
        if m.status in (RUNNING, CANCELLING) or m.trials is None or m.trials.empty:
            self.downloads.value = "<i>downloads appear when the run ends</i>" if m.status in (RUNNING, CANCELLING) \
                else ""
            return
        links = [_download_link(m.trials.to_csv(index=False).encode(), "accuracy_trials.csv", "text/csv",
                                f"trials (CSV, {len(m.trials)} rows)", "mp-acc-download-trials")]
        if m.pairs is not None and len(m.pairs):
            links.append(_download_link(m.pairs.to_csv(index=False).encode(), "accuracy_pairs.csv", "text/csv",
                                        "source x target pairs (CSV)", "mp-acc-download-pairs"))
        self.downloads.value = "Download: " + " · ".join(links)
