"""A user's search, end to end: the most accurate NB201 arch under a latency budget on a device.

`run_search` puts the pieces together (the front ends, `multipredict search`, the notebook and the
dashboard's search view, call it and only show its result):

1. the device's latency over the whole space (`latencybudget`): a public device's table, or a
   device known by the user's k measurements (onboarded: the transfer predictor, cached pretraining);
2. the archs counted under the budget (conformal margin, see `latencybudget`);
3. the search among them (`search.search`, resumable through ``state_path``);
4. the predicted accuracy of every arch (the Table 14 predictor trained on every trained arch) and
   the predicted Pareto front of accuracy against latency on the device;
5. the chosen arch, and for a device known by measurements the shortlist to measure in order
   (keep the first one truly under the budget).

`write_search` writes it all into a folder (trajectory, front, shortlist, chosen arch as JSON and
ONNX, an HTML figure when plotly is installed).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import latencybudget, search
from .errors import MultipredictError, UnknownNameError

NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}


@dataclass
class SearchResult:
    task: str
    strategy: str
    encoding: str
    budget: int
    seed: int
    trajectory: pd.DataFrame = field(repr=False)
    predicted_accuracy: np.ndarray = field(repr=False)  # validation accuracy of every arch (trained: the table's)
    latency: latencybudget.LatencyEstimate | None = field(default=None, repr=False)
    max_ms: float | None = None
    level: float | None = latencybudget.DEFAULT_LEVEL
    allowed: np.ndarray | None = field(default=None, repr=False)

    @property
    def chosen(self) -> int:
        return int(self.trajectory["returned_arch"].iloc[-1])

    def front(self) -> pd.DataFrame:
        """The predicted Pareto front of the whole space (predicted validation accuracy vs latency
        on the device), one row per arch on it, by increasing latency; ``trained`` marks the archs
        the search trained, ``counted_feasible`` those counted under the budget."""
        if self.latency is None:
            raise MultipredictError("a Pareto front needs a device: give --device NAME or --measurements FILE")
        latency = self.latency.bounded_ms(None)
        front = latencybudget.pareto_front(self.predicted_accuracy, latency)
        return self._rows(front)

    def shortlist(self) -> pd.DataFrame:
        """The trained archs, best validation accuracy first, with their latency: measure them in
        this order and keep the first truly under the budget (`latencybudget.shortlist`)."""
        return self._rows(latencybudget.shortlist(self.trajectory)["arch_id"].to_numpy())

    def details(self, arch_id: int) -> dict:
        """One arch of the search: its string, predicted validation accuracy, the table's validation
        and test accuracy, its latency on the device (measured or predicted) and whether it counted
        under the budget."""
        from .spaces import nb201

        arch_id = int(arch_id)
        table = search.space_table(self.task)
        record = {"arch_id": arch_id, "arch": nb201.arch_string(arch_id), "chosen": arch_id == self.chosen,
                  "trained": arch_id in set(self.trajectory["arch_id"].astype(int)),
                  "predicted_val": float(self.predicted_accuracy[arch_id]),
                  "table_val": float(table.val[arch_id]), "table_test": float(table.test[arch_id])}
        if self.latency is not None:
            measured = self.latency.source == "table" or arch_id in self.latency.measured.index
            record.update({"device": self.latency.device, "latency_ms": float(self.latency.bounded_ms(None)[arch_id]),
                           "latency_from": "measured" if measured else "predicted"})
            if self.allowed is not None:
                record["counted_under_budget"] = bool(self.allowed[arch_id])
        return record

    def _rows(self, ids) -> pd.DataFrame:
        from .spaces import nb201

        ids = np.asarray(ids, dtype=np.int64)
        table = search.space_table(self.task)
        trained = set(self.trajectory["arch_id"].astype(int))
        frame = pd.DataFrame({"arch_id": ids, "arch": [nb201.arch_string(int(a)) for a in ids],
                              "predicted_val": self.predicted_accuracy[ids],
                              "trained": [int(a) in trained for a in ids]})
        frame["val"] = np.where(frame["trained"], table.val[ids], np.nan)
        if self.latency is not None:
            known = self.latency.measured
            frame["latency_ms"] = self.latency.bounded_ms(None)[ids]
            frame["latency_from"] = ["measured" if int(a) in known.index else
                                     ("table" if self.latency.source == "table" else "predicted") for a in ids]
            if self.max_ms is not None:
                frame["counted_feasible"] = self.allowed[ids]
        return frame

    def summary(self) -> dict:
        from .spaces import nb201

        table = search.space_table(self.task)
        chosen = self.chosen
        record = {"space": "nb201", "task": self.task, "strategy": self.strategy, "encoding": self.encoding,
                  "seed": self.seed, "trained_archs": len(self.trajectory), "arch_id": chosen,
                  "arch": nb201.arch_string(chosen), "val_accuracy": float(table.val[chosen]),
                  "test_accuracy": float(table.test[chosen]), "zcp_proxies": list(table.proxies.columns)}
        if self.latency is not None:
            record.update({"device": self.latency.device, "latency_from": self.latency.source,
                           "latency_measurements": self.latency.n_measurements,
                           "chosen_latency_ms": float(self.latency.bounded_ms(None)[chosen])})
        if self.max_ms is not None:
            allowed = self.allowed
            record.update({"max_latency_ms": self.max_ms, "conformal_level": self.level,
                           "conformal_factor": self.latency.factor(self.level),
                           "archs_counted_feasible": int(allowed.sum()),
                           "best_test_accuracy_counted_feasible": float(np.max(table.test[allowed])),
                           "chosen_latency_certain": self.latency.source == "table"
                           or chosen in self.latency.measured.index})
        else:
            record["best_test_accuracy_in_space"] = table.best_test
        return record


def latency_for(*, device: str | None = None, measurements=None, name: str = "my_device",
                progress=None, store: bool = False) -> latencybudget.LatencyEstimate | None:
    """The latency side of a search: a public device's table (``device``), or a device known by
    ``measurements`` (a CSV/parquet path or a frame ``arch,latency_ms``), or None."""
    if device is not None and measurements is not None:
        raise MultipredictError("give either --device (a public device's table) or --measurements (your device), "
                                "not both")
    if device is not None:
        from .data import help

        devices = help.devices("nb201")
        if device not in devices:
            raise UnknownNameError("NB201 device", device, devices,
                                   "Or give your own device's measurements with --measurements.")
        return latencybudget.from_table("nb201", device)
    if measurements is not None:
        return latencybudget.onboarded(measurements, device=name, progress=progress, store=store)
    return None


def run_search(task: str = "cifar10", *, strategy: str = "predictor", encoding: str = "zcp", budget: int = 100,
               seed: int = 0, latency: latencybudget.LatencyEstimate | None = None, max_ms: float | None = None,
               level: float | None = latencybudget.DEFAULT_LEVEL, state_path=None, progress: bool = False,
               on_batch=None, options=None) -> SearchResult:
    """Search NB201 for ``task`` (see the module's steps). ``max_ms`` needs ``latency``.
    ``state_path``: a JSON file holding the archs trained so far; a rerun continues from it.
    ``on_batch(trained ids)``: called after each batch of the predictor strategy."""
    search.space_table(task)
    if strategy not in search.STRATEGIES:
        raise UnknownNameError("search strategy", strategy, search.STRATEGIES)
    if strategy == "predictor" and encoding not in search.ENCODINGS:
        raise UnknownNameError("search encoding", encoding, search.ENCODINGS)
    allowed = None
    if max_ms is not None:
        if latency is None:
            raise MultipredictError(f"--max-latency-ms {max_ms:g} needs a device: give --device NAME (a public "
                                    f"device) or --measurements FILE (your device's arch,latency_ms)")
        allowed = latency.check_budget(max_ms, level, at_least=budget)
    resume = _read_state(state_path)

    def saved(trained):
        if state_path is not None:
            _write_state(state_path, trained)
        if on_batch is not None:
            on_batch(trained)

    trajectory = search.search(task, strategy, encoding=encoding, budget=budget, seed=seed, progress=progress,
                               allowed=allowed, resume=resume, on_batch=saved, options=options)
    predicted = search.predict_accuracy(task, trajectory["arch_id"].to_numpy(), seed=seed,
                                        encoding=encoding if strategy == "predictor" else "zcp", options=options)
    return SearchResult(task, strategy, encoding if strategy == "predictor" else "", budget, seed, trajectory,
                        predicted, latency, max_ms, level, allowed)


def _read_state(path) -> list[int] | None:
    if path is None or not Path(path).is_file():
        return None
    try:
        return [int(a) for a in json.loads(Path(path).read_text())["trained"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise MultipredictError(f"{path}: not a search state this version wrote ({exc}); delete it to start "
                                f"over") from exc


def _write_state(path, trained) -> None:
    from .experiments.units import atomic_text

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_text(Path(path), json.dumps({"trained": [int(a) for a in trained]}))


def write_search(result: SearchResult, out_dir) -> list[str]:
    """Write ``trajectory.csv``, ``chosen.json``, ``chosen.onnx``, and with a device ``pareto.csv``
    and ``shortlist.csv``, and ``search.html`` when plotly is installed. Returns the file names."""
    import torch

    from .experiments.units import atomic_text
    from .onboard import write_json, write_table
    from .spaces.models import build_nb201

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    write_table(result.trajectory, out / "trajectory.csv")
    written.append("trajectory.csv")
    if result.latency is not None:
        write_table(result.front(), out / "pareto.csv")
        write_table(result.shortlist(), out / "shortlist.csv")
        written += ["pareto.csv", "shortlist.csv"]
    write_json(result.summary(), out / "chosen.json")
    written.append("chosen.json")
    model = build_nb201(result.chosen, num_classes=NUM_CLASSES[result.task]).eval()
    tmp = out / f".chosen.onnx.{os.getpid()}.tmp"
    torch.onnx.export(model, torch.zeros(1, 3, 32, 32), str(tmp), opset_version=17, dynamo=False)
    os.replace(tmp, out / "chosen.onnx")
    written.append("chosen.onnx")
    html = figure_html(result)
    if html is not None:
        atomic_text(out / "search.html", html)
        written.append("search.html")
    return written


def figures(result: SearchResult) -> list:
    """Plotly figures of a search: the best-so-far curve and, with a device, the predicted Pareto
    scatter (feasible region shaded, trained archs highlighted). Empty without plotly."""
    from .experiments.units import plotly_or_none

    go = plotly_or_none()
    if go is None:
        return []
    t = result.trajectory
    curve = go.Figure(go.Scatter(x=t["n_trained"].tolist(), y=t["returned_test"].tolist(), mode="lines",
                                 name="returned arch"))
    curve.update_layout(title=f"NB201 {result.task}: test accuracy of the arch the search would return",
                        xaxis_title="trained archs", yaxis_title="test accuracy (%)")
    out = [curve]
    if result.latency is not None:
        out.append(pareto_figure(result, go))
    return out


def pareto_figure(result: SearchResult, go=None):
    if go is None:
        from .experiments.units import plotly_or_none

        go = plotly_or_none()
    latency = result.latency.bounded_ms(None)
    rng = np.random.default_rng(0)
    sample = rng.choice(len(latency), size=min(3000, len(latency)), replace=False)
    trained = result.trajectory["arch_id"].to_numpy()
    front = result.front()
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=latency[sample].tolist(), y=result.predicted_accuracy[sample].tolist(),
                               mode="markers", name="space (3,000 drawn)", marker={"size": 3, "color": "#bbb"},
                               customdata=sample.tolist()))
    fig.add_trace(go.Scatter(x=front["latency_ms"].tolist(), y=front["predicted_val"].tolist(), mode="lines+markers",
                             name="predicted Pareto front", customdata=front["arch_id"].tolist()))
    fig.add_trace(go.Scatter(x=latency[trained].tolist(), y=result.predicted_accuracy[trained].tolist(),
                             mode="markers", name="trained", marker={"size": 7, "color": "#d62728"},
                             customdata=trained.tolist()))
    if result.max_ms is not None:
        fig.add_vrect(x0=0, x1=result.max_ms, fillcolor="green", opacity=0.08, line_width=0,
                      annotation_text=f"under {result.max_ms:g} ms")
    kind = "measured" if result.latency.source == "table" else "predicted"
    fig.update_layout(title=f"{result.latency.device}: predicted validation accuracy vs {kind} latency",
                      xaxis_title=f"latency on {result.latency.device} (ms, {kind})",
                      yaxis_title="validation accuracy (%; trained: the table's)")
    return fig


def figure_html(result: SearchResult) -> str | None:
    from .experiments.units import figures_page

    parts = figures(result)
    return figures_page(parts) if parts else None
