"""HELP re-implementation (multipredict.baselines.help): faithful pieces, learning, determinism, API."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multipredict.baselines import help as help_baseline
from multipredict.baselines.help import HELP_DEVICE_SPLITS, HELPPredictor
from multipredict.data import help as help_data
from multipredict.errors import MultipredictError, UnknownNameError


@pytest.fixture(autouse=True)
def one_thread(mirror):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_reference_archs_are_helps():
    # the ten archs of HELP's hardware_embedding_index.pt (HELP, Lee et al., NeurIPS 2021)
    assert help_data.reference_archs("nb201") == [11982, 431, 55, 9, 14451, 8636, 9881, 13479, 6196, 1462]
    assert help_data.reference_archs("fbnet") == [3328, 3790, 3313, 890, 3052, 2538, 1640, 2514, 457, 2100]
    assert HELPPredictor("fbnet").reference_archs == help_data.reference_archs("fbnet")


def test_fbnet_encoding_follows_helps_arch_enc():
    # HELP's arch_enc: per layer 6 values; op < 4 -> k3 (slot 0), op < 8 -> k5 (slot 1), slot 2 + op % 4
    # the expansion (e1, e1_g2, e3, e6); skip (op 8) -> six zeros
    ids = [0, 1, 4999]
    ops = help_data.fbnet_archs()[ids]
    expected = np.zeros((len(ids), 22, 6), dtype=np.float32)
    for row, arch in enumerate(ops):
        for layer, op in enumerate(arch):
            if op == 8:
                continue
            expected[row, layer, 0 if op < 4 else 1] = 1
            expected[row, layer, 2 + op % 4] = 1
    encoding = help_baseline.fbnet_encoding(ids)
    assert encoding.shape == (3, 132)
    np.testing.assert_array_equal(encoding, expected.reshape(3, 132))
    assert (ops == 8).any() and (encoding.reshape(3, 22, 6)[ops == 8] == 0).all()


def test_nb201_graph_has_helps_global_node():
    features, propagation = help_baseline.nb201_global_graph([0, 123])
    assert features.shape == (2, 9, 8) and propagation.shape == (9, 9)
    assert (features.sum(axis=2) == 1).all()  # one node type per node, the global node its own
    assert features[:, -1, -1].tolist() == [1, 1]
    assert propagation[-1].tolist() == [1] * 9  # the read-out node sums every node (itself included)
    assert np.diag(propagation).tolist() == [1] * 9
    # row i sums the nodes that feed i: the input node feeds edge-ops 1, 2 and 4 (0->1, 0->2, 0->3)
    assert propagation[:, 0].tolist() == [1, 1, 1, 0, 1, 0, 0, 0, 1]


def test_hardware_embedding_is_minmax_over_reference_latencies():
    latency = help_data.latency("nb201", "pixel2")
    embedding = help_baseline.hardware_embedding(latency[help_data.reference_archs("nb201")])
    assert embedding.min() == 0 and embedding.max() == pytest.approx(1)
    with pytest.raises(MultipredictError, match="10 finite latencies"):
        help_baseline.hardware_embedding([1.0, 2.0])


@pytest.mark.parametrize("space", ["nb201", "fbnet"])
def test_batched_meta_gradient_equals_per_task_loop(space):
    """The batched program (a task dimension on every parameter) gives HELP's per-device loop:
    same query loss and the same second-order meta-gradient, in float64."""
    import torch.nn.functional as F

    model = HELPPredictor(space, hidden=16, seed=3)
    for group in (model.theta, model.inner_lr, model.modulator):
        for key in group:
            group[key] = (group[key].detach().double() * (30 if group is model.inner_lr else 1)).requires_grad_()
    model._all_features = model._all_features.double()
    if model._propagation is not None:
        model._propagation = model._propagation.double()
    features, propagation = help_baseline._all_arch_features(space)

    def helps_forward(p, ids, hw):  # net.py's formulation: one device, no task dimension
        x = torch.from_numpy(features[ids]).double()
        if space == "nb201":
            adjacency = torch.from_numpy(propagation).double().expand(len(ids), 9, 9)
            for layer in range(1, 5):
                x = F.relu(torch.bmm(adjacency, x @ p[f"gc{layer}.weight"]) + p[f"gc{layer}.bias"])
            x = x[:, -1, :]
        else:
            x = F.relu(F.linear(F.relu(F.linear(x, p["fc1.weight"], p["fc1.bias"])), p["fc2.weight"], p["fc2.bias"]))
        e = F.relu(F.linear(hw.repeat(len(ids), 1), p["fc_hw1.weight"], p["fc_hw1.bias"]))
        e = F.relu(F.linear(e, p["fc_hw2.weight"], p["fc_hw2.bias"]))
        x = F.relu(F.linear(torch.cat([x, e], -1), p["fc3.weight"], p["fc3.bias"]))
        x = F.relu(F.linear(x, p["fc4.weight"], p["fc4.bias"]))
        return F.linear(x, p["fc5.weight"], p["fc5.bias"]).squeeze(-1)

    rng = np.random.default_rng(0)
    tasks = 3
    hw = torch.rand(tasks, 10, dtype=torch.float64)
    support, query = rng.integers(0, 5000, (tasks, 10)), rng.integers(0, 5000, (tasks, 40))
    y_support, y_query = torch.rand(tasks, 10, dtype=torch.float64), torch.rand(tasks, 40, dtype=torch.float64)
    learnable = list(model.theta.values()) + list(model.inner_lr.values()) + list(model.modulator.values())

    model._z_generator.manual_seed(7)
    params, kl = model._adapted_params(hw, model._features(support), y_support, 2, create_graph=True)
    batched = (help_baseline._forward(params, model._features(query), hw, model._propagation) - y_query).pow(2).mean()
    batched = batched + 0.1 * kl.sum()
    batched_grads = torch.autograd.grad(batched, learnable)

    model._z_generator.manual_seed(7)
    z_w, z_b, kl = help_baseline._sample_z(model.modulator, hw, model.hidden, model._z_generator)
    width, looped = 2 * model.hidden, 0
    for t in range(tasks):
        p = {}
        for name, value in model.theta.items():
            layer, kind = name.split(".")
            i = help_baseline.MODULATED_LAYERS.index(layer) if layer in help_baseline.MODULATED_LAYERS else None
            if i is None:
                p[name] = value.clone()
            elif kind == "weight":
                p[name] = value * (1 + 0.01 * z_w[t, i * width:(i + 1) * width])
            else:
                p[name] = value + 0.01 * z_b[t, i]
        for _ in range(2):
            loss = F.mse_loss(helps_forward(p, support[t], hw[t:t + 1]), y_support[t])
            grads = torch.autograd.grad(loss, list(p.values()), create_graph=True)
            p = {k: v - model.inner_lr[k] * g for (k, v), g in zip(p.items(), grads)}
        looped = looped + F.mse_loss(helps_forward(p, query[t], hw[t:t + 1]), y_query[t]) / tasks + 0.1 * kl[t]
    looped_grads = torch.autograd.grad(looped, learnable)

    assert batched.item() == pytest.approx(looped.item(), rel=1e-12)
    for a, b in zip(batched_grads, looped_grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    # the inner loop did move the parameters: a wrong inner step would show here
    assert any(float(g.abs().max()) > 0 for g in batched_grads[len(model.theta):2 * len(model.theta)])


@pytest.fixture(scope="module")
def short_nb201():
    """30 episodes on HELP's NB201 meta-train devices (meta lr 1e-3 so that so few episodes learn),
    beside the same model untrained."""
    torch.set_num_threads(1)
    trained = HELPPredictor("nb201", episodes=30, meta_lr=1e-3, mc_samples=4, seed=0)
    trained.meta_train(HELP_DEVICE_SPLITS["nb201"]["meta_train"], [])
    untrained = HELPPredictor("nb201", episodes=0, mc_samples=4, seed=0)
    return trained, untrained


def test_short_meta_training_beats_untrained_model(short_nb201):
    trained, untrained = short_nb201
    device = "gold_6226"  # an easy device: its latencies rank like the meta-train CPUs'
    before = untrained.score([device], samples=10, seed=0)[0]["spearman"]
    with_adaptation = trained.score([device], samples=10, seed=0)[0]
    trained.eval_inner_steps = 0
    try:
        without_adaptation = trained.score([device], samples=10, seed=0)[0]["spearman"]
    finally:
        trained.eval_inner_steps = trained.inner_steps
    assert with_adaptation["spearman"] > 0.7 and with_adaptation["spearman"] > before + 0.3
    assert without_adaptation > 0.7 and without_adaptation > before + 0.3
    assert with_adaptation["n_fewshot"] == 10 and with_adaptation["n_eval"] == 800  # 1000 queries, trimmed
    assert trained.history_[-1]["mse"] < trained.history_[0]["mse"]


def test_adapt_and_predict_for_a_device_of_ones_own(short_nb201):
    trained, _ = short_nb201
    latency = help_data.latency("nb201", "raspi4")
    support = np.arange(20, 30)
    labels = (latency[support] - latency[support].min()) / np.ptp(latency[support])
    adapted = trained.adapt(latency[trained.reference_archs], support, labels, device_name="my_raspi", mc_samples=3)
    query = np.arange(1000, 3500)  # more than one prediction chunk
    samples = adapted.predict(query, reduce="none")
    assert samples.shape == (3, len(query)) and np.isfinite(samples).all()
    np.testing.assert_allclose(trained.predict(adapted, query), samples.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(adapted.predict(query, reduce="last"), samples[-1])
    assert not np.allclose(samples[0], samples[-1])  # the z draws differ
    with pytest.raises(MultipredictError, match="same length|one length"):
        trained.adapt(latency[trained.reference_archs], support, labels[:3])


def _without_timing(rows):
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in rows]


def test_same_seed_same_results_other_seed_other_results():
    def run(seed):
        return help_baseline.fit_and_score(space="fbnet", train_devices=["pixel3", "silver_4114", "samsung_a50"],
                                           test_devices=["raspi4"], samples=10, seed=seed, episodes=6,
                                           eval_every=3, valid_devices=["gold_6240"], mc_samples=3, meta_batch=2)
    first, again, other = run(0), run(0), run(1)
    assert _without_timing(first) == _without_timing(again)
    assert first[0]["spearman"] != other[0]["spearman"]
    row = first[0]
    for key in ("device", "spearman", "kendall", "n_eval", "n_fewshot", "pool", "seconds"):
        assert key in row
    assert row["method"] == "help" and row["spearman_from"] == "mc_mean" and row["best_episode"] in (3, 6)


def test_bad_options_raise_with_the_valid_names():
    common = dict(space="fbnet", train_devices=["pixel3"], test_devices=["raspi4"], samples=10, seed=0)
    with pytest.raises(UnknownNameError, match="epsiodes") as caught:
        help_baseline.fit_and_score(**common, epsiodes=5)
    assert "episodes" in str(caught.value) and "spearman_from" in str(caught.value)
    with pytest.raises(MultipredictError, match="spearman_from='median' is not valid .*'last_sample'"):
        help_baseline.fit_and_score(**common, episodes=0, spearman_from="median")
    with pytest.raises(MultipredictError, match="meta-validation and test"):
        help_baseline.fit_and_score(**common, episodes=0, valid_devices=["raspi4"])
    with pytest.raises(UnknownNameError, match="space"):
        HELPPredictor("nb101")
    with pytest.raises(UnknownNameError, match="no_such_device"):
        HELPPredictor("fbnet", episodes=0).score(["no_such_device"])

