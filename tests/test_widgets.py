"""The workbench without a browser: set widget values, check the spec, the figures and the error
area follow; runs go through the engine's runner with fast fake methods registered for the test."""

from __future__ import annotations

import base64
import html
import re
import threading
import time

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")

from mpwidgets import views  # noqa: E402
from mpwidgets.dashboard import Dashboard  # noqa: E402
from mpwidgets.model import CANCELLED, DONE, IDLE, ExperimentModel, explain_error, parse_budgets  # noqa: E402
from multipredict.experiments import MemoryStore, use_registry  # noqa: E402

FAKE = "Fake quick"
SLOW = "Fake gated"
BROKEN = "Fake broken"
GATE = threading.Event()
CALLS: list[dict] = []


def fake_fit_and_score(*, space, train_devices, test_devices, samples, seed, protocol="paper", **options):
    CALLS.append({"samples": samples, "seed": seed, "train": list(train_devices)})
    return [{"device": d, "spearman": min(1.0, 0.5 + samples / 100 + seed / 1000), "kendall": 0.4, "n_eval": 50,
             "n_fewshot": samples, "pool": "fake", "seconds": 0.0} for d in test_devices]


def gated_fit_and_score(**kwargs):
    GATE.wait(10)
    return fake_fit_and_score(**kwargs)


def broken_fit_and_score(**kwargs):
    raise RuntimeError("the fake method broke on purpose")


@pytest.fixture(scope="module")
def registry(mirror):
    with use_registry() as reg:
        reg.register(FAKE, fake_fit_and_score, needs_train_devices=False, description="fake for tests")
        reg.register(SLOW, gated_fit_and_score, needs_train_devices=False)
        reg.register(BROKEN, broken_fit_and_score, needs_train_devices=False)
        yield reg


@pytest.fixture(scope="module")
def loaded_model(registry):
    """One fbnet model with its task-distance matrix loaded (shared: loading is the slow part)."""
    return ExperimentModel(space="fbnet", store=MemoryStore(), load_distance="now")


@pytest.fixture
def model(registry):
    m = ExperimentModel(space="fbnet", store=MemoryStore(), load_distance="never")
    m.use_transfer, m.compare, m.samples, m.repeats = False, [FAKE], [5, 10], 2
    return m


# ---------------------------------------------------------------- the spec follows the controls
def test_preset_makes_a_valid_spec(loaded_model):
    spec = loaded_model.spec
    assert loaded_model.error == ""
    assert spec.space == "fbnet" and spec.test_devices == ("fpga", "raspi4", "eyeriss")
    assert spec.methods == ("TL Vec ET",) and "1080ti_1" in spec.train_devices
    assert list(loaded_model.closest["test"]) == ["fpga", "raspi4", "eyeriss"]
    assert (loaded_model.closest["closest_train"] == "pixel3").all()  # paper Table 10


def test_method_and_budget_widgets_change_the_spec(registry):
    m = ExperimentModel(space="fbnet", store=MemoryStore(), load_distance="never")
    methods, budgets = views.MethodPicker(m), views.BudgetPicker(m)
    methods.encoding.value = "zcpvec"
    assert m.spec.methods == ("TL ZCPVec ET",)
    assert "TL ZCPVec ET" in methods.resolved.value
    methods.embedding.value = "sample"  # no zcpvec + sample method: explained, not raised
    assert m.spec is None and "'zcpvec' encoding with the 'sample'" in m.error
    methods.encoding.value = "vec"
    assert m.spec.methods == ("TL Vec Sample",)
    methods.compare_boxes["HELP"].value = True
    methods.compare_boxes[FAKE].value = True
    assert m.spec.methods == ("TL Vec Sample", "HELP", FAKE)
    methods.predictor.value = "mlp"
    assert m.spec.method_options == {"TL Vec Sample": {"predictor": "mlp"}, "HELP": {"protocol": "help"}}
    budgets.help_protocol.value = False
    assert m.spec.method_options == {"TL Vec Sample": {"predictor": "mlp"}}
    methods.fine_tune.value = "head"
    assert m.spec.method_options == {"TL Vec Sample": {"predictor": "mlp", "target_train": "head"}}
    methods.predictor.value = "auto"
    methods.fine_tune.value = "auto"
    assert m.spec.method_options == {}
    methods.predictor.value = "mlp"
    budgets.samples.value = "20, 5 10"
    assert m.spec.samples == (20, 5, 10)
    budgets.method_samples.value = "HELP: 40; BRP-NAS: 900, 3200"  # BRP-NAS is not ticked: left out
    assert m.spec is not None, m.error
    assert m.spec.method_samples == {"HELP": (40,)} and m.spec.budgets("HELP") == (40,)
    budgets.method_samples.value = "HELPP: 40"
    assert m.spec is None and "unknown method 'HELPP'" in m.error
    budgets.method_samples.value = ""
    assert m.spec.method_samples == {}
    budgets.repeats.value = 4
    budgets.quick.value = True
    budgets.protocol.value = "help"
    assert (m.spec.repeats, m.spec.quick, m.spec.protocol) == (4, True, "help")
    assert m.spec.n_trials() == 3 * 3 * 4 and "method_samples" not in m.input_errors
    methods.use_transfer.value = False
    assert m.spec.methods == ("HELP", FAKE) and methods.encoding.disabled


