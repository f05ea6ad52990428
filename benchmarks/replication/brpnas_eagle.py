"""BRP-NAS as its released code trains it (SamsungLabs/eagle, config ``lat_gcn_nasbench201``; NB201
only), registered as the method ``"BRP-NAS (released recipe)"`` (`benchmarks.replication.register_methods`).

The engine's BRP-NAS (`multipredict.baselines.brpnas`) is the Multi-Predict predictor trained from
scratch, as the Multi-Predict paper describes it. This is BRP-NAS's own recipe instead: its own
cell graph (`brpnas_graph`: none edges removed, skip edges contracted, dead ops pruned), its GCN
(`BRPNASGCN`: 4 x 600, layer norm), batch size 1, AdamW (lr 4e-4, weight decay 5e-4), L1 (sum) on
the latency in ms, 100 more target archs for validation, the learning rate halved when the
validation loss stalls for 10 epochs and training stopped when it stalls for 35 (both checked after
the first 21 epochs). The weights it keeps are the last epoch's: the code's "best" copy is
``state_dict()``, whose tensors are the live weights. It computes in float32 where that code uses
float64.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from multipredict import encodings
from multipredict.errors import MultipredictError
from multipredict.methods.protocol import device_latency, few_shot_ids, rank_correlations, target_split
from multipredict.options import Options
from multipredict.predictors.latency import resolve_device
from multipredict.spaces import nb201

METHOD = "brpnas"
RECIPE = "eagle"
# BRP-NAS's released configuration of its NB201 latency GCN (configs/predictors/lat_gcn_nasbench201*)
EAGLE = {"layers": 4, "width": 600, "dropout": 0.002, "weight_decay": 5e-4, "lr_factor": 0.5, "lr_patience": 10,
         "lr_threshold": 0.01, "stop_patience": 35, "settle_epochs": 21}


# --------------------------------------------------------------------------------------------
# BRP-NAS's own cell graph

# op nodes as `multipredict.spaces.nb201`'s graph form, but ``none`` edges removed, ``skip_connect``
# edges contracted into direct links, and nodes that lie on no input -> output path emptied; a
# global node comes first. Node features: conv 1x1, conv 3x3, avg pool, input, output, global.
BRPNAS_NODE_FEATURES: tuple[str, ...] = ("nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "input", "output",
                                         "global")


def brpnas_graph(ops) -> tuple[np.ndarray, np.ndarray]:
    """(9, 9) adjacency and (9, 6) node features of one cell (six op indices into ``nb201.OPS``) as
    BRP-NAS's code builds them.

    Node 0 is the global node (its row gathers every node), then input, the six edge ops, output;
    every node has a self-loop. The other rows follow BRP-NAS's ``src -> dst`` matrix, which its GCN
    multiplies from the left, so a node gathers its successors. Emptied nodes keep their self-loop
    and a zero feature row. The pruning drops ops that NAS-Bench-201's cells still compute, so
    distinct cells can share one graph (8,687 graphs for the 15,625 cells).
    """
    ops = [int(op) for op in ops]
    if len(ops) != 6 or any(not 0 <= op < len(nb201.OPS) for op in ops):
        raise MultipredictError(f"a NAS-Bench-201 cell has 6 op indices in 0..{len(nb201.OPS) - 1}; got {ops!r}")
    nodes = nb201.N_GRAPH_NODES
    inner = nb201.graph_adjacency().astype(np.int8)  # node 0 input, 1..6 edge ops, 7 output
    kind: list[str | None] = ["input"] + [None] * 6 + ["output"]
    for e, op in enumerate(ops):
        node = e + 1
        if nb201.OPS[op] == "none":
            inner[:, node] = 0
            inner[node, :] = 0
        elif nb201.OPS[op] == "skip_connect":
            successors = np.flatnonzero(inner[node])
            if len(successors):  # as BRP-NAS's code: a skip with no successor keeps its inputs
                for predecessor in np.flatnonzero(inner[:, node]):
                    inner[predecessor, successors] = 1
                    inner[predecessor, node] = 0
                inner[node, successors] = 0
        else:
            kind[node] = nb201.OPS[op]
    live = _reachable(inner, 0) & _reachable(inner.T, nodes - 1)
    for node in np.flatnonzero(~live):
        kind[node] = None
        inner[node, :] = 0
        inner[:, node] = 0
    adjacency = np.zeros((nodes + 1, nodes + 1), dtype=np.float32)
    adjacency[1:, 1:] = inner
    adjacency[0, 1:] = 1
    np.fill_diagonal(adjacency, 1)
    features = np.zeros((nodes + 1, len(BRPNAS_NODE_FEATURES)), dtype=np.float32)
    features[0, BRPNAS_NODE_FEATURES.index("global")] = 1
    features[1, BRPNAS_NODE_FEATURES.index("input")] = 1  # set even when the input reaches no output
    features[-1, BRPNAS_NODE_FEATURES.index("output")] = 1
    for node, name in enumerate(kind[1:-1], start=1):
        if name is not None:
            features[node + 1, BRPNAS_NODE_FEATURES.index(name)] = 1
    return adjacency, features


def _reachable(adjacency: np.ndarray, start: int) -> np.ndarray:
    seen = np.zeros(len(adjacency), dtype=bool)
    seen[start] = True
    frontier = [start]
    while frontier:
        nxt = np.flatnonzero(adjacency[frontier].any(axis=0) & ~seen)
        seen[nxt] = True
        frontier = nxt.tolist()
    return seen


def brpnas_graphs(arch_ids) -> tuple[np.ndarray, np.ndarray]:
    """`brpnas_graph` of each arch id: (n, 9, 9) adjacencies and (n, 9, 6) node features."""
    codes = nb201.op_indices(arch_ids) @ (len(nb201.OPS) ** np.arange(5, -1, -1))
    adjacency, features = _brpnas_table()
    return adjacency[codes], features[codes]


@functools.cache
def _brpnas_table() -> tuple[np.ndarray, np.ndarray]:
    """`brpnas_graph` of every op combination, indexed by the ops read as a base-5 number."""
    graphs = [brpnas_graph(ops) for ops in itertools.product(range(len(nb201.OPS)), repeat=6)]
    adjacency, features = np.stack([g[0] for g in graphs]), np.stack([g[1] for g in graphs])
    adjacency.setflags(write=False)
    features.setflags(write=False)
    return adjacency, features


# --------------------------------------------------------------------------------------------
# BRP-NAS's own GCN


class BRPNASGCN(nn.Module):
    """BRP-NAS's own latency GCN (its released code): ``layers`` graph convolutions
    ``dropout(relu(layernorm(A @ H @ W + b)))`` of width ``width`` over a per-cell adjacency, read
    out at the global node (node 0) by one linear layer. Weights and biases start uniform in
    +-1/sqrt(width), as that code's ``thomas`` init. ``forward(adjacency, features)`` -> (n,).
    """

    def __init__(self, node_features: int, *, layers: int = 4, width: int = 600, dropout: float = 0.002):
        super().__init__()
        if layers < 1:
            raise ValueError(f"a GCN needs >= 1 graph layer; got {layers}")
        bound = 1.0 / width ** 0.5
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(node_features if i == 0 else width, width).uniform_(-bound, bound))
            for i in range(layers))
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(width).uniform_(-bound, bound)) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(width, 1)

    def forward(self, adjacency: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        h = features
        last = len(self.weights) - 1
        for i, (weight, bias, norm) in enumerate(zip(self.weights, self.biases, self.norms)):
            if i == last:  # only the global node (0) of the last layer is read: compute its row alone
                adjacency = adjacency[:, :1]
            h = self.dropout(torch.relu(norm(torch.bmm(adjacency, h) @ weight + bias)))
        return self.out(h[:, 0]).squeeze(-1)


# --------------------------------------------------------------------------------------------
# the method


class ReleasedOptions(Options):
    """Options of ``"BRP-NAS (released recipe)"``: the recipe fixes graph, network and batch size."""

    validation: int = Field(100, ge=1, description="extra target archs for early stopping (BRP-NAS's config: 100)")
    epochs: int = Field(250, ge=0, description="most training epochs (early stopping ends most runs sooner)")
    lr: float = Field(4e-4, gt=0, description="learning rate")
    score_on: Literal["heldout", "all"] = Field("heldout", description="score on held-out or all pool archs")
    device: str = Field("auto", description="torch device")
    progress: Callable[[str, float], None] | None = Field(None, description="callable(stage, fraction)",
                                                          exclude=True)


def fit_and_score(*, space: str, train_devices: list[str], test_devices: list[str], samples: int,
                  seed: int, protocol: str = "paper", **options) -> list[dict]:
    """Train BRP-NAS's GCN as its code does on ``samples`` (+ ``validation``) archs of each NB201
    test device and score it on the protocol's held-out archs (the method contract of
    `multipredict.experiments.methods`). ``train_devices`` are not used. Options: `ReleasedOptions`."""
    config = ReleasedOptions.parse(options, "BRP-NAS (released recipe)")
    if space != "nb201":
        raise MultipredictError(f"BRP-NAS's released recipe exists for nb201 only (its code has no {space!r} graph); "
                                "use the method 'BRP-NAS'")
    if not isinstance(samples, (int, np.integer)) or samples < 2:
        raise MultipredictError(f"samples={samples!r} is not valid; BRP-NAS trains on >= 2 target archs (900 or 3200 "
                                "in the paper)")
    rows = []
    for device in test_devices:
        started = time.perf_counter()
        pool_ids, split_, shots, held = eagle_draw(protocol, device, samples, config.validation, seed,
                                                   config.score_on)
        latency = device_latency(space, device)
        progress = None
        if config.progress is not None:
            progress = lambda fraction, name=device: config.progress(f"brpnas {name}", fraction)  # noqa: E731
        model, epochs_run = fit_eagle(shots, latency[shots], held, latency[held], epochs=config.epochs,
                                      lr=config.lr, seed=seed, device=config.device, progress=progress)
        scored = split_.scored_ids(np.concatenate([shots, held]))
        spearman, kendall = rank_correlations(predict_eagle(model, scored), latency[scored])
        rows.append({"method": METHOD, "space": space, "device": device, "samples": int(samples), "seed": int(seed),
                     "protocol": protocol, "spearman": spearman, "kendall": kendall, "n_eval": int(len(scored)),
                     "n_fewshot": int(samples), "n_measured": int(samples + config.validation),
                     "pool": encodings.describe_pool(space, "vec", pool_ids), "pool_size": int(len(pool_ids)),
                     "seconds": time.perf_counter() - started, "encoding": "vec", "predictor": "gcn",
                     "gcn_aggregation": "sum", "epochs": config.epochs, "lr": float(config.lr),
                     "score_on": config.score_on, "hwl_devices": None, "recipe": RECIPE,
                     "validation": int(config.validation), "epochs_run": int(epochs_run)})
    return rows


def eagle_draw(protocol: str, device: str, samples: int, validation: int, seed: int, score_on: str = "heldout"):
    """``(pool, split, training archs, validation archs)`` of an NB201 target under the released
    recipe: one seeded draw of ``samples + validation`` archs from the target's training pool."""
    pool_ids = encodings.pool("nb201", "vec", [device])
    split_ = target_split(protocol, "nb201", device, pool_ids, seed, samples + validation, score_on)
    if samples + validation > len(split_.train_ids):
        raise MultipredictError(f"{samples} training + {validation} validation archs asked of device {device!r}, "
                                f"whose {protocol!r} training pool holds {len(split_.train_ids)}; lower samples "
                                "or validation, or use protocol='paper'")
    drawn = few_shot_ids(split_, samples + validation, seed)
    return pool_ids, split_, drawn[:samples], drawn[samples:]


