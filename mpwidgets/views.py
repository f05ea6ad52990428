"""Widgets over an ``ExperimentModel``: each view sets model traits on user input and redraws when
the model changes. Views hold no state of their own beyond what they display.

Handlers that run on user input go through ``_guarded``: whatever goes wrong lands in the model's
error area as a sentence, never as a traceback in the page or an exception in the kernel.
"""

from __future__ import annotations

import base64
import functools
import html
import logging
from collections.abc import Callable
from copy import deepcopy

import ipywidgets as w
import plotly.graph_objects as go

from multipredict.spaces import LATENCY_SPACES

from . import figures
from .model import (
    CANCELLED,
    CANCELLING,
    DONE,
    FAILED,
    FINE_TUNE,
    PREDICTORS,
    PROTOCOLS,
    RUNNING,
    ExperimentModel,
    explain_error,
    parse_budgets,
    parse_method_budgets,
)

log = logging.getLogger(__name__)
ROLE_LABELS = {"train": "Training devices", "test": "Test devices"}


def _guarded(model: ExperimentModel, what: str) -> Callable:
    """Wrap a widget callback so that an exception is explained in the error area."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                log.exception("%s failed", what)
                model.run_error = f"{what}: {explain_error(exc)}"
        return wrapper

    return decorate


def figure_widget(filename: str) -> go.FigureWidget:
    """An empty FigureWidget whose camera button saves ``filename``.png and that offers no upload."""
    widget = go.FigureWidget()
    widget._config = {"displaylogo": False, "showSendToCloud": False,
                      "toImageButtonOptions": {"filename": filename, "scale": 2}}
    return widget


def replace_figure(widget: go.FigureWidget, figure: go.Figure) -> None:
    """Show ``figure`` in an existing FigureWidget (a new widget would resend plotly.js)."""
    stale = {key: None for key in widget.layout.to_plotly_json() if key not in figure.layout.to_plotly_json()}
    if stale:  # e.g. the axes of a subplot that is gone: a plain layout swap would keep them on screen
        widget.layout.update(stale)
    widget.data = []
    widget.layout = figure.layout
    widget.add_traces(list(figure.data))
    sync_figure_state(widget)


def sync_figure_state(widget: go.FigureWidget) -> None:
    """Keep the figure's synced state current, not only its edit messages.

    plotly's FigureWidget sends edits as messages that only a browser-side model already alive
    applies; its synced ``_widget_data`` / ``_widget_layout`` are refreshed only when the widget
    itself is displayed. A figure nested in a Box and edited before the page connects (Voila runs
    the notebook first, a heatmap loads in a thread) would otherwise render its first state.
    """
    widget._widget_layout = deepcopy(widget._layout_obj._props)
    widget._widget_data = deepcopy(widget._data)


class DevicePicker(w.VBox):
    """Devices of one role (train or test), grouped by kind, with a search box and a tick box that
    selects a whole kind. The test picker lists each test device's closest training device."""

    def __init__(self, model: ExperimentModel, role: str):
        super().__init__(layout=w.Layout(width="100%"))
        self.model, self.role = model, role
        self.add_class(f"mp-devices-{role}")
        self.search = w.Text(placeholder="search devices", description="", layout=w.Layout(width="98%"))
        self.search.add_class(f"mp-search-{role}")
        self.search.observe(self._filter, "value")
        self.count = w.HTML()
        self.groups = w.VBox(layout=w.Layout(max_height="360px", overflow="auto"))
        self.closest = w.HTML()
        self.boxes: dict[str, w.Checkbox] = {}
        self.kind_boxes: dict[str, w.Checkbox] = {}
        self._syncing = False
        model.observe(self._rebuild, "space")
        model.observe(self._sync, f"{role}_devices")
        if role == "test":
            model.observe(self._show_closest, "closest")
            self._show_closest()
        self._rebuild()
        self.children = [self.count, self.search, self.groups] + ([self.closest] if role == "test" else [])

    def _rebuild(self, change=None) -> None:
        kinds = self.model.device_groups()
        descriptions = self.model.device_descriptions()
        self.boxes, self.kind_boxes, sections = {}, {}, []
        for kind, names in kinds.items():
            header = w.Checkbox(description=f"all {kind} ({len(names)})", indent=False,
                                layout=w.Layout(width="auto"), style={"description_width": "initial"})
            header.add_class("mp-kind")
            header.observe(functools.partial(self._on_kind, kind), "value")
            boxes = []
            for name in names:
                box = w.Checkbox(description=name, indent=False, tooltip=descriptions.get(name, name),
                                 layout=w.Layout(width="auto", margin="0 12px 0 0"),
                                 style={"description_width": "initial"})
                box.add_class(f"mp-device-{self.role}")
                box.observe(functools.partial(self._on_device, name), "value")
                self.boxes[name] = box
                boxes.append(box)
            self.kind_boxes[kind] = header
            # flex "0 0 auto": in the scrolling list, a section keeps its height instead of being squeezed
            row = w.HBox(boxes, layout=w.Layout(flex_flow="row wrap", padding="0 0 0 18px", flex="0 0 auto"))
            sections.append(w.VBox([header, row], layout=w.Layout(flex="0 0 auto")))
        self.groups.children = sections
        self._sync()
        self._filter()

    def _visible(self, kind: str) -> list[str]:
        return [n for n in self.model.device_groups().get(kind, []) if self.boxes[n].layout.display != "none"]

    def _filter(self, change=None) -> None:
        needle = self.search.value.strip().lower()
        kinds = self.model.device_groups()
        for section, (kind, names) in zip(self.groups.children, kinds.items(), strict=True):
            shown = 0
            for name in names:
                match = not needle or needle in name.lower() or needle in kind.lower() \
                    or needle in (self.boxes[name].tooltip or "").lower()
                self.boxes[name].layout.display = None if match else "none"
                shown += match
            section.layout.display = None if shown else "none"

    def _sync(self, change=None) -> None:
        chosen = set(getattr(self.model, f"{self.role}_devices"))
        self._syncing = True
        try:
            for name, box in self.boxes.items():
                box.value = name in chosen
            for kind, header in self.kind_boxes.items():
                names = self.model.device_groups()[kind]
                header.value = all(n in chosen for n in names)
        finally:
            self._syncing = False
        self.count.value = (f"<b>{ROLE_LABELS[self.role]}</b>: {len(chosen)} chosen"
                            + ("" if self.role == "test" else " (the predictor pretrains on these)"))

    def _on_device(self, name: str, change) -> None:
        if self._syncing:
            return
        chosen = name in getattr(self.model, f"{self.role}_devices")
        if change["new"] != chosen:
            _guarded(self.model, "choosing a device")(self.model.toggle_device)(self.role, name)

    def _on_kind(self, kind: str, change) -> None:
        if self._syncing:
            return
        _guarded(self.model, "choosing a device kind")(self.model.set_devices)(self.role, self._visible(kind),
                                                                                change["new"])

    def _show_closest(self, change=None) -> None:
        closest = self.model.closest
        if closest is None or closest.empty:
            self.closest.value = "<i>pick training and test devices to see each test device's closest one</i>"
            return
        rows = "".join(f"<tr><td>{html.escape(r.test)}</td><td>{html.escape(r.closest_train)}</td>"
                       f"<td style='text-align:right'>{r.spearman:.3f}</td></tr>" for r in closest.itertuples())
        self.closest.value = ("<table class='mp-closest'><tr><th>test device</th><th>closest training device</th>"
                              f"<th>Spearman ρ</th></tr>{rows}</table>")