def test_device_picker_ticks_search_and_whole_kind(model):
    train, test = views.DevicePicker(model, "train"), views.DevicePicker(model, "test")
    test.boxes["pixel2"].value = True
    assert model.spec.test_devices[-1] == "pixel2"
    assert "pixel2" in test.closest.value  # its closest training device is listed
    test.boxes["pixel2"].value = False
    assert "pixel2" not in model.test_devices
    test.search.value = "titan"
    shown = [n for n, b in test.boxes.items() if b.layout.display != "none"]
    assert shown and all("titan" in n for n in shown)
    test.search.value = ""
    assert not train.kind_boxes["GPU"].value  # 3 of the 15 GPUs train
    train.kind_boxes["GPU"].value = True  # select every GPU for training
    assert {"titan_rtx_64", "2080ti_1"} <= set(model.spec.train_devices)
    assert train.boxes["titanxp_1"].value
    train.kind_boxes["GPU"].value = False  # ... and none
    assert not any(d.startswith(("1080ti", "titan")) for d in model.train_devices)
    assert "silver_4114" in model.spec.train_devices


def test_preset_dropdown_swaps_devices(model):
    controls = views.SpaceControls(model)
    controls.preset.value = "fbnet-adversarial"
    assert model.spec.test_devices == ("gold_6226", "essential_ph_1", "samsung_s7", "pixel2")
    assert len(model.spec.train_devices) == 15
    model.toggle_device("test", "fpga")
    assert controls.preset.value == "custom"


def test_budget_parsing():
    assert parse_budgets("5, 10,20  40") == [5, 10, 20, 40]
    for bad, word in (("ten", "'ten'"), ("-3", "negative"), ("", "no sample budget")):
        with pytest.raises(Exception, match=word):
            parse_budgets(bad)


# ---------------------------------------------------------------- the heatmap
def test_heatmap_shows_distance_and_click_toggles(loaded_model):
    m = loaded_model
    heat = views.DistanceHeatmap(m)
    z = heat.figure.data[0].z
    assert len(z) == 27 and len(z[0]) == 27
    names = list(heat.figure.data[0].x)
    i, j = names.index("pixel3"), names.index("eyeriss")
    assert z[i][j] == pytest.approx(0.98, abs=0.006)  # paper Table 10: FBNet pixel3 vs eyeriss
    assert "Spearman ρ = %{z:.3f}" in heat.figure.data[0].hovertemplate

    def frames(role):
        return {s.name.split(":", 1)[1] for s in heat.figure.layout.shapes if s.name.startswith(role)}

    assert frames("test") == {"fpga", "raspi4", "eyeriss"}

    def click(x, y):
        heat.figure._js2py_pointsCallback = {
            "event_type": "plotly_click", "selector": None, "device_state": None,
            "points": {"trace_indexes": [0], "point_indexes": [[names.index(y), names.index(x)]],
                       "xs": [x], "ys": [y]}}

    heat.mode.value = "test"
    click("pixel2", "1080ti_1")  # a click in test mode toggles the column's device
    assert "pixel2" in m.test_devices and "pixel2" in m.spec.test_devices
    assert "pixel2" in frames("test")
    assert "pixel2" in list(heat.figure.data[1].x)  # its closest training device is starred
    click("pixel2", "1080ti_1")
    assert "pixel2" not in m.test_devices
    heat.mode.value = "train"
    click("fpga", "titanx_1")  # ... in train mode the row's device
    assert "titanx_1" in m.spec.train_devices and "titanx_1" in frames("train")
    click("fpga", "titanx_1")
    assert "titanx_1" not in m.train_devices


