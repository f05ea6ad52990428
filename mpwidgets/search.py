"""Search view of the workbench: the most accurate NB201 arch under a latency budget on a device,
on the engine's ``multipredict.searchjob`` (what ``multipredict search`` and
``notebooks/nas_search.ipynb`` run).

``SearchModel`` holds the state (task, device, latency budget, trained-arch budget, strategy,
encoding, seed), the device's latency over the space (``latencybudget``: a public device's table,
or the device onboarded in the onboarding panel), checks the budget with the engine's
``check_budget`` (its one line when it cannot run), runs ``searchjob.run_search`` in a background
thread (resumable: a cancelled run continues from its saved state) and writes the engine's files
(``write_search``). ``SearchPanel`` is its view: the choices, a latency slider with the device's
25th / 50th / 75th percentiles as buttons, Run / Cancel, the best-so-far curve (updated after each
batch), then the predicted Pareto scatter: click a point for its arch, predicted and table values,
and downloads.

    from mpwidgets.search import SearchPanel
    SearchPanel()                                                    # in a notebook (JupyterLab, Voila)
    model = SearchModel(device="eyeriss", budget=20, options={"epochs": 20}, load="now")
    model.max_ms = model.percentiles["50"]; model.run(); model.wait()  # in a script or a test
    model.result.summary()                                           # multipredict.searchjob.SearchResult

Nothing imports torch until a run starts.
"""

from __future__ import annotations

import functools
import hashlib
import html
import io
import json
import logging
import threading
import zipfile
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from traitlets import Bool, Dict, Float, HasTraits, Instance, Int, List, Unicode, observe

from multipredict import latencybudget, search, searchjob
from multipredict.messages import user_message
from multipredict.onboard import OnboardResult

from .model import (CANCELLED, CANCELLING, DONE, FAILED, IDLE, RUNNING, ChoiceError, KernelUpdates, explain_error,
                    join_threads, request_cancel, start_loader)
from .views import _download_link, error_box, figure_widget, replace_figure

log = logging.getLogger(__name__)

ONBOARDED = "(onboarded)"  # the device choice that stands for the device of the onboarding panel
DEFAULT_DEVICE = "eyeriss"
PERCENTILES = (25, 50, 75)
TASK_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "ImageNet16-120": "ImageNet16-120"}
SHORTLIST_SHOWN = 10


def public_devices() -> list[str]:
    """NB201 devices measured on the whole space (their latency tables)."""
    from multipredict.data import help

    return list(help.devices("nb201"))


