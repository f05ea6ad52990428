"""Every notebook runs headless with papermill on small parameters and writes the tables it
promises. Runs use the DEMO method (synthetic numbers, no training) so that the notebooks' wiring
is tested in seconds; the engine's methods have their own tests."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

papermill = pytest.importorskip("papermill")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
DEMO = "DEMO synthetic (not a predictor)"
SMALL = 1_000_000  # bytes: an executed notebook that embeds widget state / plotly.js is ~5 MB


def execute(name: str, tmp_path: Path, **parameters) -> dict:
    output = tmp_path / f"{name}.out.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(output), parameters=parameters,
                               kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOKS),
                               store_widget_state=False, execution_timeout=300)
    assert output.stat().st_size < SMALL, f"{output.name} is {output.stat().st_size} bytes"
    book = json.loads(output.read_text())
    errors = [o for c in book["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    return book


def test_every_notebook_has_a_parameters_cell_and_no_functions():
    books = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert {b.stem for b in books} >= {"dashboard", "task_distance", "latency_transfer", "adversarial",
                                       "accuracy_transfer", "latency_across_spaces"}
    for path in books:
        cells = json.loads(path.read_text())["cells"]
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, path.name
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert "def " not in code and "class " not in code, f"{path.name}: logic belongs in the library"
        assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code"), f"{path.name} has outputs"


def test_task_distance(tmp_path, mirror):
    out = tmp_path / "td"
    execute("task_distance", tmp_path, space="fbnet", preset="fbnet-default", bounds=[1.0, 0.9], methods=[DEMO],
            samples=[5], repeats=1, plugins=["mpwidgets._demo"], out_dir=str(out))
    pairs = pd.read_csv(out / "distance.csv")
    assert len(pairs) == 9 * 3 and pairs["spearman"].between(-1, 1).all()
    cell = pairs[(pairs["train"] == "pixel3") & (pairs["test"] == "eyeriss")]["spearman"].item()
    assert cell == pytest.approx(0.98, abs=0.006)  # paper Table 10
    closest = pd.read_csv(out / "closest.csv")
    assert list(closest["test"]) == ["fpga", "raspi4", "eyeriss"] and (closest["closest_train"] == "pixel3").all()
    bounds = pd.read_csv(out / "bounds.csv")
    assert list(bounds["bound"]) == [1.0, 0.9] and list(bounds["train_devices"]) == [9, 8]
    table12 = pd.read_csv(out / "table12.csv")
    assert len(table12) == 2 * 3 and set(table12["bound"]) == {1.0, 0.9}
    assert table12["spearman"].between(-1, 1).all() and table12["error"].isna().all()


@pytest.mark.parametrize("name, preset, table, devices", [
    ("latency_transfer", "fbnet-default", "table3", ["fpga", "raspi4", "eyeriss"]),
    ("adversarial", "fbnet-adversarial", "table2", ["gold_6226", "essential_ph_1", "samsung_s7", "pixel2"]),
])
def test_transfer_notebooks(tmp_path, mirror, name, preset, table, devices):
    out = tmp_path / name
    methods = [DEMO, "FLOPs"] if name == "latency_transfer" else [DEMO]  # FLOPs: a real method, and fast
    execute(name, tmp_path, table=table, preset=preset, methods=methods, samples=[5, 10], repeats=2,
            method_options={}, plugins=["mpwidgets._demo"], out_dir=str(out))
    results = pd.read_csv(out / "results.csv")
    assert len(results) == len(methods) * len(devices) * 2 * 2
    assert set(results["device"]) == set(devices) and set(results["samples"]) == {5, 10}
    assert results["spearman"].between(-1, 1).all() and results["error"].isna().all()
    if "FLOPs" in methods:  # FLOPs ranks FBNet's FPGA latencies well (our value; the paper has no FBNet row)
        flops = results[(results["method"] == "FLOPs") & (results["device"] == "fpga")]["spearman"]
        assert flops.between(0.8, 1.0).all()
    summary = pd.read_csv(out / "summary.csv")
    ours = summary[summary["method"] == DEMO]
    assert set(ours["device"]) == set(devices) | {"mean"} and (ours["n"] == 2).all()
    published = summary[summary["paper"].notna()]
    assert len(published) and published["paper"].between(0, 1).all() and (published["table"] == table).all()
    assert "cells: ours mean" in (out / "comparison.txt").read_text()


def test_dashboard_notebook(tmp_path, mirror):
    book = execute("dashboard", tmp_path, space="fbnet", plugins=["mpwidgets._demo"])
    outputs = [o for c in book["cells"] for o in c.get("outputs", [])]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert "widgets" not in book["metadata"]  # no widget state stored


@pytest.fixture
def no_download(monkeypatch, tmp_path):
    """The kernel papermill starts inherits this: no cache, no mirror, local data only."""
    monkeypatch.setenv("MULTIPREDICT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("MULTIPREDICT_MIRROR", str(tmp_path / "no-mirror"))
    monkeypatch.delenv("MULTIPREDICT_DATA", raising=False)


def test_notebooks_run_on_the_projects_own_data_with_no_download(tmp_path, no_download):
    out = tmp_path / "local"
    execute("task_distance", tmp_path, data="local", space="nb201", preset="nb201-local", bounds=[1.0],
            methods=[DEMO], samples=[5], repeats=1, plugins=["mpwidgets._demo"], out_dir=str(out / "td"))
    pairs = pd.read_csv(out / "td" / "distance.csv")
    assert set(pairs["test"]) == {"ort-cpu-1t-b1"} and (pairs["n_archs"] == 100).all()
    execute("latency_transfer", tmp_path, data="local", table="table1", preset="nb201-local",
            methods=["FLOPs", "TL Vec ET"], samples=[10], repeats=1, method_options={},
            options={"source_epochs": 5, "target_epochs": 5}, out_dir=str(out / "lt"))
    results = pd.read_csv(out / "lt" / "results.csv")
    assert set(results["method"]) == {"FLOPs", "TL Vec ET"} and results["error"].isna().all()
    assert results["spearman"].between(-1, 1).all() and (results["n_eval"] == 90).all()
    book = execute("dashboard", tmp_path, data="local")
    outputs = [o for c in book["cells"] for o in c.get("outputs", [])]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    # nothing downloaded: the cache may hold our own pretrainings (cache/pretrained), no upstream file
    downloaded = [p for p in (tmp_path / "empty-cache").rglob("*.pt") if "pretrained" not in p.parts]
    assert not downloaded


def test_accuracy_transfer_notebook(tmp_path, mirror):
    """The real accuracy arms on quick settings (about 1 s of training): NB201 CIFAR-100 from three
    NB201 sources, one of them a 9x_all task."""
    from multipredict.experiments.accuracy import MULTITASK_ARMS, MULTITASK_COLUMNS

    out = tmp_path / "acc"
    target, sources = "nb201/cifar100", ["nb201/cifar10", "nb201/ImageNet16-120", "nb201/svhn"]
    book = execute("accuracy_transfer", tmp_path, target=target, sources=sources, samples=[10], repeats=1,
                   quick=True, out_dir=str(out))
    outputs = [o for c in book["cells"] for o in c.get("outputs", [])]
    tables = ["".join(o["data"]["text/html"]) for o in outputs if "text/html" in o.get("data", {})]
    catalogue = next(t for t in tables if "archs_all_present" in t)
    assert catalogue.count("<tr") == 1 + 6 and "nb201/scifar100" in catalogue  # header and NB201's 6 tasks
    assert any(target in t and "transfer_best" in t for t in tables)  # the fig9_targets table is shown
    heatmap, bars = [o["data"]["application/vnd.plotly.v1+json"] for o in outputs
                     if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert heatmap["data"][0]["type"] == "heatmap" and len(heatmap["data"][0]["x"]) == 6
    distance = pd.read_csv(out / "task_distance.csv", index_col=0)
    assert distance.loc["cifar10", "cifar100"] == pytest.approx(0.97, abs=0.01)
    assert list(bars["data"][0]["x"]) == ["Vec scratch", "ZCP scratch"] + [f"ZCP transfer from {s}" for s in sources] \
        + list(MULTITASK_ARMS)
    row = pd.read_csv(out / "fig9_targets.csv")
    assert list(row["target"]) == [target] and list(row["samples"]) == [10]
    rhos = row[["vec_scratch", "zcp_scratch", "transfer_mean", "transfer_best", *MULTITASK_COLUMNS]].iloc[0]
    assert rhos.notna().all() and rhos.between(-1, 1).all(), rhos
    assert rhos["zcp_scratch"] > 0.5 and rhos["transfer_best"] > 0.5  # proxies rank NB201 cells well (ours ~0.77)
    pairs = pd.read_csv(out / "fig9_pairs.csv")
    assert sorted(pairs["source"]) == sorted(sources) and (pairs["target"] == target).all()
    assert pairs["ZCP transfer"].between(-1, 1).all()


def test_latency_across_spaces_notebook(tmp_path, mirror):
    """Fig 7's real arms on quick settings (a few seconds of training): FPGA, both directions."""
    import math

    out = tmp_path / "cross"
    book = execute("latency_across_spaces", tmp_path, devices=["fpga"], samples=[2, 4], repeats=1, quick=True,
                   out_dir=str(out))
    outputs = [o for c in book["cells"] for o in c.get("outputs", [])]
    tables = ["".join(o["data"]["text/html"]) for o in outputs if "text/html" in o.get("data", {})]
    references = next(t for t in tables if "closest on nb201" in t)
    assert "fpga" in references and "closest on fbnet" in references
    shown = next(t for t in tables if "median HWL transfer" in t)  # the fig7 overview, as the notebook shows it
    assert "nb201 -&gt; fbnet" in shown and "fbnet -&gt; nb201" in shown
    closest = pd.read_csv(out / "reference_devices.csv", index_col="device")
    assert list(closest.index) == ["fpga"] and (closest["references"] == 16).all()
    assert closest[["Spearman nb201", "Spearman fbnet"]].stack().between(-1, 1).all()
    arms = ["HWL transfer", "HWL scratch", "Vec scratch"]
    table = pd.read_csv(out / "fig7_overview.csv")
    assert sorted(table["direction"]) == ["fbnet -> nb201"] * 2 + ["nb201 -> fbnet"] * 2
    assert sorted(table["samples"]) == [2, 2, 4, 4] and (table["devices"] == 1).all()
    rhos = table[[f"median {arm}" for arm in arms]]
    assert rhos.notna().all().all() and rhos.stack().between(-1, 1).all(), rhos
    assert (table.loc[table["direction"] == "fbnet -> nb201", "median HWL transfer"] > 0.5).all()  # ours ~0.98
    figures = [o["data"]["application/vnd.plotly.v1+json"] for o in outputs
               if "application/vnd.plotly.v1+json" in o.get("data", {})]
    titles = [f["layout"]["title"]["text"].split(":")[0] for f in figures]
    assert titles == ["fbnet -> nb201", "nb201 -> fbnet", "fig6, nb201"]
    for figure in figures[:2]:
        lines = {t["name"]: t["y"] for t in figure["data"] if t.get("mode") == "lines+markers"}
        assert sorted(lines) == sorted(arms)
        assert all(len(y) == 2 and all(math.isfinite(v) and -1 <= v <= 1 for v in y) for y in lines.values()), lines
    # the from-scratch part (Fig 6 on quick settings): the curve the figure draws is the engine's CSV
    curve = pd.read_csv(out / "fig6" / "fig6_curve.csv")
    scratch = {t["name"]: t for t in figures[2]["data"]}
    assert set(scratch) == set(curve["method"]) >= {"Scratch ZCP", "Scratch HWL", "TL Vec ET"}  # quick: no HELP
    hwl = curve[curve["method"] == "Scratch HWL"].sort_values("total_measurements")
    assert list(scratch["Scratch HWL"]["x"]) == list(hwl["total_measurements"])
    assert (hwl["total_measurements"] > hwl["samples"]).all()  # HWL counts the reference devices' measurements
    assert list(scratch["Scratch HWL"]["y"]) == pytest.approx(list(hwl["spearman_mean"]))
    claims = next(t for t in tables if "reaches_at_total" in t)
    assert "Scratch ZCP" in claims and "fig6" in claims
    assert any("paper: ZCP and HWL" in "".join(o.get("text", "")) for o in outputs)


