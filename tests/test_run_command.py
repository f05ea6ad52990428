"""`multipredict run SPEC.yaml --out DIR` on the spec the dashboard stores: real methods, quick settings."""

from __future__ import annotations

import pandas as pd
import pytest

from multipredict.cli import main
from multipredict.experiments import ParquetStore

model_module = pytest.importorskip("mpwidgets.model")


@pytest.fixture
def dashboard_spec(tmp_path, mirror):
    """The spec.yaml the dashboard's results store writes under <store>/<hash>/ for its current choices."""
    model = model_module.ExperimentModel(space="fbnet", load_distance="never", samples=[10], repeats=1,
                                         quick=True, compare=["FLOPs"])
    spec = model.build_spec()
    store = ParquetStore(tmp_path / "dashboard-results")
    store.save_spec(spec)
    return spec, store.spec_dir(spec) / "spec.yaml"


@pytest.mark.slow
def test_run_a_spec_the_dashboard_wrote(dashboard_spec, tmp_path, capsys):
    spec, path = dashboard_spec
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "TL Vec ET (10)" in printed and "FLOPs (10)" in printed and "results.csv" in printed
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 * len(spec.test_devices) and results["error"].isna().all()
    assert set(results["method"]) == {"TL Vec ET", "FLOPs"} and results["spearman"].between(-1, 1).all()
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["device"]) == set(spec.test_devices) | {"mean"} and (summary["n"] == 1).all()
    assert (out / "comparison.txt").read_text().startswith("fbnet")
    assert (out / "store" / spec.spec_hash() / "spec.yaml").exists()
    # a rerun into the same folder comes from the store: the same numbers
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), summary)


def test_run_names_a_missing_or_bad_spec_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "out")]) == 2
    assert "spec file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("space: nb999\nmethods: [FLOPs]\ntest_devices: [fpga]\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "not a valid ExperimentSpec" in err and "nb999" in err
    good = tmp_path / "good.yaml"
    good.write_text("space: fbnet\nmethods: [FLOPs]\ntest_devices: [fpga]\n")
    assert main(["run", str(good), "--out", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "--executor dask" in capsys.readouterr().err