class SearchModel(HasTraits):
    """State of the search view. Set the choices; ``latency`` (the device's estimate over NB201)
    loads when the device changes, ``error`` says what cannot run (the engine's words); ``run()``
    starts the search in a thread and ``status``, ``trained``, ``curve`` and finally ``result`` /
    ``files`` follow it. ``select(arch_id)`` fills ``details`` (a point clicked on the front)."""

    task = Unicode("cifar10", help="an NB201 dataset of multipredict.search.DATASETS")
    device = Unicode(DEFAULT_DEVICE, help=f"a public NB201 device, or {ONBOARDED!r}: the onboarding panel's device")
    max_ms = Float(0.0, help="the latency budget in ms on the device (0: the device's median, once loaded)")
    level = Float(latencybudget.DEFAULT_LEVEL, help="conformal level of the margin for an onboarded device")
    margin = Bool(True, help="an onboarded device: count archs by prediction x the margin (False: by the "
                             "prediction alone, then check the shortlist; `search --no-margin`)")
    budget = Int(100, help="archs the search trains")
    strategy = Unicode("predictor", help="one of multipredict.search.STRATEGIES")
    encoding = Unicode("zcp", help="the predictor's encoding, one of multipredict.search.ENCODINGS")
    seed = Int(0)
    options = Dict(help="AccuracyOptions overrides (epochs, width, ...); {} for the paper's")
    onboarded = Instance(OnboardResult, allow_none=True, help="the onboarding panel's result (NB201 only)")

    # ---- derived ----
    latency = Instance(latencybudget.LatencyEstimate, allow_none=True, help="the device's latency of every arch")
    latency_error = Unicode("", help="why the device's latency is not available, in words")
    latency_range = List(help="[fastest, slowest] arch on the device (onboarded: times the margin), ms")
    percentiles = Dict(help="the device's 25th / 50th / 75th latency percentiles (keys '25', '50', '75'), ms")
    counted = Int(0, help="archs counted under the budget (0: the choices cannot run)")
    input_error = Unicode("", help="why the current choices cannot run, the engine's one line")
    run_error = Unicode("")
    error = Unicode("")

    # ---- the run ----
    status = Unicode(IDLE)
    message = Unicode("")
    trained = Int(0)
    curve = Instance(pd.DataFrame, allow_none=True, help="search.best_so_far of the archs trained so far")
    result = Instance(searchjob.SearchResult, allow_none=True)
    folder = Unicode("", help="where the finished run's files are (write_search)")
    files = List(Unicode(), help="the files write_search wrote there")
    selected = Int(-1, help="the arch shown in details (-1: none)")
    details = Dict(help="SearchResult.details of the selected arch")

    def __init__(self, *, onboarding=None, out_dir: str | Path | None = None, load: str = "background",
                 **traits: Any):
        """``onboarding``: an ``OnboardingModel`` whose NB201 result is offered as a device;
        ``out_dir``: where runs are written (default ``<results folder>/search``); ``load``:
        ``background`` (a thread), ``now``, or ``lazy`` (at ``activate()``, as the dashboard does)."""
        self._updates = KernelUpdates(what="search")
        self._thread: threading.Thread | None = None
        self._loader: threading.Thread | None = None
        self._cancel: threading.Event | None = None
        self._run = 0
        self._token = 0
        self._active = False
        self._building = True
        self._load_mode = load
        self._keep_max_ms = bool(traits.get("max_ms"))
        if out_dir is None:
            from multipredict.experiments.store import default_root

            out_dir = default_root() / "search"
        self.out_dir = Path(out_dir)
        super().__init__(**traits)
        self._onboarding = onboarding
        if onboarding is not None:
            onboarding.observe(self._take_onboarded, "result")
            self._take_onboarded()
        self._building = False
        if load != "lazy":
            self.activate()

    # ---------------------------------------------------------------- choices on offer
    def devices(self) -> list[tuple[str, str]]:
        """(label, value) of the devices on offer: the public ones, and the onboarded one if any."""
        choices = [(d, d) for d in public_devices()]
        if self.onboarded is not None:
            choices.insert(0, (f"{self.onboarded.device} (onboarded in the onboarding panel)", ONBOARDED))
        return choices

    def _take_onboarded(self, change=None) -> None:
        result = self._onboarding.result
        self.onboarded = result if result is not None and result.space == "nb201" else None

    @observe("onboarded")
    def _on_onboarded(self, change: dict) -> None:
        if self.device == ONBOARDED and self._active:
            if self.onboarded is None:  # onboarding was rerun or reset: back to a public device
                self.device = DEFAULT_DEVICE
            else:
                self._start_latency()

    # ---------------------------------------------------------------- the device's latency
    def activate(self) -> None:
        """Load the device's latency and check the choices; once (the dashboard calls it when the
        search view is first shown)."""
        if self._active:
            return
        self._active = True
        self._start_latency()

    def _start_latency(self) -> None:
        self._token += 1
        token, device, onboarded = self._token, self.device, self.onboarded
        with self.hold_trait_notifications():
            self.latency, self.latency_error, self.counted = None, "", 0

        def compute() -> latencybudget.LatencyEstimate:
            if device != ONBOARDED:
                return searchjob.latency_for(device=device)
            if onboarded is None:
                raise ChoiceError("no device onboarded yet: onboard one (search space nb201) in the onboarding "
                                  "panel of the latency workbench, or pick a public device")
            return latencybudget.from_onboarding(onboarded)

        # an onboarded device is at hand: no thread
        self._loader = start_loader(
            compute, lambda estimate, problem: self._updates.post(functools.partial(self._loaded, token, estimate,
                                                                                    problem)),
            now=self._load_mode == "now" or device == ONBOARDED, name="mpwidgets-search-latency",
            expected=(ChoiceError,))

    def _loaded(self, token: int, estimate: latencybudget.LatencyEstimate | None, problem: str) -> None:
        if token != self._token:  # another device was chosen since
            return
        with self.hold_trait_notifications():
            self.latency, self.latency_error = estimate, problem
            if estimate is not None:
                self._set_range()
                self.percentiles = {str(p): v for p, v in estimate.percentiles(PERCENTILES).items()}
                if not self._keep_max_ms:  # a new device: its median, not the last device's milliseconds
                    self.max_ms = self.percentiles["50"]
                self._keep_max_ms = False
            else:
                self.latency_range, self.percentiles = [], {}
            self.check()

    def _set_range(self) -> None:
        # from the fastest arch to the slowest bound the budget is compared with (an onboarded
        # device's predictions times the conformal margin): the slider can always reach every arch
        bound = self.latency.bounded_ms(None)
        self.latency_range = [float(np.nanmin(bound)),
                              float(max(np.nanmax(bound), np.nanmax(self.latency.bounded_ms(self.counting_level))))]

    def wait_for_latency(self, timeout: float | None = None) -> bool:
        return join_threads([self._loader], timeout, self._updates.apply)

    # ---------------------------------------------------------------- checking
    def check(self) -> np.ndarray | None:
        """The archs counted under the budget (the engine's ``check_budget``), or None and
        ``input_error`` says why."""
        mask, problem = None, ""
        try:
            if self.latency_error:
                raise ChoiceError(self.latency_error)
            if self.task not in search.DATASETS:
                raise ChoiceError(f"task {self.task!r}: expected one of {', '.join(search.DATASETS)}")
            if self.budget < 1:
                raise ChoiceError(f"budget={self.budget}: the search must train at least one arch")
            if self.latency is not None:
                mask = self.latency.check_budget(float(self.max_ms), self.counting_level, at_least=int(self.budget))
        except Exception as exc:  # the engine's MultipredictError or a surprise: shown, never raised
            if user_message(exc) is None and not isinstance(exc, ChoiceError):
                log.exception("checking the search choices failed")
            problem = explain_error(exc)
        with self.hold_trait_notifications():
            self.input_error = problem
            self.counted = int(mask.sum()) if mask is not None else 0
        return mask

    @property
    def counting_level(self) -> float | None:
        """The conformal level archs are counted at: ``level``, or None without the margin."""
        return float(self.level) if self.margin else None

    @observe("task", "max_ms", "level", "margin", "budget", "strategy", "encoding", "seed", "options")
    def _on_choice(self, change: dict) -> None:
        if self._building:
            return
        if change["name"] in ("level", "margin") and self.latency is not None:
            self._set_range()
        if self.status not in (RUNNING, CANCELLING):
            self.run_error = ""
        if self._active:
            self.check()

    @observe("device")
    def _on_device(self, change: dict) -> None:
        if self._building:
            return
        if self.status not in (RUNNING, CANCELLING):
            self.run_error = ""
        if self._active:
            self._start_latency()

    @observe("input_error", "run_error")
    def _on_error(self, change: dict) -> None:
        self.error = "\n".join(e for e in (self.input_error, self.run_error) if e)

    # ---------------------------------------------------------------- the run
    def settings(self) -> dict[str, Any]:
        """The run's settings, as ``run_search`` takes them (besides the latency)."""
        return {"task": self.task, "strategy": self.strategy, "encoding": self.encoding, "budget": int(self.budget),
                "seed": int(self.seed), "max_ms": float(self.max_ms), "level": self.counting_level}

    def run_folder(self) -> Path:
        """The folder of the current choices' run (its state file makes a rerun continue)."""
        settings = dict(self.settings(), options=dict(self.options))
        device = self.latency.device if self.latency is not None else self.device
        if self.latency is not None and self.latency.source != "table":  # another onboarding: another search
            settings["latency"] = hashlib.sha1(self.latency.predicted_ms.tobytes()).hexdigest()
        key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
        name = f"{self.task}_{device}_{self.max_ms:.4g}ms_{self.budget}_{self.strategy}_{key}"
        return self.out_dir / "".join(c if c.isalnum() or c in "._-" else "_" for c in name)

    def run(self) -> bool:
        """Start the search in the background; False (``error`` says why) when it cannot start."""
        if self.status in (RUNNING, CANCELLING):
            self.run_error = "a search is already running: wait for it or press Cancel first"
            return False
        self.activate()
        if self.latency is None:
            self.run_error = "" if self.latency_error else "the device's latency is still loading: press Run again " \
                                                           "in a moment"
            return False
        if self.check() is None:
            return False
        try:
            from multipredict.predictors.tasktransfer import AccuracyOptions

            options = AccuracyOptions(**self.options) if self.options else None
        except Exception as exc:
            self.run_error = f"accuracy predictor options: {explain_error(exc)}"
            return False
        self._run += 1
        self._cancel = threading.Event()
        folder = self.run_folder()
        with self.hold_trait_notifications():
            self.run_error = ""
            self.result, self.files, self.folder, self.curve = None, [], "", None
            self.selected, self.details, self.trained = -1, {}, 0
            self.status = RUNNING
            self.message = (f"training {min(10, self.budget)} random archs under {self.max_ms:.4g} ms, then the "
                            f"predictor picks the rest" if self.strategy == "predictor"
                            else f"searching ({self.strategy})")
        args = (self._run, self.settings(), self.latency, options, folder, self._cancel)
        self._thread = threading.Thread(target=self._work, args=args, daemon=True, name="mpwidgets-search")
        self._thread.start()
        return True

    def cancel(self) -> None:
        """Stop after the batch being trained (the archs trained so far are kept: a rerun continues)."""
        request_cancel(self, self._cancel, "cancelling: the batch being trained finishes first")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends and its result is in the model (scripts, tests)."""
        return join_threads([self._thread], timeout, self._updates.apply)

    def _work(self, run: int, settings: dict, latency, options, folder: Path, cancel: threading.Event) -> None:
        from multipredict.threads import torch_threads

        task = settings["task"]

        def on_batch(trained: list[int]) -> None:
            self._updates.post(functools.partial(self._progress, run, search.best_so_far(task, trained)))
            if cancel.is_set():
                raise _Cancelled(len(trained))

        try:
            with torch_threads(1):  # small MLPs: one thread is the fastest on a shared machine
                result = searchjob.run_search(task, strategy=settings["strategy"], encoding=settings["encoding"],
                                              budget=settings["budget"], seed=settings["seed"], latency=latency,
                                              max_ms=settings["max_ms"], level=settings["level"],
                                              state_path=folder / "search_state.json", on_batch=on_batch,
                                              options=options)
                files = searchjob.write_search(result, folder)
        except _Cancelled as stop:
            self._updates.post(functools.partial(self._cancelled, run, stop.trained, folder))
            return
        except Exception as error:  # shown in the panel, never a traceback and never a dead kernel
            if user_message(error) is None:
                log.exception("search failed")
            self._updates.post(functools.partial(self._fail, run, error))
            return
        self._updates.post(functools.partial(self._finish, run, result, str(folder), files))

    def _progress(self, run: int, curve: pd.DataFrame) -> None:
        if run != self._run:
            return
        with self.hold_trait_notifications():
            self.curve, self.trained = curve, len(curve)
            if self.status == RUNNING:
                self.message = (f"{len(curve)} of {self.budget} archs trained; the arch it would return: test "
                                f"accuracy {curve['returned_test'].iloc[-1]:.2f}%")

    def _cancelled(self, run: int, trained: int, folder: Path) -> None:
        if run != self._run:
            return
        with self.hold_trait_notifications():
            self.status = CANCELLED
            self.message = (f"cancelled after {trained} of {self.budget} archs (kept in {folder.name}: Run with the "
                            "same choices continues)")

    def _fail(self, run: int, error: Exception) -> None:
        if run != self._run:
            return
        with self.hold_trait_notifications():
            self.run_error = f"the search stopped: {explain_error(error)}"
            self.status = FAILED
            self.message = f"failed after {self.trained} archs"

    def _finish(self, run: int, result: searchjob.SearchResult, folder: str, files: list[str]) -> None:
        if run != self._run:
            return
        t = result.trajectory
        with self.hold_trait_notifications():
            self.curve = t[["n_trained", "returned_arch", "returned_test"]].reset_index(drop=True)
            self.trained = len(t)
            self.result, self.folder, self.files = result, folder, list(files)
            self.status = DONE
            self.message = (f"done: {len(t)} archs trained; chosen {result.summary()['arch']} (test accuracy "
                            f"{t['returned_test'].iloc[-1]:.2f}%)")
            self.select(result.chosen)

    # ---------------------------------------------------------------- after the run
    def select(self, arch_id: int) -> None:
        """Show one arch of the finished search in ``details`` (the chosen one after a run)."""
        if self.result is None:
            raise ChoiceError("no finished search yet: press Run first")
        if not 0 <= int(arch_id) < len(self.result.predicted_accuracy):
            raise ChoiceError(f"arch id {arch_id}: expected 0..{len(self.result.predicted_accuracy) - 1}")
        with self.hold_trait_notifications():
            self.selected = int(arch_id)
            self.details = self.result.details(arch_id)

    def archive(self) -> bytes:
        """The finished run's files (``write_search``'s folder) as a zip."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in self.files:
                archive.write(Path(self.folder) / name, name)
        return buffer.getvalue()


