"""Train many independent `LatencyPredictor`s together: one step advances every model.

The paper's protocol trains many small models (10 repeats x methods x devices). One step of one of
them (batch 128 through a 200-wide GCN or MLP) is a few dozen tiny kernels, so a per-model loop is
bound by per-op overhead (~12 us per op on a CPU, kernel launches on a GPU). Here the weights of N
models of one architecture are stacked along a leading model axis, every ``nn.Linear`` becomes one
batched matmul (``torch.baddbmm``) over that axis, and one AdamW over the stacked tensors updates
all N (AdamW is elementwise, so its update of model i's slice is model i's own update).

What stays per model: the data, labels and device rows, the seed (weight init and shuffle order,
`latency.epoch_plan`), the fine-tune count (shuffle stream) and the learning-rate schedule. What a
group of stacked models must share: the architecture (parameter and buffer shapes), the number of
samples, batch size, epochs, learning rate, weight decay, schedule, torch device and the trained
part. Models that differ in any of these are **grouped**, one stacked run per group (no masking: a
masked model would still take AdamW's weight decay and momentum steps on its idle steps). A group
of one, and a network built from custom `networks.NetworkParts`, train by the per-model loop itself.

Equality: each model sees exactly the batches, learning rates and initial weights of its own
`LatencyPredictor.fit` / `fine_tune`, and on a CPU each batched matmul computes the products that
``nn.Linear`` computes (`_StackedLinear`). Whether the sums come out bit for bit the loop's is the
CPU's matmul kernels' business: on the first development machine (torch 2.13, AVX-512, one thread)
they did, full Table-1 shapes included (benchmarks/vectorised_training.py reports the largest
difference), and on two threads its pretraining still did while 60 fine-tunes of 50 epochs ended up
to 1.9e-2 apart in some weight; on a second AVX-512 machine, with twice the single-thread matmul
peak, they did not even on one thread (the Table-1 shapes' weights up to .016 apart). Where they
differ, the results agree to rounding (~1e-7) at first, and since training amplifies differences
(Adam normalises tiny gradients to full steps), they drift apart over many epochs as two machines'
runs would. So a CPU stacks only when asked (`should_stack`), and `tests/test_stacked.py` checks
predictions and loss histories against the loop (rtol 1e-5) and each weight tensor to 1e-5 of its
norm. The loss history is summed per model in another order than the loop's: equal to ~1e-7
relative, not bit for bit.

After training, each model's slice is written back into its own `LatencyPredictor` (``network_``,
``history_``, ``n_fine_tunes_``), so everything downstream (predict, add_device, state, copy) is
unchanged.

Use from a trial runner: prepare every trial's predictor and data as for `fit`, then one call::

    fit_many(predictors, [FitJob(X, y, rows, device_vectors=vectors, n_devices=n) for ...])
    fine_tune_many(copies, [FineTuneJob(X, y, rows, lr=..., epochs=..., batch_size=..., train=...) ...])

(``copies``: one `LatencyPredictor.copy` per (trial, target), its row already added.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..encodings import ArchFeatures
from ..errors import MultipredictError, UnknownNameError
from .latency import FINE_TUNE_PARTS, LatencyPredictor, _deterministic, batch_geometry, epoch_plan, resolve_device
from .networks import GCNBody, HardwareEmbedding, LatencyNet, MLPBody


@dataclass(frozen=True)
class FitJob:
    """The arguments of one `LatencyPredictor.fit` call."""

    X: ArchFeatures
    y: Any
    devices: Any = None
    device_vectors: Any = None
    n_devices: int | None = None


@dataclass(frozen=True)
class FineTuneJob:
    """The arguments of one `LatencyPredictor.fine_tune` call."""

    X: ArchFeatures
    y: Any
    devices: Any = None
    lr: float = 1e-3
    epochs: int = 50
    batch_size: int | None = None
    train: str = "all"


# Measured by benchmarks/vectorised_training.py (results/vectorised_training_cpu.csv, a 2-core
# x86_64 with nothing else running, 10 trials): on one thread stacked/loop = 0.9x (NB201 GCN
# pretraining), 1.3x (FBNet MLP pretraining), 1.17x (60 Table-1 fine-tunes); on two threads 1.27x,
# 1.77x and 1.71x. (The first development machine: 1.05x, 1.15x, 1.2x and 1.74x, 2.19x, 1.77x.)


def should_stack(n_models: int, device: str | torch.device = "auto") -> bool:
    """Whether `fit_many` / `fine_tune_many` should stack ``n_models`` models on ``device``.

    On a GPU from 2 models (the loop is launch-bound there). On a CPU never by itself: a trial's
    numbers should not depend on which other trials it was trained beside, and whether a stacked
    run is bit for bit the loop's depends on the CPU's matmul kernels (it was on one machine at one
    thread, and not on another; see the module docstring), while the gain there is small (0.9-1.3x
    at one thread). Pass ``stack=True`` to `fit_many` / `fine_tune_many` to stack anyway, e.g. for
    the 1.3-1.8x at two threads (benchmarks/README.md, "Training throughput").
    """
    if n_models < 2:
        return False
    return resolve_device(device).type != "cpu"


def fit_many(predictors: Sequence[LatencyPredictor], datasets: Iterable[FitJob | tuple | Mapping], *,
             stack: bool | None = None) -> list[LatencyPredictor]:
    """``predictors[i].fit(**datasets[i])`` for every i, the stackable ones together.

    ``datasets``: `FitJob`s, ``(X, y, devices)`` tuples or mappings of `fit`'s arguments.
    ``stack``: True / False forces the stacked path / the per-model loop; None asks `should_stack`.
    Returns the fitted predictors (the same objects, fitted in place, as `fit` does).

    Exact: every model gets the initial weights, batches and learning rates of its own `fit`
    (same seed -> same model); on one CPU thread the weights are bit for bit the loop's, elsewhere
    equal up to matmul rounding, which long training amplifies (see the module docstring).
    """
    predictors = list(predictors)
    jobs = [_as_job(FitJob, job) for job in datasets]
    _check_lengths(predictors, jobs)
    prepared = []
    for model, job in zip(predictors, jobs):
        y, rows = model._fit_setup(job.X, job.y, job.devices, device_vectors=job.device_vectors,
                                   n_devices=job.n_devices)
        prepared.append(_Run(model, job.X, y, rows, lr=model.lr, epochs=model.epochs, batch_size=model.batch_size,
                             stream=0, train="all"))
    _train_runs(prepared, stack)
    return predictors


def fine_tune_many(predictors: Sequence[LatencyPredictor], jobs: Iterable[FineTuneJob | tuple | Mapping], *,
                   stack: bool | None = None) -> list[LatencyPredictor]:
    """``predictors[i].fine_tune(**jobs[i])`` for every i, the stackable ones together.

    The predictors must be fitted (e.g. copies of one pretrained predictor, each with its target's
    device row added); they are fine-tuned in place, as `fine_tune` does, and returned. ``jobs``:
    `FineTuneJob`s, ``(X, y, devices)`` tuples or mappings of `fine_tune`'s arguments (lr, epochs,
    batch_size, train="all" | "head"). ``stack`` as in `fit_many`. Exact in the same sense as
    `fit_many`: the loop's batches, learning rates and starting weights (the shuffle stream is each
    predictor's fine-tune count, as in `fine_tune`).
    """
    predictors = list(predictors)
    jobs = [_as_job(FineTuneJob, job) for job in jobs]
    _check_lengths(predictors, jobs)
    for job in jobs:  # before any predictor counts a fine-tune
        if job.train not in FINE_TUNE_PARTS:
            raise UnknownNameError("fine-tuned part", job.train, FINE_TUNE_PARTS)
    prepared = []
    for model, job in zip(predictors, jobs):
        y, rows = model._fine_tune_setup(job.X, job.y, job.devices, train=job.train)
        prepared.append(_Run(model, job.X, y, rows, lr=job.lr, epochs=job.epochs,
                             batch_size=job.batch_size or model.batch_size, stream=model.n_fine_tunes_,
                             train=job.train))
    _train_runs(prepared, stack)
    return predictors


# ------------------------------------------------------------------------------------ internals


def _as_job(kind, job):
    if isinstance(job, kind):
        return job
    if isinstance(job, Mapping):
        return kind(**job)
    if isinstance(job, tuple):
        return kind(*job)
    raise MultipredictError(f"expected a {kind.__name__}, a tuple or a mapping of its fields; got {type(job).__name__}")


def _check_lengths(predictors, jobs) -> None:
    if len(predictors) != len(jobs):
        raise MultipredictError(f"{len(predictors)} predictors but {len(jobs)} datasets; pass one per predictor")
    if len({id(p) for p in predictors}) != len(predictors):
        raise MultipredictError("the same predictor appears twice; pass one predictor object per dataset "
                                "(LatencyPredictor.copy() for copies of a fitted one)")


class _Run:
    """One model's training run, prepared (validated, initialised / counted) and waiting to train."""

    def __init__(self, model: LatencyPredictor, X: ArchFeatures, y: np.ndarray, rows, *, lr: float, epochs: int,
                 batch_size: int, stream: int, train: str):
        self.model, self.X, self.y, self.rows = model, X, y, rows
        self.lr, self.epochs, self.batch_size, self.stream, self.train = float(lr), int(epochs), batch_size, stream, train
        self.size, self.steps = batch_geometry(len(y), batch_size)

    def key(self) -> tuple:
        """What models trained together must share."""
        net = self.model.network_
        shapes = tuple((name, tuple(t.shape), t.dtype) for name, t in
                       [*net.named_parameters(), *net.named_buffers()])
        side = None if self.X.side is None else self.X.side.shape[1:]
        return (type(net).__qualname__, type(net.body).__qualname__, type(net.embedding).__qualname__, net.embedding.kind, shapes, self.X.body.shape, side, self.rows is None,
                self.size, self.steps, self.epochs, self.lr, float(self.model.weight_decay), self.model.schedule,
                str(self.model.device_), self.train)

    def train_alone(self) -> None:
        """The per-model loop (`LatencyPredictor`'s own `_train`)."""
        model = self.model
        with model._trained_part(self.train):
            model.history_ = model._train(self.X, self.y, self.rows, lr=self.lr, epochs=self.epochs,
                                          batch_size=self.batch_size, stream=self.stream)


