"""Torch modules of the latency predictor f(x, h): a network body over the arch encoding, a
hardware embedding, and a regression head over their concatenation.

`NetworkParts` names the module classes a `LatencyPredictor` builds the network from: the
extension point for a network that differs in one part (a subclass with another initialisation or
output), instead of patching these classes.

Written for small batches on a CPU, where per-op overhead (~10 us) dominates the arithmetic: the
GCN multiplies one shared (9, 9) propagation matrix into the whole batch, and its last layer
computes the global node only (the readout uses nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

EMBEDDINGS = ("table", "sample", "index", "none")
# how a graph convolution combines a node's inputs: "sum" (the adjacency as given, as in the GCNs of
# BRP-NAS, NASLib's BONAS predictor and the Multi-Predict authors' code) or "mean" (each row
# normalised to sum 1: multipredict's GCN until the NB201 transfer methods' revision 4, kept to
# reproduce older results)
AGGREGATIONS = ("sum", "mean")


def _mlp(sizes: list[int], final_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or final_activation:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class GCNBody(nn.Module):
    """GCN over a fixed-topology graph (BRP-NAS style), read out at the last (global) node.

    ``layers`` graph convolutions ``relu(A @ H @ W + b)`` of width ``width``, then an MLP of
    ``readout_layers`` FC layers (``width`` wide, the last one ``out_dim``) on the global node.
    ``aggregation="sum"`` uses ``adjacency`` as given (a node adds up itself and its inputs; the
    global node adds up the whole cell); ``"mean"`` row-normalises it first.
    """

    def __init__(self, adjacency: torch.Tensor, node_features: int, *, layers: int = 3, width: int = 200,
                 readout_layers: int = 3, out_dim: int = 30, aggregation: str = "sum"):
        super().__init__()
        if layers < 1 or readout_layers < 1:
            raise ValueError(f"a GCN needs >= 1 graph layer and >= 1 readout layer; got {layers}, {readout_layers}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown GCN aggregation {aggregation!r}; expected one of {AGGREGATIONS}")
        adjacency = adjacency.float()
        if aggregation == "mean":
            adjacency = adjacency / adjacency.sum(dim=1, keepdim=True).clamp_min(1e-12)
        self.aggregation = aggregation
        self.register_buffer("adjacency", adjacency)
        self.convs = nn.ModuleList(nn.Linear(node_features if i == 0 else width, width) for i in range(layers))
        self.readout = _mlp([width] * readout_layers + [out_dim], final_activation=True)

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        adj = self.adjacency
        h = nodes
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            if i < last:
                # (A @ H) @ W == A @ (H @ W); aggregating first is cheaper while H is narrower than W
                h = torch.relu(conv(torch.matmul(adj, h)))
            else:
                # only the global node's row of the last layer is ever read
                h = torch.relu(conv(torch.matmul(adj[-1], h)))
        return self.readout(h)


class MLPBody(nn.Module):
    """``layers`` FC layers: ``in_dim -> width -> ... -> out_dim``, ReLU after each."""

    def __init__(self, in_dim: int, *, layers: int = 3, width: int = 100, out_dim: int = 30):
        super().__init__()
        if layers < 1:
            raise ValueError(f"an MLP body needs >= 1 layer; got {layers}")
        self.net = _mlp([in_dim] + [width] * (layers - 1) + [out_dim], final_activation=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class HardwareEmbedding(nn.Module):
    """Device row -> hardware embedding.

    ``table``: a learnable ``nn.Embedding`` (one row per device). ``sample`` / ``index``: fixed
    vectors given per device (latencies on reference archs / binary code of the device index),
    not trained. ``none``: no embedding (single-device predictors).
    """

    def __init__(self, kind: str, *, n_devices: int = 0, dim: int = 8, vectors: torch.Tensor | None = None):
        super().__init__()
        if kind not in EMBEDDINGS:
            raise ValueError(f"unknown embedding kind {kind!r}; expected one of {EMBEDDINGS}")
        self.kind = kind
        if kind == "table":
            self.table = nn.Embedding(n_devices, dim)
            self.dim = dim
        elif kind in ("sample", "index"):
            if vectors is None:
                raise ValueError(f"embedding {kind!r} needs one fixed vector per device")
            self.register_buffer("vectors", vectors.float())
            self.dim = int(vectors.shape[1])
        else:
            self.dim = 0

    @property
    def n_devices(self) -> int:
        if self.kind == "table":
            return self.table.num_embeddings
        if self.kind in ("sample", "index"):
            return int(self.vectors.shape[0])
        return 0

    def forward(self, rows: torch.Tensor) -> torch.Tensor | None:
        if self.kind == "table":
            return self.table(rows)
        if self.kind in ("sample", "index"):
            return self.vectors[rows]
        return None

    @torch.no_grad()
    def add_row(self, *, copy_from: int | None = None, vector: torch.Tensor | None = None) -> int:
        """Append a device; ``table`` copies row ``copy_from`` (Eq. 1) or draws N(0, 1) like a
        fresh ``nn.Embedding``; fixed kinds append ``vector``. Returns the new row."""
        new_row = self.n_devices
        if self.kind == "table":
            old = self.table.weight
            if copy_from is not None:
                init = old[copy_from].clone()
            else:
                init = torch.randn(old.shape[1], device=old.device, dtype=old.dtype)
            table = nn.Embedding(new_row + 1, old.shape[1]).to(old.device)
            table.weight.copy_(torch.cat([old, init[None]], dim=0))
            self.table = table
        elif self.kind in ("sample", "index"):
            if vector is None:
                raise ValueError(f"adding a device to a {self.kind!r} embedding needs its vector")
            vector = torch.as_tensor(vector, dtype=self.vectors.dtype, device=self.vectors.device)
            if vector.shape != (self.dim,):
                raise ValueError(f"{self.kind!r} embedding vectors have {self.dim} values; got shape {tuple(vector.shape)}")
            self.vectors = torch.cat([self.vectors, vector[None]], dim=0)
        else:
            raise ValueError("a predictor without a hardware embedding has no device rows to add")
        return new_row


class LatencyNet(nn.Module):
    """f(x, h): ``head(concat(body(x), embedding(h), side))`` -> one value per arch."""

    def __init__(self, body: nn.Module, embedding: HardwareEmbedding, body_dim: int, side_dim: int, *,
                 head_layers: int = 4, head_width: int = 200):
        super().__init__()
        if head_layers < 1:
            raise ValueError(f"the regression head needs >= 1 layer; got {head_layers}")
        self.body = body
        self.embedding = embedding
        n_in = body_dim + embedding.dim + side_dim
        self.head = _mlp([n_in] + [head_width] * (head_layers - 1) + [1], final_activation=False)

    def forward(self, body_input: torch.Tensor, side: torch.Tensor | None, rows: torch.Tensor | None) -> torch.Tensor:
        return self.head(self._head_input(self.body(body_input), side, rows)).squeeze(-1)

    def _head_input(self, body: torch.Tensor, side: torch.Tensor | None, rows: torch.Tensor | None) -> torch.Tensor:
        parts = [body]
        if self.embedding.kind != "none":
            parts.append(self.embedding(rows))
        if side is not None:
            parts.append(side)
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def hidden_views(self, body_input: torch.Tensor, side: torch.Tensor | None, device_rows: list[int]) -> torch.Tensor:
        """(n_archs, len(device_rows) * head_width): the head's last hidden layer for each arch on
        each device row of ``device_rows``, side by side: the features the head's output layer is
        linear in (the body runs once)."""
        body = self.body(body_input)
        hidden = self.head[:-1]
        views = []
        for row in device_rows:
            rows = torch.full((len(body),), int(row), dtype=torch.long, device=body.device)
            views.append(hidden(self._head_input(body, side, rows)))
        return torch.cat(views, dim=1)

    def representation(self, body_input: torch.Tensor, side: torch.Tensor | None) -> torch.Tensor:
        """What the head sees of an arch: the body's output, then the side features (the device's
        embedding, the same for every arch of a device, left out)."""
        body = self.body(body_input)
        return body if side is None else torch.cat([body, side], dim=1)


@dataclass(frozen=True)
class NetworkParts:
    """The module classes a `LatencyPredictor` builds its network from; the defaults are this
    module's. Pass subclasses to change one part (e.g. another initialisation, an output
    activation); each is called with the arguments the default takes::

        gcn_body(adjacency, node_features, layers=, width=, readout_layers=, out_dim=, aggregation=)
        mlp_body(in_dim, layers=, width=, out_dim=)
        embedding(kind, n_devices=, dim=) / embedding(kind, vectors=) / embedding("none")
        net(body, embedding, body_dim, side_dim, head_layers=, head_width=)

    The network is built under the predictor's seeded RNG state, so a subclass that draws weights
    is as reproducible as the defaults. Fine-tuning with the arch body frozen freezes ``net.body``.
    """

    gcn_body: type[GCNBody] = GCNBody
    mlp_body: type[MLPBody] = MLPBody
    embedding: type[HardwareEmbedding] = HardwareEmbedding
    net: type[LatencyNet] = LatencyNet

    def changed(self) -> dict[str, str]:
        """``{part: "module:qualname"}`` of each part that is not the default (e.g. for a cache key)."""
        default = NetworkParts()
        return {f.name: f"{getattr(self, f.name).__module__}:{getattr(self, f.name).__qualname__}"
                for f in fields(self) if getattr(self, f.name) is not getattr(default, f.name)}
