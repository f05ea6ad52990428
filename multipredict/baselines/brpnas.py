"""BRP-NAS baseline: the transfer method's predictor trained from scratch on the target device alone.

As the Multi-Predict paper compares against it: the same network (NB201: the GCN over the cell
graph; FBNet: the MLP on the one-hot), no hardware embedding, no source devices, trained on
``samples`` measured archs of the target (900 or 3,200 in Table 1) with the source-training
hyperparameters (AdamW, lr 4e-4, 250 epochs, batch 128, cosine, L1 sum); labels min-max scaled over
those samples. Other encodings (``zcp``, ``hwl``) give the "from scratch" curves of the paper's
Figure 6. Scored on the same held-out archs as the other methods for the same seed and budget.

BRP-NAS as its own released code trains it (its pruned cell graph, GCN and training loop) is a
replication study, not this baseline: ``benchmarks/replication/brpnas_eagle.py``, registered as the
method "BRP-NAS (released recipe)".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import numpy as np
from pydantic import Field

from .. import encodings
from ..errors import MultipredictError, UnknownNameError
from ..methods.protocol import (device_latency, few_shot_ids, minmax_labels, rank_correlations, resolve_predictor,
                                target_split)
from ..options import Options
from ..predictors import LatencyPredictor
from ..spaces import LATENCY_SPACES

METHOD = "brpnas"


class BRPNASOptions(Options):
    """BRP-NAS's options: a predictor trained from scratch on the target's samples."""

    encoding: encodings.EncodingName = Field("vec", description="arch encoding")
    predictor: Literal["auto", "gcn", "mlp"] = Field("auto", description="network body (auto: GCN on NB201 Vec)")
    gcn_aggregation: Literal["sum", "mean"] = Field("sum", description="how a GCN layer combines a node's inputs")
    epochs: int = Field(250, ge=0, description="training epochs")
    lr: float = Field(4e-4, gt=0, description="learning rate")
    head_layers: int = Field(4, ge=1, description="regression head layers")
    head_width: int = Field(200, ge=1, description="regression head width")
    batch_size: int = Field(128, ge=1, description="batch size")
    score_on: Literal["heldout", "all"] = Field("heldout", description="score on held-out or all pool archs")
    hwl_devices: tuple[str, ...] | None = Field(None, description="HWL encodings' reference devices")
    device: str = Field("auto", description="torch device")
    progress: Callable[[str, float], None] | None = Field(None, description="callable(stage, fraction)",
                                                          exclude=True)


OPTIONS = BRPNASOptions.names()
DEFAULT_OPTIONS: dict[str, object] = BRPNASOptions.defaults()


def fit_and_score(*, space: str, train_devices: list[str], test_devices: list[str], samples: int,
                  seed: int, protocol: str = "paper", **options) -> list[dict]:
    """Train a predictor from scratch on ``samples`` archs of each test device and score it.

    ``train_devices`` are not trained on; they only serve as the default ``hwl_devices`` of an HWL
    encoding. Options: encoding, predictor (auto|gcn|mlp), gcn_aggregation (sum|mean), epochs, lr, head_layers,
    head_width, batch_size, score_on (heldout|all), hwl_devices, device, progress (callable(stage, fraction)):
    `BRPNASOptions`.
    """
    parsed = BRPNASOptions.parse(options, "BRP-NAS")
    config = {name: getattr(parsed, name) for name in OPTIONS}
    if space not in LATENCY_SPACES:
        raise UnknownNameError("space", space, tuple(LATENCY_SPACES))
    if not isinstance(samples, (int, np.integer)) or samples < 2:
        raise MultipredictError(f"samples={samples!r} is not valid; BRP-NAS trains on >= 2 target archs (900 or 3200 "
                                "in the paper)")
    encoding = encodings.check_encoding(config["encoding"])
    body = resolve_predictor(space, encoding, config["predictor"])
    hwl = [] if "hwl" not in encodings.uses(encoding) else list(config["hwl_devices"] or train_devices)
    if set(hwl) & set(test_devices):
        raise MultipredictError(f"hwl_devices {sorted(set(hwl) & set(test_devices))} are test devices: their latencies "
                                "would leak into the encoding; choose other reference devices")
    rows = []
    for j, device in enumerate(test_devices):
        started = time.perf_counter()
        pool_ids = encodings.pool(space, encoding, [device], hwl_devices=hwl)
        split_ = target_split(protocol, space, device, pool_ids, seed, samples, config["score_on"])
        shots = few_shot_ids(split_, samples, seed)
        latency = device_latency(space, device)
        encoder = encodings.ArchEncoder(space, encoding, form="graph" if body == "gcn" else "flat",
                                        hwl_devices=hwl).fit(shots)
        progress = None
        if config["progress"] is not None:
            progress = lambda fraction, name=device: config["progress"](f"brpnas {name}", fraction)  # noqa: E731
        model = LatencyPredictor(body=body, embedding="none", gcn_aggregation=config["gcn_aggregation"],
                                 head_layers=config["head_layers"], head_width=config["head_width"], lr=config["lr"],
                                 epochs=config["epochs"], batch_size=config["batch_size"], seed=seed,
                                 device=config["device"], progress=progress)
        model.fit(encoder.transform(shots), minmax_labels(latency[shots], latency[shots]))
        scored = split_.scored_ids(shots)
        spearman, kendall = rank_correlations(model.predict(encoder.transform(scored)), latency[scored])
        rows.append({"method": METHOD, "space": space, "device": device, "samples": int(samples), "seed": int(seed),
                     "protocol": protocol, "spearman": spearman, "kendall": kendall, "n_eval": int(len(scored)),
                     "n_fewshot": int(samples), "n_measured": int(samples),
                     "pool": encodings.describe_pool(space, encoding, pool_ids), "pool_size": int(len(pool_ids)),
                     "seconds": time.perf_counter() - started, "encoding": encoding, "predictor": body,
                     "gcn_aggregation": config["gcn_aggregation"] if body == "gcn" else None,
                     "epochs": config["epochs"], "lr": float(config["lr"]), "head_layers": config["head_layers"],
                     "score_on": config["score_on"], "hwl_devices": ",".join(hwl) or None})
    return rows


__all__ = ["fit_and_score", "BRPNASOptions", "OPTIONS", "DEFAULT_OPTIONS"]
