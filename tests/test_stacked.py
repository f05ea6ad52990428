"""Stacked training (`predictors.stacked`) equals the per-model loop of `LatencyPredictor`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multipredict import encodings
from multipredict.encodings import ArchFeatures
from multipredict.errors import MultipredictError
from multipredict.predictors import LatencyPredictor, index_vector
from multipredict.predictors.stacked import FineTuneJob, FitJob, fine_tune_many, fit_many, should_stack

N_DEVICES = 3
# On one CPU thread (as tests run) the stacked run has been bit for bit the loop's on one machine;
# other CPUs, thread counts and GPUs round a batched matmul differently (on another AVX-512 machine
# one GCN weight of 40,000 came out 4e-5 relative off here), which a few epochs amplify little. So each
# weight tensor is compared as a whole, to RTOL of its norm; predictions and loss histories element
# by element. A different training (another epoch, another seed) misses by orders of magnitude.
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def nb201_features(mirror):
    """Real NB201 features in both forms: {"gcn": graph form, "mlp": flat Vec}, 400 archs each."""
    ids = np.random.default_rng(0).choice(15625, 400, replace=False)
    return {body: encodings.ArchEncoder("nb201", "vec", form=form).fit(ids).transform(ids)
            for body, form in (("gcn", "graph"), ("mlp", "flat"))}


def _vectors(embedding):
    if embedding == "sample":
        return np.random.default_rng(1).uniform(0, 1, (N_DEVICES, 10)).astype(np.float32)
    if embedding == "index":
        return np.stack([index_vector(i) for i in range(N_DEVICES)])
    return None


def _datasets(features, embedding, sizes, seed=0):
    """One FitJob per size: its own archs, labels and device rows."""
    rng = np.random.default_rng(seed)
    jobs = []
    for n in sizes:
        rows = rng.choice(len(features), n, replace=False)
        devices = None if embedding == "none" else rng.integers(0, N_DEVICES, n)
        jobs.append(FitJob(features.subset(rows), rng.uniform(0, 1, n).astype(np.float32), devices,
                           _vectors(embedding), N_DEVICES if embedding == "table" else None))
    return jobs


def _model(body, embedding, seed, **options):
    config = dict(body=body, embedding=embedding, epochs=2, batch_size=64, device="cpu", seed=seed)
    config.update(options)
    return LatencyPredictor(**config)


def _loop_fit(models, jobs):
    return [m.fit(j.X, j.y, j.devices, device_vectors=j.device_vectors, n_devices=j.n_devices)
            for m, j in zip(models, jobs)]


def assert_same_models(loop, stacked, jobs):
    for a, b, job in zip(loop, stacked, jobs):
        assert a is not b
        for (name, wa), wb in zip(a.network_.named_parameters(), b.network_.parameters()):
            wa, wb = wa.detach().numpy(), wb.detach().numpy()
            assert wa.shape == wb.shape, name
            gap, size = np.linalg.norm(wb - wa), np.linalg.norm(wa)
            assert gap <= RTOL * size + ATOL, f"{name}: stacked and loop weights {gap:.2e} apart (norm {size:.2e})"
        np.testing.assert_allclose(b.predict(job.X, job.devices), a.predict(job.X, job.devices), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(b.history_, a.history_, rtol=RTOL, atol=ATOL)
        assert len(b.history_) == len(a.history_)
        assert b.n_fine_tunes_ == a.n_fine_tunes_


@pytest.mark.parametrize("body", ["gcn", "mlp"])
@pytest.mark.parametrize("embedding", ["table", "sample", "index"])
def test_fit_many_equals_the_loop(nb201_features, body, embedding):
    jobs = _datasets(nb201_features[body], embedding, [150, 150, 150])
    loop = _loop_fit([_model(body, embedding, seed) for seed in range(3)], jobs)
    stacked = fit_many([_model(body, embedding, seed) for seed in range(3)], jobs, stack=True)
    assert_same_models(loop, stacked, jobs)
    # the models stayed independent: different seeds and data, different weights
    assert not np.allclose(stacked[0].predict(jobs[0].X, jobs[0].devices),
                           stacked[1].predict(jobs[0].X, jobs[0].devices))


def test_the_comparison_tells_another_training_apart(nb201_features):
    """`assert_same_models` fails for a stacked run that trained differently from the loop: one
    more epoch, or another seed (so the tolerance above is far from hiding a real difference)."""
    jobs = _datasets(nb201_features["gcn"], "table", [150, 150])
    loop = _loop_fit([_model("gcn", "table", seed) for seed in range(2)], jobs)
    for other in ([_model("gcn", "table", seed, epochs=3) for seed in range(2)],
                  [_model("gcn", "table", seed + 1) for seed in range(2)]):
        with pytest.raises(AssertionError):
            assert_same_models(loop, fit_many(other, jobs, stack=True), jobs)


@pytest.mark.parametrize("body", ["gcn", "mlp"])
@pytest.mark.parametrize("train", ["all", "head"])
def test_fine_tune_many_equals_the_loop(nb201_features, body, train):
    """Table-1 shape: copies of pretrained models, each with its target's row added (Eq. 1 copy),
    fine-tuned full batch on a few samples."""
    features = nb201_features[body]
    jobs = _datasets(features, "table", [130, 130])
    pretrained = fit_many([_model(body, "table", seed) for seed in range(2)], jobs, stack=True)
    rng = np.random.default_rng(5)
    loop, stacked, tunes = [], [], []
    for model in pretrained:
        for target in range(3):
            shots = rng.choice(len(features), 10, replace=False)
            tune = dict(X=features.subset(shots), y=rng.uniform(0, 1, 10).astype(np.float32), lr=1e-3, epochs=4,
                        train=train)
            for out in (loop, stacked):
                copy = model.copy()
                row = copy.add_device(copy_from=target)
                out.append(copy)
            tunes.append(FineTuneJob(devices=np.full(10, row), **tune))
    for model, job in zip(loop, tunes):
        model.fine_tune(job.X, job.y, job.devices, lr=job.lr, epochs=job.epochs, train=job.train)
    assert fine_tune_many(stacked, tunes, stack=True) == stacked
    assert_same_models(loop, stacked, tunes)
    if train == "head":  # the arch body stayed as pretrained
        before = dict(pretrained[0].network_.body.named_parameters())
        for name, weight in stacked[0].network_.body.named_parameters():
            assert torch.equal(weight, before[name])


def test_groups_of_different_shapes_and_settings(nb201_features):
    """Different dataset sizes (steps per epoch), learning rates and embeddings train in separate
    stacked groups; a group of one takes the loop; every model equals its own loop run."""
    features = nb201_features["mlp"]
    jobs = (_datasets(features, "table", [100, 100, 70, 100], seed=1)
            + _datasets(features, "index", [100, 100], seed=2))
    settings = [dict(), dict(), dict(), dict(lr=1e-3), dict(), dict()]
    embeddings = ["table"] * 4 + ["index"] * 2

    def models():
        return [_model("mlp", emb, seed, **extra) for seed, (emb, extra) in enumerate(zip(embeddings, settings))]

    loop = _loop_fit(models(), jobs)
    stacked = fit_many(models(), jobs, stack=True)
    assert_same_models(loop, stacked, jobs)


def test_no_embedding_and_side_features():
    """A single-device predictor with ZCP-like side features before the head (zcpvec's shape)."""
    rng = np.random.default_rng(3)
    jobs = [FitJob(ArchFeatures(rng.uniform(0, 1, (90, 12)).astype(np.float32),
                                rng.uniform(0, 1, (90, 13)).astype(np.float32)),
                   rng.uniform(0, 1, 90).astype(np.float32)) for _ in range(3)]
    loop = _loop_fit([_model("mlp", "none", seed, epochs=3) for seed in range(3)], jobs)
    stacked = fit_many([_model("mlp", "none", seed, epochs=3) for seed in range(3)], jobs, stack=True)
    assert_same_models(loop, stacked, jobs)


def test_progress_tuples_and_errors(nb201_features):
    features = nb201_features["mlp"]
    job = _datasets(features, "table", [80])[0]
    seen = []
    models = [_model("mlp", "table", 0, progress=seen.append), _model("mlp", "table", 1)]
    fit_many(models, [(job.X, job.y, job.devices), {"X": job.X, "y": job.y, "devices": job.devices}], stack=True)
    assert seen == [0.5, 1.0]
    with pytest.raises(MultipredictError, match="2 predictors but 1 datasets"):
        fit_many(models, [job])
    with pytest.raises(MultipredictError, match="same predictor appears twice"):
        fine_tune_many([models[0], models[0]], [FineTuneJob(job.X, job.y, job.devices)] * 2)
    with pytest.raises(MultipredictError, match="fine-tuned part"):
        fine_tune_many([models[0]], [FineTuneJob(job.X, job.y, job.devices, train="body")])


def test_should_stack():
    """A GPU stacks from two models; a CPU only when asked, at any thread count."""
    assert not should_stack(1, "cpu") and not should_stack(1, "cuda")
    assert should_stack(2, "cuda") and should_stack(10, "cuda")
    threads = torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            assert not should_stack(10, "cpu")
    finally:
        torch.set_num_threads(threads)


def test_custom_network_parts_train_by_the_loop(nb201_features):
    """A network built from custom `NetworkParts` has a forward pass the stacked trainer does not
    know: it trains by the loop, with the loop's numbers."""
    from multipredict.predictors.networks import MLPBody, NetworkParts

    class ScaledBody(MLPBody):
        def forward(self, x):
            return 2 * super().forward(x)

    parts = NetworkParts(mlp_body=ScaledBody)
    jobs = _datasets(nb201_features["mlp"], "table", [80, 80])
    loop = _loop_fit([_model("mlp", "table", seed, network_parts=parts) for seed in range(2)], jobs)
    stacked = fit_many([_model("mlp", "table", seed, network_parts=parts) for seed in range(2)], jobs, stack=True)
    assert_same_models(loop, stacked, jobs)
