"""Latency and FBNet proxy loaders against the mirror: shapes, units, joins, sentinels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from multipredict.data import catalogue, eagle, help, hwnasbench, tables, zc_fbnet
from multipredict.data.formats import load_verified_pickle
from multipredict.data.sources import source_file
from multipredict.errors import UnknownNameError
from multipredict.spaces import fbnet, nb201


def test_help_nb201_latencies_shape_and_units():
    table = help.latencies("nb201")
    assert table.shape == (15625, 27)
    assert table.notna().all().all()
    # HELP stores ms: a batch-1 GPU cell runs in a few ms, a Raspberry Pi in tens to hundreds
    assert 1 < table["1080ti_1"].median() < 50
    assert table["raspi4"].median() > table["1080ti_1"].median()
    assert (table["pixel2"] == table["pixel2"].round()).all()  # phones: integer ms (README anomaly)
    assert table["eyeriss"].nunique() == 38 and table["fpga"].nunique() == 84


def test_help_fbnet_tables():
    assert help.latencies("fbnet").shape == (5000, 27)
    assert help.fbnet_archs().shape == (5000, 22)
    assert help.fbnet_archs().max() == 8
    assert help.reference_archs("fbnet") == [3328, 3790, 3313, 890, 3052, 2538, 1640, 2514, 457, 2100]


def test_nb201_arch_string_round_trip():
    strings = help.nb201_arch_strings()
    assert len(strings) == 15625 and len(set(strings)) == 15625
    for i in (0, 1, 777, 15624):
        assert nb201.arch_id(nb201.arch_string(i)) == i
        assert nb201.format_arch(nb201.parse(strings[i])) == strings[i]


def test_eagle_join_and_units():
    table = eagle.latencies()
    assert table.shape == (15625, 14)
    counts = table.notna().sum()
    assert counts.min() == 14802 and counts.max() == 15284
    # The join is right when the archs EAGLE never measured are exactly the 341 disconnected
    # cells (a wrong op-code mapping would scatter the gaps over connected cells)
    gtx = table["desktop_gpu_gtx_1080ti_fp32"]
    disconnected = ~nb201.connected(np.arange(nb201.N_ARCHS))
    assert disconnected.sum() == 341
    assert np.array_equal(gtx.isna().to_numpy(), disconnected)
    # seconds became ms, and a mobile GPU ranks cells like a phone of HELP
    assert 1 < gtx.median() < 100
    adreno = table["mobile_gpu_snapdragon_855_adreno_640_int8"]
    both = adreno.notna()
    assert stats.spearmanr(adreno[both], help.latencies("nb201")["pixel3"][both]).statistic > 0.8
    raw = load_verified_pickle(source_file("NAS-LLM-GNN", "datasets/desktop-gpu-gtx-1080ti-fp32.pickle"))
    vector, seconds = next(iter(raw.items()))
    assert gtx[nb201.arch_id(eagle.eagle_vector_to_string(vector))] == pytest.approx(seconds * 1000)


def test_eagle_anomaly_is_visible_in_the_data():
    table = eagle.latencies()
    a, b = table["desktop_gpu_gtx_1080ti_fp32"], table["desktop_cpu_core_i7_7820x_fp32"]
    both = a.notna() & b.notna()
    assert stats.spearmanr(a[both], b[both]).statistic > 0.99
    assert "measured twice" in catalogue.device("nb201", "desktop_cpu_core_i7_7820x_fp32").anomaly


def test_hwnasbench_join_and_sentinels():
    ids = hwnasbench.nb201_ids()
    assert len(ids) == 1999 and len(set(ids.tolist())) == 1999
    for device in ("pixel3", "eyeriss", "fpga"):
        theirs = np.asarray(load_verified_pickle(source_file("OneProxy", f"latency_data/rice_{device}.pickle")))
        assert np.allclose(theirs, help.latency("nb201", device)[ids])
    table = hwnasbench.latencies()
    assert table["edgegpu"].notna().sum() == 1999
    assert hwnasbench.sentinel_count("edgetpu") == 259
    assert table["edgetpu"].notna().sum() == 1999 - 259
    assert (table["edgetpu"].dropna() > 0).all()  # no -1 left as a number


def test_zc_fbnet_join():
    table = zc_fbnet.proxies()
    assert table.shape == (5000, 13) and table.notna().all().all()
    # a right join makes FLOPs follow the arch's structure (more expansion-6 blocks, more FLOPs)
    # and rank archs like a compute-bound accelerator does; a shuffled join gives ~0 for both
    expansion6 = np.isin(fbnet.archs(), [fbnet.OPS.index("k3_e6"), fbnet.OPS.index("k5_e6")]).sum(axis=1)
    assert stats.spearmanr(expansion6, table["flops"]).statistic > 0.7
    assert stats.spearmanr(table["flops"], help.latencies("fbnet")["fpga"]).statistic > 0.9
    assert fbnet.arch_id(fbnet.arch_key(1234)) == 1234


def test_combined_latency_table():
    wide = tables.latencies("nb201")
    assert wide.shape == (15625, 27 + 14 + 2)
    assert len(set(wide.columns)) == wide.shape[1]
    long = tables.tidy_latencies("fbnet")
    assert list(long.columns) == ["arch_id", "device", "latency_ms"] and len(long) == 5000 * 27
    with pytest.raises(UnknownNameError, match="valid spaces: nb201, fbnet"):
        tables.latencies("nb999")


def test_the_derived_latency_table_is_kept_and_read_back(tmp_path, monkeypatch, caplog):
    """The combined table is derived once and read back in later processes, equal to the last value
    and attribute (HW-NAS-Bench's sentinel counts), and the table other code kept is removed; a
    damaged stored file is set aside and the table derived again."""
    from multipredict.data import derived

    monkeypatch.setattr(derived, "folder", lambda: tmp_path / "derived")
    tables.latencies.cache_clear()  # as in a new process
    (tmp_path / "derived").mkdir()
    (tmp_path / "derived" / "latencies-nb201-fromothercode.parquet").write_bytes(b"a table other code kept")
    try:
        first = tables.latencies("nb201")
        kept = list((tmp_path / "derived").glob("latencies-nb201-*.parquet"))  # the other code's one removed
        assert len(kept) == 1 and first.attrs["sentinels"]["edgetpu"] > 0
        tables.latencies.cache_clear()
        with monkeypatch.context() as patch:
            patch.setattr(tables, "_latencies", lambda space: pytest.fail("derived again"))
            again = tables.latencies("nb201")
        pd.testing.assert_frame_equal(again, first)
        assert again.attrs == first.attrs and again.index.name == "arch_id" and again.columns.name == "device"
        kept[0].write_bytes(b"not parquet")
        tables.latencies.cache_clear()
        pd.testing.assert_frame_equal(tables.latencies("nb201"), first)
        assert "moved it aside" in caplog.text and len(list((tmp_path / "derived").glob("*.unreadable-*"))) == 1
    finally:
        tables.latencies.cache_clear()


def test_device_catalogue():
    nb = catalogue.catalogue("nb201", coverage=True)
    assert nb["name"].is_unique and len(nb) == 43
    assert set(nb["kind"]) <= set(catalogue.KINDS)
    row = nb.set_index("name")
    assert row.loc["titan_rtx_256", "kind"] == "GPU" and row.loc["titan_rtx_256", "batch"] == 256
    assert row.loc["eyeriss", "kind"] == "ASIC" and row.loc["fpga", "kind"] == "FPGA"
    assert row.loc["embedded_tpu_edge_tpu_int8", "source"] == "EAGLE"
    assert row.loc["edgetpu", "archs"] == 1740 and row.loc["1080ti_1", "archs"] == 15625
    assert row.loc["eyeriss", "distinct_values"] == 38
    assert "jetson-nono" in row.loc["embedded_gpu_jetson_nano_fp16", "anomaly"]
    fb = catalogue.catalogue("fbnet")
    assert len(fb) == 27 and "1080ti_64" in set(fb["name"])
    with pytest.raises(UnknownNameError, match="valid fbnet devices"):
        catalogue.device("fbnet", "1080ti_256")
