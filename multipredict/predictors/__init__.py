"""Latency predictors: f(x, h) over an arch encoding and a hardware embedding.

- `LatencyPredictor`: the estimator (GCN or MLP body, ``table`` / ``sample`` / ``index`` / no
  hardware embedding, regression head), with ``fit``, ``fine_tune``, ``predict``, ``add_device``.
- `networks`: the torch modules. `hardware`: fixed embeddings. `evaluation`: splits, few-shot
  draws and rank correlations shared by every latency method.
"""

from .evaluation import device_latency, device_split, few_shot_ids, rank_correlations, target_split
from .hardware import index_vector, sample_vector
from .latency import BODIES, FINE_TUNE_PARTS, LatencyPredictor, resolve_device
from .networks import EMBEDDINGS

__all__ = ["LatencyPredictor", "BODIES", "EMBEDDINGS", "FINE_TUNE_PARTS", "resolve_device", "sample_vector",
           "index_vector", "device_latency", "device_split", "target_split", "few_shot_ids", "rank_correlations"]
