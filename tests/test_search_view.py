"""The dashboard's search view without a browser: ``mpwidgets.search`` driven through its widgets
on tiny searches (NB201 CIFAR-10 on eyeriss, 20-40 trained archs, 20 predictor epochs: seconds)."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import zipfile

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")

from plotly.callbacks import Points  # noqa: E402

from mpwidgets.model import CANCELLED, DONE, FAILED, ExperimentModel  # noqa: E402
from mpwidgets.search import ONBOARDED, SearchModel, SearchPanel  # noqa: E402
from multipredict.search import best_so_far  # noqa: E402

QUICK = {"epochs": 20}  # the predictor's epochs: a smoke test, not the paper's 250
TINY_ONBOARDING = {"source_devices": ["pixel3", "silver_4114"], "source_epochs": 2, "source_samples": 300,
                   "target_epochs": 5}


@pytest.fixture
def panel(mirror, tmp_path):
    return SearchPanel(model=SearchModel(device="eyeriss", budget=30, options=QUICK, load="now", out_dir=tmp_path))


def click(figure, trace_name: str, index: int) -> None:
    """What plotly.js sends when a point is clicked in the browser."""
    number, trace = next((i, t) for i, t in enumerate(figure.data) if t.name == trace_name)
    trace._dispatch_on_click(Points(point_inds=[index], xs=[trace.x[index]], ys=[trace.y[index]],
                                    trace_name=trace.name, trace_index=number), None)


def download(widget_html: str, css: str) -> bytes:
    found = re.search(rf"class='{css}' download='[^']+' href='data:[^;]+;base64,([^']+)'", widget_html)
    assert found, f"no {css} link in {widget_html[:300]}"
    return base64.b64decode(found[1])


def test_a_tiny_search_shows_the_curve_the_front_and_a_clicked_arch(panel):
    from multipredict import search
    from multipredict.spaces import nb201

    m = panel.model
    latency = m.latency.bounded_ms(None)
    # the slider spans the device's latencies; the percentile buttons set it
    assert (panel.max_ms.min, panel.max_ms.max) == pytest.approx((latency.min(), latency.max()))
    p25, p50, p75 = (m.percentiles[p] for p in ("25", "50", "75"))
    assert p25 < p50 < p75 and p50 == pytest.approx(np.percentile(latency, 50))
    assert m.max_ms == pytest.approx(p50) and panel.max_ms.value == pytest.approx(p50)  # a device starts at its median
    assert f"{p25:.4g} ms" in panel.percentile_buttons["25"].description
    panel.percentile_buttons["25"].click()
    assert m.max_ms == pytest.approx(p25) and panel.max_ms.value == pytest.approx(p25)
    assert m.counted == int((latency <= p25).sum()) and f"{m.counted:,} of 15,625" in panel.budget_note.value
    assert m.error == "" and not panel.run_button.disabled
    assert panel.level.layout.display == panel.margin.layout.display == "none"  # a public device: measured, no margin

    live = []  # points of the curve on the page after each batch, before the end
    m.observe(lambda change: live.append(len(panel.curve_figure.data[0].x)) if m.result is None else None, "curve")
    panel.run_button.click()
    assert m.wait(120) and m.status == DONE, m.error
    assert live == [20, 30]  # the predictor strategy's batches: 10 random archs, then 2 batches of 10
    r = m.result
    t = r.trajectory
    assert len(t) == 30 and (latency[t["arch_id"]] <= p25).all()  # every trained arch fits the budget
    assert panel.progress.value == 30 and "done: 30 archs trained" in panel.status.value
    # the curve: the engine's figure, the arch the search would return after each trained arch
    curve = panel.curve_figure.data[0]
    assert list(curve.x) == list(range(1, 31)) and list(curve.y) == t["returned_test"].tolist()
    assert best_so_far("cifar10", t["arch_id"])["returned_test"].tolist() == t["returned_test"].tolist()
    # the front: space, predicted front, trained archs, the feasible region shaded up to the budget
    front = panel.front_figure
    assert [trace.name for trace in front.data] == ["space (3,000 drawn)", "predicted Pareto front", "trained"]
    assert len(front.data[2].x) == 30 and front.layout.shapes[0].x1 == pytest.approx(p25)
    assert r.front()["arch_id"].tolist() == list(front.data[1].customdata)
    # the chosen arch first, then a clicked one
    assert m.selected == r.chosen and nb201.arch_string(r.chosen) in html.unescape(panel.details.value)
    assert "the search's choice" in html.unescape(panel.details.value) and str(r.chosen) in panel.summary.value
    index = 3
    clicked = int(front.data[2].customdata[index])
    click(front, "trained", index)
    table = search.space_table("cifar10")
    d = m.details
    assert d["arch_id"] == clicked and d["arch"] == nb201.arch_string(clicked) and d["trained"]
    assert d["table_val"] == table.val[clicked] == d["predicted_val"]  # a trained arch: the table's value
    assert d["table_test"] == table.test[clicked] and d["latency_ms"] == latency[clicked]
    shown = html.unescape(panel.details.value)
    assert d["arch"] in shown and f"{d['table_test']:.2f}%" in shown and f"{d['latency_ms']:.4g} ms" in shown
    assert json.loads(download(panel.details.value, "mp-search-download-arch"))["arch_id"] == clicked
    untrained = int(front.data[0].customdata[0])
    click(front, "space (3,000 drawn)", 0)
    assert m.details["arch_id"] == untrained and m.details["predicted_val"] == r.predicted_accuracy[untrained]
    # the downloads: write_search's folder as a zip, its files on disk
    files = zipfile.ZipFile(io.BytesIO(download(panel.downloads.value, "mp-search-download-zip")))
    assert set(files.namelist()) == set(m.files) >= {"trajectory.csv", "pareto.csv", "chosen.json", "chosen.onnx"}
    assert json.loads(files.read("chosen.json"))["arch_id"] == r.chosen
    assert panel.shortlist.value == ""  # a public device: its latency is known, no shortlist to measure


def test_bad_input_is_one_line_in_the_panel(panel):
    m = panel.model
    m.max_ms = 1.0  # below the fastest arch on eyeriss (1.68 ms): the engine's check_budget words
    error = html.unescape(panel.errors.value)
    assert "max latency 1 ms is below every arch on 'eyeriss'" in error and "1.68 ms" in error
    assert "Traceback" not in error and "\n" not in m.error and panel.run_button.disabled
    assert m.run() is False and m.status == "idle"
    panel.percentile_buttons["50"].click()
    assert m.error == "" and not panel.run_button.disabled
    panel.max_ms.value = panel.max_ms.min  # the fastest archs only (64 of them) for 100 trained archs
    panel.budget.value = 100
    assert "leaves 64 archs on 'eyeriss'" in html.unescape(panel.errors.value) and panel.run_button.disabled
    panel.percentile_buttons["50"].click()
    assert m.error == "" and panel.errors.value == "" and not panel.run_button.disabled
    panel.budget.value = 5  # fewer than the 10 random archs the search starts with: the engine says so when run
    panel.run_button.click()
    assert m.wait(60) and m.status == FAILED
    assert "budget=5 must lie in init..7965" in html.unescape(panel.errors.value) and "Traceback" not in m.error
    assert panel.front_figure is None
    m.device = "nodevice"
    assert "unknown NB201 device 'nodevice'; valid NB201 devices: 1080ti_1" in html.unescape(panel.errors.value)
    assert m.latency is None and panel.run_button.disabled


def test_cancel_keeps_the_trained_archs_and_a_rerun_continues(mirror, tmp_path):
    m = SearchModel(device="eyeriss", budget=40, options=QUICK, load="now", out_dir=tmp_path)

    def cancel_after_one_batch(change):
        if change["new"] == 20:
            m.cancel()

    m.observe(cancel_after_one_batch, "trained")
    assert m.run() and m.wait(120)
    m.unobserve(cancel_after_one_batch, "trained")
    assert m.status == CANCELLED and m.result is None and "cancelled after 20 of 40 archs" in m.message
    state = json.loads((m.run_folder() / "search_state.json").read_text())["trained"]
    assert len(state) == 20
    assert m.run() and m.wait(120) and m.status == DONE
    assert m.result.trajectory["arch_id"].tolist()[:20] == state and len(m.result.trajectory) == 40


def test_the_dashboard_searches_on_the_device_onboarded_there(mirror, tmp_path, monkeypatch):
    from multipredict.experiments import MemoryStore, ParquetStore
    from multipredict.spaces import nb201

    from mpwidgets.dashboard import Dashboard

    board = Dashboard(model=ExperimentModel(space="nb201", store=ParquetStore(tmp_path), load_distance="never"),
                      onboard_options=TINY_ONBOARDING)
    view, m = board.search, board.search.model
    assert view.layout.display == "none" and not m._active and m.latency is None  # nothing loaded yet
    assert m.out_dir == tmp_path / "search" and ONBOARDED not in [v for _, v in m.devices()]
    # onboard a device from 20 measurements of a local profile, in the latency workbench's panel
    onboarding = board.onboarding.model
    onboarding.profile = "cpu-1t-b1"
    assert onboarding.run() and onboarding.wait(120) and onboarding.result is not None, onboarding.error
    board.mode.value = "search"
    assert view.layout.display is None and all(p.layout.display == "none" for p in board.latency_parts)
    assert m._active and m.wait_for_latency(60) and m.latency.device == "eyeriss"
    label = dict((v, k) for k, v in view.device.options)[ONBOARDED]
    assert label.startswith(onboarding.result.device) and "onboarded" in label
    view.device.value = ONBOARDED
    assert m.latency.source == "onboard" and m.latency.n_measurements == 20
    assert m.max_ms == pytest.approx(m.percentiles["50"])
    view.budget.value = 20
    # a budget on predictions: compared with each prediction times the conformal margin, in the engine's words
    bound = m.latency.bounded_ms(m.level)
    view.max_ms.value = float(np.sort(bound)[19]) * (1 - 1e-9)  # the 19 fastest bounds fit, for 20 to train
    assert "leaves 19 archs on" in m.error and "conformal margin" in m.error and view.run_button.disabled
    view.max_ms.value = float(np.percentile(bound, 30))
    assert m.error == "" and m.counted == int((bound <= m.max_ms).sum()) >= 20
    assert "conformal margin" in panel_text(view.budget_note) and view.max_ms.max == pytest.approx(bound.max())
    assert view.level.layout.display is None  # the margin's level: for a device known by measurements only
    view.level.value = 0.5  # a narrower margin counts more archs under the same budget
    assert m.counted == int((m.latency.bounded_ms(0.5) <= m.max_ms).sum()) > int((bound <= m.max_ms).sum())
    assert "50% conformal margin" in panel_text(view.budget_note)
    assert view.margin.layout.display is None and not view.level.disabled
    view.margin.value = False  # no margin: the predictions alone (search --no-margin), the level greyed out
    assert m.counting_level is None and view.level.disabled and "no margin" in panel_text(view.budget_note)
    assert m.counted == int((m.latency.bounded_ms(None) <= m.max_ms).sum()) > int((bound <= m.max_ms).sum())
    assert m.settings()["level"] is None
    view.margin.value = True
    view.level.value = 0.95
    view.run_button.click()
    assert m.wait(120) and m.status == DONE, m.error
    r = m.result
    assert r.latency.device == onboarding.result.device and r.summary()["latency_from"] == "onboard"
    shortlist = r.shortlist()
    shown = panel_text(view.shortlist)
    assert f"Measure these on {r.latency.device}" in shown and shortlist["arch"].iloc[0] in shown
    assert shortlist["arch_id"].iloc[0] == r.chosen and nb201.arch_string(r.chosen) in panel_text(view.details)
    assert (bound[r.trajectory["arch_id"]] <= m.max_ms).all() and "shortlist.csv" in m.files
    # onboarding started over: its device is gone from the search view, which falls back to a public one
    onboarding.profile = "cpu-1t-b8"
    assert m.device == "eyeriss" and ONBOARDED not in [v for _, v in view.device.options]
    # the page address picks the mode
    monkeypatch.setenv("QUERY_STRING", "mode=search")
    board = Dashboard(store=MemoryStore(), load_distance="never")
    assert board.mode.value == "search" and board.search.model._active and board.accuracy.layout.display == "none"


def panel_text(widget) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", widget.value))
