"""Dask as the runner's cluster path: a small real reproduction on a LocalCluster of two worker
processes gives exactly the serial numbers; trials carry the caller's config overrides and run with one
torch thread on the workers."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from multipredict import config
from multipredict.errors import MultipredictError
from multipredict.experiments import ExperimentSpec, reproduce, run
from multipredict.experiments.runner import TrialCall, execute_trial, expand_trials, trial_call

pytest.importorskip("distributed")

# a real method with tiny settings: FBNet's TL Vec ET pretrains on 100 archs x 9 devices for one epoch
# (about a second per trial), two repeats so each worker gets one
TINY = {"source_epochs": 1, "source_samples": 100, "target_epochs": 5}
NUMBERS = ["method", "device", "samples", "seed", "spearman", "kendall", "n_eval", "n_fewshot"]


def read_config_overrides(**_):
    return [{"device": "fpga", "spearman": 0.5, "pool": str(config.mirror_dir())}]


def test_a_trial_carries_the_callers_config_overrides(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "_overrides", {"mirror": tmp_path / "mirror"})
    spec = ExperimentSpec.from_preset("fbnet-default", methods=["FLOPs"], samples=[10])
    call = trial_call(spec, expand_trials(spec)[0])
    assert call.config == {"mirror": tmp_path / "mirror"}
    # a worker process starts without them: the call brings them
    monkeypatch.setattr(config, "_overrides", {})
    outcome = execute_trial(TrialCall(read_config_overrides, {}, single_thread=False, config=call.config))
    assert outcome["rows"][0]["pool"] == str(tmp_path / "mirror")


def test_a_scheduler_needs_the_dask_executor(tmp_path):
    spec = ExperimentSpec.from_preset("fbnet-default", methods=["FLOPs"], samples=[10])
    with pytest.raises(MultipredictError, match="executor='dask'"):
        run(spec, "processes", scheduler="tcp://127.0.0.1:8786")


@pytest.mark.slow
def test_a_local_dask_cluster_gives_the_serial_numbers(tmp_path, mirror):
    options = dict(repeats=2, methods=["TL Vec ET"], options=TINY, samples=[10])
    started = time.perf_counter()
    serial = reproduce("table3", out_dir=tmp_path / "serial", **options)
    serial_s = time.perf_counter() - started
    started = time.perf_counter()
    cluster = reproduce("table3", out_dir=tmp_path / "dask", executor="dask", workers=2, **options)
    cluster_s = time.perf_counter() - started
    print(f"table3 TL Vec ET, 2 trials: serial {serial_s:.1f} s, LocalCluster of 2 workers {cluster_s:.1f} s")

    ours = pd.read_csv(tmp_path / "serial" / "table3_trials.csv")
    theirs = pd.read_csv(tmp_path / "dask" / "table3_trials.csv")
    assert len(ours) == 2 * 3 and ours["error"].isna().all() and theirs["error"].isna().all()
    pd.testing.assert_frame_equal(ours[NUMBERS], theirs[NUMBERS])  # exactly: same seeds, one thread each
    assert (theirs["compute"] == "cpu, 1 thread").all()
    pd.testing.assert_frame_equal(serial.drop(columns="errors"), cluster.drop(columns="errors"))
    assert sorted(p.name for p in (tmp_path / "dask").iterdir()) == sorted(p.name for p in
                                                                           (tmp_path / "serial").iterdir())
