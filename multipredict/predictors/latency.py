"""`LatencyPredictor`: the Multi-Predict latency predictor f(x, h) as a scikit-learn style estimator.

Configuration lives in the constructor, ``fit`` trains from scratch, ``fine_tune`` continues
training (few-shot transfer), ``predict`` is pure. Defaults are the paper's text (AutoML-Conf 2023,
Tables 14/15): AdamW (weight decay 5e-4), source lr 4e-4, batch 128, 250 epochs, cosine schedule
per epoch down to 0, L1 loss summed over the batch; fine-tuning lr 1e-3 for 50 epochs; hardware
embedding size 8; a 4-layer regression head (``head_layers``; the authors' released configs use 2
layers of width 1000 instead).

Training runs where ``device="auto"`` finds it (CUDA when available, else CPU). A fixed ``seed``
gives identical results on the same machine: weights are initialised under a private torch RNG
state seeded with it, and batches are shuffled by a numpy Generator derived from it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import torch

from ..encodings import ArchFeatures
from ..errors import MultipredictError, UnknownNameError
from .networks import AGGREGATIONS, EMBEDDINGS, LatencyNet, NetworkParts

BODIES = ("gcn", "mlp")
SCHEDULES = ("cosine", "constant")
# what fine-tuning trains: every weight, or the hardware embedding and the regression head with
# the arch body frozen (the authors' released code; the paper's text does not say)
FINE_TUNE_PARTS = ("all", "head")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextmanager
def _deterministic():
    """Deterministic kernels while training (warn-only: some CUDA ops have no deterministic form),
    restoring the caller's setting afterwards."""
    was = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn_only)


def batch_geometry(n: int, batch_size: int) -> tuple[int, int]:
    """(batch size, steps per epoch) for ``n`` samples: a batch is never larger than the data."""
    size = max(1, min(int(batch_size), n))
    return size, math.ceil(n / size)


def epoch_plan(*, seed: int, stream: int, n: int, steps: int, lr: float, epochs: int, schedule: str):
    """Yield each epoch's (learning rate, shuffle order or None) for one training run.

    The one definition of the schedule and the shuffles, shared by `LatencyPredictor` and the
    stacked trainer (`multipredict.predictors.stacked`): the cosine schedule is stepped per epoch
    down to 0 at the end (CosineAnnealingLR), and the order comes from a numpy Generator seeded by
    ``(seed, 7919, stream)`` (``stream``: 0 for `fit`, the fine-tune count for `fine_tune`), drawn
    only when an epoch has more than one step.
    """
    rng = np.random.default_rng([int(seed), 7919, int(stream)])
    for epoch in range(epochs):
        epoch_lr = lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs)) if schedule == "cosine" else None
        yield epoch_lr, (rng.permutation(n) if steps > 1 else None)