# ---------------------------------------------------------------- bad choices
def test_bad_choices_show_an_error_and_start_nothing(model):
    area, controls, budgets = views.ErrorArea(model), views.RunControls(model), views.BudgetPicker(model)
    errors = type("Shown", (), {"value": property(lambda self: html.unescape(area.value))})()
    budgets.samples.value = "10, lots"
    assert "'lots' is not a whole number" in errors.value
    assert controls.run_button.disabled and model.spec is None
    controls.run_button.click()
    assert model.run() is False and model.status == IDLE and model.results.empty
    budgets.samples.value = "10"
    assert errors.value == "" and not controls.run_button.disabled

    model.toggle_device("test", "pixel3")  # pixel3 is a training device too
    assert "'pixel3' are in both train_devices and test_devices" in errors.value
    model.test_devices = []
    assert "test_devices is empty" in errors.value
    model.compare = []
    assert "no method chosen" in errors.value or "test_devices is empty" in errors.value
    for text in (errors.value, model.error):
        assert "Traceback" not in text and "For further information" not in text
    assert model.run() is False and model.status == IDLE


def test_explain_error_words_only(registry):
    from multipredict.experiments import ExperimentSpec

    with pytest.raises(ValueError) as caught:
        ExperimentSpec(space="nb999", methods=[FAKE], test_devices=["fpga"])
    text = explain_error(caught.value)
    assert "unknown space 'nb999'" in text and "Value error" not in text and "pydantic" not in text
    assert explain_error(KeyError("no such thing")) == "no such thing"
    assert explain_error(ZeroDivisionError("x")).startswith("unexpected ZeroDivisionError")


# ---------------------------------------------------------------- running
def test_run_fills_plot_and_table(model):
    plot = views.ResultsPlot(model)
    table = views.ResultsTable(model, plot)
    controls = views.RunControls(model)
    seen = []
    model.observe(lambda c: seen.append(len(c["new"])), "results")
    CALLS.clear()
    controls.run_button.click()
    assert model.wait(20) and model.status == DONE, model.message
    assert len(CALLS) == 4  # 2 budgets x 2 repeats
    assert len(model.results) == 4 * 3 and model.results["error"].isna().all()
    assert seen[:4] == [0, 3, 6, 9] and seen[-1] == 12  # one update per finished trial
    assert controls.progress.value == controls.progress.max == 4
    traces = [t for t in plot.figure.data if t.name == FAKE]
    assert len(traces) == 3  # one panel per test device
    assert list(traces[0].x) == [5, 10] and traces[0].y[0] == pytest.approx(0.5505)
    assert traces[0].error_y.array[0] == pytest.approx(0.000707, abs=1e-5)  # std over the two seeds
    assert FAKE in table.table.value and "0.550 ± 0.001" in table.table.value
    csv = re.search(r"class='mp-download-csv' download='[^']+' href='data:text/csv;base64,([^']+)'",
                    table.downloads.value)
    lines = base64.b64decode(csv.group(1)).decode().splitlines()
    assert lines[0].startswith("method,space,device,samples,seed") and len(lines) == 13
    assert "mp-download-figure" in table.downloads.value

    CALLS.clear()
    assert model.run() and model.wait(20)  # the same spec again: every trial from the results store
    assert CALLS == [] and model.cached == 4 and "4 from the results store" in model.message


def test_run_streams_in_the_background_and_cancels(model):
    model.compare = [SLOW]
    model.samples, model.repeats = [1, 2, 3], 2
    plot = views.ResultsPlot(model)
    GATE.clear()
    assert model.run()
    time.sleep(0.2)
    assert model.status == "running" and model.completed == 0  # run() returned while the trial waits
    GATE.set()
    deadline = time.time() + 10
    while model.completed < 1 and time.time() < deadline:
        time.sleep(0.02)
    GATE.clear()
    model.cancel()
    GATE.set()
    assert model.wait(20)
    assert model.status == CANCELLED and 1 <= model.completed < 6
    assert len(model.results) == 3 * model.completed
    assert "cancelled after" in model.message
    assert any(t.name == SLOW for t in plot.figure.data)


