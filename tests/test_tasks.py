"""Task distance: correlation values against the paper's Tables 9/10, closest device, adversarial sets."""

from __future__ import annotations

import pytest

from multipredict import tasks
from multipredict.errors import MultipredictError, UnknownNameError

# Paper Tables 9 (NB201) and 10 (FBNet), of Akhauri & Abdelfattah, AutoML-Conf 2023
PAPER_CELLS = [
    ("nb201", "pixel3", "raspi4", 0.97),
    ("nb201", "silver_4210r", "fpga", 0.97),
    ("nb201", "1080ti_256", "eyeriss", 0.89),
    ("fbnet", "pixel3", "eyeriss", 0.98),
    ("fbnet", "pixel3", "fpga", 0.91),
    ("fbnet", "pixel3", "raspi4", 0.96),
]


@pytest.mark.parametrize("space,train,test,published", PAPER_CELLS)
def test_paper_tables_9_and_10_to_two_decimals(space, train, test, published):
    matrix = tasks.device_correlation(space, [train], [test])
    assert round(float(matrix.loc[train, test]), 2) == published


def test_default_sets_give_full_matrices():
    for name in ("nb201-default", "fbnet-default", "nb201-adversarial", "fbnet-adversarial"):
        preset = tasks.device_set(name)
        matrix = tasks.device_correlation(preset.space, preset.train, preset.test)
        assert matrix.shape == (len(preset.train), len(preset.test))
        assert matrix.notna().all().all()
        assert not set(preset.train) & set(preset.test)


def test_pairs_report_archs_used_and_kendall():
    pairs = tasks.correlation_pairs("nb201", ["1080ti_1", "edgegpu"], ["desktop_gpu_gtx_1080ti_fp32"])
    n = dict(zip(pairs["train"], pairs["n_archs"]))
    assert n["1080ti_1"] == 15284  # EAGLE lacks the 341 disconnected cells
    assert n["edgegpu"] < 2000  # HW-NAS-Bench subset
    assert ((pairs["kendall"] > 0) & (pairs["kendall"] < pairs["spearman"])).all()


def test_closest_training_device_is_the_argmax():
    preset = tasks.device_set("nb201-default")
    matrix = tasks.device_correlation("nb201", preset.train, preset.test)
    closest = tasks.closest_training_device("nb201", preset.train, preset.test).set_index("test")
    for test in preset.test:
        assert closest.loc[test, "closest_train"] == matrix[test].idxmax()
    assert closest.loc["raspi4", "closest_train"] == "pixel3"


def test_adversarial_builder_respects_the_bound():
    preset = tasks.device_set("fbnet-default")
    for bound in (0.3, 0.6, 0.7):
        kept = tasks.adversarial_train_set("fbnet", preset.train, preset.test, bound)
        matrix = tasks.device_correlation("fbnet", preset.train, preset.test)
        assert all(matrix.loc[d].max() <= bound for d in kept)
        dropped = set(preset.train) - set(kept)
        assert all(matrix.loc[d].max() > bound for d in dropped)
    assert tasks.adversarial_train_set("fbnet", preset.train, preset.test, 0.3) == ["1080ti_1"]


def test_bad_names_and_values():
    with pytest.raises(UnknownNameError, match="'pixel9'.*valid nb201 train devices: .*pixel3"):
        tasks.device_correlation("nb201", ["pixel9"], ["raspi4"])
    with pytest.raises(UnknownNameError, match="valid device sets"):
        tasks.device_set("nb201-nope")
    with pytest.raises(MultipredictError, match="no test devices"):
        tasks.device_correlation("nb201", ["pixel3"], [])
    with pytest.raises(MultipredictError, match="outside"):
        tasks.adversarial_train_set("nb201", ["pixel3"], ["raspi4"], 1.5)


def test_cached_matrix_agrees_with_pairwise_scipy_on_partial_coverage():
    train, test = ["1080ti_1", "edgegpu"], ["desktop_gpu_gtx_1080ti_fp32", "edgetpu"]
    matrix = tasks.device_correlation("nb201", train, test)
    pairs = tasks.correlation_pairs("nb201", train, test)  # scipy on the archs both devices cover
    for row in pairs.itertuples():
        assert matrix.loc[row.train, row.test] == pytest.approx(row.spearman, abs=1e-9)
