"""BRP-NAS baseline: the transfer method's predictor trained from scratch on the target device alone.

As the Multi-Predict paper compares against it: the same network (NB201: the GCN over the cell
graph; FBNet: the MLP on the one-hot), no hardware embedding, no source devices, trained on
``samples`` measured archs of the target (900 or 3,200 in Table 1) with the source-training
hyperparameters (AdamW, lr 4e-4, 250 epochs, batch 128, cosine, L1 sum); labels min-max scaled over
those samples. Other encodings (``zcp``, ``hwl``) give the "from scratch" curves of the paper's
Figure 6. Scored on the same held-out archs as the other methods for the same seed and budget.

``recipe="eagle"`` trains BRP-NAS as its released code does instead (SamsungLabs/eagle, config
``lat_gcn_nasbench201``; NB201 only): its own cell graph (`nb201.brpnas_graph`: none edges removed,
skip edges contracted, dead ops pruned), its GCN (`networks.BRPNASGCN`: 4 x 600, layer norm),
batch size 1, AdamW (lr 4e-4, weight decay 5e-4), L1 (sum) on the latency in ms, 100 more target
archs for validation, the learning rate halved when the validation loss stalls for 10 epochs and
training stopped when it stalls for 35 (both checked after the first 21 epochs). The weights it
keeps are the last epoch's: the code's "best" copy is ``state_dict()``, whose tensors are the live
weights. It computes in float32 where that code uses float64.
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

RECIPES = ("multipredict", "eagle")
# BRP-NAS's released configuration of its NB201 latency GCN (configs/predictors/lat_gcn_nasbench201*)
EAGLE = {"layers": 4, "width": 600, "dropout": 0.002, "weight_decay": 5e-4, "lr_factor": 0.5, "lr_patience": 10,
         "lr_threshold": 0.01, "stop_patience": 35, "settle_epochs": 21}



class BRPNASOptions(Options):
    """BRP-NAS's options: a predictor trained from scratch on the target's samples."""

    recipe: Literal["multipredict", "eagle"] = Field(
        "multipredict", description="our training recipe, or BRP-NAS's released one (eagle)")
    validation: int = Field(100, ge=1, description="eagle: extra target archs for early stopping")
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
    encoding. Options: recipe (multipredict|eagle), validation (eagle: extra target archs for early
    stopping), encoding, predictor (auto|gcn|mlp), gcn_aggregation (sum|mean), epochs, lr, head_layers,
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
    if config["recipe"] == "eagle":
        return _eagle_rows(space=space, test_devices=test_devices, samples=samples, seed=seed, protocol=protocol,
                           config=config, explicit=set(options))
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
                     "score_on": config["score_on"], "hwl_devices": ",".join(hwl) or None, "recipe": "multipredict"})
    return rows


def _eagle_rows(*, space: str, test_devices: list[str], samples: int, seed: int, protocol: str, config: dict,
                explicit: set[str]) -> list[dict]:
    """``recipe="eagle"``: BRP-NAS as its released code trains it (see the module docstring)."""
    if space != "nb201":
        raise MultipredictError(f"recipe='eagle' exists for nb201 only (BRP-NAS's code has no {space!r} graph); use "
                                "recipe='multipredict'")
    unused = sorted(explicit & {"encoding", "predictor", "gcn_aggregation", "head_layers", "head_width", "batch_size",
                                "hwl_devices"})
    if config["encoding"] != "vec" or config["predictor"] not in ("auto", "gcn") or unused:
        raise MultipredictError(f"recipe='eagle' fixes BRP-NAS's own graph, network and batch size; drop "
                                f"{unused or ['encoding', 'predictor']} or use recipe='multipredict'")
    validation = config["validation"]
    if not isinstance(validation, (int, np.integer)) or validation < 1:
        raise MultipredictError(f"validation={validation!r} is not valid; recipe='eagle' stops early on >= 1 "
                                "validation archs (100 in BRP-NAS's config)")
    rows = []
    for device in test_devices:
        started = time.perf_counter()
        pool_ids, split_, shots, held = eagle_draw(protocol, device, samples, validation, seed, config["score_on"])
        latency = device_latency(space, device)
        progress = None
        if config["progress"] is not None:
            progress = lambda fraction, name=device: config["progress"](f"brpnas {name}", fraction)  # noqa: E731
        model, epochs_run = fit_eagle(shots, latency[shots], held, latency[held], epochs=config["epochs"],
                                      lr=config["lr"], seed=seed, device=config["device"], progress=progress)
        scored = split_.scored_ids(np.concatenate([shots, held]))
        spearman, kendall = rank_correlations(predict_eagle(model, scored), latency[scored])
        rows.append({"method": METHOD, "space": space, "device": device, "samples": int(samples), "seed": int(seed),
                     "protocol": protocol, "spearman": spearman, "kendall": kendall, "n_eval": int(len(scored)),
                     "n_fewshot": int(samples), "n_measured": int(samples + validation),
                     "pool": encodings.describe_pool(space, "vec", pool_ids), "pool_size": int(len(pool_ids)),
                     "seconds": time.perf_counter() - started, "encoding": "vec", "predictor": "gcn",
                     "gcn_aggregation": "sum", "epochs": config["epochs"], "lr": float(config["lr"]),
                     "score_on": config["score_on"], "hwl_devices": None, "recipe": "eagle",
                     "validation": int(validation), "epochs_run": int(epochs_run)})
    return rows


def eagle_draw(protocol: str, device: str, samples: int, validation: int, seed: int, score_on: str = "heldout"):
    """``(pool, split, training archs, validation archs)`` of an NB201 target under ``recipe="eagle"``:
    one seeded draw of ``samples + validation`` archs from the target's training pool."""
    pool_ids = encodings.pool("nb201", "vec", [device])
    split_ = target_split(protocol, "nb201", device, pool_ids, seed, samples + validation, score_on)
    if samples + validation > len(split_.train_ids):
        raise MultipredictError(f"{samples} training + {validation} validation archs asked of device {device!r}, "
                                f"whose {protocol!r} training pool holds {len(split_.train_ids)}; lower samples "
                                "or validation, or use protocol='paper'")
    drawn = few_shot_ids(split_, samples + validation, seed)
    return pool_ids, split_, drawn[:samples], drawn[samples:]


