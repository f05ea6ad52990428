"""LatencyPredictor: learning through the hardware embedding, determinism, purity, device rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from multipredict import encodings
from multipredict.encodings import ArchFeatures
from multipredict.errors import MultipredictError, UnknownNameError
from multipredict.methods.protocol import sample_vector
from multipredict.predictors import LatencyPredictor, index_vector


def _two_opposite_devices(n=160, seed=0):
    """Device 0's latency grows with x @ w, device 1's shrinks: only the embedding tells them apart."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 6)).astype(np.float32)
    score = x @ rng.uniform(0.5, 1.5, 6)
    score = (score - score.min()) / np.ptp(score)
    features = ArchFeatures(np.concatenate([x, x]))
    labels = np.concatenate([score, 1 - score])
    rows = np.repeat([0, 1], n)
    return features, labels, rows, score


def _small(**kwargs):
    config = dict(body="mlp", epochs=60, lr=3e-3, batch_size=64, head_layers=2, head_width=64, mlp_width=64,
                  device="cpu", seed=0)
    config.update(kwargs)
    return LatencyPredictor(**config)


def test_table_embedding_separates_devices():
    features, labels, rows, score = _two_opposite_devices()
    model = _small().fit(features, labels, rows)
    n = len(score)
    on_first = model.predict(features.subset(np.arange(n)), 0)
    on_second = model.predict(features.subset(np.arange(n)), 1)
    assert stats.spearmanr(on_first, score)[0] > 0.9
    assert stats.spearmanr(on_second, score)[0] < -0.9
    assert model.history_[-1] < model.history_[0] / 3


def test_same_seed_same_model_and_predict_is_pure():
    features, labels, rows, _ = _two_opposite_devices()
    first = _small(epochs=5).fit(features, labels, rows)
    second = _small(epochs=5).fit(features, labels, rows)
    p1 = first.predict(features, rows)
    assert np.array_equal(p1, second.predict(features, rows))
    assert np.array_equal(p1, first.predict(features, rows))  # predicting changes nothing
    other = _small(epochs=5, seed=1).fit(features, labels, rows)
    assert not np.allclose(p1, other.predict(features, rows))


def test_add_device_copies_the_row_then_fine_tunes():
    features, labels, rows, score = _two_opposite_devices()
    model = _small(epochs=30).fit(features, labels, rows)
    tuned = model.copy()
    new = tuned.add_device(copy_from=1)
    assert new == 2 and tuned.n_devices_ == 3 and model.n_devices_ == 2
    table = tuned.embedding_table()
    assert np.array_equal(table[2], table[1])
    few = np.arange(10)
    before = tuned.predict(features.subset(few), new)
    tuned.fine_tune(features.subset(few), labels[few], new, lr=1e-3, epochs=5)
    assert not np.allclose(before, tuned.predict(features.subset(few), new))
    # the pretrained model it was copied from is untouched
    assert model.n_devices_ == 2
    with pytest.raises(MultipredictError, match="copy_from"):
        model.copy().add_device(copy_from=5)


def _weights(module):
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def test_fine_tuning_the_head_leaves_the_arch_body_as_pretrained():
    features, labels, rows, _ = _two_opposite_devices()
    model = _small(epochs=20).fit(features, labels, rows)
    few = np.arange(10)
    tuned = model.copy()
    row = tuned.add_device(copy_from=1)
    body, head, table = _weights(tuned.network_.body), _weights(tuned.network_.head), tuned.embedding_table()
    tuned.fine_tune(features.subset(few), labels[few], row, lr=1e-2, epochs=5, train="head")
    after = _weights(tuned.network_.body)
    assert all(torch.equal(body[k], after[k]) for k in body)
    assert not all(torch.equal(head[k], v) for k, v in _weights(tuned.network_.head).items())
    assert not np.allclose(table[row], tuned.embedding_table()[row])
    # the body is frozen for that call only: fine-tuning every weight moves it
    tuned.fine_tune(features.subset(few), labels[few], row, lr=1e-2, epochs=5, train="all")
    assert not all(torch.equal(after[k], v) for k, v in _weights(tuned.network_.body).items())
    with pytest.raises(UnknownNameError, match="'body'.*all, head"):
        tuned.fine_tune(features.subset(few), labels[few], row, train="body")