class LatencyPredictor:
    """Latency predictor over arch features and device rows.

    Parameters (all keyword):
        body: ``"gcn"`` (graph-form features, NB201) or ``"mlp"`` (flat features).
        embedding: ``"table"`` (learnable, ``embedding_dim`` wide), ``"sample"`` / ``"index"``
            (fixed per-device vectors passed to `fit` / `add_device`), or ``"none"``.
        gcn_layers, gcn_width, readout_layers: GCN body (3 graph layers of 200, then 3 FC layers).
        gcn_aggregation: ``"sum"`` (a graph layer adds up a node's inputs, as BRP-NAS's and the
            authors' GCNs do) or ``"mean"`` (averages them).
        mlp_layers, mlp_width: MLP body (3 layers of 100).
        body_dim: width of the body's output ("NN embedding", 30).
        head_layers, head_width: the regression head over [body, embedding, side features].
        lr, weight_decay, epochs, batch_size, schedule: training of `fit`.
        seed: weight init and shuffling. device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        progress: optional ``callable(fraction)`` called once per epoch.
        network_parts: the module classes the network is built from (`networks.NetworkParts`;
            None: the defaults), an extension point for a network that differs in one part.
    """

    def __init__(self, *, body: str = "gcn", embedding: str = "table", embedding_dim: int = 8,
                 gcn_layers: int = 3, gcn_width: int = 200, readout_layers: int = 3, gcn_aggregation: str = "sum",
                 mlp_layers: int = 3, mlp_width: int = 100, body_dim: int = 30,
                 head_layers: int = 4, head_width: int = 200,
                 lr: float = 4e-4, weight_decay: float = 5e-4, epochs: int = 250, batch_size: int = 128,
                 schedule: str = "cosine", seed: int = 0, device: str = "auto",
                 progress: Callable[[float], None] | None = None, network_parts: NetworkParts | None = None):
        self.body = body
        self.embedding = embedding
        self.embedding_dim = embedding_dim
        self.gcn_layers = gcn_layers
        self.gcn_width = gcn_width
        self.readout_layers = readout_layers
        self.gcn_aggregation = gcn_aggregation
        self.mlp_layers = mlp_layers
        self.mlp_width = mlp_width
        self.body_dim = body_dim
        self.head_layers = head_layers
        self.head_width = head_width
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.schedule = schedule
        self.seed = seed
        self.device = device
        self.progress = progress
        self.network_parts = network_parts

    # ---------------------------------------------------------------- sklearn-style plumbing

    _PARAMS = ("body", "embedding", "embedding_dim", "gcn_layers", "gcn_width", "readout_layers", "gcn_aggregation",
               "mlp_layers", "mlp_width", "body_dim", "head_layers", "head_width", "lr", "weight_decay", "epochs",
               "batch_size", "schedule", "seed", "device", "progress", "network_parts")

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params) -> LatencyPredictor:
        for name, value in params.items():
            if name not in self._PARAMS:
                raise UnknownNameError("LatencyPredictor parameter", name, self._PARAMS)
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        return f"LatencyPredictor(body={self.body!r}, embedding={self.embedding!r}, head_layers={self.head_layers})"

    def copy(self) -> LatencyPredictor:
        """An independent copy (fitted state included), e.g. to fine-tune one pretrained model per
        target device."""
        return copy.deepcopy(self)

    # ---------------------------------------------------------------- building

    def _validate(self, X: ArchFeatures) -> None:
        if self.body not in BODIES:
            raise UnknownNameError("predictor body", self.body, BODIES)
        if self.embedding not in EMBEDDINGS:
            raise UnknownNameError("hardware embedding", self.embedding, EMBEDDINGS)
        if self.schedule not in SCHEDULES:
            raise UnknownNameError("schedule", self.schedule, SCHEDULES)
        if self.gcn_aggregation not in AGGREGATIONS:
            raise UnknownNameError("GCN aggregation", self.gcn_aggregation, AGGREGATIONS)
        if self.body == "gcn" and X.form != "graph":
            raise MultipredictError("body='gcn' needs graph-form features (ArchEncoder(form='graph')); got "
                                    f"{X.form!r} features. Use body='mlp' for flat encodings")
        if self.body == "mlp" and X.form != "flat":
            raise MultipredictError(f"body='mlp' needs flat features; got {X.form!r}. Use body='gcn' or form='flat'")

    def _build(self, X: ArchFeatures, n_devices: int, vectors: np.ndarray | None) -> LatencyNet:
        parts = self.network_parts if self.network_parts is not None else NetworkParts()
        if self.body == "gcn":
            body = parts.gcn_body(torch.as_tensor(X.adjacency), X.body.shape[-1], layers=self.gcn_layers,
                                  width=self.gcn_width, readout_layers=self.readout_layers, out_dim=self.body_dim,
                                  aggregation=self.gcn_aggregation)
        else:
            body = parts.mlp_body(X.body.shape[-1], layers=self.mlp_layers, width=self.mlp_width,
                                  out_dim=self.body_dim)
        if self.embedding == "table":
            hw = parts.embedding("table", n_devices=n_devices, dim=self.embedding_dim)
        elif self.embedding in ("sample", "index"):
            hw = parts.embedding(self.embedding, vectors=torch.as_tensor(np.asarray(vectors, dtype=np.float32)))
        else:
            hw = parts.embedding("none")
        side_dim = 0 if X.side is None else X.side.shape[1]
        return parts.net(body, hw, self.body_dim, side_dim, head_layers=self.head_layers, head_width=self.head_width)

    def _device_rows(self, devices, n: int) -> np.ndarray | None:
        if self.embedding == "none":
            return None
        if devices is None:
            raise MultipredictError(f"embedding {self.embedding!r} needs the device row of every sample; pass devices=")
        rows = np.asarray(devices, dtype=np.int64).reshape(-1)
        if len(rows) == 1 and n > 1:
            rows = np.repeat(rows, n)
        if len(rows) != n:
            raise MultipredictError(f"got {len(rows)} device rows for {n} archs; pass one row per arch (or one for all)")
        return rows

    # ---------------------------------------------------------------- training

    def fit(self, X: ArchFeatures, y, devices=None, *, device_vectors=None, n_devices: int | None = None) -> LatencyPredictor:
        """Train from scratch on archs ``X`` with normalised latencies ``y``; ``devices`` gives each
        sample's device row. ``device_vectors`` (n_devices, d) are required for the ``sample`` and
        ``index`` embeddings; a ``table`` gets ``n_devices`` rows (default: max row + 1)."""
        y, rows = self._fit_setup(X, y, devices, device_vectors=device_vectors, n_devices=n_devices)
        self.history_ = self._train(X, y, rows, lr=self.lr, epochs=self.epochs, batch_size=self.batch_size,
                                    stream=0)
        return self

    def _fit_setup(self, X: ArchFeatures, y, devices, *, device_vectors, n_devices):
        """`fit` up to training: validate, initialise the network; returns (labels, device rows)."""
        self._validate(X)
        y = np.asarray(y, dtype=np.float32).reshape(-1)
        if len(y) != len(X):
            raise MultipredictError(f"{len(X)} archs but {len(y)} labels; pass one label per arch")
        if not np.isfinite(y).all():
            raise MultipredictError("labels contain NaN or inf; train only on measured archs")
        rows = self._device_rows(devices, len(y))
        if self.embedding in ("sample", "index"):
            if device_vectors is None:
                raise MultipredictError(f"embedding {self.embedding!r} needs device_vectors (one per device row)")
            count = len(device_vectors)
        else:
            count = n_devices if n_devices is not None else (int(rows.max()) + 1 if rows is not None else 0)
        if rows is not None and rows.max() >= max(count, 1):
            raise MultipredictError(f"device row {int(rows.max())} is out of range for {count} devices")
        self._initialise(X, count, device_vectors)
        return y, rows

    def _initialise(self, X: ArchFeatures, count: int, device_vectors) -> None:
        self.device_ = resolve_device(self.device)
        # a private RNG state: the same seed gives the same weights, and the caller's RNG is untouched
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.network_ = self._build(X, count, device_vectors).to(self.device_)
        self.n_fine_tunes_ = 0

    def state(self) -> dict:
        """The fitted weights and training history (tensors and plain types only, so that
        ``torch.load(weights_only=True)`` reads a saved state back)."""
        self._check_fitted()
        return {"network": {k: v.detach().cpu() for k, v in self.network_.state_dict().items()},
                "history": [float(v) for v in self.history_], "n_fine_tunes": int(self.n_fine_tunes_)}

    def restore(self, X: ArchFeatures, state: dict, *, device_vectors=None, n_devices: int = 0) -> LatencyPredictor:
        """A fitted predictor from `state` (e.g. a saved pretraining) instead of training: ``X`` gives
        the feature shapes (the GCN's adjacency), ``device_vectors`` / ``n_devices`` the embedding
        rows, as in `fit`. Raises if the state does not fit this configuration."""
        self._validate(X)
        count = len(device_vectors) if self.embedding in ("sample", "index") else n_devices
        self._initialise(X, count, device_vectors)
        try:
            self.network_.load_state_dict(state["network"])
        except (KeyError, RuntimeError) as error:
            del self.network_
            raise MultipredictError(f"a saved predictor state does not match this configuration ({error}); "
                                    "delete the saved file to retrain") from error
        self.history_ = list(state.get("history", []))
        self.n_fine_tunes_ = int(state.get("n_fine_tunes", 0))
        self.network_.eval()
        return self

    def fine_tune(self, X: ArchFeatures, y, devices=None, *, lr: float = 1e-3, epochs: int = 50,
                  batch_size: int | None = None, train: str = "all") -> LatencyPredictor:
        """Continue training on (few-shot) samples with a fresh AdamW and cosine schedule; batch
        size defaults to the constructor's (the whole set when smaller). ``train="all"`` trains
        every weight; ``"head"`` freezes the arch body, so only the hardware embedding table and
        the regression head move (what the authors' code does when adding a device)."""
        y, rows = self._fine_tune_setup(X, y, devices, train=train)
        with self._trained_part(train):
            self.history_ = self._train(X, y, rows, lr=lr, epochs=epochs, batch_size=batch_size or self.batch_size,
                                        stream=self.n_fine_tunes_)
        return self

    @contextmanager
    def _trained_part(self, train: str):
        """While training ``train`` (`FINE_TUNE_PARTS`): ``"head"`` freezes the arch body."""
        frozen = list(self.network_.body.parameters()) if train == "head" else []
        for p in frozen:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in frozen:
                p.requires_grad_(True)

    def _fine_tune_setup(self, X: ArchFeatures, y, devices, *, train: str):
        """`fine_tune` up to training: validate, count the fine-tune (its shuffle stream is
        ``n_fine_tunes_``); returns (labels, device rows)."""
        self._check_fitted()
        self._validate(X)
        if train not in FINE_TUNE_PARTS:
            raise UnknownNameError("fine-tuned part", train, FINE_TUNE_PARTS)
        y = np.asarray(y, dtype=np.float32).reshape(-1)
        if len(y) != len(X) or len(y) == 0:
            raise MultipredictError(f"{len(X)} archs but {len(y)} labels; pass one label per arch (at least one)")
        rows = self._device_rows(devices, len(y))
        self.n_fine_tunes_ += 1
        return y, rows

    def _tensors(self, X: ArchFeatures, rows: np.ndarray | None):
        dev = self.device_
        body = torch.as_tensor(X.body, dtype=torch.float32).to(dev)
        side = None if X.side is None else torch.as_tensor(X.side, dtype=torch.float32).to(dev)
        rows_t = None if rows is None else torch.as_tensor(rows, dtype=torch.long).to(dev)
        return body, side, rows_t

    def _train(self, X: ArchFeatures, y: np.ndarray, rows, *, lr: float, epochs: int, batch_size: int,
               stream: int) -> list[float]:
        net = self.network_
        body, side, rows_t = self._tensors(X, rows)
        target = torch.as_tensor(y, dtype=torch.float32).to(self.device_)
        n = len(target)
        size, steps = batch_geometry(n, batch_size)
        params = [p for p in net.parameters() if p.requires_grad]
        # foreach: one fused kernel per step instead of one per parameter tensor (CPU overhead)
        optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=self.weight_decay, foreach=True)
        plan = epoch_plan(seed=self.seed, stream=stream, n=n, steps=steps, lr=lr, epochs=epochs,
                          schedule=self.schedule)
        losses = []
        net.train()
        with _deterministic():
            for epoch, (epoch_lr, order) in enumerate(plan):
                if epoch_lr is not None:
                    for group in optimiser.param_groups:
                        group["lr"] = epoch_lr
                if order is not None:
                    # one gather per epoch; the batches are then cheap contiguous slices
                    order = torch.as_tensor(order, device=self.device_)
                    e_body, e_target = body[order], target[order]
                    e_side = None if side is None else side[order]
                    e_rows = None if rows_t is None else rows_t[order]
                else:
                    e_body, e_side, e_rows, e_target = body, side, rows_t, target
                total = 0.0
                for step in range(steps):
                    cut = slice(step * size, (step + 1) * size)
                    prediction = net(e_body[cut], None if e_side is None else e_side[cut],
                                     None if e_rows is None else e_rows[cut])
                    loss = (prediction - e_target[cut]).abs().sum()  # L1, summed (paper)
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
                    total += float(loss.detach())
                losses.append(total / n)
                if self.progress is not None:
                    self.progress((epoch + 1) / epochs)
        net.eval()
        return losses

    # ---------------------------------------------------------------- inference

    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise MultipredictError("this LatencyPredictor is not fitted; call fit(X, y, devices) first")

    @torch.no_grad()
    def predict(self, X: ArchFeatures, devices=None, *, chunk: int = 16384) -> np.ndarray:
        """Predicted normalised latency of each arch on the given device row(s)."""
        self._check_fitted()
        rows = self._device_rows(devices, len(X))
        return self._in_chunks(X, rows, chunk, lambda net, body, side, rows_t: net(body, side, rows_t), np.zeros(0))

    @torch.no_grad()
    def representation(self, X: ArchFeatures, *, chunk: int = 16384) -> np.ndarray:
        """(n_archs, d): each arch as the regression head sees it, before the device embedding is
        added (`LatencyNet.representation`); the same for every device."""
        self._check_fitted()
        return self._in_chunks(X, None, chunk, lambda net, body, side, _: net.representation(body, side),
                               np.zeros((0, 0)))

    @torch.no_grad()
    def hidden_views(self, X: ArchFeatures, device_rows, *, chunk: int = 16384) -> np.ndarray:
        """(n_archs, len(device_rows) * head_width): each arch as the head's last hidden layer sees it
        on each of ``device_rows`` (`LatencyNet.hidden_views`); one view without an embedding."""
        self._check_fitted()
        rows = [int(r) for r in device_rows] if self.embedding != "none" else [0]
        return self._in_chunks(X, None, chunk, lambda net, body, side, _: net.hidden_views(body, side, rows),
                               np.zeros((0, 0)))

    def _in_chunks(self, X: ArchFeatures, rows, chunk: int, forward, empty: np.ndarray) -> np.ndarray:
        """``forward(net, body, side, rows)`` over ``X`` in chunks of ``chunk`` archs (eval mode),
        concatenated as float64 (``empty`` when ``X`` has no archs)."""
        net = self.network_
        net.eval()
        out = []
        for start in range(0, len(X), chunk):
            part = X.subset(np.arange(start, min(start + chunk, len(X))))
            body, side, rows_t = self._tensors(part, None if rows is None else rows[start:start + chunk])
            out.append(forward(net, body, side, rows_t).double().cpu().numpy())
        return np.concatenate(out) if out else empty

    # ---------------------------------------------------------------- devices

    @property
    def n_devices_(self) -> int:
        self._check_fitted()
        return self.network_.embedding.n_devices

    def add_device(self, *, copy_from: int | None = None, vector=None) -> int:
        """Add a device row: a ``table`` row copied from row ``copy_from`` (the paper's Eq. 1
        initialisation) or drawn at random; a ``sample`` / ``index`` device's fixed ``vector``.
        Returns the new row."""
        self._check_fitted()
        if self.embedding == "table" and copy_from is not None and not 0 <= copy_from < self.n_devices_:
            raise MultipredictError(f"copy_from={copy_from} is not a device row (0..{self.n_devices_ - 1})")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + 104729 * (self.n_devices_ + 1))
            return self.network_.embedding.add_row(copy_from=copy_from, vector=vector)

    def embedding_table(self) -> np.ndarray:
        """(n_devices, dim) current hardware embeddings (learned or fixed)."""
        self._check_fitted()
        emb = self.network_.embedding
        if emb.kind == "table":
            return emb.table.weight.detach().cpu().numpy().copy()
        if emb.kind in ("sample", "index"):
            return emb.vectors.detach().cpu().numpy().copy()
        return np.zeros((0, 0))
