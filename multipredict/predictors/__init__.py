"""Estimators: they receive arrays and frames and never read the benchmark data.

- `LatencyPredictor`: f(x, h) over an arch encoding and a hardware embedding (GCN or MLP body,
  ``table`` / ``sample`` / ``index`` / no hardware embedding, regression head), with ``fit``,
  ``fine_tune``, ``predict``, ``add_device``.
- `FewShotLatencyPredictor` (`fewshot`): pretrain on source devices' tables, add a target device
  from a few measurements (Eq. 1 + fine-tuning), content-keyed pretraining cache.
- `networks`: the torch modules. `hardware`: fixed embeddings.

The trial protocol that looks data up for them is `multipredict.methods`.
"""

from .fewshot import FewShotLatencyPredictor, TransferOptions
from .hardware import index_vector, sample_embedding
from .latency import BODIES, FINE_TUNE_PARTS, LatencyPredictor, resolve_device
from .networks import EMBEDDINGS

__all__ = ["LatencyPredictor", "FewShotLatencyPredictor", "TransferOptions", "BODIES", "EMBEDDINGS",
           "FINE_TUNE_PARTS", "resolve_device", "sample_embedding", "index_vector"]
