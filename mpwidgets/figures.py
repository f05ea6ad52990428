"""Plotly figures over the engine's tables: the task-distance heatmap and rho-vs-samples plots.

Each builder takes a table the engine returns and gives a ``plotly.graph_objects.Figure``; the
dashboard copies them into its ``FigureWidget``s and the notebooks show them as they are. Nothing
here computes an experiment: the figures only arrange what the engine measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from multipredict.experiments import summarise as engine_summarise
from multipredict.experiments.summary import MEAN_DEVICE

TRAIN_COLOUR = "#1f77b4"
TEST_COLOUR = "#ff7f0e"
METHOD_COLOURS = qualitative.Plotly + qualitative.D3


def method_colours(methods: Sequence[str]) -> dict[str, str]:
    """One colour per method, stable for a given method order."""
    return {m: METHOD_COLOURS[i % len(METHOD_COLOURS)] for i, m in enumerate(methods)}


# ---------------------------------------------------------------- task distance
def distance_heatmap(matrix: pd.DataFrame, kinds: dict[str, str] | None = None, train: Sequence[str] = (),
                     test: Sequence[str] = (), closest: pd.DataFrame | None = None, title: str = "") -> go.Figure:
    """Heatmap of a (train candidates x test candidates) Spearman matrix.

    Rows are devices a predictor may train on, columns devices it may be tested on. The chosen
    ``train`` rows and ``test`` columns are framed; ``closest`` (``tasks.closest_training_device``)
    marks each test device's most correlated training device with a star.
    """
    kinds = kinds or {}
    rows, cols = [str(r) for r in matrix.index], [str(c) for c in matrix.columns]
    custom = [[[kinds.get(r, ""), kinds.get(c, "")] for c in cols] for r in rows]
    finite = matrix.stack().dropna()
    zmin = min(0.0, float(finite.min())) if len(finite) else 0.0
    heat = go.Heatmap(
        z=matrix.to_numpy(), x=cols, y=rows, customdata=custom, zmin=zmin, zmax=1.0, colorscale="Viridis",
        colorbar={"title": {"text": "Spearman ρ"}, "thickness": 12},
        hovertemplate="train <b>%{y}</b> (%{customdata[0]})<br>test <b>%{x}</b> (%{customdata[1]})"
                      "<br>Spearman ρ = %{z:.3f}<extra></extra>",
        name="task distance")
    fig = go.Figure(heat)
    marks_x, marks_y, marks_text = closest_marks(closest, rows, cols)
    fig.add_trace(go.Scatter(x=marks_x, y=marks_y, mode="markers", name="closest training device",
                             marker={"symbol": "star", "size": 11, "color": "white", "line": {"width": 1,
                                                                                               "color": "black"}},
                             hovertext=marks_text, hovertemplate="%{hovertext}<extra></extra>", showlegend=False))
    fig.update_layout(shapes=selection_shapes(rows, cols, train, test))
    n = max(len(rows), len(cols))
    fig.update_layout(
        title={"text": title} if title else None,
        # fixed ranges: the star markers would otherwise pad the autorange past the last column
        xaxis={"title": {"text": "test device (click in 'test' mode)"}, "type": "category", "tickangle": -60,
               "tickfont": {"size": 9}, "range": [-0.5, len(cols) - 0.5]},
        yaxis={"title": {"text": "training device (click in 'train' mode)"}, "type": "category",
               "range": [len(rows) - 0.5, -0.5], "tickfont": {"size": 9}},
        height=max(420, 14 * n + 200), margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        clickmode="event")
    return fig


def closest_marks(closest: pd.DataFrame | None, rows: Sequence[str], cols: Sequence[str]):
    """x (test device), y (its closest training device) and hover text of the heatmap's stars."""
    xs, ys, texts = [], [], []
    if closest is not None:
        for row in closest.itertuples(index=False):
            if row.test in cols and row.closest_train in rows:
                xs.append(row.test)
                ys.append(row.closest_train)
                texts.append(f"closest training device of <b>{row.test}</b>: <b>{row.closest_train}</b>"
                             f"<br>Spearman ρ = {row.spearman:.3f}")
    return xs, ys, texts