def test_nas_search_notebook(tmp_path, mirror):
    """A tiny search (20 trained archs, 20 predictor epochs) on eyeriss under its 50th latency
    percentile: the engine's files, the figures and tables the notebook shows, and the search view."""
    import numpy as np

    from multipredict import latencybudget, search
    from multipredict.spaces import nb201

    out = tmp_path / "search"
    book = execute("nas_search", tmp_path, task="cifar10", device="eyeriss", max_latency_ms=None, latency_percentile=50,
                   budget=20, options={"epochs": 20}, out_dir=str(out))
    eyeriss = latencybudget.from_table("nb201", "eyeriss").predicted_ms
    median = float(np.percentile(eyeriss, 50))
    table = search.space_table("cifar10")
    chosen = json.loads((out / "chosen.json").read_text())
    assert chosen["device"] == "eyeriss" and chosen["max_latency_ms"] == pytest.approx(median)
    assert chosen["trained_archs"] == 20 and chosen["arch"] == nb201.arch_string(chosen["arch_id"])
    assert chosen["test_accuracy"] == table.test[chosen["arch_id"]] and chosen["chosen_latency_ms"] <= median
    assert chosen["archs_counted_feasible"] == int((eyeriss <= median).sum())
    trajectory = pd.read_csv(out / "trajectory.csv")
    assert len(trajectory) == 20 and (eyeriss[trajectory["arch_id"]] <= median).all()
    assert trajectory["returned_test"].iloc[-1] == chosen["test_accuracy"]
    front = pd.read_csv(out / "pareto.csv")  # a front: slower only when predicted more accurate
    assert len(front) > 1 and front["latency_ms"].is_monotonic_increasing
    assert front["predicted_val"].is_monotonic_increasing
    assert (out / "chosen.onnx").stat().st_size > 0 and (out / "search_state.json").exists()
    outputs = [o for c in book["cells"] for o in c.get("outputs", [])]
    curve, pareto = [o["data"]["application/vnd.plotly.v1+json"] for o in outputs
                     if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert list(curve["data"][0]["y"]) == trajectory["returned_test"].tolist()
    assert [t["name"] for t in pareto["data"]] == ["space (3,000 drawn)", "predicted Pareto front", "trained"]
    assert pareto["layout"]["shapes"][0]["x1"] == pytest.approx(median)
    tables = ["".join(o["data"]["text/html"]) for o in outputs if "text/html" in o.get("data", {})]
    assert any(chosen["arch"] in t and "archs_counted_feasible" in t for t in tables)  # the summary
    texts = "".join("".join(o.get("text", "")) for o in outputs)
    assert "a public device" in texts and f"{median:.4g} ms" in texts
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)  # the search view


