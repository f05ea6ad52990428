"""The workbench: every view over one ExperimentModel, laid out for Voila or a notebook.

    from mpwidgets import Dashboard
    Dashboard()                       # nb201, HELP's device split, the default results store
    Dashboard(space="fbnet")

Defaults can also come from the environment (``MPWIDGETS_SPACE``, ``MPWIDGETS_PRESET``; set by
``python -m mpwidgets.serve --space ...``) or from the page address under Voila (``?space=fbnet``).
Below the experiments, the onboarding panel (``mpwidgets.onboarding``) adds the user's own device
from a handful of measurements, in the same search space; its settings are ``onboard_options``
(default ``$MPWIDGETS_ONBOARD_OPTIONS``, else the engine's defaults).

A mode switch at the top swaps the latency workbench for the accuracy mode (``mpwidgets.accuracy``:
accuracy predictors transferred across the 28 NAS tasks, the paper's Fig 9). It loads nothing
until it is first shown; ``Dashboard(mode="accuracy")``, ``?mode=accuracy`` or
``$MPWIDGETS_MODE`` start in it. The search mode (``mpwidgets.search``) finds the most accurate
NB201 arch under a latency budget on a public device or on the device onboarded in the onboarding
panel; it too loads nothing until first shown (``mode="search"``). The fourth, "Your own models"
(``mpwidgets.yourmodels``, ``mode="models"``), predicts your device's latency for the models
``multipredict encode`` encoded, from a few you measured; it offers the tables in
``<results store>/yourmodels`` and is built (importing torch) when first shown.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from urllib.parse import parse_qs

import ipywidgets as w
import traitlets

from multipredict import tasks
from multipredict.experiments import ResultStore, default_store
from multipredict.data.accuracy import SPACES as ACCURACY_SPACES
from multipredict.spaces import LATENCY_SPACES

from .accuracy import AccuracyModel, AccuracyPanel
from .model import ExperimentModel
from .onboarding import OnboardingModel, OnboardingPanel, options_from_environment
from .plugins import load_plugins
from .search import SearchModel, SearchPanel
from .views import (
    BudgetPicker,
    DevicePicker,
    DistanceHeatmap,
    ErrorArea,
    MethodPicker,
    ResultsPlot,
    ResultsTable,
    RunControls,
    SpaceControls,
)

ENV_SPACE, ENV_PRESET, ENV_PLUGINS = "MPWIDGETS_SPACE", "MPWIDGETS_PRESET", "MPWIDGETS_PLUGINS"
ENV_MODE = "MPWIDGETS_MODE"
MODES = {"latency": "Latency workbench", "accuracy": "Accuracy across tasks", "search": "Search under a latency budget",
         "models": "Your own models"}
TITLES = {"latency": "Few-shot latency predictors: pick devices, a method and sample budgets, press Run. "
                     "Results are stored, so a choice already run comes back at once.",
          "accuracy": "Few-shot accuracy predictors across NAS tasks: pick source and target tasks and a budget, "
                      "press Run. Finished units are kept, so a choice already run comes back at once.",
          "search": "Search NB201 for the most accurate arch under a latency budget on a device (a public one, or "
                    "yours once onboarded in the latency workbench's onboarding panel), press Run, click the front.",
          "models": "Your device's latency for your own models: load the table `multipredict encode` wrote, upload "
                    "a few measurements (CSV model,latency_ms), press Predict, download every model's prediction."}
STYLE = """<style>
.mp-title h2 {margin: 4px 0 2px 0}
.mp-table, .mp-closest {border-collapse: collapse; font-size: 12px}
.mp-table td, .mp-table th, .mp-closest td, .mp-closest th {padding: 2px 8px; border-bottom: 1px solid #ddd}
.mp-status-failed {color: #b00} .mp-status-done {color: #070}
</style>"""


def _from_page(name: str) -> str | None:
    values = parse_qs(os.environ.get("QUERY_STRING", "")).get(name)
    return values[0] if values else None


class Dashboard(w.VBox):
    """Search space and devices (lists and heatmap), methods, budgets, Run / Cancel, live plot,
    results table with downloads, an error area, and the onboarding panel; or, by the mode switch,
    the accuracy, search or your-models mode. ``model`` holds the experiment's state, ``onboarding.model``
    the onboarding's, ``accuracy.model`` the accuracy mode's, ``search.model`` the search mode's,
    ``your_models.model`` (once the mode is shown) the your-models mode's."""

    def __init__(self, space: str | None = None, preset: str | None = None, *, plugins=(),
                 store: ResultStore | str | None = "default", model: ExperimentModel | None = None,
                 onboard_options: dict | None = None, mode: str | None = None,
                 accuracy: AccuracyModel | None = None, search: SearchModel | None = None, **traits):
        load_plugins(list(plugins) + [p for p in os.environ.get(ENV_PLUGINS, "").split(",") if p])
        problem = ""
        if model is None:
            space = space or _from_page("space") or os.environ.get(ENV_SPACE) or "nb201"
            preset = preset or _from_page("preset") or os.environ.get(ENV_PRESET) or None
            if space not in LATENCY_SPACES:  # e.g. a typo in the page address: say so, show a working page
                problem, space, preset = (f"unknown search space {space!r}; expected one of "
                                          f"{', '.join(LATENCY_SPACES)}. Showing nb201."), "nb201", None
            elif preset and preset not in tasks.available_device_sets(space):
                available = tasks.available_device_sets(space)
                why = "unknown" if preset not in tasks.DEVICE_SETS else "no data under the current data source for"
                problem, preset = (f"{why} device set {preset!r}; available for {space}: "
                                   f"{', '.join(available) or 'none'}. Showing {tasks.default_device_set(space)}."), None
            store = default_store() if store == "default" else store
            model = ExperimentModel(space=space, preset=preset, store=store, **traits)
            model.run_error = problem
        self.model = model
        self.space = SpaceControls(model)
        self.train_picker = DevicePicker(model, "train")
        self.test_picker = DevicePicker(model, "test")
        self.heatmap = DistanceHeatmap(model)
        self.methods = MethodPicker(model)
        self.budgets = BudgetPicker(model)
        self.errors = ErrorArea(model)
        self.controls = RunControls(model)
        self.plot = ResultsPlot(model)
        self.table = ResultsTable(model, self.plot)
        try:
            options = options_from_environment() if onboard_options is None else dict(onboard_options)
        except Exception as exc:
            model.run_error = str(exc)
            options = {}
        self.onboarding = OnboardingPanel(model=OnboardingModel(space=model.space, options=options))
        traitlets.link((model, "space"), (self.onboarding.model, "space"))  # one search space for the page
        root = getattr(model.store, "root", None)  # each mode's files go beside the latency results
        if accuracy is None:  # loads when first shown: a latency page never pays for the accuracy tables
            accuracy = AccuracyModel(space=model.space if model.space in ACCURACY_SPACES else "nb201", load="lazy",
                                     out_dir=Path(root) / "accuracy" if root is not None else None)
        self.accuracy = AccuracyPanel(model=accuracy)
        if search is None:  # loads when first shown, with the device onboarded below if any (NB201)
            search = SearchModel(load="lazy", onboarding=self.onboarding.model,
                                 out_dir=Path(root) / "search" if root is not None else None)
        self.search = SearchPanel(model=search)
        # the your-models panel is built when first shown (it imports torch), offering the tables found here
        self.models_folder = Path(root) / "yourmodels" if root is not None else None
        self.models = w.VBox(layout=w.Layout(width="100%"))
        self.models.add_class("mp-models")
        mode = mode or _from_page("mode") or os.environ.get(ENV_MODE) or "latency"
        if mode not in MODES:
            model.run_error = "\n".join(filter(None, [model.run_error, f"unknown mode {mode!r}; expected one of "
                                                                         f"{', '.join(MODES)}. Showing latency."]))
            mode = "latency"
        self.header = w.HTML()
        self.mode = w.ToggleButtons(options=[(label, name) for name, label in MODES.items()], value=mode,
                                    style={"button_width": "auto"})
        self.mode.add_class("mp-mode")
        devices = w.VBox([self.train_picker, w.HTML("<hr>"), self.test_picker],
                         layout=w.Layout(width="38%", min_width="320px"))
        heat = w.VBox([self.heatmap], layout=w.Layout(width="62%"))
        self.latency_parts = [
            self.space,
            w.HBox([devices, heat], layout=w.Layout(width="100%")),
            w.HBox([self.methods, self.budgets], layout=w.Layout(width="100%", grid_gap="24px")),
            self.errors, self.controls, self.plot, self.table,
            w.HTML("<hr>"), self.onboarding,
        ]
        super().__init__([self.header, self.mode, *self.latency_parts, self.accuracy, self.search, self.models],
                         layout=w.Layout(width="100%"))
        self.add_class("mp-dashboard")
        self.mode.observe(self._show_mode, "value")
        self._show_mode()

    def _show_mode(self, change=None) -> None:
        """Show one mode, hide the others (the onboarding panel belongs to the latency workbench)."""
        mode = self.mode.value
        self.header.value = (STYLE + "<div class='mp-title'><h2>Multi-Predict workbench</h2>"
                            f"{html.escape(TITLES[mode])}</div>")
        for part in self.latency_parts:
            part.layout.display = None if mode == "latency" else "none"
        self.accuracy.layout.display = None if mode == "accuracy" else "none"
        self.search.layout.display = None if mode == "search" else "none"
        self.models.layout.display = None if mode == "models" else "none"
        if mode == "accuracy":
            self.accuracy.activate()
        if mode == "search":
            self.search.activate()
        if mode == "models" and not self.models.children:
            from .yourmodels import YourModelsPanel

            self.models.children = [YourModelsPanel(folder=self.models_folder)]

    @property
    def your_models(self):
        """The your-models panel (``mpwidgets.yourmodels.YourModelsPanel``), None until first shown."""
        return self.models.children[0] if self.models.children else None
