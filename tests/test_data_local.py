"""MULTIPREDICT_DATA=local: the library works from the project's own data/ folder with no download
at all (the fetch layer refuses), and ``all`` lists this machine's profiles beside the public devices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from multipredict import config, tasks
from multipredict.methods import transfer
from multipredict.baselines import flops
from multipredict.data import catalogue, local, tables
from multipredict.errors import DataError, UnknownNameError

PROFILES = ["cpu-1t-b1", "ort-cpu-1t-b1", "cpu-1t-b8", "ort-cpu-1t-b8"]


@pytest.fixture
def local_only(monkeypatch, tmp_path):
    monkeypatch.setenv("MULTIPREDICT_DATA", "local")
    monkeypatch.setenv("MULTIPREDICT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("MULTIPREDICT_MIRROR", str(tmp_path / "no-mirror"))
    transfer.clear_pretrain_cache()
    yield
    transfer.clear_pretrain_cache()


def test_the_default_data_folder_holds_what_the_readme_promises():
    root = config.local_data_dir()
    for name in PROFILES:
        assert (root / "latency" / f"nb201_{name}.csv").exists(), name
        assert (root / "latency" / f"nb201_{name}.csv.meta.json").exists(), name
    assert (root / "zcp" / "nb201_nbsz_synthetic_b32_s0.parquet").exists()


def test_local_data_serves_every_table_without_a_download(local_only):
    assert tables.latency_sources("nb201") == {local.SOURCE: sorted(PROFILES)}
    lat = tables.latencies("nb201")
    assert sorted(lat.columns) == sorted(PROFILES) and lat.shape[0] == 100
    assert lat.notna().all().all() and (lat > 0).all().all()
    # the measured sample covers HELP's 10 reference archs, so the `sample` embedding works
    from multipredict.methods import protocol as hardware

    assert set(hardware.reference_archs("nb201")) <= set(lat.index)
    # our proxies cover every measured cell with a path from input to output (a disconnected cell's
    # output is constant: jacov / epe_nas are undefined) and the NAS-Bench-Suite-Zero cells
    from multipredict.spaces import nb201

    zcp = tables.zcp("nb201")
    ids = lat.index.to_numpy()
    assert set(ids[nb201.connected(ids)]) <= set(zcp.index) and len(zcp) >= 725
    assert set(ids[~nb201.connected(ids)]).isdisjoint(zcp.index)
    # only the measured cells are known without a download, and asking for another says so
    assert nb201.arch_string(int(ids[0])) and len(nb201.op_indices(ids)) == 100
    unknown = next(i for i in range(nb201.N_ARCHS) if i not in set(ids))
    from multipredict.errors import MultipredictError

    with pytest.raises(MultipredictError, match="not among the 100 cells"):
        nb201.op_indices([int(ids[0]), unknown])
    assert list(zcp.columns) == list(tables.PROXIES) and np.isfinite(zcp[["params", "flops"]].to_numpy()).all()
    devices = catalogue.catalogue("nb201", coverage=True)
    assert set(devices["name"]) == set(PROFILES) and (devices["archs"] == 100).all()
    assert devices.set_index("name").loc["cpu-1t-b8", "batch"] == 8
    # batch 8 and batch 1 of the same backend rank the cells alike; torch eager vs onnxruntime less so
    rho = tasks.spearman_matrix("nb201")
    assert rho.loc["cpu-1t-b1", "cpu-1t-b8"] > rho.loc["cpu-1t-b1", "ort-cpu-1t-b1"]
    assert tasks.available_device_sets("nb201") == ["nb201-local"]
    assert tasks.default_device_set("nb201") == "nb201-local"
    # a public file is never fetched, not even from the cache or a mirror
    from multipredict.data import fetch, sources

    with pytest.raises(DataError, match="MULTIPREDICT_DATA=local"):
        fetch.ensure(sources.files_in(sources.groups()[0])[0])
    with pytest.raises(DataError, match="no fbnet latencies"):
        tables.latencies("fbnet")


def test_transfer_and_flops_run_on_local_data(local_only):
    device_set = tasks.device_set("nb201-local")
    kwargs = dict(space="nb201", train_devices=list(device_set.train), test_devices=list(device_set.test),
                  samples=10, seed=0)
    rows = transfer.fit_and_score(**kwargs, source_epochs=20, target_epochs=20)
    assert rows[0]["pool"].startswith("nb201 latency: 100 of") and rows[0]["n_eval"] == 90
    assert -1 <= rows[0]["spearman"] <= 1 and rows[0]["closest_source"] in device_set.train
    zcp = transfer.fit_and_score(**kwargs, encoding="zcp", source_epochs=20, target_epochs=20)
    # a few measured cells have no finite score for some proxy (e.g. nwot): the ZCP pool says so
    assert 95 <= zcp[0]["pool_size"] <= 100 and zcp[0]["n_eval"] == zcp[0]["pool_size"] - 10
    assert np.isfinite(zcp[0]["spearman"])
    baseline = flops.fit_and_score(**kwargs)
    assert baseline[0]["spearman"] > 0.3  # FLOPs ranks onnxruntime's latencies on this CPU


def test_all_lists_local_profiles_beside_the_public_devices(monkeypatch, mirror):
    monkeypatch.setenv("MULTIPREDICT_DATA", "all")
    names = catalogue.device_names("nb201")
    assert {"1080ti_1", "fpga", "desktop_gpu_gtx_1080ti_fp32"} <= set(names) and set(PROFILES) <= set(names)
    pairs = tasks.correlation_pairs("nb201", ["gold_6226", "cpu-1t-b1"], ["ort-cpu-1t-b1"])
    assert list(pairs["n_archs"]) == [100, 100] and pairs["spearman"].between(-1, 1).all()
    assert "nb201-default" in tasks.available_device_sets("nb201")
    # the public proxies stay the published ones
    monkeypatch.setenv("MULTIPREDICT_DATA", "benchmarks")
    assert set(PROFILES).isdisjoint(catalogue.device_names("nb201"))
    assert tasks.available_device_sets("nb201") == ["nb201-default", "nb201-adversarial"]


def test_a_bad_data_source_is_named(monkeypatch):
    monkeypatch.setenv("MULTIPREDICT_DATA", "offline")
    with pytest.raises(UnknownNameError, match="'offline'.*benchmarks, local, all"):
        tables.latencies("nb201")
    with pytest.raises(UnknownNameError, match="'nowhere'"):
        config.configure(data="nowhere")


def test_a_damaged_local_file_is_a_clear_error(local_only, monkeypatch, tmp_path):
    root = tmp_path / "data"
    (root / "latency").mkdir(parents=True)
    (root / "latency" / "nb201_mine.csv").write_text("arch_id,latency_ms\n1,\"unterminated\n")
    monkeypatch.setenv("MULTIPREDICT_LOCAL_DATA", str(root))
    with pytest.raises(DataError, match="nb201_mine.csv"):
        tables.latencies("nb201")
    pd.DataFrame({"arch_id": [1, 2, 3], "latency_ms": [1.0, 2.0, 3.0]}).to_csv(root / "latency" / "nb201_mine.csv",
                                                                                 index=False)
    assert list(tables.latencies("nb201").columns) == ["mine"]
    with pytest.raises(DataError, match="no nb201 zero-cost proxies"):
        tables.zcp("nb201")


def test_reference_archs_known_without_a_download_match_helps_files(mirror):
    from multipredict.data import help

    for space in ("nb201", "fbnet"):
        assert help.reference_archs(space) == help.reference_archs_from_file(space)