def fit_eagle(arch_ids, latency_ms, val_ids, val_latency_ms, *, epochs: int = 250, lr: float = 4e-4, seed: int = 0,
              device: str = "auto", progress=None):
    """Train `networks.BRPNASGCN` on NB201 ``arch_ids`` as BRP-NAS's code does: one arch per step
    (shuffled by a generator seeded with ``seed``), L1 (sum) on the raw latency in ms, AdamW,
    the learning rate halved on a validation plateau and training stopped early, both checked
    after the first 21 epochs. Returns ``(network, epochs_run)``; the network keeps its last epoch's weights."""
    import torch

    from ..predictors.latency import _deterministic, resolve_device
    from ..predictors.networks import BRPNASGCN
    from ..spaces import nb201

    target = resolve_device(device)
    adjacency, features = (torch.from_numpy(a).to(target) for a in nb201.brpnas_graphs(arch_ids))
    val_adjacency, val_features = (torch.from_numpy(a).to(target) for a in nb201.brpnas_graphs(val_ids))
    labels = torch.as_tensor(np.asarray(latency_ms, dtype=np.float32), device=target)
    val_labels = torch.as_tensor(np.asarray(val_latency_ms, dtype=np.float32), device=target)
    with torch.random.fork_rng(devices=[]), _deterministic():
        torch.manual_seed(seed)
        network = BRPNASGCN(len(nb201.BRPNAS_NODE_FEATURES), layers=EAGLE["layers"], width=EAGLE["width"],
                            dropout=EAGLE["dropout"]).to(target)
        optimiser = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=EAGLE["weight_decay"])
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, mode="min", factor=EAGLE["lr_factor"],
                                                             patience=EAGLE["lr_patience"],
                                                             threshold=EAGLE["lr_threshold"])
        order = np.random.default_rng([int(seed), 104729])
        best, stalled, epoch = None, 0, 0
        for epoch in range(1, epochs + 1):
            network.train()
            for i in order.permutation(len(labels)):
                optimiser.zero_grad()
                loss = torch.abs(network(adjacency[i:i + 1], features[i:i + 1]) - labels[i:i + 1]).sum()
                loss.backward()
                optimiser.step()
            network.eval()
            with torch.no_grad():
                val_loss = float(torch.abs(network(val_adjacency, val_features) - val_labels).sum())
            if progress is not None:
                progress(epoch / epochs)
            if epoch < EAGLE["settle_epochs"] + 1:
                continue
            plateau.step(val_loss)
            if not np.isfinite(val_loss):
                break
            if best is None or val_loss < best:
                best, stalled = val_loss, 0
            else:
                stalled += 1
                if stalled >= EAGLE["stop_patience"]:
                    break
    network.eval()
    return network, epoch


def predict_eagle(network, arch_ids, batch: int = 4096) -> np.ndarray:
    """Predicted latency (ms) of NB201 ``arch_ids`` by a network from `fit_eagle`."""
    import torch

    from ..spaces import nb201

    target = next(network.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, len(arch_ids), batch):
            adjacency, features = nb201.brpnas_graphs(np.asarray(arch_ids)[start:start + batch])
            out.append(network(torch.from_numpy(adjacency).to(target), torch.from_numpy(features).to(target)).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)


__all__ = ["fit_and_score", "eagle_draw", "fit_eagle", "predict_eagle", "OPTIONS", "DEFAULT_OPTIONS", "RECIPES",
           "EAGLE"]
