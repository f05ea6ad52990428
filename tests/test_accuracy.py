"""Accuracy prediction across tasks: the task catalogue, the targets interface, the ZCP task
encoding, the Table 14 predictor, task transfer, and the fig8/fig9/fig15 runner (on small inputs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from multipredict import encodings, tasks
from multipredict.data import accuracy as acc
from multipredict.data import targets
from multipredict.errors import MultipredictError
from multipredict.methods import accuracy as protocol
from multipredict.predictors.tasktransfer import AccuracyOptions, TaskTransferPredictor, accuracy_predictor


FAST = AccuracyOptions(epochs=30, transfer_epochs=10)


def test_catalogue_has_the_28_tasks_of_table_8_with_their_pools_and_missing_proxies():
    cat = acc.catalogue().set_index("task")
    assert len(cat) == 28
    assert cat.loc["nb101/cifar10", "archs"] == 500
    assert cat.loc["nb101/cifar10", "proxies_missing"] == "nwot, zen"
    assert cat.loc["nb301/cifar10", "proxies_missing"] == "zen"
    assert cat.loc["tnb101_macro/normal", "proxies_missing"] == "synflow"
    assert cat.loc["nb201/svhn", "archs"] == 199 and cat.loc["tnb101_micro/svhn", "archs"] == 192
    for key in acc.TASK_KEYS:  # the common proxy set exists for every task
        table = acc.task_table(*key.split("/", 1))
        assert all(table[p].notna().any() for p in acc.COMMON_PROXIES), key
    assert len(acc.COMMON_PROXIES) == 9 and len(acc.PAPER_PROXIES) == 12


def test_tnb_accuracies_disagree_between_zc_json_and_zen_zip_and_the_json_is_used():
    dis = acc.accuracy_disagreement().set_index("task")
    assert len(dis) == 14
    assert dis["spearman"].min() < 0.95 and dis["spearman"].max() > 0.99
    table = acc.task_table("tnb101_micro", "class_object")
    assert table.attrs["source"]  # provenance kept
    assert acc.accuracy("tnb101_micro", "class_object").attrs["unit"] == "% top-1"
    assert acc.task("tnb101_macro/room_layout").unit == "negative L2 loss"


def test_targets_interface_serves_latency_and_accuracy_of_one_space():
    kinds = targets.kinds("nb201")
    assert kinds == ["latency", "accuracy"]
    assert targets.kinds("nb101") == ["accuracy"] and targets.kinds("fbnet") == ["latency"]
    lat = targets.values("nb201", "latency", "pixel2")
    assert lat.attrs["unit"] == "ms" and len(lat) > 10000
    c10 = targets.values("nb201", "accuracy", "cifar10")
    assert c10.attrs["unit"] == "% top-1" and len(c10) == 725
    assert set(c10.index) <= set(lat.index)  # one arch id (the NB201 index) for both kinds
    with pytest.raises(MultipredictError, match="'cifar11'.*cifar10"):
        targets.values("nb201", "accuracy", "cifar11")
    with pytest.raises(MultipredictError, match="latency"):
        targets.values("nb101", "latency", "pixel2")


def test_task_distance_works_on_accuracy_targets():
    matrix = tasks.target_correlation("nb201", "accuracy")
    assert matrix.loc["cifar10", "cifar100"] > 0.9
    assert matrix.attrs["n_archs"].loc["cifar10", "cifar100"] >= 700
    # the same function on device latencies agrees with the device matrix
    devices = ["pixel2", "fpga", "eyeriss"]
    lat = tasks.target_correlation("nb201", "latency", devices)
    assert np.allclose(lat.to_numpy(), tasks.device_correlation("nb201", devices, devices).to_numpy())


def test_task_encoder_normalises_per_task_and_refuses_a_missing_proxy():
    enc = encodings.TaskEncoder("nb201", "cifar10", "zcp", proxy_set=acc.PAPER_PROXIES).fit()
    X = enc.transform(enc.pool())
    assert X.body.shape == (723, 12)
    assert np.isclose(X.body.min(axis=0), 0).all() and np.isclose(X.body.max(axis=0), 1).all()
    assert [enc.normaliser_.transform_[enc.proxies.index(p)] != "none" for p in ("flops", "synflow")] == [True, True]
    assert enc.normaliser_.transform_[enc.proxies.index("jacov")] == "none"
    with pytest.raises(MultipredictError, match="nb101/cifar10 has no 'nwot'.*proxy_set='common'"):
        encodings.TaskEncoder("nb101", "cifar10", "zcp", proxy_set=acc.PAPER_PROXIES).pool()
    masked = encodings.TaskEncoder("nb101", "cifar10", "zcp", proxy_set="all").fit()
    Xm = masked.transform(masked.pool())
    assert Xm.body.shape == (500, 24)
    names = masked.feature_names()
    assert Xm.body[:, names.index("nwot_missing")].min() == 1 and Xm.body[:, names.index("nwot")].max() == 0
    assert Xm.body[:, names.index("fisher_missing")].max() == 0


def test_accuracy_predictor_is_the_latency_estimator_with_the_table_14_recipe():
    model = accuracy_predictor()
    X = protocol.task_data("nb201/cifar10").X.subset(np.arange(20))
    model.set_params(epochs=1).fit(X, np.linspace(0, 1, 20))
    linears = [m for m in model.network_.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(9, 128), (128, 128), (128, 128), (128, 1)]
    assert (model.lr, model.weight_decay, model.schedule) == (4e-3, 5e-4, "cosine")
    assert type(model).__name__ == "LatencyPredictor"


def test_scratch_is_reproducible_and_learns():
    data = protocol.task_data("nb201/cifar10")
    a = protocol.scratch(data, 50, seed=3, options=FAST)
    b = protocol.scratch(data, 50, seed=3, options=FAST)
    assert a == b
    assert a["spearman"] > 0.5 and a["n_test"] == len(data) - 50
    train, test = protocol.few_shot(data, 50, 3)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(data)
    with pytest.raises(MultipredictError, match="samples=724 is not below"):
        protocol.few_shot(data, 724, 0)


def test_transfer_refuses_its_own_source_and_multi_task_picks_a_source_row():
    c10, c100, im = (protocol.task_data(k) for k in ("nb201/cifar10", "nb201/cifar100", "nb201/ImageNet16-120"))
    single = protocol.pretrain([c100], seed=0, options=FAST)
    with pytest.raises(MultipredictError, match="target task nb201/cifar100 is one of the source tasks"):
        protocol.transfer(single, c100, 10, 0)
    row = protocol.transfer(single, c10, 10, 0)
    assert row["chosen_source"] == "nb201/cifar100" and row["spearman"] > 0.3
    multi = protocol.pretrain([c100, im, protocol.task_data("nb301/cifar10")], seed=0, options=FAST)
    assert multi.model_.embedding == "table" and multi.model_.n_devices_ == 3
    corr = multi.source_correlations(*[c10.X.subset(np.arange(30)), c10.y[:30]])
    assert corr.shape == (3,)
    adapted = multi.model_.n_devices_
    out = protocol.transfer(multi, c10, 10, 0)
    assert out["chosen_source"] in {"nb201/cifar100", "nb201/ImageNet16-120", "nb301/cifar10"}
    assert multi.model_.n_devices_ == adapted  # adapting copies: the pretrained model is unchanged


def test_ensemble_adaptation_weights_source_rows_by_their_k_sample_correlation():
    c10 = protocol.task_data("nb201/cifar10")
    sources = [protocol.task_data(k) for k in ("nb201/cifar100", "nb201/ImageNet16-120", "nb301/cifar10")]
    multi = protocol.pretrain(sources, seed=1, options=FAST)
    train, test = protocol.few_shot(c10, 10, 1)
    Xk, yk, Xt = c10.X.subset(train), c10.y[train], c10.X.subset(test)
    ens = multi.adapt(Xk, yk, "ensemble")
    assert ens.model_ is None and np.isclose(ens.weights_.sum(), 1) and (ens.weights_ >= 0).all()
    corr = multi.source_correlations(Xk, yk)
    expected = sum(max(c, 0) / np.clip(corr, 0, None).sum() * multi.model_.predict(Xt, np.full(len(Xt), r))
                   for r, c in enumerate(corr))
    assert np.allclose(ens.predict(Xt), expected, atol=1e-6)
    both = multi.adapt(Xk, yk, "ensemble+finetune")
    tuned = multi.adapt(Xk, yk, "finetune")
    assert np.allclose(both.predict(Xt), (tuned.predict(Xt) + ens.predict(Xt)) / 2, atol=1e-5)
    with pytest.raises(MultipredictError, match="'average'.*finetune"):
        multi.adapt(Xk, yk, "average")


def test_transfer_across_spaces_needs_one_feature_width():
    vec = protocol.task_data("nb201/cifar10", "vec")
    other = protocol.task_data("nb301/cifar10", "vec")
    with pytest.raises(MultipredictError, match="different widths"):
        TaskTransferPredictor(FAST).fit([(vec.X, vec.y), (other.X, other.y)])


def test_fig9_runner_resumes_and_summarises(tmp_path):
    from multipredict.experiments import accuracy as figures

    keys = ["nb201/cifar10", "nb201/cifar100", "nb301/cifar10"]
    kwargs = dict(out_dir=tmp_path, repeats=1, quick=True, progress=False, tasks=keys, samples=(10,))
    trials = figures.reproduce_accuracy("fig9", **kwargs)
    assert set(trials["arm"]) == {"Vec scratch", "ZCP scratch", "ZCP transfer", *figures.MULTITASK_ARMS}
    pairs = pd.read_csv(tmp_path / "fig9_pairs.csv")
    assert len(pairs) == 6 and set(pairs.columns) >= {"ZCP transfer", "Vec scratch", "ZCP scratch"}
    text = (tmp_path / "fig9.txt").read_text()
    assert "paper: over 85%" in text
    assert (tmp_path / "fig9.html").read_text().count("Heatmap") >= 0
    again = figures.reproduce_accuracy("fig9", **kwargs)  # from the store: same rows, no recomputation
    cols = ["arm", "source", "target", "samples", "seed", "spearman"]
    pd.testing.assert_frame_equal(again[cols].sort_values(cols[:5]).reset_index(drop=True),
                                  trials[cols].sort_values(cols[:5]).reset_index(drop=True))
    assert again["unit_seconds"].equals(trials["unit_seconds"])