class DistanceHeatmap(w.VBox):
    """Device x device Spearman heatmap; hover shows a pair's rho, a click toggles a device into
    the training set (the row's device) or the test set (the column's device)."""

    def __init__(self, model: ExperimentModel):
        super().__init__()
        self.model = model
        self.add_class("mp-heatmap")
        self.mode = w.ToggleButtons(options=[("click adds/removes a training device (row)", "train"),
                                             ("... a test device (column)", "test")],
                                    value="test", style={"button_width": "auto"})
        self.mode.add_class("mp-click-mode")
        self.note = w.HTML()
        self.figure = figure_widget("task_distance")
        self.figure.add_class("mp-heatmap-figure")
        model.observe(self._redraw, "distance")
        model.observe(self._reframe, ["train_devices", "test_devices", "closest"])
        self.children = [self.mode, self.note, self.figure]
        self._redraw()

    def _redraw(self, change=None) -> None:
        matrix = self.model.distance
        if matrix is None:
            self.note.value = (f"<i>computing the task distance (latency Spearman) of every pair of "
                               f"{self.model.space} devices...</i>")
            replace_figure(self.figure, go.Figure(layout={"height": 200, "xaxis": {"visible": False},
                                                          "yaxis": {"visible": False}}))
            return
        self.note.value = ("Spearman rank correlation of two devices' latencies over the archs both measured; "
                           f"<span style='color:{figures.TRAIN_COLOUR}'>blue</span> frames: training devices, "
                           f"<span style='color:{figures.TEST_COLOUR}'>orange</span>: test devices, stars: each "
                           "test device's closest training device.")
        replace_figure(self.figure, figures.distance_heatmap(
            matrix, self.model.device_kinds(), self.model.train_devices, self.model.test_devices,
            self.model.closest))
        self.figure.data[0].on_click(self._on_click)

    def _reframe(self, change=None) -> None:
        matrix = self.model.distance
        if matrix is None or not self.figure.data:
            return
        rows, cols = [str(r) for r in matrix.index], [str(c) for c in matrix.columns]
        xs, ys, texts = figures.closest_marks(self.model.closest, rows, cols)
        with self.figure.batch_update():
            self.figure.layout.shapes = figures.selection_shapes(rows, cols, self.model.train_devices,
                                                                 self.model.test_devices)
            stars = self.figure.data[1]
            stars.x, stars.y, stars.hovertext = xs, ys, texts
        sync_figure_state(self.figure)

    def _on_click(self, trace, points, state) -> None:
        if not points.xs:
            return
        x, y = points.xs[0], points.ys[0]
        role = self.mode.value
        _guarded(self.model, "heatmap click")(self.model.toggle_device)(role, y if role == "train" else x)