class _Cancelled(Exception):
    def __init__(self, trained: int):
        super().__init__(f"cancelled after {trained} archs")
        self.trained = trained


# ==================================================================== the view
def _curve_figure(task: str, curve: pd.DataFrame | None) -> go.Figure:
    """The best-so-far curve while a search runs (the engine's `searchjob.figures` draws it at the end)."""
    x = curve["n_trained"].tolist() if curve is not None else []
    y = curve["returned_test"].tolist() if curve is not None else []
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines+markers", name="returned arch"))
    fig.update_layout(title=f"NB201 {task}: test accuracy of the arch the search would return (running)",
                      xaxis_title="trained archs", yaxis_title="test accuracy (%)", height=360)
    return fig


def _html(css: str) -> w.HTML:
    widget = w.HTML()
    widget.add_class(css)
    return widget


def _table_html(frame: pd.DataFrame, css: str) -> str:
    head = "".join(f"<th style='text-align:left'>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table class='mp-table {css}'><tr>{head}</tr>{rows}</table>"


def _cell(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else f"{value:.4g}"
    return str(value)


class SearchPanel(w.VBox):
    """Task, device, latency budget, trained-arch budget, strategy and encoding; Run / Cancel; the
    best-so-far curve and the predicted Pareto front with a clickable point per arch:
    ``SearchPanel()`` or ``SearchPanel(model=SearchModel(...))``."""

    def __init__(self, *, model: SearchModel | None = None, **traits: Any):
        super().__init__(layout=w.Layout(width="100%"))
        self.model = model if model is not None else SearchModel(**traits)
        m = self.model
        style = {"description_width": "140px"}
        help_text = w.HTML(
            "<h3 style='margin:4px 0'>Search under a latency budget</h3>The most accurate NB201 arch whose latency "
            "on a device fits a budget: a public device (its measured latency of every arch) or the device you "
            "onboarded in the onboarding panel (its predicted latency, with a conformal margin). The search trains "
            "archs (reads their accuracy from the benchmark), a predictor on zero-cost proxies picks the next ones; "
            "the curve shows the test accuracy of the arch it would return. Click a point of the front for its arch.")
        self.task = w.Dropdown(options=[(TASK_LABELS.get(t, t), t) for t in search.DATASETS], value=m.task,
                               description="task", style=style)
        self.device = w.Dropdown(options=m.devices(), value=m.device if m.device in dict(m.devices()).values()
                                 else None, description="device", style=style)
        self.strategy = w.Dropdown(options=list(search.STRATEGIES), value=m.strategy, description="strategy",
                                   style=style)
        self.encoding = w.Dropdown(options=list(search.ENCODINGS), value=m.encoding, description="encoding",
                                   style=style, tooltip="the accuracy predictor's encoding (predictor strategy)")
        self.budget = w.BoundedIntText(value=m.budget, min=0, max=latencybudget.SPACE_SIZE,
                                       description="archs to train", style=style, layout=w.Layout(width="260px"))
        self.seed = w.BoundedIntText(value=m.seed, min=0, max=2**31 - 1, description="seed", style=style,
                                     layout=w.Layout(width="260px"))
        for name in ("task", "device", "strategy", "encoding", "budget", "seed"):
            getattr(self, name).add_class(f"mp-search-{name}")
        for name in ("task", "strategy", "encoding", "budget", "seed"):
            w.link((m, name), (getattr(self, name), "value"))
        self.device.observe(self._on_device, "value")
        self.max_ms = w.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.001, description="max latency (ms)",
                                    readout_format=".4g", continuous_update=False, style=style,
                                    layout=w.Layout(width="560px"))
        self.max_ms.add_class("mp-search-max-ms")
        self.max_ms.observe(self._on_slider, "value")
        self.level = w.BoundedFloatText(value=m.level, min=0.5, max=0.99, step=0.01, description="conformal level",
                                        style=style, layout=w.Layout(width="230px", display="none"),
                                        tooltip="an onboarded device: an unmeasured arch counts under the budget when "
                                                "its prediction times the margin at this level fits")
        self.level.add_class("mp-search-level")
        w.link((m, "level"), (self.level, "value"))
        self.margin = w.Checkbox(value=m.margin, description="margin", indent=False, layout=w.Layout(
            width="auto", display="none"), tooltip="off: count archs by their predicted latency alone, then measure "
                                                   "the shortlist in order (closer to the best arch, ~2 more "
                                                   "measurements)")
        self.margin.add_class("mp-search-margin")
        w.link((m, "margin"), (self.margin, "value"))
        self.percentile_buttons = {}
        for p in PERCENTILES:
            button = w.Button(description=f"{p}th", layout=w.Layout(width="auto"),
                              tooltip=f"set the budget to the device's {p}th latency percentile")
            button.add_class("mp-search-percentile")
            button.add_class(f"mp-search-p{p}")
            button.on_click(functools.partial(self._on_percentile, str(p)))
            self.percentile_buttons[str(p)] = button
        self.budget_note = _html("mp-search-budget-note")
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.run_button.add_class("mp-search-run")
        self.run_button.on_click(self._on_run)
        self.cancel_button = w.Button(description="Cancel", button_style="warning", icon="stop", disabled=True)
        self.cancel_button.add_class("mp-search-cancel")
        self.cancel_button.on_click(lambda _: self.model.cancel())
        self.progress = w.IntProgress(value=0, min=0, max=1, description="archs", layout=w.Layout(width="320px"))
        self.status = _html("mp-search-status")
        self.errors = _html("mp-search-error")
        self.curve_box = w.Box(layout=w.Layout(width="100%"))
        self.curve_figure: go.FigureWidget | None = None
        self.front_box = w.Box(layout=w.Layout(width="100%"))
        self.front_figure: go.FigureWidget | None = None
        self.details = _html("mp-search-details")
        self.summary = _html("mp-search-summary")
        self.shortlist = _html("mp-search-shortlist")
        self.downloads = _html("mp-search-downloads")
        self._syncing = False

        m.observe(self._sync_devices, ["onboarded", "device"])
        m.observe(self._sync_slider, ["latency_range", "percentiles", "max_ms"])
        m.observe(self._show_result, "result")  # first: the results are on the page before the status says done
        m.observe(self._refresh, ["status", "trained", "message", "error", "counted", "latency", "latency_error",
                                  "strategy", "level", "margin"])
        m.observe(self._show_curve, "curve")
        m.observe(self._show_details, "details")
        self._sync_devices()
        self._sync_slider()
        self._refresh()
        self._show_result()
        self.children = [
            help_text,
            w.HBox([w.VBox([self.task, self.device, self.strategy]), w.VBox([self.encoding, self.budget, self.seed])],
                   layout=w.Layout(flex_flow="row wrap", grid_gap="12px")),
            w.HBox([self.max_ms, w.HTML("&nbsp;percentiles:&nbsp;"), *self.percentile_buttons.values(), self.margin,
                    self.level],
                   layout=w.Layout(flex_flow="row wrap", align_items="center")),
            self.budget_note, self.errors, w.HBox([self.run_button, self.cancel_button, self.progress]), self.status,
            self.curve_box, self.front_box, w.HBox([self.details, self.summary], layout=w.Layout(
                width="100%", flex_flow="row wrap", grid_gap="24px")),
            self.shortlist, self.downloads,
        ]
        self.add_class("mp-search")

    # ---------------------------------------------------------------- input
    def activate(self) -> None:
        self.model.activate()

    def _guard(self, what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as error:
            log.exception("%s failed", what)
            self.model.run_error = f"{what}: {explain_error(error)}"

    def _on_device(self, change) -> None:
        if not self._syncing and change["new"] is not None:
            self._guard("choosing the device", setattr, self.model, "device", change["new"])

    def _on_slider(self, change) -> None:
        if not self._syncing:
            self._guard("the latency budget", setattr, self.model, "max_ms", float(change["new"]))

    def _on_percentile(self, p: str, _button) -> None:
        if p in self.model.percentiles:
            self._guard("the latency budget", setattr, self.model, "max_ms", self.model.percentiles[p])

    def _on_run(self, _button) -> None:
        self._guard("Run", self.model.run)

    def _on_click(self, trace, points, state) -> None:
        if not points.point_inds:
            return
        arch = trace.customdata[points.point_inds[0]]
        self._guard("the clicked point", self.model.select, int(arch))

    # ---------------------------------------------------------------- output
    def _sync_devices(self, change=None) -> None:
        self._syncing = True
        try:
            options = self.model.devices()
            if list(self.device.options) != options:
                self.device.options = options
            values = [v for _, v in options]
            self.device.value = self.model.device if self.model.device in values else None
        finally:
            self._syncing = False

    def _sync_slider(self, change=None) -> None:
        m = self.model
        self._syncing = True
        try:
            if m.latency_range:
                lo, hi = m.latency_range
                # widen first: a new range that excludes the old value would clamp it
                self.max_ms.max = max(self.max_ms.max, hi)
                self.max_ms.min = min(self.max_ms.min, lo)
                self.max_ms.step = max((hi - lo) / 1000, 1e-6)
                self.max_ms.value = m.max_ms
                self.max_ms.min, self.max_ms.max = lo, hi
                self.max_ms.value = m.max_ms
            for p, button in self.percentile_buttons.items():
                value = m.percentiles.get(p)
                button.description = f"{p}th: {value:.4g} ms" if value is not None else f"{p}th"
                button.button_style = "info" if value is not None and np.isclose(value, m.max_ms) else ""
                button.disabled = value is None or m.status in (RUNNING, CANCELLING)
            self.max_ms.disabled = m.latency is None or m.status in (RUNNING, CANCELLING)
        finally:
            self._syncing = False

    def _refresh(self, change=None) -> None:
        m = self.model
        busy = m.status in (RUNNING, CANCELLING)
        loading = m.latency is None and not m.latency_error and m._active
        self.run_button.disabled = busy or bool(m.input_error) or m.latency is None
        self.run_button.tooltip = "fix the choices shown in red first" if m.input_error else (
            "loading the device's latency..." if loading else "")
        self.cancel_button.disabled = m.status != RUNNING
        for widget in (self.task, self.device, self.strategy, self.budget, self.seed):
            widget.disabled = busy
        for p, button in self.percentile_buttons.items():
            button.disabled = busy or p not in m.percentiles
        self.encoding.disabled = busy or m.strategy != "predictor"
        onboarded = m.latency is not None and m.latency.source != "table"
        self.margin.disabled = busy
        self.level.disabled = busy or not m.margin
        self.margin.layout.display = self.level.layout.display = None if onboarded else "none"
        self.max_ms.disabled = busy or m.latency is None
        self.progress.max = max(m.budget, 1)
        self.progress.value = min(m.trained, self.progress.max)
        self.progress.bar_style = {DONE: "success", FAILED: "danger", CANCELLING: "warning"}.get(m.status, "")
        self.status.value = (f"<span class='mp-status-{m.status}'>{html.escape(m.message)}</span>"
                             if m.message else "")
        if loading:
            self.budget_note.value = f"<i>loading the latency of every arch on {html.escape(m.device)}...</i>"
        elif m.latency is not None and m.counted:
            how = ("measured" if m.latency.source == "table" else
                   (f"predicted x the {m.level:.0%} conformal margin {m.latency.factor(m.level):.3f}" if m.margin
                    else "predicted, no margin: measure the shortlist before you trust the chosen arch")
                   + f"; the {m.latency.n_measurements} measured archs by their measurement")
            self.budget_note.value = (
                f"<span class='mp-search-counted'>{m.counted:,} of {latencybudget.SPACE_SIZE:,} archs counted under "
                f"{m.max_ms:.4g} ms on {html.escape(m.latency.device)}</span> "
                f"<small>(latency {html.escape(how)})</small>")
        else:
            self.budget_note.value = ""
        self.errors.value = error_box(m.error)

    def _show_curve(self, change=None) -> None:
        m = self.model
        if m.curve is None:
            self.curve_box.children = []
            self.curve_figure = None
            return
        if m.result is not None:
            return  # the final curve comes with the result (_show_result)
        fresh = _curve_figure(m.task, m.curve)
        if self.curve_figure is None:
            self.curve_figure = self._figure("search_curve", "mp-search-curve", fresh)
            self.curve_box.children = [self.curve_figure]
        else:
            replace_figure(self.curve_figure, fresh)

    def _figure(self, filename: str, css: str, figure: go.Figure) -> go.FigureWidget:
        widget = figure_widget(filename)
        widget.add_class(css)
        replace_figure(widget, figure)
        return widget

    def _show_result(self, change=None) -> None:
        """At the end of a run, its figures in fresh widgets (a lost edit message must not leave a
        stale plot), the chosen arch's summary, the shortlist and the downloads."""
        r = self.model.result
        if r is None:
            self.front_box.children = []
            self.front_figure = None
            self.summary.value = self.shortlist.value = self.downloads.value = self.details.value = ""
            if self.model.curve is None:
                self.curve_box.children = []
                self.curve_figure = None
            return
        parts = searchjob.figures(r)
        self.curve_figure = self._figure("search_curve", "mp-search-curve", parts[0])
        self.curve_box.children = [self.curve_figure]
        if len(parts) > 1:
            self.front_figure = self._figure("search_pareto", "mp-search-front", parts[1])
            for trace in self.front_figure.data:
                trace.on_click(self._on_click)
            self.front_box.children = [self.front_figure]
        summary = r.summary()
        summary.pop("zcp_proxies", None)
        self.summary.value = ("<b>The search's choice</b>" + _table_html(
            pd.DataFrame({"": list(summary), "value": [_cell(v) for v in summary.values()]}), "mp-search-chosen"))
        if r.latency is not None and r.latency.source != "table":
            table = r.shortlist()
            self.shortlist.value = (
                f"<b>Measure these on {html.escape(r.latency.device)} in this order</b> and keep the first one truly "
                f"under {r.max_ms:.4g} ms (each was counted under it from its predicted latency)"
                + _table_html(table.head(SHORTLIST_SHOWN), "mp-search-shortlist-table"))
        else:
            self.shortlist.value = ""
        self._show_downloads()

    def _show_downloads(self) -> None:
        """Set once per run: the zip carries the chosen arch's ONNX (a few MB), not resent on each click."""
        m = self.model
        r = m.result
        if r is None:
            self.downloads.value = ""
            return
        name = Path(m.folder).name
        links = [_download_link(m.archive(), f"{name}.zip", "application/zip",
                                f"the search's files (zip: {', '.join(m.files)})", "mp-search-download-zip")]
        if r.latency is not None:
            links.append(_download_link(r.front().to_csv(index=False).encode(), f"{name}_pareto.csv", "text/csv",
                                        "predicted Pareto front (CSV)", "mp-search-download-front"))
        self.downloads.value = ("Download: " + " · ".join(links)
                                + f"<br><small>written to {html.escape(m.folder)}</small>")

    def _show_details(self, change=None) -> None:
        d = self.model.details
        if not d:
            self.details.value = ""
            return
        role = "the search's choice" if d["chosen"] else ("trained" if d["trained"] else "not trained")
        rows = [("arch id", str(d["arch_id"])), ("arch", d["arch"]),
                ("predicted validation accuracy", f"{d['predicted_val']:.2f}%"),
                ("table validation accuracy", f"{d['table_val']:.2f}%"),
                ("table test accuracy", f"{d['table_test']:.2f}%")]
        if "latency_ms" in d:
            rows.append((f"latency on {d['device']}", f"{d['latency_ms']:.4g} ms ({d['latency_from']})"))
        if "counted_under_budget" in d:
            rows.append(("counted under the budget", "yes" if d["counted_under_budget"] else "no"))
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                       for k, v in rows)
        self.details.value = (f"<b>Arch {d['arch_id']}</b> ({html.escape(role)}; click another point of the front)"
                              f"<table class='mp-table mp-search-arch'>{body}</table>"
                              "<small>table: the benchmark's accuracy (what training it would give)</small><br>"
                              + _download_link(json.dumps(d, indent=1).encode(), f"nb201_arch_{d['arch_id']}.json",
                                               "application/json", f"Download arch {d['arch_id']} (JSON)",
                                               "mp-search-download-arch"))