def selection_shapes(rows: Sequence[str], cols: Sequence[str], train: Sequence[str], test: Sequence[str]) -> list:
    """Frames around the chosen training rows (blue) and test columns (orange) of the heatmap."""
    shapes = []
    for i, name in enumerate(rows):
        if name in train:
            shapes.append({"type": "rect", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": i - 0.5,
                           "y1": i + 0.5, "line": {"color": TRAIN_COLOUR, "width": 2}, "fillcolor": "rgba(0,0,0,0)",
                           "name": f"train:{name}"})
    for j, name in enumerate(cols):
        if name in test:
            shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": j - 0.5, "x1": j + 0.5, "y0": 0,
                           "y1": 1, "line": {"color": TEST_COLOUR, "width": 2}, "fillcolor": "rgba(0,0,0,0)",
                           "name": f"test:{name}"})
    return shapes


# ---------------------------------------------------------------- results
def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """The engine's summary (``multipredict.experiments.summarise``): mean and std of rho over repeats
    per method x sample budget x device plus a ``mean`` device; the dashboard's CSV download."""
    return engine_summarise(results)


def _plotted(results: pd.DataFrame) -> pd.DataFrame:
    """The summary the figures draw: one row per real device, a single repeat's std drawn as 0."""
    summary = summarise(results)
    summary = summary[summary["device"] != MEAN_DEVICE].reset_index(drop=True)
    summary["spearman_std"] = summary["spearman_std"].fillna(0.0)
    return summary


def rho_vs_samples(results: pd.DataFrame, devices: Sequence[str] | None = None,
                   methods: Sequence[str] | None = None, title: str = "",
                   reference: pd.DataFrame | None = None) -> go.Figure:
    """Spearman rho against the few-shot sample budget, one panel per test device, one line per
    method, error bars = standard deviation over repeats.

    ``reference`` (rows ``method, device, samples, value``, e.g. the paper's numbers) is drawn as
    open diamonds in the method's colour.
    """
    summary = _plotted(results)
    devices = list(devices) if devices is not None else list(dict.fromkeys(summary["device"]))
    methods = list(methods) if methods is not None else list(dict.fromkeys(summary["method"]))
    if not devices:
        fig = go.Figure()
        fig.update_layout(height=300, annotations=[{"text": "no results yet: pick devices and press Run",
                                                    "showarrow": False, "xref": "paper", "yref": "paper",
                                                    "x": 0.5, "y": 0.5}],
                          xaxis={"visible": False}, yaxis={"visible": False}, margin={"t": 30})
        return fig
    ncols = min(3, len(devices))
    nrows = math.ceil(len(devices) / ncols)
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=devices, shared_yaxes=True,
                        horizontal_spacing=0.05, vertical_spacing=0.12 if nrows > 1 else 0.1)
    colours = method_colours(methods)
    for k, device in enumerate(devices):
        r, c = divmod(k, ncols)
        for method in methods:
            part = summary[(summary["device"] == device) & (summary["method"] == method)].sort_values("samples")
            fig.add_trace(go.Scatter(
                x=part["samples"], y=part["spearman_mean"],
                error_y={"type": "data", "array": part["spearman_std"].tolist(), "visible": True},
                customdata=part[["n", "failed"]].to_numpy(), mode="lines+markers", name=method,
                legendgroup=method, showlegend=k == 0, line={"color": colours[method]},
                hovertemplate=f"<b>{method}</b> on {device}<br>%{{x}} samples: ρ = %{{y:.3f}} ± %{{error_y.array:.3f}}"
                              "<br>%{customdata[0]} trials, %{customdata[1]} failed<extra></extra>"),
                row=r + 1, col=c + 1)
            if reference is not None and not reference.empty:
                ref = reference[(reference["device"] == device) & (reference["method"] == method)]
                if not ref.empty:
                    fig.add_trace(go.Scatter(
                        x=ref["samples"], y=ref["value"], mode="markers", name=f"{method} (paper)",
                        legendgroup=method, showlegend=False,
                        marker={"symbol": "diamond-open", "size": 10, "color": colours[method]},
                        hovertemplate=f"paper: <b>{method}</b> on {device}<br>%{{x}} samples: ρ = %{{y:.2f}}"
                                      "<extra></extra>"), row=r + 1, col=c + 1)
    # explicit ranges: one scale for every panel, and no panel left at an empty axis's default range
    # when its traces arrive after the layout (a live FigureWidget update)
    low = summary["spearman_mean"] - summary["spearman_std"]
    floor = min(0.0, float(low.min()) - 0.05) if low.notna().any() else 0.0
    fig.update_yaxes(range=[max(-1.02, floor), 1.02])
    budgets = summary["samples"].dropna()
    if len(budgets):
        pad = max(1.0, 0.06 * float(budgets.max() - budgets.min()))
        fig.update_xaxes(range=[float(budgets.min()) - pad, float(budgets.max()) + pad])
    fig.update_xaxes(title_text="few-shot samples", row=nrows)
    fig.update_yaxes(title_text="Spearman ρ", col=1)
    fig.update_layout(title={"text": title} if title else None, height=260 * nrows + 120,
                      margin={"l": 10, "r": 10, "t": 60, "b": 10}, legend={"orientation": "h", "y": -0.15})
    return fig


