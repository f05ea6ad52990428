"""Your own models: encode tiny generated CNNs (ONNX files and torch factories), predict a device
from a few of them, resume, and every bad input (one line naming the file or value, nothing half
written)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from multipredict.cli import main
from multipredict.errors import MultipredictError
from multipredict.measure.backends import export_onnx
from multipredict.measure.protocol import MeasurementProtocol
from multipredict.proxies import compute_proxies, synthetic_batch
from multipredict.yourmodels import encode_models, predict_latency, read_encodings
from multipredict.yourmodels.predict import cv_folds
from multipredict.yourmodels.zoo import CNNSpec, Stage, ZooFactory, build_cnn, random_spec, zoo

ROOT = Path(__file__).resolve().parents[1]
FAST = MeasurementProtocol(warmup=1, min_warmup_seconds=0.0, repeats=3, max_attempts=1)
PROFILE = ["cpu-1t-b1"]


def tiny(name: str, width: int, depth: int, kernel: int, family: str = "resnet") -> ZooFactory:
    spec = CNNSpec(name=name, family=family, resolution=32, stem_width=8,
                   stages=(Stage(depth, width, kernel, 3 if family == "mobilenet" else 1),
                           Stage(1, 2 * width, 3, 1)))
    return ZooFactory(spec)


TINY = {"a": tiny("a", 8, 1, 3), "b": tiny("b", 16, 2, 5), "c": tiny("c", 8, 1, 7, "mobilenet")}


@pytest.fixture(scope="module")
def onnx_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    for name, factory in TINY.items():
        export_onnx(factory(), torch.zeros(1, 3, 32, 32), folder / f"{name}.onnx")
    return folder


@pytest.fixture(scope="module")
def encoded(onnx_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("enc") / "enc.parquet"
    return encode_models(onnx_folder, out, profiles=PROFILE, protocol=FAST, progress=False), out


def test_the_zoo_recipe_is_seeded_and_varied():
    assert random_spec(0, 3) == random_spec(0, 3) and random_spec(0, 3) != random_spec(1, 3)
    specs = [f.spec for f in zoo(30, seed=0).values()]
    assert {s.family for s in specs} == {"resnet", "mobilenet"} and {s.resolution for s in specs} == {32, 64}
    assert {st.kernel for s in specs for st in s.stages} == {3, 5, 7}
    assert len({len(s.stages) for s in specs}) >= 2
    a, b = build_cnn(specs[0]), build_cnn(specs[0])
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert a(torch.zeros(2, *specs[0].input_shape)).shape == (2, 10)


def test_encode_an_onnx_folder_one_row_per_model(encoded, onnx_folder):
    result, out = encoded
    table = read_encodings(out)
    assert list(table["model"]) == ["a", "b", "c"] and (table["status"] == "ok").all(), table["error"].tolist()
    for row in table.itertuples():
        digest = hashlib.sha256((onnx_folder / f"{row.model}.onnx").read_bytes()).hexdigest()
        assert row.source == f"sha256:{digest}" and row.input_shape == "3x32x32"
    proxies = ["flops", "params", "synflow", "snip", "nwot", "jacov", "zen", "grad_norm"]
    assert np.isfinite(table[proxies].to_numpy()).all()
    assert (table["latency_ms:cpu-1t-b1"] > 0).all()
    # the converted ONNX model has the torch model's convolutions: the same FLOPs
    for name, factory in TINY.items():
        flops = compute_proxies(factory(), synthetic_batch((3, 32, 32), 10, 4), ["flops"])["flops"]
        assert table.set_index("model").loc[name, "flops"] == flops
    assert table.set_index("model").loc["b", "flops"] > table.set_index("model").loc["a", "flops"]
    assert not Path(f"{out}.journal.jsonl").exists()
    assert json.loads(Path(f"{out}.meta.json").read_text())["profiles"][0]["name"] == "cpu-1t-b1"


def test_a_rerun_skips_models_done_and_encodes_only_new_ones(encoded, onnx_folder, tmp_path):
    _, out = encoded
    folder = tmp_path / "models"
    folder.mkdir()
    for path in onnx_folder.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    target = tmp_path / out.name
    for suffix in ("", ".meta.json"):
        Path(f"{target}{suffix}").write_bytes(Path(f"{out}{suffix}").read_bytes())
    again = encode_models(folder, target, profiles=PROFILE, protocol=FAST, progress=False)
    assert (again.encoded, again.skipped) == (0, 3)
    export_onnx(TINY["a"](), torch.zeros(1, 3, 32, 32), folder / "d.onnx")
    more = encode_models(folder, target, profiles=PROFILE, protocol=FAST, progress=False)
    assert (more.encoded, more.skipped) == (1, 3) and list(read_encodings(target)["model"]) == ["a", "b", "c", "d"]
    # a killed run: the journal's rows count as done, a torn last line is cut off
    journal = Path(f"{target}.journal.jsonl")
    journal.write_text(json.dumps({"model": "x", "source": "factory:x", "input_shape": "3x32x32", "status": "ok",
                                   "error": "", "flops": 1.0}) + "\n" + '{"model": "torn')
    resumed = encode_models(folder, target, profiles=PROFILE, protocol=FAST, progress=False)
    assert resumed.encoded == 0 and "x" in set(read_encodings(target)["model"]) and not journal.exists()
    with pytest.raises(MultipredictError, match="other settings"):
        encode_models(folder, target, profiles=["ort-cpu-1t-b1"], protocol=FAST, progress=False)


def test_factories_through_the_python_api_and_a_failing_model_does_not_stop_the_rest(tmp_path):
    def broken():
        raise RuntimeError("cannot build this one")

    warnings = []
    result = encode_models({"a": TINY["a"], "broken": broken, "module": TINY["b"]()}, tmp_path / "enc.csv",
                           profiles=PROFILE, protocol=FAST, progress=False, input_shape=(3, 32, 32),
                           warn=warnings.append)
    table = result.table.set_index("model")
    assert table.loc["a", "status"] == "ok" and table.loc["module", "status"] == "ok"
    assert table.loc["broken", "status"] == "error" and "cannot build this one" in table.loc["broken", "error"]
    assert table.loc["a", "source"].startswith("factory:multipredict.yourmodels.zoo")
    assert len(warnings) == 1 and "'broken'" in warnings[0]
    assert result.failed == [f"broken: {table.loc['broken', 'error']}"]


def test_dynamic_onnx_shapes_need_input_shape_and_a_damaged_file_is_named(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    torch.onnx.export(TINY["a"](), (torch.zeros(1, 3, 32, 32),), str(folder / "dyn.onnx"), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}})
    (folder / "junk.onnx").write_bytes(b"not an onnx model")
    (folder / "weights.pt").write_bytes(b"pickle")
    warnings = []
    result = encode_models(folder, tmp_path / "enc.csv", profiles=PROFILE, protocol=FAST, progress=False,
                           warn=warnings.append)
    table = result.table.set_index("model")
    assert "dynamic input shape" in table.loc["dyn", "error"] and "--input-shape" in table.loc["dyn", "error"]
    assert "junk.onnx is not a readable ONNX model" in table.loc["junk", "error"]
    assert any("weights.pt" in w and "pickle" in w for w in warnings)
    fixed = encode_models(folder, tmp_path / "enc2.csv", profiles=PROFILE, protocol=FAST, progress=False,
                          input_shape="3,32,32", warn=warnings.append)
    assert fixed.table.set_index("model").loc["dyn", "status"] == "ok"
    assert fixed.table.set_index("model").loc["dyn", "input_shape"] == "3x32x32"


def synthetic_encodings(n: int = 30, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """HWL of n models on two profiles and a device whose latency is a noisy monotone function of
    them (known truth, no timing noise)."""
    rng = np.random.default_rng(seed)
    a, b = np.exp(rng.normal(0, 1, n)), np.exp(rng.normal(0, 1, n))
    device = (0.7 * a + 0.3 * b) * 3.0 * np.exp(rng.normal(0, 0.05, n))
    table = pd.DataFrame({"model": [f"m{i}" for i in range(n)], "status": "ok", "error": "",
                          "flops": a * 1e6, "params": rng.uniform(1e3, 1e5, n),
                          "latency_ms:p1": a, "latency_ms:p2": b})
    return table, pd.Series(device, index=table["model"])


@pytest.mark.parametrize("predictor", ["nnls", "ridge", "closest", "mlp"])
def test_predict_ranks_unseen_models_of_a_known_device(predictor):
    table, device = synthetic_encodings()
    measured = device.iloc[:10]
    result = predict_latency(table, pd.DataFrame({"model": measured.index, "latency_ms": measured.to_numpy()}),
                             predictor=predictor)
    predictions = result.predictions.set_index("model")
    unseen = predictions["measured_ms"].isna()
    assert unseen.sum() == 20 and (predictions.loc[~unseen, "measured_ms"] == measured).all()
    rho = stats.spearmanr(predictions.loc[unseen, "predicted_ms"], device[unseen[unseen].index]).statistic
    # one profile (closest) explains only part of this device; the fits on both explain nearly all
    assert rho > (0.5 if predictor == "closest" else 0.85), rho
    assert result.cv_folds == 10 and result.cv_spearman > 0.6
    assert result.closest_reference == "p1"
    if predictor in ("nnls", "ridge"):  # a scale-aware fit: predictions in the device's milliseconds
        ratio = predictions.loc[unseen, "predicted_ms"] / device[unseen[unseen].index]
        assert 0.5 < float(np.median(ratio)) < 2.0


def test_cross_validation_never_predicts_a_sample_it_saw():
    folds = cv_folds(12, None, 0)
    assert len(folds) == 12 and sorted(np.concatenate(folds).tolist()) == list(range(12))
    folds = cv_folds(25, None, 0)
    assert len(folds) == 5 and sorted(np.concatenate(folds).tolist()) == list(range(25))
    table, device = synthetic_encodings()
    noise = pd.Series(np.random.default_rng(1).permutation(device.to_numpy()), index=device.index)
    result = predict_latency(table, pd.DataFrame({"model": noise.index[:12], "latency_ms": noise.to_numpy()[:12]}))
    in_sample = result.predictions.set_index("model").loc[noise.index[:12], "predicted_ms"].to_numpy()
    assert not np.allclose(result.cv_predictions["cv_predicted_ms"].to_numpy(), in_sample)


def _write_measurements(path: Path, rows: dict) -> Path:
    pd.DataFrame({"model": list(rows), "latency_ms": list(rows.values())}).to_csv(path, index=False)
    return path


def test_encode_and_predict_commands_end_to_end(onnx_folder, tmp_path, capsys):
    out = tmp_path / "enc.parquet"
    assert main(["encode", "--models", str(onnx_folder), "--out", str(out), "--profiles", "cpu-1t-b1",
                 "--repeats", "3", "--warmup", "1", "--quiet"]) == 0
    assert "3 models (3 ok" in capsys.readouterr().out
    table = read_encodings(out)
    mine = _write_measurements(tmp_path / "mine.csv", dict(zip(table["model"], table["latency_ms:cpu-1t-b1"] * 2)))
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--encodings", str(out), "--measurements", str(mine), "--out", str(pred)]) == 0
    printed = capsys.readouterr().out
    assert "k = 3" in printed and "cross-validated Spearman" in printed
    frame = pd.read_csv(pred)
    assert list(frame.columns) == ["model", "predicted_ms", "measured_ms"] and len(frame) == 3
    summary = json.loads((tmp_path / "pred.json").read_text())
    assert summary["n_measurements"] == 3 and summary["cv_method"] == "leave-one-out"
    assert summary["features"] == ["latency_ms:cpu-1t-b1"]


@pytest.mark.parametrize("case, rows, message", [
    ("unknown", {"a": 1.0, "b": 2.0, "zz_not_encoded": 3.0}, "'zz_not_encoded'"),
    ("too few", {"a": 1.0, "b": 2.0}, "at least 3"),
    ("bad number", {"a": 1.0, "b": -2.0, "c": 3.0}, "line 3: -2.0"),
])
def test_bad_measurements_are_one_line_and_write_nothing(encoded, tmp_path, capsys, case, rows, message):
    _, out = encoded
    mine = _write_measurements(tmp_path / "mine.csv", rows)
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--encodings", str(out), "--measurements", str(mine), "--out", str(pred)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("multipredict: error:") and message in err and "\n" not in err and str(mine) in err
    assert not pred.exists() and not (tmp_path / "pred.json").exists()


def test_pickle_files_are_refused(encoded, tmp_path, capsys):
    _, out = encoded
    pickled = tmp_path / "enc.pkl"
    pd.DataFrame({"model": ["a"]}).to_pickle(pickled)
    assert main(["predict", "--encodings", str(pickled), "--measurements", str(pickled),
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert "pickle" in capsys.readouterr().err
    with pytest.raises(MultipredictError, match="pickle"):
        encode_models(pickled, tmp_path / "e.csv", profiles=PROFILE, protocol=FAST, progress=False)
    with pytest.raises(MultipredictError, match="pickle"):
        predict_latency(out, pickled)


def test_encode_refuses_a_bad_input_shape_and_an_empty_folder(tmp_path, capsys):
    assert main(["encode", "--models", str(tmp_path), "--out", str(tmp_path / "e.csv"), "--profiles",
                 "cpu-1t-b1"]) == 2
    assert "holds no .onnx files" in capsys.readouterr().err
    assert main(["encode", "--models", str(tmp_path), "--out", str(tmp_path / "e.csv"), "--input-shape", "3,x"]) == 2
    assert "'3,x'" in capsys.readouterr().err
    assert not (tmp_path / "e.csv").exists()


@pytest.mark.slow
def test_the_benchmark_runs_quick(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "your_models.py"), "--quick", "--csv",
                           str(tmp_path / "s.csv")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "hwl nnls" in done.stdout and (tmp_path / "s.csv").stat().st_size > 0
    assert (tmp_path / "runs" / "your_models_quick" / "encodings.parquet").exists()


def test_the_your_models_panel_without_a_browser(tmp_path):
    pytest.importorskip("ipywidgets")
    import base64
    import html

    from mpwidgets.yourmodels import YourModelsPanel

    table, device = synthetic_encodings()
    path = tmp_path / "enc.parquet"
    table.to_parquet(path, index=False)
    panel = YourModelsPanel()
    m = panel.model
    assert panel.run_button.disabled and m.run() is False and "encoding table" in m.error
    panel.path.value = str(path)
    panel.load_button.click()
    assert m.encodings is not None and "30 encoded models" in panel.info.value and panel.run_button.disabled

    def upload(name: str, content: bytes) -> None:
        from datetime import datetime, timezone  # what the browser's FileUpload sends: a tuple of one file

        panel.upload.value = ({"name": name, "type": "text/csv", "size": len(content), "content": memoryview(content),
                               "last_modified": datetime.now(timezone.utc)},)

    upload("mine.csv", b"model,latency_ms\nm0,1.0\nnot_encoded,2.0\nm2,3.0\n")
    shown = html.unescape(panel.errors.value)
    assert "mine.csv" in shown and "'not_encoded'" in shown and m.measurements is None and m.result is None
    measured = device.iloc[:10]
    upload("my device.csv", pd.DataFrame({"model": measured.index, "latency_ms": measured.to_numpy()})
           .to_csv(index=False).encode())
    assert m.error == "" and len(m.measurements) == 10 and not panel.run_button.disabled
    panel.run_button.click()
    assert m.result is not None and m.result.predictor == "nnls" and panel.figure is not None
    ranking = m.ranking()
    assert list(ranking["rank"]) == list(range(1, 31)) and ranking["predicted_ms"].is_monotonic_increasing
    assert ranking.iloc[0]["model"] in panel.table.value and "cross-validated Spearman" in panel.summary.value
    link = re.search(r"mp-yourmodels-download-predictions' download='predictions.csv' href='data:text/csv;base64,"
                     r"([^']+)'", panel.downloads.value)
    downloaded = pd.read_csv(io.BytesIO(base64.b64decode(link.group(1))))
    assert len(downloaded) == 30 and list(downloaded.columns) == ["model", "predicted_ms", "measured_ms"]
    panel.predictor.value = "closest"  # another setting forgets the result until Predict again
    assert m.result is None and panel.figure is None


def test_the_package_loads_its_parts_when_asked_and_zoo_stays_the_recipe():
    """`multipredict.yourmodels` imports encode / predict / zoo (torch) only when a name from them is
    asked for, and its ``zoo`` is the recipe function even after the ``zoo`` module was imported."""
    import subprocess
    import sys

    script = ("import sys, types; import multipredict.yourmodels as y; assert 'torch' not in sys.modules; "
              "import multipredict.yourmodels.zoo; from multipredict.yourmodels import zoo, encode_models; "
              "assert not isinstance(zoo, types.ModuleType) and callable(zoo) and y.zoo is zoo; "
              "print(len(zoo(3)))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"