def test_fixed_embeddings_need_vectors():
    features, labels, rows, _ = _two_opposite_devices(n=40)
    vectors = np.stack([index_vector(0), index_vector(1)])
    model = _small(embedding="index", epochs=2).fit(features, labels, rows, device_vectors=vectors)
    assert model.add_device(vector=index_vector(2)) == 2
    assert np.array_equal(model.embedding_table()[2], index_vector(2))
    with pytest.raises(MultipredictError, match="device_vectors"):
        _small(embedding="sample", epochs=1).fit(features, labels, rows)


def test_hardware_vectors(mirror):
    assert index_vector(5).tolist() == [0, 0, 0, 0, 0, 1, 0, 1]
    with pytest.raises(MultipredictError, match="8-bit"):
        index_vector(256)
    vector = sample_vector("nb201", "fpga")
    assert vector.shape == (10,) and vector.min() == 0 and vector.max() == 1


def test_gcn_on_nb201_graph(mirror):
    ids = np.arange(0, 15625, 97)
    encoder = encodings.ArchEncoder("nb201", "vec", form="graph").fit(ids)
    features = encoder.transform(ids)
    labels = np.random.default_rng(0).uniform(0, 1, len(ids))
    model = LatencyPredictor(body="gcn", embedding="none", epochs=2, device="cpu").fit(features, labels)
    assert model.predict(features).shape == (len(ids),)
    with pytest.raises(MultipredictError, match="graph-form"):
        LatencyPredictor(body="gcn", embedding="none").fit(ArchFeatures(np.zeros((4, 3), np.float32)), np.zeros(4))


def test_gcn_sums_or_averages_a_nodes_inputs(mirror):
    from multipredict.predictors.networks import GCNBody

    adjacency = torch.as_tensor(encodings.graph_adjacency("nb201"))
    summed = GCNBody(adjacency, 8, layers=1, width=4, readout_layers=1, out_dim=4)
    averaged = GCNBody(adjacency, 8, layers=1, width=4, readout_layers=1, out_dim=4, aggregation="mean")
    assert torch.equal(summed.adjacency, adjacency)  # the default: BRP-NAS's and the authors' GCN
    assert torch.allclose(averaged.adjacency.sum(dim=1), torch.ones(9))
    # with the same weights, one graph layer's global node is the sum of the cell's nine nodes, or
    # their mean: here through identity weights and no bias, then a linear readout (ReLU-free inputs)
    for gcn in (summed, averaged):
        with torch.no_grad():
            gcn.convs[0].weight.zero_()
            gcn.convs[0].weight[:, :4] = torch.eye(4)
            gcn.convs[0].bias.zero_()
            gcn.readout[0].weight.copy_(torch.eye(4))
            gcn.readout[0].bias.zero_()
    nodes = torch.as_tensor(encodings.graph_features("nb201", [0, 7, 15624]))
    assert torch.allclose(summed(nodes), nodes[:, :, :4].sum(dim=1))
    assert torch.allclose(averaged(nodes), nodes[:, :, :4].mean(dim=1))
    with pytest.raises(UnknownNameError, match="GCN aggregation 'max'"):
        LatencyPredictor(body="gcn", embedding="none", gcn_aggregation="max").fit(
            encodings.ArchEncoder("nb201", "vec", form="graph").fit([0, 1]).transform([0, 1]), [0.0, 1.0])


def test_configuration_errors():
    with pytest.raises(UnknownNameError, match="valid LatencyPredictor parameters"):
        LatencyPredictor().set_params(epochz=3)
    features, labels, rows, _ = _two_opposite_devices(n=20)
    with pytest.raises(UnknownNameError, match="hardware embedding"):
        _small(embedding="learned").fit(features, labels, rows)
    with pytest.raises(MultipredictError, match="device row"):
        _small().fit(features, labels)
    with pytest.raises(MultipredictError, match="not fitted"):
        _small().predict(features, rows)