def method_comparison(results: pd.DataFrame, reference: pd.DataFrame | None = None, title: str = "") -> go.Figure:
    """Grouped bars: mean rho per test device and method (all budgets as separate bars), with the
    paper's values (``reference``: ``method, device, samples, value``) as markers where given."""
    summary = _plotted(results)
    fig = go.Figure()
    methods = list(dict.fromkeys(summary["method"]))
    colours = method_colours(methods)
    for method in methods:
        for samples, part in summary[summary["method"] == method].groupby("samples", sort=True):
            hover = f"{method} ({samples} samples)<br>%{{x}}: ρ = %{{y:.3f}}<extra></extra>"
            fig.add_trace(go.Bar(x=part["device"], y=part["spearman_mean"],
                                 error_y={"type": "data", "array": part["spearman_std"].tolist()},
                                 name=f"{method} ({samples})", marker={"color": colours[method]},
                                 hovertemplate=hover))
    if reference is not None and not reference.empty:
        for method, part in reference.groupby("method", sort=False):
            fig.add_trace(go.Scatter(x=part["device"], y=part["value"], mode="markers", name=f"{method} (paper)",
                                     marker={"symbol": "diamond-open", "size": 11,
                                             "color": colours.get(method, "black")},
                                     hovertemplate=f"paper: {method}<br>%{{x}}: ρ = %{{y:.2f}}<extra></extra>"))
    fig.update_layout(barmode="group", title={"text": title} if title else None, yaxis_title="Spearman ρ",
                      height=420, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def results_table(results: pd.DataFrame) -> pd.DataFrame:
    """Methods side by side: rows device x samples, columns method, cells 'mean ± std' of rho."""
    summary = _plotted(results)
    if summary.empty:
        return pd.DataFrame()
    summary["cell"] = [f"{m:.3f} ± {s:.3f}" if pd.notna(m) else "failed"
                       for m, s in zip(summary["spearman_mean"], summary["spearman_std"], strict=True)]
    table = summary.pivot_table(index=["device", "samples"], columns="method", values="cell", aggfunc="first",
                                sort=False)
    table.columns.name = None
    return table.reindex(columns=list(dict.fromkeys(summary["method"])))


# ---------------------------------------------------------------- onboarding a device
def onboarding_scatter(cv_predictions: pd.DataFrame, device: str, spearman: float | None = None) -> go.Figure:
    """Cross-validated predicted against measured latency of a device's own measurements (log axes;
    ``multipredict.onboard.OnboardResult.cv_predictions``), with the line where they are equal."""
    measured, predicted = cv_predictions["measured_ms"], cv_predictions["cv_predicted_ms"]
    positive = pd.concat([measured, predicted])
    positive = positive[positive > 0]
    low, high = (positive.min() * 0.9, positive.max() * 1.1) if len(positive) else (0.1, 10.0)
    rho = f" (Spearman ρ {spearman:.3f})" if spearman is not None else ""
    figure = go.Figure([
        go.Scatter(x=[low, high], y=[low, high], mode="lines", name="predicted = measured",
                   line={"color": "#999", "dash": "dash", "width": 1}, hoverinfo="skip"),
        go.Scatter(x=measured, y=predicted, mode="markers", name=device, customdata=cv_predictions["arch_id"],
                   marker={"color": TEST_COLOUR, "size": 8, "line": {"color": "white", "width": 0.5}},
                   hovertemplate="arch %{customdata}<br>measured %{x:.3g} ms<br>predicted %{y:.3g} ms"
                                 "<extra></extra>"),
    ])
    axis = {"type": "log", "range": [math.log10(low), math.log10(high)]}
    figure.update_layout(title=f"{device}: each measurement predicted by a fold that never saw it{rho}",
                         xaxis={**axis, "title": "measured latency (ms)"},
                         yaxis={**axis, "title": "cross-validated prediction (ms)"},
                         height=420, margin={"l": 60, "r": 20, "t": 50, "b": 50}, template="plotly_white",
                         legend={"orientation": "h", "y": -0.18})
    return figure