class MethodPicker(w.VBox):
    """The Multi-Predict transfer method (encoding x hardware embedding x predictor) and the
    methods to compare it with."""

    def __init__(self, model: ExperimentModel):
        super().__init__(layout=w.Layout(width="55%"))
        self.model = model
        style = {"description_width": "130px"}
        self.use_transfer = w.Checkbox(value=model.use_transfer, indent=False,
                                       description="Multi-Predict transfer (TL)")
        self.encoding = w.Dropdown(options=model.encodings(), value=model.encoding, description="encoding",
                                   style=style)
        self.embedding = w.Dropdown(options=model.embeddings(), value=model.embedding,
                                    description="hardware embedding", style=style)
        self.predictor = w.Dropdown(options=PREDICTORS, value=model.predictor, description="predictor",
                                    style=style)
        self.fine_tune = w.Dropdown(options=FINE_TUNE, value=model.fine_tune, description="fine-tune",
                                    style=style, tooltip="auto: arch body frozen for targets close to a training "
                                                         "device (Eq. 1 correlation >= 0.85), every weight otherwise")
        self.resolved = w.HTML()
        for name, widget in (("use_transfer", self.use_transfer), ("encoding", self.encoding),
                             ("embedding", self.embedding), ("predictor", self.predictor),
                             ("fine_tune", self.fine_tune)):
            widget.add_class(f"mp-{name}")
            w.link((model, name), (widget, "value"))
        self.compare = w.VBox()
        self.compare_boxes: dict[str, w.Checkbox] = {}
        model.observe(self._show_resolved, ["use_transfer", "encoding", "embedding"])
        model.observe(self._sync_compare, "compare")
        self._build_compare()
        self._show_resolved()
        self.children = [w.HTML("<b>Method</b>"), self.use_transfer, self.encoding, self.embedding, self.predictor,
                         self.fine_tune, self.resolved, w.HTML("<b>Compare with</b>"), self.compare]

    def _build_compare(self) -> None:
        from multipredict.experiments import methods as registry

        self.compare_boxes = {}
        for name in self.model.comparable_methods():
            box = w.Checkbox(description=name, indent=False, value=name in self.model.compare,
                             tooltip=registry.get(name).description or name, layout=w.Layout(width="auto"))
            box.add_class("mp-compare")
            box.observe(functools.partial(self._on_compare, name), "value")
            self.compare_boxes[name] = box
        self.compare.children = [w.HBox(list(self.compare_boxes.values()),
                                        layout=w.Layout(flex_flow="row wrap"))]

    def _on_compare(self, name: str, change) -> None:
        chosen = list(self.model.compare)
        if change["new"] and name not in chosen:
            self.model.compare = chosen + [name]
        elif not change["new"] and name in chosen:
            self.model.compare = [m for m in chosen if m != name]

    def _sync_compare(self, change=None) -> None:
        for name, box in self.compare_boxes.items():
            box.value = name in self.model.compare

    def _show_resolved(self, change=None) -> None:
        for widget in (self.encoding, self.embedding, self.predictor):
            widget.disabled = not self.model.use_transfer
        if not self.model.use_transfer:
            self.resolved.value = "<i>transfer off: only the methods ticked below run</i>"
            return
        try:
            self.resolved.value = f"runs <b>{html.escape(self.model.transfer_method())}</b>"
        except Exception as exc:
            self.resolved.value = f"<span style='color:#b00'>{html.escape(explain_error(exc))}</span>"


