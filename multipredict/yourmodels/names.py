"""What the ``encode`` and ``predict`` commands offer, by name, importable without torch: the
command line builds every command's parser before it runs one, and ``multipredict --help`` or a
stored ``onboard`` should not wait for torch's import."""

from __future__ import annotations

# `encode`'s default reference profiles: eager vs onnxruntime's fused graph, batch 1 vs 8
CPU_PROFILES = ("cpu-1t-b1", "ort-cpu-1t-b1", "cpu-1t-b8", "ort-cpu-1t-b8")
CUDA_PROFILE = "cuda-b1"  # added to them when torch sees a GPU
ENCODINGS = ("hwl", "zcp", "hwlzcp")
PREDICTOR_NAMES = ("nnls", "ridge", "mlp", "closest")  # `predict.PREDICTORS` maps them to their classes
DEFAULT_PREDICTOR = "auto"