def _stackable(net: nn.Module) -> bool:
    """Whether ``net`` is built from the default `networks.NetworkParts` (the forward pass that
    `_StackedTrainer` re-implements); a network of custom parts trains by the loop."""
    layers = [*net.head, *(net.body.readout if type(net.body) is GCNBody else getattr(net.body, "net", []))]
    return (type(net) is LatencyNet and type(net.body) in (GCNBody, MLPBody)
            and type(net.embedding) is HardwareEmbedding and type(net.head) is nn.Sequential
            and all(type(layer) in (nn.Linear, nn.ReLU) for layer in layers))


def _train_runs(runs: list[_Run], stack: bool | None) -> None:
    groups: dict[tuple, list[_Run]] = {}
    for run in runs:
        groups.setdefault(run.key(), []).append(run)
    for group in groups.values():
        device = group[0].model.device_
        use = should_stack(len(group), device) if stack is None else (stack and len(group) > 1)
        use = use and _stackable(group[0].model.network_)
        if use:
            _StackedTrainer(group).train()
        else:
            for run in group:
                run.train_alone()


class _StackedLinear(torch.autograd.Function):
    """N independent ``nn.Linear``s in one batched matmul, differentiated with the same products
    as ``nn.Linear``'s backward (grad_weight = g^T @ x, not autograd's (x^T @ g)^T for baddbmm):
    the two round differently for narrow inputs (the GCN's 8 node features), and on a CPU this
    keeps the stacked run bit for bit equal to the loop's."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        grad_weight = torch.bmm(grad.transpose(1, 2), x) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(dim=1) if ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """N independent ``nn.Linear``s: x (N, M, in), weight (N, out, in), bias (N, out) -> (N, M, out)."""
    if x.device.type == "cpu":
        return _StackedLinear.apply(x, weight, bias)
    # elsewhere batched and single GPU matmuls round differently anyway, and a Python backward
    # would add host time to a step that is bound by it
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


class _StackedTrainer:
    """The stacked form of one group's `LatencyNet`s and their joint training loop."""

    def __init__(self, runs: list[_Run]):
        self.runs = runs
        nets: list[LatencyNet] = [run.model.network_ for run in runs]
        self.template = nets[0]
        self.device = runs[0].model.device_
        self.n_models = len(nets)
        with torch.no_grad(), runs[0].model._trained_part(runs[0].train):
            self.params: dict[str, torch.Tensor] = {}
            for name, param in self.template.named_parameters():
                stacked = torch.stack([dict(net.named_parameters())[name].detach() for net in nets]).clone()
                self.params[name] = stacked.requires_grad_(param.requires_grad)
            buffers = {name: torch.stack([dict(net.named_buffers())[name] for net in nets])
                       for name, _ in self.template.named_buffers()}
        self.adjacency = None
        if isinstance(self.template.body, GCNBody):
            adjacency = buffers["body.adjacency"]
            # one shared propagation matrix (the usual case) broadcasts; distinct ones stay per model
            self.adjacency = adjacency[0] if bool((adjacency == adjacency[0]).all()) else adjacency[:, None]
        self.vectors = buffers.get("embedding.vectors")

    # ---------------------------------------------------------------- forward

    def _sequential(self, seq: nn.Sequential, prefix: str, h: torch.Tensor) -> torch.Tensor:
        for index, module in enumerate(seq):
            if isinstance(module, nn.Linear):
                h = _linear(h, self.params[f"{prefix}.{index}.weight"], self.params[f"{prefix}.{index}.bias"])
            elif isinstance(module, nn.ReLU):
                h = torch.relu(h)
            else:
                raise MultipredictError(f"the stacked trainer cannot run a {type(module).__name__} layer")
        return h

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        body = self.template.body
        if isinstance(body, MLPBody):
            return self._sequential(body.net, "body.net", x)
        if not isinstance(body, GCNBody):
            raise MultipredictError(f"the stacked trainer cannot run a {type(body).__name__} body")
        n, batch, nodes, _ = x.shape
        adj = self.adjacency
        h = x
        last = len(body.convs) - 1
        for i in range(last + 1):
            weight, bias = self.params[f"body.convs.{i}.weight"], self.params[f"body.convs.{i}.bias"]
            if i < last:
                h = torch.matmul(adj, h)  # (N, B, nodes, F), as GCNBody: aggregate, then transform
                h = torch.relu(_linear(h.reshape(n, batch * nodes, -1), weight, bias)).reshape(n, batch, nodes, -1)
            else:  # the global node's row only, as GCNBody
                row = adj[-1] if adj.dim() == 2 else adj[:, :, -1:]  # (nodes,) or (N, 1, 1, nodes)
                h = torch.matmul(row, h) if adj.dim() == 2 else torch.matmul(row, h).squeeze(-2)
                h = torch.relu(_linear(h, weight, bias))
        return self._sequential(body.readout, "body.readout", h)

    def forward(self, body: torch.Tensor, side: torch.Tensor | None, flat_rows: torch.Tensor | None) -> torch.Tensor:
        parts = [self._body(body)]
        kind = self.template.embedding.kind
        if kind == "table":
            table = self.params["embedding.table.weight"]
            parts.append(nn.functional.embedding(flat_rows, table.reshape(-1, table.shape[-1])))
        elif kind in ("sample", "index"):
            parts.append(self.vectors.reshape(-1, self.vectors.shape[-1])[flat_rows])
        if side is not None:
            parts.append(side)
        h = torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]
        return self._sequential(self.template.head, "head", h).squeeze(-1)

    # ---------------------------------------------------------------- training

    def _data(self):
        runs, dev = self.runs, self.device
        body = torch.as_tensor(np.stack([run.X.body for run in runs]), dtype=torch.float32).to(dev)
        side = None
        if runs[0].X.side is not None:
            side = torch.as_tensor(np.stack([run.X.side for run in runs]), dtype=torch.float32).to(dev)
        target = torch.as_tensor(np.stack([run.y for run in runs]), dtype=torch.float32).to(dev)
        rows = None
        if runs[0].rows is not None:
            # rows into the flattened (N * devices, dim) table: model i's rows start at i * devices
            n_rows = self.template.embedding.n_devices
            offsets = np.arange(len(runs))[:, None] * n_rows
            rows = torch.as_tensor(np.stack([run.rows for run in runs]) + offsets, dtype=torch.long).to(dev)
        return body, side, target, rows

    def train(self) -> None:
        runs = self.runs
        first = runs[0]
        body, side, target, rows = self._data()
        n, size, steps, epochs = len(first.y), first.size, first.steps, first.epochs
        trainable = [p for p in self.params.values() if p.requires_grad]
        optimiser = torch.optim.AdamW(trainable, lr=first.lr, weight_decay=first.model.weight_decay, foreach=True)
        plans = [epoch_plan(seed=run.model.seed, stream=run.stream, n=n, steps=steps, lr=run.lr, epochs=epochs,
                            schedule=run.model.schedule) for run in runs]
        model_index = torch.arange(len(runs), device=self.device)[:, None]
        histories = [[] for _ in runs]
        with _deterministic():
            for epoch in range(epochs):
                planned = [next(plan) for plan in plans]
                epoch_lr = planned[0][0]  # the group shares lr, epochs and schedule: one value
                if epoch_lr is not None:
                    for group in optimiser.param_groups:
                        group["lr"] = epoch_lr
                if steps > 1:
                    order = torch.as_tensor(np.stack([o for _, o in planned]), device=self.device)
                    e_body, e_target = body[model_index, order], target[model_index, order]
                    e_side = None if side is None else side[model_index, order]
                    e_rows = None if rows is None else rows[model_index, order]
                else:
                    e_body, e_side, e_rows, e_target = body, side, rows, target
                totals = torch.zeros(len(runs), dtype=torch.float64, device=self.device)
                for step in range(steps):
                    cut = slice(step * size, (step + 1) * size)
                    prediction = self.forward(e_body[:, cut], None if e_side is None else e_side[:, cut],
                                              None if e_rows is None else e_rows[:, cut])
                    per_model = (prediction - e_target[:, cut]).abs().sum(dim=1)  # L1, summed per model
                    optimiser.zero_grad(set_to_none=True)
                    per_model.sum().backward()  # models share no weights: each gets its own gradient
                    optimiser.step()
                    totals += per_model.detach().double()
                for history, total in zip(histories, (totals / n).tolist()):
                    history.append(total)
                for run in runs:
                    if run.model.progress is not None:
                        run.model.progress((epoch + 1) / epochs)
        self._write_back(histories)

    @torch.no_grad()
    def _write_back(self, histories) -> None:
        for i, run in enumerate(self.runs):
            net = run.model.network_
            for name, param in net.named_parameters():
                param.copy_(self.params[name][i])
            net.eval()
            run.model.history_ = histories[i]


__all__ = ["fit_many", "fine_tune_many", "should_stack", "FitJob", "FineTuneJob"]
