"""The CUDA paths: where torch sees a GPU, predictors, HELP, transfer, the proxy engine and the
``torch-cuda`` latency profiles run on it and agree with the CPU. Skipped where there is none (CI);
on a GPU machine: ``pytest tests/test_cuda.py -rP``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from multipredict.methods import transfer
from multipredict.baselines.help import HELP_DEVICE_SPLITS, HELPPredictor
from multipredict.measure import measure_archs
from multipredict.measure.runner import metadata_path
from multipredict.predictors.latency import resolve_device
from multipredict.proxies import ALL_PROXIES, compute_proxies, synthetic_batch
from multipredict.spaces import models

from test_predictors import _small, _two_opposite_devices
from test_proxies import CONV_ARCH

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch")


@pytest.fixture
def strict_fp32(monkeypatch):
    """TF32 off, so that a GPU float32 result differs from the CPU's only by summation order."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)


def test_auto_picks_the_gpu():
    assert resolve_device("auto").type == "cuda"
    assert HELPPredictor("nb201", episodes=0, mc_samples=2, seed=0).device.type == "cuda"


def test_predictor_learns_on_the_gpu_as_on_the_cpu(strict_fp32):
    features, labels, rows, score = _two_opposite_devices()
    on_cpu = _small(device="cpu").fit(features, labels, rows)
    on_gpu = _small(device="cuda").fit(features, labels, rows)
    assert next(on_gpu.network_.parameters()).device.type == "cuda"
    n = len(score)
    first = features.subset(np.arange(n))
    gpu_first, gpu_second = on_gpu.predict(first, 0), on_gpu.predict(first, 1)
    assert stats.spearmanr(gpu_first, score)[0] > 0.9 and stats.spearmanr(gpu_second, score)[0] < -0.9
    # same seed, same batches: the two runs differ only by float rounding
    cpu_first = on_cpu.predict(first, 0)
    print("predictor cpu vs gpu max |diff|:", float(np.abs(cpu_first - gpu_first).max()))
    np.testing.assert_allclose(gpu_first, cpu_first, atol=1e-3)
    # a GPU model is saved and restored like a CPU one
    restored = _small(device="cpu").restore(first, on_gpu.state(), n_devices=2)
    np.testing.assert_allclose(restored.predict(first, 0), gpu_first, atol=1e-5)


def test_help_meta_trains_and_adapts_on_the_gpu(mirror):
    trained = HELPPredictor("nb201", episodes=30, meta_lr=1e-3, mc_samples=4, seed=0, device="cuda")
    trained.meta_train(HELP_DEVICE_SPLITS["nb201"]["meta_train"], [])
    untrained = HELPPredictor("nb201", episodes=0, mc_samples=4, seed=0, device="cuda")
    after = trained.score(["gold_6226"], samples=10, seed=0)[0]["spearman"]
    before = untrained.score(["gold_6226"], samples=10, seed=0)[0]["spearman"]
    print(f"HELP on the GPU, gold_6226: untrained {before:.3f}, 30 episodes {after:.3f}")
    assert after > 0.7 and after > before + 0.3  # what the CPU test asks of the same run


def test_transfer_on_the_gpu(mirror):
    common = dict(space="nb201", train_devices=["1080ti_1", "silver_4114", "pixel3"], test_devices=["gold_6226"],
                  samples=10, seed=0, source_epochs=20, target_epochs=20)
    gpu = transfer.fit_and_score(**common, device="cuda")[0]
    cpu = transfer.fit_and_score(**common, device="cpu")[0]
    print(f"TL Vec ET, 20 epochs, gold_6226: gpu {gpu['spearman']:.3f} cpu {cpu['spearman']:.3f}")
    assert gpu["spearman"] > 0.8
    assert abs(gpu["spearman"] - cpu["spearman"]) < 0.05


def test_proxies_on_the_gpu_equal_the_cpus(strict_fp32):
    batch = synthetic_batch((3, 32, 32), num_classes=10, batch_size=8, seed=3)
    model = models.build_nb201(CONV_ARCH, channels=8, cells_per_stage=1, seed=0)
    on_cpu = compute_proxies(model, batch, device="cpu")
    on_gpu = compute_proxies(model, batch, device="cuda")
    assert tuple(on_gpu) == ALL_PROXIES
    rel = {k: abs(on_gpu[k] - on_cpu[k]) / max(abs(on_cpu[k]), 1e-12) for k in ALL_PROXIES}
    print("proxies cpu vs gpu relative diff:", {k: f"{v:.1e}" for k, v in rel.items()})
    assert all(math.isfinite(v) for v in on_gpu.values())
    assert max(rel.values()) < 1e-3, rel


def test_torch_cuda_profile_measures_and_records_the_gpu(tmp_path):
    out = tmp_path / "lat.csv"
    frame = measure_archs("nb201", [0, 1, 2], "cuda-b1", out, progress=False)
    assert len(frame) == 3 and (frame["latency_ms"] > 0).all()
    meta = json.loads(metadata_path(out).read_text())
    print("cuda-b1 latencies (ms):", frame["latency_ms"].round(3).tolist())
    assert torch.cuda.get_device_name(0) in json.dumps(meta)