@contextmanager
def _deterministic():
    """Deterministic kernels while training (warn-only), restoring the caller's setting afterwards."""
    was, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn_only)


def fit_eagle(arch_ids, latency_ms, val_ids, val_latency_ms, *, epochs: int = 250, lr: float = 4e-4, seed: int = 0,
              device: str = "auto", progress=None):
    """Train `BRPNASGCN` on NB201 ``arch_ids`` as BRP-NAS's code does: one arch per step
    (shuffled by a generator seeded with ``seed``), L1 (sum) on the raw latency in ms, AdamW,
    the learning rate halved on a validation plateau and training stopped early, both checked
    after the first 21 epochs. Returns ``(network, epochs_run)``; the network keeps its last epoch's weights."""
    target = resolve_device(device)
    adjacency, features = (torch.from_numpy(a).to(target) for a in brpnas_graphs(arch_ids))
    val_adjacency, val_features = (torch.from_numpy(a).to(target) for a in brpnas_graphs(val_ids))
    labels = torch.as_tensor(np.asarray(latency_ms, dtype=np.float32), device=target)
    val_labels = torch.as_tensor(np.asarray(val_latency_ms, dtype=np.float32), device=target)
    with torch.random.fork_rng(devices=[]), _deterministic():
        torch.manual_seed(seed)
        network = BRPNASGCN(len(BRPNAS_NODE_FEATURES), layers=EAGLE["layers"], width=EAGLE["width"],
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
    target = next(network.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, len(arch_ids), batch):
            adjacency, features = brpnas_graphs(np.asarray(arch_ids)[start:start + batch])
            out.append(network(torch.from_numpy(adjacency).to(target), torch.from_numpy(features).to(target)).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)


__all__ = ["fit_and_score", "ReleasedOptions", "eagle_draw", "fit_eagle", "predict_eagle", "brpnas_graph",
           "brpnas_graphs", "BRPNASGCN", "BRPNAS_NODE_FEATURES", "EAGLE"]
