"""benchmarks/replication: code that emulates other code bases reaches the engine through its hooks
only (index codes by the authors' device list, the authors' network parts and labels), and BRP-NAS's
released recipe (its pruned graph, GCN and training loop) runs as a registered method."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python -m pytest` (dev.py, CI) puts the root there; a bare `pytest` does not
    sys.path.insert(0, str(ROOT))

from benchmarks.replication import BRPNAS_RELEASED, brpnas_eagle, register_methods  # noqa: E402
from benchmarks.replication.authors_code import AUTHORS_DEVICE_ORDER, authors_index_position  # noqa: E402
from multipredict.errors import MultipredictError, UnknownNameError  # noqa: E402
from multipredict.experiments import methods  # noqa: E402
from multipredict.methods import transfer  # noqa: E402
from multipredict.methods.protocol import device_latency  # noqa: E402
from multipredict.predictors import index_vector, networks  # noqa: E402
from multipredict.spaces import nb201  # noqa: E402

TINY = dict(embedding="index", source_samples=50, source_epochs=1, target_epochs=1, predictor="mlp")


def test_index_codes_can_follow_the_authors_device_list(mirror):
    authors_codes = transfer.TrialHooks(index_position=authors_index_position)
    ours = transfer.BenchmarkTransfer("fbnet", ["1080ti_1", "pixel3"], **TINY).fit()
    authors = transfer.BenchmarkTransfer("fbnet", ["1080ti_1", "pixel3"], hooks=authors_codes, **TINY).fit()
    assert ours.pretraining_key_ != authors.pretraining_key_
    # sources: 0, 1 in source order; authors: 1080ti_1 is their device 0, pixel3 their device 6
    assert np.array_equal(ours.pretrained_.embedding_table(), np.stack([index_vector(0), index_vector(1)]))
    assert np.array_equal(authors.pretrained_.embedding_table(), np.stack([index_vector(0), index_vector(6)]))
    ids = np.arange(10)
    for model, code in ((ours, 2), (authors, AUTHORS_DEVICE_ORDER["fbnet"].index("raspi4"))):
        target = model.add_device("raspi4", ids, device_latency("fbnet", "raspi4")[ids])
        assert np.array_equal(target.predictor.embedding_table()[target.row], index_vector(code))
    assert code == 20
    with pytest.raises(MultipredictError, match="'nonesuch' is not in the authors' fbnet device list"):
        authors.add_device("nonesuch", ids, device_latency("fbnet", "raspi4")[ids])
    # a hook that returns no position is named in the error
    bad = transfer.TrialHooks(index_position=lambda space, device, position: "first")
    with pytest.raises(MultipredictError, match="returned 'first'"):
        transfer.BenchmarkTransfer("fbnet", ["1080ti_1"], hooks=bad, **TINY).fit()
    # a table embedding has no codes: the hook leaves its pretraining (and key) alone
    table = [transfer.BenchmarkTransfer("fbnet", ["1080ti_1"], hooks=hooks, source_samples=50, source_epochs=0).fit()
             for hooks in (None, authors_codes)]
    assert table[0].pretraining_key_ == table[1].pretraining_key_


def test_the_authors_loop_reaches_the_engine_through_hooks(mirror):
    from benchmarks.replication import authors_index_loop as loop

    hooks = loop.emulating(["embedding_mlp", "sigmoid", "labels"], "fbnet")
    model = transfer.BenchmarkTransfer("fbnet", ["1080ti_1", "pixel3"], hooks=hooks, **TINY).fit()
    plain = transfer.BenchmarkTransfer("fbnet", ["1080ti_1", "pixel3"],
                                       hooks=transfer.TrialHooks(index_position=authors_index_position), **TINY).fit()
    net = model.pretrained_.network_
    assert isinstance(net, loop.SigmoidLatencyNet) and isinstance(net.embedding, loop.EmbeddingThroughMLP)
    # the key names the network parts and sees the labels (min-max over every pool arch)
    assert model.pretraining_key_ != plain.pretraining_key_
    assert set(model.key_payload_["network_parts"]) == {"embedding", "net"}
    assert "network_parts" not in plain.key_payload_
    latency = device_latency("fbnet", "1080ti_1")
    split = model.source_splits_["1080ti_1"]
    assert (split.low, split.high) == (np.min(latency[split.eval_ids]), np.max(latency[split.eval_ids]))
    ids = np.arange(10)
    target = model.add_device("raspi4", ids, device_latency("fbnet", "raspi4")[ids])
    full = device_latency("fbnet", "raspi4")
    assert target.label_offset == pytest.approx(-np.nanmin(full) / (np.nanmax(full) - np.nanmin(full)))
    assert ((model.predict("raspi4", ids, scale="label") > 0) & (model.predict("raspi4", ids, scale="label") < 1)).all()
    with pytest.raises(SystemExit, match="unknown part"):
        loop.emulating(["softmax"], "fbnet")


def test_brpnas_released_recipe_is_a_registered_method(mirror):
    with methods.use_registry():
        register_methods()
        method = methods.get(BRPNAS_RELEASED)
        assert not method.needs_train_devices and method.options_model() is brpnas_eagle.ReleasedOptions
        with pytest.raises(UnknownNameError, match="head_width"):
            method.validate({"head_width": 100})
    assert BRPNAS_RELEASED not in methods.names()  # only where it was registered
    kwargs = dict(space="nb201", train_devices=[], test_devices=["fpga"], samples=40, seed=0, validation=10,
                  epochs=25)
    row, = brpnas_eagle.fit_and_score(**kwargs)
    assert row["recipe"] == "eagle" and row["n_fewshot"] == 40 and row["n_measured"] == 50
    assert row["n_eval"] == 15625 - 50  # neither the training nor the validation archs are scored
    assert row["epochs_run"] == 25 and row["spearman"] > 0.5, row
    with pytest.raises(MultipredictError, match="nb201 only"):
        brpnas_eagle.fit_and_score(**{**kwargs, "space": "fbnet"})
    with pytest.raises(MultipredictError, match="samples=1"):
        brpnas_eagle.fit_and_score(**{**kwargs, "samples": 1})
    with pytest.raises(MultipredictError, match="validation"):
        brpnas_eagle.fit_and_score(**{**kwargs, "validation": 0})


def test_brpnas_released_training_stops_early_on_a_stalled_validation_loss(mirror):
    latency = device_latency("nb201", "raspi4")
    ids = np.arange(0, 400, 20)
    # no validation loss at all (NaN labels): stops at its first check, epoch 22, as BRP-NAS's code
    _, epochs_run = brpnas_eagle.fit_eagle(ids, latency[ids], ids[:5], np.full(5, np.nan), epochs=200)
    assert epochs_run == 22
    # validation labels far above anything the net is fit to: the loss stalls, and training stops
    # no earlier than 35 epochs after its first check
    network, epochs_run = brpnas_eagle.fit_eagle(ids, latency[ids], ids[:5], np.full(5, 1e6), epochs=200)
    assert 57 <= epochs_run < 200
    # the same seed gives the same network
    again, _ = brpnas_eagle.fit_eagle(ids, latency[ids], ids[:5], np.full(5, 1e6), epochs=epochs_run)
    assert np.array_equal(brpnas_eagle.predict_eagle(network, ids), brpnas_eagle.predict_eagle(again, ids))


def test_brpnas_gcn_reads_its_global_node_as_a_full_last_layer_would():
    torch.manual_seed(0)
    network = brpnas_eagle.BRPNASGCN(len(brpnas_eagle.BRPNAS_NODE_FEATURES), layers=3, width=32).eval()
    adjacency, features = (torch.from_numpy(a) for a in brpnas_eagle.brpnas_graphs(np.arange(0, 15625, 313)))
    h = features
    for weight, bias, norm in zip(network.weights, network.biases, network.norms):
        h = torch.relu(norm(torch.bmm(adjacency, h @ weight) + bias))  # every node of every layer
    with torch.no_grad():
        assert torch.allclose(network(adjacency, features), network.out(h[:, 0]).squeeze(-1), atol=1e-5)
    bound = 1 / 32 ** 0.5
    assert all(p.abs().max() <= bound for p in [*network.weights, *network.biases])  # BRP-NAS's init


def _cell(*ops: str) -> list[int]:
    return [nb201.OPS.index(op) for op in ops]


def test_brpnas_graph_of_a_cell_with_every_op_live():
    adjacency, features = brpnas_eagle.brpnas_graph(_cell(*["nor_conv_3x3"] * 6))
    assert adjacency.shape == (9, 9) and features.shape == (9, len(brpnas_eagle.BRPNAS_NODE_FEATURES))
    assert (np.diag(adjacency) == 1).all() and (adjacency[0] == 1).all()  # the global node gathers all
    # below the global node: the op-as-node graph (src -> dst), shifted by one
    assert np.array_equal(adjacency[1:, 1:] - np.eye(8), nb201.graph_adjacency())
    names = [brpnas_eagle.BRPNAS_NODE_FEATURES[i] for i in features.argmax(axis=1)]
    assert names == ["global", "input"] + ["nor_conv_3x3"] * 6 + ["output"]


def test_brpnas_graph_contracts_skips_and_prunes_dead_ops():
    # edge (0->1) a skip: the input links straight to the two ops that leave node 1
    adjacency, features = brpnas_eagle.brpnas_graph(_cell("skip_connect", *["nor_conv_1x1"] * 5))
    assert adjacency[1, 1:].tolist() == [1, 0, 1, 1, 1, 1, 0, 0]  # input -> itself, edges 1, 2, 3, 4
    assert adjacency[2].sum() == 1 and features[2].sum() == 0  # the skip node is left empty
    # edge (0->1) a conv whose outputs are all 'none': computed by NB201's cell, but pruned here
    adjacency, features = brpnas_eagle.brpnas_graph(_cell("nor_conv_3x3", "avg_pool_3x3", "none", "nor_conv_1x1",
                                                          "none", "nor_conv_1x1"))
    assert features[2].sum() == 0 and adjacency[:, 2].sum() == 2  # only its self-loop and the global node
    assert features[3, brpnas_eagle.BRPNAS_NODE_FEATURES.index("avg_pool_3x3")] == 1
    # a cell with no path from input to output keeps only the input / output / global markers
    adjacency, features = brpnas_eagle.brpnas_graph(_cell(*["none"] * 6))
    assert np.array_equal(adjacency[1:, 1:], np.eye(8)) and features.sum() == 3


def test_brpnas_graph_merges_cells_that_compute_different_ops():
    graphs = {tuple(np.concatenate([a.ravel(), f.ravel()]))
              for a, f in (brpnas_eagle.brpnas_graph(ops) for ops in itertools.product(range(5), repeat=6))}
    assert len(graphs) == 8687  # of 15,625 cells
    with pytest.raises(MultipredictError, match="6 op indices"):
        brpnas_eagle.brpnas_graph([3, 3, 3])


def test_network_parts_default_to_the_engine_modules():
    assert networks.NetworkParts().changed() == {}
    changed = networks.NetworkParts(net=type("MyNet", (networks.LatencyNet,), {})).changed()
    assert list(changed) == ["net"] and changed["net"].endswith(":MyNet")