def test_failed_trials_are_explained_not_raised(model):
    model.compare = [FAKE, BROKEN]
    errors = views.ErrorArea(model)
    assert model.run() and model.wait(20)
    assert model.status == DONE and len(model.trial_errors) == 4
    assert "RuntimeError: the fake method broke on purpose" in errors.value
    assert "Traceback" not in errors.value
    ok = model.results[model.results["method"] == FAKE]
    assert ok["error"].isna().all() and len(ok) == 12


def test_dashboard_assembles(registry):
    model = ExperimentModel(space="fbnet", store=MemoryStore(), load_distance="never")
    board = Dashboard(model=model)
    assert board.model is model and board.heatmap.note.value.startswith("<i>computing")
    assert board.test_picker.boxes["fpga"].value and not board.train_picker.boxes["fpga"].value


def test_dashboard_explains_a_bad_page_address(registry, monkeypatch):
    monkeypatch.setenv("QUERY_STRING", "space=fbnet&preset=nb201-nonsense")
    board = Dashboard(store=MemoryStore(), load_distance="never")
    assert board.model.space == "fbnet" and board.model.spec.name == "workbench"
    assert "unknown device set 'nb201-nonsense'" in html.unescape(board.errors.value)


def test_dashboard_models_mode_shows_the_your_models_panel(registry, monkeypatch, tmp_path):
    """The fourth mode: its panel is built when first shown, shown alone, and offers the tables in
    <results store>/yourmodels; the page address or Dashboard(mode="models") starts in it."""
    from multipredict.experiments import ParquetStore
    from test_your_models import synthetic_encodings

    folder = tmp_path / "yourmodels"
    folder.mkdir()
    synthetic_encodings(8)[0].to_parquet(folder / "enc.parquet", index=False)
    (folder / "enc.parquet.meta.json").write_text("{}")  # beside a table, not one: not offered
    board = Dashboard(model=ExperimentModel(space="fbnet", store=ParquetStore(tmp_path), load_distance="never"))
    assert board.your_models is None and board.models.layout.display == "none"  # nothing built for a latency page
    board.mode.value = "models"
    panel = board.your_models
    assert panel is not None and board.models.layout.display is None
    assert all(p.layout.display == "none" for p in board.latency_parts)
    assert board.accuracy.layout.display == board.search.layout.display == "none"
    assert "multipredict encode" in html.unescape(board.header.value)
    assert panel.model.folder == str(folder) and panel.path.options == (str(folder / "enc.parquet"),)
    panel.path.value = panel.path.options[0]
    panel.load_button.click()
    assert panel.model.error == "" and "8 encoded models" in panel.info.value
    board.mode.value = "latency"
    assert board.models.layout.display == "none" and board.onboarding.layout.display is None
    board.mode.value = "models"
    assert board.your_models is panel and panel.model.encodings is not None  # built once: its state is kept
    monkeypatch.setenv("QUERY_STRING", "mode=models")
    board = Dashboard(store=MemoryStore(), load_distance="never")
    assert board.mode.value == "models" and board.your_models is not None
    assert board.your_models.model.folder == "" and board.your_models.path.options == ()  # a store with no folder
    monkeypatch.delenv("QUERY_STRING")
    board = Dashboard(store=MemoryStore(), load_distance="never", mode="models")
    assert board.your_models is not None and all(p.layout.display == "none" for p in board.latency_parts)


# ---------------------------------------------------------------- serving
def test_serve_binds_loopback_and_culls(tmp_path):
    import json

    from mpwidgets import serve

    args = serve.build_parser().parse_args(["--port", "0"])
    argv = serve.voila_argv(args)
    assert "--Voila.ip=127.0.0.1" in argv and argv[0].endswith("dashboard.ipynb")
    assert any(a.startswith("--MappingKernelManager.cull_idle_timeout=") for a in argv)
    config = json.loads((serve.NOTEBOOKS / "voila.json").read_text())
    assert config["Voila"]["ip"] == "127.0.0.1"
    assert config["MappingKernelManager"]["cull_idle_timeout"] > 0
    from voila.app import Voila

    app = Voila()  # Voila started by hand from notebooks/ reads the same file
    app.initialize([argv[0], f"--Voila.config_file_paths={serve.NOTEBOOKS}"])
    assert app.ip == "127.0.0.1" and not app.open_browser
    assert app.config.MappingKernelManager.cull_idle_timeout == 600
    assert serve.main(["--notebook", str(tmp_path / "missing.ipynb")]) == 2


