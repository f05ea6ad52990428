"""Zero-cost proxies over torch models: the 13 scores of NAS-Bench-Suite-Zero, computed together.

>>> from multipredict.spaces.models import build_model
>>> from multipredict.proxies import compute_proxies, make_batch
>>> batch = make_batch("nb201")                       # seeded synthetic batch, 64 x 3x32x32
>>> scores = compute_proxies(build_model("nb201", 0, seed=0), batch)

`compute_proxies` shares forward/backward passes between proxies (the fast path);
`compute_proxy` computes one proxy on its own (the reference path). `run_zcp` (in
`multipredict.proxies.runner`) scores many archs of a space into a resumable table.
"""

from .batch import (DEFAULT_BATCH_SIZE, DEFAULT_SEED, ProxyBatch, batch_info, image_folder_batch, make_batch,
                    synthetic_batch)
from .engine import compute_proxies
from .reference import compute_proxies_separately, compute_proxy
from .scores import ALL_PROXIES, ZEN_OUTPUTS, expected_l2_norm_score, resolve_device

__all__ = [
    "ALL_PROXIES", "ZEN_OUTPUTS", "DEFAULT_BATCH_SIZE", "DEFAULT_SEED", "ProxyBatch", "batch_info",
    "image_folder_batch", "make_batch", "synthetic_batch", "compute_proxies", "compute_proxy",
    "compute_proxies_separately", "resolve_device", "expected_l2_norm_score",
]