def test_nas_search_notebook_on_a_device_known_by_measurements(tmp_path, mirror):
    """Your device from 20 measurements (a local CPU profile): onboarded, the budget at its 75th
    percentile with the conformal margin, and the shortlist to measure shown and written."""
    from multipredict.data import local

    measured = local.latencies("nb201")["cpu-1t-b1"].dropna().sample(n=20, random_state=0)
    csv = tmp_path / "my_cpu.csv"
    pd.DataFrame({"arch": measured.index, "latency_ms": measured.to_numpy()}).to_csv(csv, index=False)
    out = tmp_path / "search"
    book = execute("nas_search", tmp_path, device=None, measurements=str(csv), device_name="my_cpu",
                   latency_percentile=75, budget=20, options={"epochs": 20}, out_dir=str(out))
    chosen = json.loads((out / "chosen.json").read_text())
    assert chosen["device"] == "my_cpu" and chosen["latency_from"] == "onboard"
    assert chosen["latency_measurements"] == 20 and chosen["conformal_factor"] > 0
    shortlist = pd.read_csv(out / "shortlist.csv")
    assert len(shortlist) == 20 and shortlist["counted_feasible"].all()
    assert shortlist["arch_id"].iloc[0] == chosen["arch_id"]  # the best trained arch first
    outputs = [o for c in book["cells"] for o in c.get("outputs", [])]
    tables = ["".join(o["data"]["text/html"]) for o in outputs if "text/html" in o.get("data", {})]
    shown = tables[-1]  # the last table: the shortlist, after the summary and the front
    assert shown.count("<tr") == 1 + 20 and all(a in shown for a in shortlist["arch"])