class BudgetPicker(w.VBox):
    """Few-shot sample budgets, repeats, seed, protocol, quick settings and where trials run."""

    def __init__(self, model: ExperimentModel):
        super().__init__(layout=w.Layout(width="45%"))
        self.model = model
        style = {"description_width": "130px"}
        self.samples = w.Text(value=", ".join(map(str, model.samples)), description="sample budgets",
                              placeholder="e.g. 5, 10, 20", continuous_update=False, style=style)
        self.samples.add_class("mp-samples")
        self.samples.observe(self._on_samples, "value")
        model.observe(self._show_samples, "samples")
        self.method_samples = w.Text(value=_budget_text(model.method_samples), description="per-method budgets",
                                     placeholder="e.g. BRP-NAS: 900, 3200; FLOPs: 0", continuous_update=False,
                                     style=style, tooltip="own budgets for some ticked methods; the rest use the "
                                                          "sample budgets above")
        self.method_samples.add_class("mp-method-samples")
        self.method_samples.observe(self._on_method_samples, "value")
        self.repeats = w.BoundedIntText(value=model.repeats, min=1, max=100, description="repeats (seeds)",
                                        style=style)
        self.seed = w.IntText(value=model.seed, description="first seed", style=style)
        self.protocol = w.Dropdown(options=PROTOCOLS, value=model.protocol, description="protocol", style=style)
        self.help_protocol = w.Checkbox(value=model.help_protocol, indent=False, layout=w.Layout(width="auto"),
                                        description="HELP under HELP's own protocol (as the paper quotes it)")
        self.quick = w.Checkbox(value=model.quick, indent=False, layout=w.Layout(width="auto"),
                                description="quick (fewer epochs / episodes: a smoke test, not the paper's settings)")
        self.executor = w.Dropdown(options=[("this kernel (background thread)", "thread"),
                                            ("separate processes", "processes")],
                                   value=model.executor, description="run trials in", style=style,
                                   layout=w.Layout(width="420px"))
        for name in ("repeats", "seed", "protocol", "help_protocol", "quick", "executor"):
            getattr(self, name).add_class(f"mp-{name}")
            w.link((model, name), (getattr(self, name), "value"))
        self.children = [w.HTML("<b>Budgets</b>"), self.samples, self.method_samples, self.repeats, self.seed,
                         self.protocol, self.help_protocol, self.executor, self.quick]

    def _on_samples(self, change) -> None:
        try:
            budgets = parse_budgets(change["new"])
        except Exception as exc:
            self.model.set_input_error("samples", explain_error(exc))
            return
        self.model.set_input_error("samples", None)
        self.model.samples = budgets

    def _on_method_samples(self, change) -> None:
        try:
            budgets = parse_method_budgets(change["new"], self.model.comparable_methods())
        except Exception as exc:
            self.model.set_input_error("method_samples", explain_error(exc))
            return
        self.model.set_input_error("method_samples", None)
        self.model.method_samples = budgets

    def _show_samples(self, change=None) -> None:
        text = ", ".join(map(str, self.model.samples))
        if parse_budgets(self.samples.value or "0") != list(self.model.samples):
            self.samples.value = text


class RunControls(w.VBox):
    """Run and Cancel, a progress bar and the run's status line."""

    def __init__(self, model: ExperimentModel):
        super().__init__()
        self.model = model
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.cancel_button = w.Button(description="Cancel", button_style="warning", icon="stop", disabled=True)
        self.run_button.add_class("mp-run")
        self.cancel_button.add_class("mp-cancel")
        self.progress = w.IntProgress(value=0, min=0, max=1, description="trials",
                                      layout=w.Layout(width="320px"))
        self.status = w.HTML()
        self.status.add_class("mp-status")
        self.run_button.on_click(_guarded(model, "Run")(lambda _: model.run()))
        self.cancel_button.on_click(_guarded(model, "Cancel")(lambda _: model.cancel()))
        model.observe(self._refresh, ["spec", "status", "completed", "total", "message"])
        self._refresh()
        self.children = [w.HBox([self.run_button, self.cancel_button, self.progress]), self.status]

    def _refresh(self, change=None) -> None:
        model = self.model
        busy = model.status in (RUNNING, CANCELLING)
        self.run_button.disabled = busy or model.spec is None
        self.run_button.tooltip = "fix the choices shown in red first" if model.spec is None else (
            f"{model.spec.n_trials()} trials")
        self.cancel_button.disabled = model.status != RUNNING
        self.progress.max = max(model.total, 1)
        self.progress.value = min(model.completed, self.progress.max)
        self.progress.bar_style = {DONE: "success", FAILED: "danger", CANCELLING: "warning"}.get(model.status, "")
        text = model.message or (f"ready: {model.spec.n_trials()} trials" if model.spec is not None else "")
        self.status.value = f"<span class='mp-status-{model.status}'>{html.escape(text)}</span>"


