"""Latency transfer across search spaces (paper Fig 7): HWL features, reference devices, one trial."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from multipredict.errors import MultipredictError
from multipredict.methods import crossspace as cs
from multipredict.predictors.tasktransfer import AccuracyOptions

FAST = dict(transfer_options=AccuracyOptions(width=64, depth=3, lr=4e-4, epochs=15, transfer_lr=4e-4,
                                             transfer_epochs=10),
            scratch_options=AccuracyOptions(width=64, depth=3, lr=4e-3, epochs=20))


def test_the_22_devices_of_both_spaces_and_the_reference_rules():
    shared = cs.shared_devices()
    assert len(shared) == 22 and "fpga" in shared and "eyeriss" in shared
    least, most, every = (cs.reference_devices("fpga", rule) for rule in ("least", "most", "all"))
    assert "fpga" not in least + most + every
    assert len(least) == len(most) == 16 and len(every) == 21
    rho = cs._tables()["nb201"].corr(method="spearman")["fpga"]
    left_out = [d for d in every if d not in least]  # the 5 most correlated
    assert len(left_out) == 5 and rho[least].max() <= rho[left_out].min()
    assert rho[most].min() >= rho[[d for d in every if d not in most]].max()
    with pytest.raises(MultipredictError, match="'foo'"):
        cs.reference_devices("foo")


def test_hwl_features_are_scaled_within_each_space():
    refs = cs.reference_devices("raspi4")
    for space, n in (("nb201", 15625), ("fbnet", 5000)):
        ids, X = cs.hwl_features(space, refs)
        assert X.shape == (n, 16) and np.allclose(X.min(axis=0), 0) and np.allclose(X.max(axis=0), 1)
    assert cs.source_count("nb201", 0.15) == 2344 and cs.source_count("fbnet", 100) == 100
    with pytest.raises(MultipredictError, match="source_archs=0"):
        cs.source_count("fbnet", 0)


def test_a_trial_is_reproducible_and_scores_every_arm_on_the_unseen_archs():
    a = cs.trial("fbnet", "fpga", 0, [4, 10], source_archs=200, **FAST)
    b = cs.trial("fbnet", "fpga", 0, [4, 10], source_archs=200, **FAST)
    assert pd.DataFrame(a).equals(pd.DataFrame(b))
    frame = pd.DataFrame(a)
    assert set(frame["arm"]) == {"HWL transfer", "HWL scratch", "Vec scratch"}
    assert set(frame["target_space"]) == {"nb201"} and (frame["n_test"] == 15625 - frame["samples"]).all()
    transfer = frame[frame["arm"] == "HWL transfer"].set_index("samples")["spearman"]
    assert transfer.loc[4] > 0.5  # fpga ranks NB201 cells like its reference devices do
    with pytest.raises(MultipredictError, match="samples"):
        cs.trial("fbnet", "fpga", 0, [1, 10], **FAST)


def test_fig7_runner_writes_the_bands_and_the_overview(tmp_path):
    from multipredict.experiments import crossspace

    trials = crossspace.reproduce_crossspace(out_dir=tmp_path, quick=True, repeats=1, progress=False,
                                             devices=["fpga"], samples=(2, 4))
    assert len(trials) == 2 * 2 * 3  # directions x k x arms
    overview = pd.read_csv(tmp_path / "fig7_overview.csv")
    assert set(overview["direction"]) == {"nb201 -> fbnet", "fbnet -> nb201"}
    assert "devices transfer > HWL scratch" in overview.columns
    assert "paper:" in (tmp_path / "fig7.txt").read_text()
