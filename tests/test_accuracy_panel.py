"""The dashboard's accuracy mode without a browser: the engine's fig9 plan and runner behind
``mpwidgets.accuracy`` on tiny inputs (2 NB201 tasks, quick, k = 10, one repeat: seconds)."""

from __future__ import annotations

import html

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")

from mpwidgets.accuracy import ALL, ARMS, AccuracyModel, AccuracyPanel  # noqa: E402
from mpwidgets.model import CANCELLED, DONE, ExperimentModel  # noqa: E402

TWO = ["nb201/cifar10", "nb201/cifar100"]


@pytest.fixture
def panel(mirror, tmp_path):
    model = AccuracyModel(space="nb201", quick=True, repeats=1, samples=10, load="now", out_dir=tmp_path / "acc")
    return AccuracyPanel(model=model)


def finite_cells(panel) -> int:
    return int(np.isfinite(np.asarray(panel.improvement_figure.data[0].z, dtype=float)).sum())


def test_a_tiny_run_fills_the_improvement_heatmap(panel):
    m = panel.model
    # the space's task distance, the NB201 three picked, framed and starred
    assert m.distance.shape == (6, 6) and m.distance.loc["nb201/cifar10", "nb201/cifar100"] > 0.9
    assert m.sources == m.targets == ["nb201/cifar10", "nb201/cifar100", "nb201/ImageNet16-120"]
    heat, stars = panel.distance_figure.data
    assert list(heat.x) == list(m.distance.columns) and len(stars.x) == 3
    assert m.error == "" and m.units == 9 and not panel.run_button.disabled

    # bad input: the engine's one line in the panel, Run disabled, nothing starts
    panel.targets.boxes["nb201/cifar100"].value = False
    panel.targets.boxes["nb201/ImageNet16-120"].value = False
    m.sources = ["nb201/cifar10"]
    assert "no source task differs from a target task" in html.unescape(panel.errors.value)
    assert panel.run_button.disabled and m.run() is False and m.status == "idle"
    m.sources = m.targets = TWO
    panel.samples.value = 5000
    assert "samples=5000 is not below task nb201/cifar10's pool" in html.unescape(panel.errors.value)
    assert "\n" not in m.error and "Traceback" not in panel.errors.value and panel.run_button.disabled
    panel.samples.value = 10
    assert m.error == "" and panel.errors.value == "" and m.units == 6

    # the run: the heatmap's cells fill in as the units finish
    filled = []
    m.observe(lambda change: filled.append(finite_cells(panel)), "per_target")
    panel.run_button.click()
    assert m.wait(120) and m.status == DONE, m.error
    assert filled[0] == 0 and filled[-1] == 2 and 1 in filled and filled == sorted(filled)
    assert m.completed == m.total == 6 and panel.progress.value == 6 and "done: 6 units" in panel.status.value
    pairs = m.pairs.set_index(["source", "target"])
    heat = panel.improvement_figure.data[0]
    assert list(heat.y) == TWO and list(heat.x) == TWO
    z = np.asarray(heat.z, dtype=float)
    expected = pairs.loc[("nb201/cifar10", "nb201/cifar100")]
    assert z[0, 1] == pytest.approx(expected["ZCP transfer"] - expected["ZCP scratch"])
    assert np.isnan(z[0, 0]) and np.isnan(z[1, 1])  # a task with itself
    assert set(ARMS) <= set(m.trials["arm"]) and m.trials["spearman"].between(-1, 1).all()
    # the per-target table: every arm of both targets
    table = m.per_target.set_index("target")
    assert list(table.index) == TWO and table[["Vec scratch", "ZCP scratch", "ZCP multi-task"]].notna().all().all()
    assert table.loc["nb201/cifar100", "best source"] == "nb201/cifar10"
    shown = html.unescape(panel.table.value)
    assert "nb201/cifar100" in shown and f"{table.loc['nb201/cifar100', 'ZCP scratch']:.3f}" in shown
    assert "…" not in shown  # nothing pending once the run ended
    assert "mp-acc-download-trials" in panel.downloads.value and "mp-acc-download-pairs" in panel.downloads.value
    # another view of the same rows, and the same choices again: from the kept units at once
    panel.metric.value = "transfer (Spearman ρ)"
    assert np.asarray(panel.improvement_figure.data[0].z, dtype=float)[0, 1] == pytest.approx(
        expected["ZCP transfer"])
    rows = len(m.trials)
    assert m.run() and m.wait(30) and m.status == DONE and len(m.trials) == rows