class ResultsPlot(w.VBox):
    """rho against sample budget per test device, filled in as trials finish."""

    def __init__(self, model: ExperimentModel):
        super().__init__()
        self.model = model
        self.figure = figure_widget("multipredict_results")
        self.figure.add_class("mp-results-figure")
        self._shape: tuple | None = None  # (devices, methods) the figure's traces are laid out for
        model.observe(self._redraw, "results")
        model.observe(self._settle, "status")
        self.children = [self.figure]
        self._redraw()

    def _settle(self, change) -> None:
        """At the end of a run, show the final figure in a fresh widget.

        The live updates are edit messages that plotly's browser side applies only to a view that
        is ready for them; on a loaded machine some can be lost and the plot stays stale while the
        table (plain HTML) is current. A new widget carries its whole state when it is created, so
        the figure a run ends with always shows (one plotly.js transfer per run, not per trial).
        """
        if change["new"] not in (DONE, CANCELLED, FAILED) or self.model.results is None:
            return
        fresh = figure_widget("multipredict_results")
        fresh.add_class("mp-results-figure")
        replace_figure(fresh, self.build())
        self.figure = fresh
        self.children = [fresh]
        spec = self.model.running_spec
        self._shape = (tuple(spec.test_devices), tuple(spec.methods)) if spec is not None else None

    def build(self) -> go.Figure:
        spec = self.model.running_spec
        devices = list(spec.test_devices) if spec is not None else None
        methods = list(spec.methods) if spec is not None else None
        return figures.rho_vs_samples(self.model.results, devices=devices, methods=methods,
                                      title=f"{spec.space}: Spearman ρ vs few-shot samples" if spec else "")

    def _redraw(self, change=None) -> None:
        spec = self.model.running_spec
        shape = (tuple(spec.test_devices), tuple(spec.methods)) if spec is not None else None
        fresh = self.build()
        if shape is not None and shape == self._shape and len(fresh.data) == len(self.figure.data):
            # same panels and lines as the figure shows: restyle them in place (one message), rather
            # than delete and re-add every trace on each finished trial
            with self.figure.batch_update():
                for shown, new in zip(self.figure.data, fresh.data, strict=True):
                    shown.x, shown.y, shown.customdata = new.x, new.y, new.customdata
                    shown.error_y = new.error_y
                for axis in ("xaxis", "yaxis"):
                    for name in [k for k in fresh.layout.to_plotly_json() if k.startswith(axis)]:
                        self.figure.layout[name].range = fresh.layout[name].range
            sync_figure_state(self.figure)
        else:
            replace_figure(self.figure, fresh)
            self._shape = shape


class ResultsTable(w.VBox):
    """Methods side by side (mean ± std of rho) and downloads of the table (CSV) and the figure."""

    def __init__(self, model: ExperimentModel, plot: ResultsPlot | None = None):
        super().__init__()
        self.model, self.plot = model, plot
        self.table = w.HTML()
        self.table.add_class("mp-results-table")
        self.downloads = w.HTML()
        self.downloads.add_class("mp-downloads")
        model.observe(self._redraw, ["results", "status"])
        self.children = [self.table, self.downloads]
        self._redraw()

    def _redraw(self, change=None) -> None:
        results = self.model.results
        if results is None or results.empty:
            self.table.value = "<i>the results table fills in as trials finish</i>"
            self.downloads.value = ""
            return
        table = figures.results_table(results)
        self.table.value = ("<div style='overflow:auto'>" + table.to_html(classes="mp-table", border=0, escape=True)
                            + "</div><small>cells: Spearman ρ, mean ± standard deviation over repeats</small>")
        if self.model.status in (RUNNING, CANCELLING):
            self.downloads.value = "<i>downloads appear when the run ends</i>"
            return
        links = [_download_link(results.to_csv(index=False).encode(), "multipredict_results.csv", "text/csv",
                                "results (CSV, one row per trial x device)", "mp-download-csv"),
                 _download_link(figures.summarise(results).to_csv(index=False).encode(),
                                "multipredict_summary.csv", "text/csv", "summary (CSV)", "mp-download-summary")]
        if self.plot is not None:
            page = self.plot.build().to_html(include_plotlyjs="cdn", full_html=True)
            links.append(_download_link(page.encode(), "multipredict_figure.html", "text/html",
                                        "figure (HTML; PNG: the camera icon on the plot)", "mp-download-figure"))
        self.downloads.value = "Download: " + " · ".join(links)