def test_the_workbench_runs_on_the_projects_own_data(registry, monkeypatch, tmp_path):
    """MULTIPREDICT_DATA=local: this machine's profiles, their distances and a real FLOPs run."""
    monkeypatch.setenv("MULTIPREDICT_DATA", "local")
    monkeypatch.setenv("MULTIPREDICT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("MULTIPREDICT_MIRROR", str(tmp_path / "no-mirror"))
    m = ExperimentModel(space="nb201", store=MemoryStore(), load_distance="now")
    assert m.presets() == ["nb201-local"] and m.test_devices == ["ort-cpu-1t-b1"]
    assert set(m.train_devices) == {"cpu-1t-b1", "cpu-1t-b8", "ort-cpu-1t-b8"}
    assert set(m.device_groups()["CPU"]) >= {"cpu-1t-b1", "ort-cpu-1t-b1"}
    assert m.distance.loc["cpu-1t-b1", "cpu-1t-b8"] > 0.5
    m.use_transfer, m.compare, m.samples, m.repeats = False, ["FLOPs"], [10], 1
    assert m.run() and m.wait(60) and m.status == DONE, m.message
    assert len(m.results) == 1 and m.results["error"].isna().all() and m.results["spearman"].item() > 0.3
    # a page asking for a paper device set says the local data lacks it, and shows what it has
    board = Dashboard(preset="nb201-default", store=MemoryStore(), load_distance="never")
    assert "no data under the current data source" in html.unescape(board.errors.value)
    assert board.model.test_devices == ["ort-cpu-1t-b1"]
    # `python3 dev.py run --data local` hands the choice to the Voila kernels through the environment
    from mpwidgets import serve

    monkeypatch.delenv("MULTIPREDICT_DATA")
    monkeypatch.setenv("MULTIPREDICT_RESULTS", str(tmp_path))  # recorded, so the test leaves it as it was
    serve.prepare_environment(serve.build_parser().parse_args(["--data", "local", "--results", str(tmp_path)]))
    import os

    assert os.environ["MULTIPREDICT_DATA"] == "local"


def test_the_workbench_offers_the_engines_choices():
    """The widgets list these without importing torch; they must not drift from the engine's."""
    from mpwidgets import model
    from multipredict.methods import transfer

    from typing import get_args

    fields = transfer.TrialOptions.model_fields
    assert model.PREDICTORS == get_args(fields["predictor"].annotation)
    assert model.FINE_TUNE == get_args(fields["target_train"].annotation)


# ---------------------------------------------------------------- onboarding a device
# small settings: a real onboard() run in seconds instead of a pretraining of minutes
TINY_ONBOARDING = {"source_devices": ["pixel3", "silver_4114"], "source_epochs": 2, "source_samples": 300,
                   "target_epochs": 5}


def _upload(panel, name: str, content: bytes) -> None:
    """What the browser's FileUpload sends: a tuple of one file."""
    from datetime import datetime, timezone

    panel.upload.value = ({"name": name, "type": "text/csv", "size": len(content), "content": memoryview(content),
                           "last_modified": datetime.now(timezone.utc)},)


def test_onboarding_a_measured_profile(mirror):
    from mpwidgets.onboarding import OnboardingModel, OnboardingPanel

    m = OnboardingModel(space="nb201", options=TINY_ONBOARDING)
    panel = OnboardingPanel(model=m)
    assert "source_epochs=2" in panel.children[1].value  # the page says the settings are not the defaults
    assert {"cpu-1t-b1", "ort-cpu-1t-b8"} <= {v for _, v in panel.profile.options}
    assert panel.run_button.disabled  # nothing to onboard yet
    panel.profile.value = "cpu-1t-b1"
    assert m.error == "" and len(m.measurements) == 20 and m.device == "cpu-1t-b1"
    assert "20 of its 100 measurements" in panel.source.value and not panel.run_button.disabled
    stages = []
    m.observe(lambda change: stages.append(change["new"]), "stage")
    panel.run_button.click()
    assert m.wait(600) and m.status == DONE, m.error
    assert stages[:1] == ["load"] and {"cross-validate", "predict"} <= set(stages)
    result = m.result
    assert result.n_measurements == 20 and -1 <= result.cv_spearman <= 1
    assert result.closest_source in ("pixel3", "silver_4114") and len(result.predictions) == 15625
    assert panel.progress.value == 1 and "done: predicted 15625 archs" in panel.status.value
    assert f"{result.cv_spearman:.3f}" in panel.estimate.value and result.closest_source in panel.estimate.value
    points = panel.figure.data[1]
    assert len(points.x) == 20 and panel.figure.layout.xaxis.type == "log" == panel.figure.layout.yaxis.type
    assert sorted(points.x) == sorted(m.measurements["latency_ms"])
    assert "closest public device (Eq. 1)" in panel.summary.value
    assert result.start_sources[0] == result.closest_source and len(result.start_sources) == 2
    assert f"fine-tuned from (predictions averaged)</th><td>{', '.join(result.start_sources)}" in panel.summary.value
    csv = re.search(r"class='mp-onboard-download-predictions' download='cpu-1t-b1_predictions.csv' "
                    r"href='data:text/csv;base64,([^']+)'", panel.downloads.value)
    lines = base64.b64decode(csv.group(1)).decode().splitlines()
    assert lines[0] == "arch_id,arch,predicted_ms,measured_ms" and len(lines) == 15626
    _check_quality_and_suggestions(panel)
    # the same onboarding again: the stored result, read back (no stage runs), and the panel says so
    stages.clear()
    panel.run_button.click()
    assert m.wait(60) and m.status == DONE, m.error
    assert "cross-validate" not in stages and m.result.reused_from and "stored result" in panel.status.value
    assert m.result.predictions.equals(result.predictions)
    # a bad file afterwards: its message, and the old result is gone
    _upload(panel, "next.csv", b"arch,latency_ms\n1,2\n")
    assert m.result is None and panel.figure is None and panel.estimate.value == ""
    assert m.suggestions is None and panel.suggestions.value == "" and panel.next_box.layout.display == "none"
    assert "next.csv" in html.unescape(panel.errors.value) and "at least 5" in m.error
    assert panel.run_button.disabled and m.run() is False


def _check_quality_and_suggestions(panel) -> None:
    """After a run: the estimate on the archs not measured with its interval, where the interval
    comes from and the advice, above the cross-validated line; then the next archs to measure."""
    import json

    import pandas as pd

    from multipredict import suggest
    from mpwidgets import onboarding

    m, result = panel.model, panel.model.result
    q = result.quality
    interval = (f"{q['spearman_estimate']:.3f} ({q['level']:.0%} interval {q['spearman_low']:.3f}-"
                f"{q['spearman_high']:.3f})")
    assert q["level"] == 0.8 and "80% interval" in interval and m.quality_interval() == interval
    shown = html.unescape(panel.estimate.value)
    assert interval in shown and q["interval_from"] in shown and q["advice"][1:] in shown
    assert shown.index(interval) < shown.index("Cross-validated Spearman")  # the estimate first, the CV value kept
    assert f"{result.cv_spearman:.3f}" in shown and interval in html.unescape(panel.summary.value)
    record = re.search(r"class='mp-onboard-download-summary' download='cpu-1t-b1_summary.json' "
                       r"href='data:application/json;base64,([^']+)'", panel.downloads.value)
    assert json.loads(base64.b64decode(record.group(1))) == json.loads(json.dumps(result.summary_record(), default=str))
    # the next archs to measure: hidden before a run (test_a_bad_upload...), here with the engine's defaults
    assert panel.next_box.layout.display != "none" and m.suggestions is None and panel.suggestions.value == ""
    assert panel.suggest_k.value == 10 and panel.suggest_strategy.value == suggest.default_strategy("nb201")
    assert dict(panel.suggest_strategy.options)[f"{suggest.default_strategy('nb201')} (default)"]
    assert [v for _, v in panel.suggest_strategy.options] == list(suggest.STRATEGIES)
    assert set(onboarding.STRATEGY_NOTES) == set(suggest.STRATEGIES)  # each choice explains itself under the list
    measured = set(m.measurements["arch_id"])
    panel.suggest_k.value = 5
    panel.suggest_button.click()
    assert m.wait(60) and m.suggest_status == "done", m.error
    table = m.suggestions
    assert list(table.columns) == ["order", "arch", "arch_id"] and len(table) == 5
    assert table["order"].tolist() == [1, 2, 3, 4, 5] and not measured & set(table["arch_id"])
    expected = suggest.suggest("nb201", 5, measured=m.measurements["arch_id"], seed=0)
    assert table["arch_id"].tolist() == expected and table.equals(suggest.suggestion_table("nb201", expected))
    assert panel.suggestions.value.count("<tr>") == 6 and all(f"<td>{a}</td>" in panel.suggestions.value
                                                             for a in expected)
    assert f"5 archs to measure next ({suggest.default_strategy('nb201')})" in panel.suggest_status.value
    assert m.error == ""
    link = re.search(r"class='mp-onboard-download-suggestions' download='cpu-1t-b1_next_5.csv' "
                     r"href='data:text/csv;base64,([^']+)'", panel.suggest_download.value)
    import io

    assert pd.read_csv(io.BytesIO(base64.b64decode(link.group(1)))).equals(table)  # as multipredict suggest writes
    # another strategy or k drops the table (the download always matches what is shown); active uses the latencies
    panel.suggest_strategy.value = "active"
    assert m.suggestions is None and panel.suggest_download.value == "" and "disagrees" in panel.strategy_note.value
    panel.suggest_k.value = 3
    panel.suggest_button.click()
    assert m.wait(120) and m.suggest_status == "done", m.error
    assert len(m.suggestions) == 3 and not measured & set(m.suggestions["arch_id"])
    # k above the archs not yet measured: the engine's one line in the error area
    panel.suggest_strategy.value = "reference"
    panel.suggest_k.value = 20_000
    panel.suggest_button.click()
    assert m.wait(60) and m.suggest_status == "failed"
    assert "k=20000 is more than the 15605 candidate archs not yet measured" in html.unescape(panel.errors.value)
    assert m.suggestions is None and panel.suggestions.value == "" and panel.suggest_download.value == ""
    assert m.result is result and not panel.run_button.disabled  # the onboarding result stays
    panel.suggest_k.value = 10
    assert m.error == "" and panel.errors.value == "" and m.suggest_status == "idle"


def test_a_bad_upload_says_what_the_cli_says(tmp_path, capsys):
    from mpwidgets.onboarding import OnboardingModel, OnboardingPanel
    from multipredict.cli import main

    panel = OnboardingPanel(model=OnboardingModel(space="nb201", options=TINY_ONBOARDING))
    m = panel.model
    bad = {"columns.csv": b"id,ms\n1,2\n", "arch.csv": b"arch,latency_ms\n|conv~0|,1\n1,2\n2,3\n3,4\n4,5\n",
           "negative.csv": b"arch,latency_ms\n1,-2\n2,3\n3,4\n4,5\n5,6\n", "few.csv": b"arch,latency_ms\n1,2\n",
           "sheet.xlsx": b"PK\x03\x04", "binary.csv": bytes(range(256)) * 8, "broken.parquet": b"not parquet"}
    for name, content in bad.items():
        _upload(panel, name, content)
        assert m.measurements is None and m.result is None and panel.run_button.disabled, name
        shown = html.unescape(panel.errors.value)
        assert name in shown and "Traceback" not in shown and "\n" not in m.error, name
        path = tmp_path / name
        path.write_bytes(content)
        code = main(["onboard", "--space", "nb201", "--measurements", str(path)])
        cli = capsys.readouterr().err.removeprefix("multipredict: error: ").strip()
        assert code == 2 and m.error == cli.replace(str(path), name), name  # the CLI's words, the file's own name
    assert m.run() is False and m.status == IDLE and m.result is None
    assert panel.next_box.layout.display == "none" and panel.suggest_button.disabled  # suggestions come after a run
    good = b"arch,latency_ms\n" + b"".join(b"%d,%d.5\n" % (i, i) for i in range(1, 8))
    _upload(panel, "my phone.csv", good)
    assert m.error == "" and len(m.measurements) == 7 and m.device == "my_phone" and not panel.run_button.disabled


def test_the_suggested_strategy_follows_the_space_until_one_is_chosen():
    """Each space's default strategy is preselected and marked "(default)"; switching the space
    switches it, unless the user chose another, which stays."""
    from mpwidgets import OnboardingPanel
    from multipredict import suggest

    panel = OnboardingPanel(space="fbnet")
    m = panel.model
    assert suggest.default_strategy("fbnet") != suggest.default_strategy("nb201")  # else this test shows nothing
    for space in ("fbnet", "nb201", "fbnet"):
        m.space = space
        default = suggest.default_strategy(space)
        assert m.suggest_strategy == panel.suggest_strategy.value == default
        assert [label for label, _ in panel.suggest_strategy.options if label.endswith("(default)")] == \
            [f"{default} (default)"]
    panel.suggest_strategy.value = "random"  # the user's choice outlives a change of space
    m.space = "nb201"
    assert m.suggest_strategy == panel.suggest_strategy.value == "random"
    assert dict(panel.suggest_strategy.options)[f"{suggest.default_strategy('nb201')} (default)"]


def test_the_dashboard_has_the_onboarding_panel_in_its_space(registry, monkeypatch):
    from mpwidgets import OnboardingPanel, serve

    monkeypatch.setenv("MPWIDGETS_ONBOARD_OPTIONS", '{"source_epochs": 3}')
    board = Dashboard(model=ExperimentModel(space="fbnet", store=MemoryStore(), load_distance="never"))
    assert isinstance(board.onboarding, OnboardingPanel) and board.onboarding in board.children
    onboarding = board.onboarding.model
    assert onboarding.space == "fbnet" and onboarding.options == {"source_epochs": 3}
    assert board.onboarding.profile.disabled  # data/latency/ has no fbnet profile
    board.model.space = "nb201"  # one search space for the page
    assert onboarding.space == "nb201" and "cpu-1t-b1" in [v for _, v in board.onboarding.profile.options]
    monkeypatch.setenv("MPWIDGETS_ONBOARD_OPTIONS", "[not json")
    board = Dashboard(model=ExperimentModel(space="fbnet", store=MemoryStore(), load_distance="never"))
    assert "MPWIDGETS_ONBOARD_OPTIONS is not JSON" in board.model.error and board.onboarding.model.options == {}
    # the server hands small settings to its kernels (the browser test uses it) and refuses a bad one
    import os

    monkeypatch.delenv("MPWIDGETS_ONBOARD_OPTIONS")
    monkeypatch.setenv("MULTIPREDICT_RESULTS", os.environ.get("MULTIPREDICT_RESULTS", "results"))  # restored after
    serve.prepare_environment(serve.build_parser().parse_args(["--onboard-options", '{"source_epochs": 2}']))
    assert os.environ["MPWIDGETS_ONBOARD_OPTIONS"] == '{"source_epochs": 2}'
    with pytest.raises(SystemExit):
        serve.build_parser().parse_args(["--onboard-options", "[2]"])


def test_start_loader_delivers_the_value_or_one_line_problem(caplog):
    """The background load every panel uses: the value, or the error in one line after its context;
    only errors that are not the user's reach the log (with a traceback)."""
    from mpwidgets.model import ChoiceError, start_loader

    got = []
    assert start_loader(lambda: 3, lambda *a: got.append(a), now=True, name="mp-ok") is None
    thread = start_loader(lambda: 1 / 0, lambda *a: got.append(a), now=False, name="mp-broken",
                          context="the heatmap could not be computed")
    thread.join(10)
    assert got[0] == (3, "")
    assert got[1][0] is None and got[1][1].startswith("the heatmap could not be computed: unexpected ZeroDivisionError")
    assert "mp-broken failed" in caplog.text and "Traceback" in caplog.text
    caplog.clear()

    def refuse():
        raise ChoiceError("pick a device first")

    start_loader(refuse, lambda *a: got.append(a), now=True, name="mp-choice", expected=(ChoiceError,))
    assert got[2] == (None, "pick a device first") and caplog.text == ""


def test_search_model_explains_an_onboarded_device_that_is_missing(tmp_path):
    from mpwidgets.search import ONBOARDED, SearchModel

    m = SearchModel(device="eyeriss", budget=30, load="now", out_dir=tmp_path)
    m.activate()
    assert m.latency is not None and m.latency_error == ""
    m.device = ONBOARDED
    assert m.latency is None and m.latency_error.startswith("no device onboarded yet")