def test_cancel_keeps_the_finished_units_and_a_rerun_resumes(mirror, tmp_path):
    m = AccuracyModel(space="nb201", quick=True, repeats=1, samples=10, load="now", out_dir=tmp_path,
                      sources=TWO, targets=TWO, arms=["ZCP scratch", "ZCP transfer"])
    def cancel_after_one(change):
        if change["new"] == 1:
            m.cancel()

    m.observe(cancel_after_one, "completed")
    assert m.run() and m.wait(120)
    m.unobserve(cancel_after_one, "completed")
    assert m.status == CANCELLED and m.completed == 1 < m.total == 4, m.message
    assert "cancelled after 1 of 4 units" in m.message
    stored = list((tmp_path / "store").rglob("*.parquet"))
    assert len(stored) == 1
    assert m.run() and m.wait(120) and m.status == DONE and m.completed == 4
    assert len(list((tmp_path / "store").rglob("*.parquet"))) == 4
    assert set(m.trials["arm"]) == {"ZCP scratch", "ZCP transfer"} and m.pairs["Vec scratch"].isna().all()


def test_the_dashboard_switches_to_the_accuracy_mode(mirror, monkeypatch, tmp_path):
    from multipredict.experiments import MemoryStore, ParquetStore

    from mpwidgets.dashboard import Dashboard

    board = Dashboard(model=ExperimentModel(space="fbnet", store=ParquetStore(tmp_path), load_distance="never"))
    acc = board.accuracy
    assert board.mode.value == "latency" and acc.layout.display == "none" and board.onboarding in board.children
    assert acc.model.distance is None and not acc.model._active  # nothing loaded for a latency page
    assert acc.model.space == "nb201" and acc.model.out_dir == tmp_path / "accuracy"  # beside the latency results
    board.mode.value = "accuracy"
    assert acc.layout.display is None and all(p.layout.display == "none" for p in board.latency_parts)
    assert "accuracy predictors" in board.header.value
    assert acc.model.wait_for_distance(60) and acc.model.distance.shape == (6, 6)
    assert acc.distance_figure is not None and acc.model.error == ""
    acc.space.value = ALL  # all 28 tasks: blocks per space, nothing across spaces
    assert acc.model.wait_for_distance(60)
    matrix = acc.model.distance
    assert matrix.shape == (28, 28) and np.isnan(matrix.loc["nb201/cifar10", "nb301/cifar10"])
    assert len(acc.sources.boxes) == 28
    board.mode.value = "latency"
    assert acc.layout.display == "none" and board.onboarding.layout.display is None
    # the page address (or $MPWIDGETS_MODE) picks the mode; a wrong one is explained
    monkeypatch.setenv("QUERY_STRING", "space=fbnet&mode=accuracy")
    board = Dashboard(store=MemoryStore(), load_distance="never")
    assert board.mode.value == "accuracy" and board.accuracy.model._active
    monkeypatch.setenv("QUERY_STRING", "mode=accurcy")
    board = Dashboard(store=MemoryStore(), load_distance="never")
    assert board.mode.value == "latency" and "unknown mode 'accurcy'" in html.unescape(board.errors.value)


def test_the_arms_are_the_engines():
    from multipredict.experiments.accuracy import FIG9_ARMS

    assert ARMS == tuple(FIG9_ARMS)


def test_the_dashboard_notebook_starts_in_the_accuracy_mode(mirror, tmp_path):
    """papermill, as the notebook tests run it: the mode parameter reaches the dashboard, and the
    accuracy panel (loading in a thread of the kernel) leaves no error output."""
    import json

    papermill = pytest.importorskip("papermill")
    from mpwidgets.serve import NOTEBOOKS

    output = tmp_path / "dashboard.out.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / "dashboard.ipynb"), str(output), parameters={"mode": "accuracy"},
                               kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOKS),
                               store_widget_state=False, execution_timeout=300)
    book = json.loads(output.read_text())
    outputs = [o for c in book["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error" or "Traceback" in str(o.get("text", ""))]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