def _budget_text(budgets: dict[str, list[int]]) -> str:
    return "; ".join(f"{m}: {', '.join(map(str, b))}" for m, b in budgets.items())


def _download_link(data: bytes, filename: str, mime: str, label: str, css: str) -> str:
    payload = base64.b64encode(data).decode()
    return f"<a class='{css}' download='{filename}' href='data:{mime};base64,{payload}'>{html.escape(label)}</a>"



ERROR_STYLE = "border:1px solid #d33;background:#fff3f3;color:#900;padding:6px 10px;border-radius:4px"


def error_box(text: str) -> str:
    """A panel's error area: each non-empty line of ``text`` (escaped) in one red box; "" for none."""
    if not text:
        return ""
    lines = "".join(f"<div>{html.escape(line)}</div>" for line in text.splitlines() if line.strip())
    return f"<div style='{ERROR_STYLE}'>{lines}</div>"


class ErrorArea(w.HTML):
    """What is wrong with the current choices or the last run, in sentences."""

    def __init__(self, model: ExperimentModel):
        super().__init__()
        self.model = model
        self.add_class("mp-error")
        model.observe(self._refresh, ["error", "trial_errors"])
        self._refresh()

    def _refresh(self, change=None) -> None:
        parts = []
        if self.model.error:
            lines = "".join(f"<li>{html.escape(line)}</li>" for line in self.model.error.splitlines() if line)
            parts.append(f"<b>Cannot run yet:</b><ul>{lines}</ul>" if self.model.spec is None
                         else f"<ul>{lines}</ul>")
        if self.model.trial_errors:
            shown = self.model.trial_errors[:5]
            more = len(self.model.trial_errors) - len(shown)
            lines = "".join(f"<li>{html.escape(e)}</li>" for e in shown)
            parts.append(f"<b>{len(self.model.trial_errors)} trial(s) failed</b> (their rows keep the error):"
                         f"<ul>{lines}</ul>" + (f"... and {more} more" if more > 0 else ""))
        self.value = f"<div style='{ERROR_STYLE}'>" + "".join(parts) + "</div>" if parts else ""


class SpaceControls(w.HBox):
    """Search space and a named device set to start from."""

    def __init__(self, model: ExperimentModel):
        super().__init__()
        self.model = model
        self.space = w.Dropdown(options=LATENCY_SPACES, value=model.space, description="search space",
                                style={"description_width": "initial"})
        self.space.add_class("mp-space")
        self.preset = w.Dropdown(description="device set", style={"description_width": "initial"})
        self.preset.add_class("mp-preset")
        self._syncing = False
        self.space.observe(_guarded(model, "changing the space")(self._on_space), "value")
        self.preset.observe(_guarded(model, "choosing a device set")(self._on_preset), "value")
        model.observe(self._sync, ["space", "train_devices", "test_devices"])
        self._sync()
        self.children = [self.space, self.preset]

    def _on_space(self, change) -> None:
        if not self._syncing:
            self.model.space = change["new"]

    def _on_preset(self, change) -> None:
        if not self._syncing and change["new"] != "custom":
            self.model.apply_preset(change["new"])

    def _sync(self, change=None) -> None:
        from multipredict import tasks

        current = "custom"
        for name in self.model.presets():
            preset = tasks.device_set(name)
            if list(preset.train) == list(self.model.train_devices) and \
                    list(preset.test) == list(self.model.test_devices):
                current = name
        self._syncing = True
        try:
            self.space.value = self.model.space
            self.preset.options = self.model.presets() + ["custom"]
            self.preset.value = current
        finally:
            self._syncing = False
