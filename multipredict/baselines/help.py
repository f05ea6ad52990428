"""HELP (Lee et al., NeurIPS 2021): a meta-learned, hardware-conditioned latency predictor.

A full re-implementation of HELP's released method (HayeonLee/HELP), written as one batched
functional torch program so that it trains on a CPU in minutes:

- **Meta-SGD**: second-order MAML whose inner learning rates are learnable, one per parameter
  entry, initialised to 1e-3; 2 inner steps on the support set; outer Adam, lr 1e-4; 2,000
  episodes (4,000 on FBNet); 8 meta-training devices per episode, each with ``num_support`` (10)
  support and 200 query archs from its trimmed training pool.
- **Hardware conditioning**: the ``sample`` embedding, the device's latencies on HELP's 10
  reference archs (:func:`multipredict.data.help.reference_archs`) min-max normalised over those
  10 values. It enters the predictor through two FC layers (concatenated with the arch features)
  and drives the **z-modulator**, a small inference network whose Gaussian sample ``z`` scales the
  weights and shifts the biases of the last three layers (``w * (1 + 0.01 z_w)``, ``b + 0.01 z_b``).
  Loss: query MSE + 0.1 x KL(q(z) || N(0, I)).
- **Networks** (hidden width 100): NB201 — a 4-layer GCN over the op-as-node cell graph plus a
  global node that every node feeds, read out at the global node; FBNet — a 2-layer MLP on HELP's
  132-dim encoding (per layer: [k3, k5, e1, e1_g2, e3, e6], skip = all zeros). Both then
  concatenate the hardware branch and apply FC 200-200-1.
- **Model selection**: every ``eval_every`` (50) episodes the model adapts to each meta-validation
  device from ``num_support`` random archs and is scored on its query set; the parameters with the
  best mean validation Spearman are kept.
- **Meta-test**: 2 inner steps from the few-shot samples, ``mc_samples`` (10) draws of ``z``.

Where this differs from the released code, and why:

- ``spearman_from="mc_mean"`` (default) ranks the mean of the MC predictions; HELP's evaluation
  ranks the *last* MC sample only (its MSE uses the mean). ``spearman_from="last_sample"``
  reproduces HELP exactly.
- KL term: HELP adds ``0.1 * kl`` of the *last* task of the meta-batch once per task (a variable
  left over from the inner-loop pass), i.e. ``0.8 * kl_last``; here each task adds ``0.1 * kl`` of its
  own posterior, the same total weight spread over the devices it was meant for.
- Checkpoint selection: HELP's loop compares the running best with the mean Spearman of the
  meta-*train* devices too (the check sits inside the loop over both splits), so a good
  meta-train score can replace the checkpoint; here only meta-validation Spearman selects, as the
  paper describes.
- The MC samples and the devices of a meta-batch run as one batched program (a leading task
  dimension on every parameter) instead of a Python loop; the maths per task is unchanged.

Entry points: :func:`fit_and_score` (the experiments runner's contract: meta-train once, adapt to
and score every test device) and :class:`HELPPredictor` (estimator style: ``meta_train`` once,
``adapt`` to any number of devices, ``predict``).

Labels follow the chosen protocol (:mod:`multipredict.protocols`): under ``help`` the
latencies are min-max normalised over the trimmed training pool and squeezed into [0.05, 0.95].
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from ..data import help as help_data
from ..errors import DataError, MultipredictError, UnknownNameError
from ..options import Options
from ..spaces import LATENCY_SPACES
from ..methods.protocol import few_shot_ids, rank_correlations
from ..protocols import PROTOCOLS, DeviceSplit, split

METHOD = "help"

# HELP's device splits (its script/run_meta_training_{nasbench201,fbnet}.sh).
HELP_DEVICE_SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "nb201": {
        "meta_train": ("1080ti_1", "1080ti_32", "1080ti_256", "silver_4114", "silver_4210r",
                       "samsung_a50", "pixel3", "essential_ph_1", "samsung_s7"),
        "meta_valid": ("titanx_1", "titanx_32", "titanx_256", "gold_6240"),
        "meta_test": ("titan_rtx_256", "gold_6226", "fpga", "pixel2", "raspi4", "eyeriss"),
    },
    "fbnet": {
        "meta_train": ("1080ti_1", "1080ti_32", "1080ti_64", "silver_4114", "silver_4210r",
                       "samsung_a50", "pixel3", "essential_ph_1", "samsung_s7"),
        "meta_valid": ("titanx_1", "titanx_32", "titanx_64", "gold_6240"),
        "meta_test": ("fpga", "raspi4", "eyeriss"),
    },
}

DEFAULT_EPISODES = {"nb201": 2000, "fbnet": 4000}
SPEARMAN_FROM = ("mc_mean", "last_sample")
HW_EMBED_DIM = 10
MODULATED_LAYERS = ("fc3", "fc4", "fc5")
PREDICT_CHUNK = 1000


# --------------------------------------------------------------------------------------------
# Arch features in HELP's form


def fbnet_encoding(arch_ids) -> np.ndarray:
    """HELP's 132-dim FBNet encoding: per layer [k3, k5, e1, e1_g2, e3, e6]; a skip layer is all
    zeros (op index 0..7 = k3/k5 x e1/e1_g2/e3/e6, 8 = skip)."""
    ops = help_data.fbnet_archs()[np.asarray(arch_ids, dtype=np.int64)]
    encoding = np.zeros(ops.shape + (6,), dtype=np.float32)
    not_skip = ops < 8
    rows, layers = np.nonzero(not_skip)
    kernel_is_5 = (ops[rows, layers] >= 4).astype(np.int64)
    encoding[rows, layers, kernel_is_5] = 1
    encoding[rows, layers, 2 + ops[rows, layers] % 4] = 1
    return encoding.reshape(len(ops), -1)


def nb201_global_graph(arch_ids) -> tuple[np.ndarray, np.ndarray]:
    """Node features (n, 9, 8) and the shared 9x9 propagation matrix of HELP's NB201 GCN.

    The op-as-node cell graph (:func:`multipredict.spaces.nb201.graph_adjacency`) gets a global
    node that every node feeds, self-loops, and is transposed so that row ``i`` sums the nodes
    that feed node ``i``; the global node carries its own one-hot feature.
    """
    from ..spaces import nb201

    adjacency = nb201.graph_adjacency()
    n_nodes = adjacency.shape[0] + 1
    propagation = np.zeros((n_nodes, n_nodes), dtype=np.float32)
    propagation[:-1, :-1] = adjacency
    propagation[:-1, -1] = 1
    np.fill_diagonal(propagation, 1)
    propagation = np.ascontiguousarray(propagation.T)

    cell = nb201.graph_features(arch_ids)
    features = np.zeros((cell.shape[0], n_nodes, cell.shape[2] + 1), dtype=np.float32)
    features[:, :-1, :-1] = cell
    features[:, -1, -1] = 1
    return features, propagation


@cache
def _all_arch_features(space: str) -> tuple[np.ndarray, np.ndarray | None]:
    if space == "nb201":
        from ..spaces import nb201

        return nb201_global_graph(np.arange(nb201.N_ARCHS))
    from ..spaces import fbnet

    return fbnet_encoding(np.arange(fbnet.N_ARCHS)), None


def hardware_embedding(reference_latency_ms) -> np.ndarray:
    """HELP's ``sample`` embedding: latencies on the reference archs, min-max scaled (portion 1)."""
    values = np.asarray(reference_latency_ms, dtype=np.float64)
    if values.shape != (HW_EMBED_DIM,) or not np.all(np.isfinite(values)):
        raise MultipredictError(
            f"a HELP hardware embedding needs {HW_EMBED_DIM} finite latencies on the reference archs "
            f"(multipredict.data.help.reference_archs(space)); got {values.tolist()!r}")
    low, high = values.min(), values.max()
    if high <= low:
        raise MultipredictError(
            f"the reference-arch latencies are all equal ({low}); HELP's embedding min-max scales "
            "them, so measure the reference archs again")
    return ((values - low) / (high - low)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# The networks as pure functions of parameter dicts. Every parameter carries a leading task
# dimension T at call time: the devices of a meta-batch (or the MC samples of one device) run as
# one program.


def _uniform(shape, bound: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


def _linear_init(params: dict, name: str, n_in: int, n_out: int, generator: torch.Generator) -> None:
    bound = 1 / math.sqrt(n_in)  # torch.nn.Linear's default init
    params[f"{name}.weight"] = _uniform((n_out, n_in), bound, generator)
    params[f"{name}.bias"] = _uniform((n_out,), bound, generator)


def _init_predictor(space: str, n_features: int, hidden: int, generator: torch.Generator) -> dict:
    params: dict[str, torch.Tensor] = {}
    if space == "nb201":
        for layer in range(1, 5):
            n_in = n_features if layer == 1 else hidden
            # HELP re-initialises the GCN weights to U(-0.05, 0.05); biases keep 1/sqrt(out)
            params[f"gc{layer}.weight"] = _uniform((n_in, hidden), 0.05, generator)
            params[f"gc{layer}.bias"] = _uniform((hidden,), 1 / math.sqrt(hidden), generator)
    else:
        _linear_init(params, "fc1", n_features, hidden, generator)
        _linear_init(params, "fc2", hidden, hidden, generator)
    _linear_init(params, "fc_hw1", HW_EMBED_DIM, hidden, generator)
    _linear_init(params, "fc_hw2", hidden, hidden, generator)
    _linear_init(params, "fc3", 2 * hidden, 2 * hidden, generator)
    _linear_init(params, "fc4", 2 * hidden, 2 * hidden, generator)
    _linear_init(params, "fc5", 2 * hidden, 1, generator)
    return params


def _init_modulator(hidden: int, generator: torch.Generator) -> dict:
    """HELP's inference network: embedding -> 10 -> (mean, raw std) of z for fc3..fc5."""
    params: dict[str, torch.Tensor] = {}
    n_z = (2 * hidden + 1) * len(MODULATED_LAYERS)
    _linear_init(params, "z1", HW_EMBED_DIM, 10, generator)
    _linear_init(params, "z2", 10, 2 * n_z, generator)
    return params


def _batched_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x (T, N, in), weight (T, out, in), bias (T, out) -> (T, N, out)."""
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def _forward(params: dict, x: torch.Tensor, hw: torch.Tensor, propagation: torch.Tensor | None) -> torch.Tensor:
    """Predicted labels (T, N) for arch features x (T, N, ...) and embeddings hw (T, 10)."""
    relu = torch.relu
    tasks, n_archs = x.shape[0], x.shape[1]
    if propagation is not None:  # NB201 GCN
        n_nodes = x.shape[2]
        # node-major layout (T, V, N*H): propagation is then one (V x V) @ (V x N*H) product per
        # task, and every weight one (V*N x in) @ (in x H) product per task
        h = x.transpose(1, 2).reshape(tasks, n_nodes * n_archs, -1)
        for layer in range(1, 4):
            weight, bias = params[f"gc{layer}.weight"], params[f"gc{layer}.bias"]
            support = torch.bmm(h, weight).view(tasks, n_nodes, -1)
            h = relu((propagation @ support).view(tasks, n_nodes, n_archs, -1) + bias[:, None, None, :])
            h = h.view(tasks, n_nodes * n_archs, -1)
        # only the global node is read out, and propagation is linear: aggregate first, then
        # transform (9x fewer multiply-adds than transforming every node)
        pooled = (propagation[-1] @ h.view(tasks, n_nodes, -1)).view(tasks, n_archs, -1)
        h = relu(torch.baddbmm(params["gc4.bias"].unsqueeze(1), pooled, params["gc4.weight"]))
    else:  # FBNet MLP
        h = relu(_batched_linear(x, params["fc1.weight"], params["fc1.bias"]))
        h = relu(_batched_linear(h, params["fc2.weight"], params["fc2.bias"]))
    hw_h = relu(torch.einsum("toi,ti->to", params["fc_hw1.weight"], hw) + params["fc_hw1.bias"])
    hw_h = relu(torch.einsum("toi,ti->to", params["fc_hw2.weight"], hw_h) + params["fc_hw2.bias"])
    # fc3 sees [arch features, hardware features]; the hardware half is the same for every arch
    # of a task, so it joins the bias instead of being repeated N times (same result)
    width = h.shape[-1]
    fc3_weight = params["fc3.weight"]
    fc3_bias = params["fc3.bias"] + torch.einsum("toi,ti->to", fc3_weight[:, :, width:], hw_h)
    h = relu(_batched_linear(h, fc3_weight[:, :, :width], fc3_bias))
    h = relu(_batched_linear(h, params["fc4.weight"], params["fc4.bias"]))
    return _batched_linear(h, params["fc5.weight"], params["fc5.bias"]).squeeze(-1)


def _sample_z(modulator: dict, hw: torch.Tensor, hidden: int, generator: torch.Generator,
              deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """z for weights (T, 3*2*hidden), z for biases (T, 3) and KL(q(z|hw) || N(0, I)) per task."""
    h = torch.relu(hw @ modulator["z1.weight"].T + modulator["z1.bias"])
    stats_ = h @ modulator["z2.weight"].T + modulator["z2.bias"]
    n_z = stats_.shape[1] // 2
    mean, std = stats_[:, :n_z], torch.nn.functional.softplus(stats_[:, n_z:])
    kl = (-torch.log(std) + (std ** 2 + mean ** 2) / 2 - 0.5).sum(dim=1)
    if deterministic:
        z = mean
    else:
        noise = torch.randn(mean.shape, generator=generator).to(mean.device)
        z = mean + std * noise
    n_w = 2 * hidden * len(MODULATED_LAYERS)
    return z[:, :n_w], z[:, n_w:], kl


# --------------------------------------------------------------------------------------------
# Per-device data


@dataclass(frozen=True)
class _DeviceTask:
    device: str
    split: DeviceSplit
    labels: np.ndarray  # normalised label per arch id (NaN where not measured)
    hw_embed: np.ndarray  # (10,)


def _device_latency(space: str, device: str) -> np.ndarray:
    if device in help_data.devices(space):
        return help_data.latency(space, device)
    from ..data import tables

    table = tables.latencies(space)
    if device not in table.columns:
        raise UnknownNameError(f"{space} device", device, list(table.columns),
                               "List them with multipredict.data.tables.latency_sources(space).")
    return table[device].to_numpy(dtype=float)


def _device_task(space: str, device: str, protocol: str, seed: int,
                 source_samples: int | None = None) -> _DeviceTask:
    latency = _device_latency(space, device)
    reference = latency[help_data.reference_archs(space)]
    if not np.all(np.isfinite(reference)):
        raise DataError(
            f"device {device!r} has no latency for some of HELP's reference archs "
            f"{help_data.reference_archs(space)}, which HELP's hardware embedding needs; "
            "choose a device measured on them (every HELP device is)")
    pool = np.flatnonzero(np.isfinite(latency))
    if protocol == "help":
        device_split = split("help", space, device, latency, pool, seed, num_train=source_samples)
    else:
        device_split = split(protocol, space, device, latency, pool, seed, source_samples=source_samples)
    labels = np.full(len(latency), np.nan, dtype=np.float32)
    measured = np.isfinite(latency)
    labels[measured] = device_split.normalise(latency[measured])
    return _DeviceTask(device, device_split, labels, hardware_embedding(reference))


# --------------------------------------------------------------------------------------------
# The estimator


@dataclass
class AdaptedHELP:
    """HELP adapted to one device: ``mc_samples`` parameter sets (one per draw of z)."""

    device: str
    predictor: "HELPPredictor"
    params: dict = field(repr=False)
    hw_embed: torch.Tensor = field(repr=False)

    @property
    def mc_samples(self) -> int:
        return int(self.hw_embed.shape[0])

    def predict(self, arch_ids, reduce: str = "mean") -> np.ndarray:
        """Predicted normalised latencies; ``reduce`` = "mean" (over MC samples), "last" (the last
        sample, as HELP's evaluation ranks) or "none" (an (mc_samples, n) array)."""
        if reduce not in ("mean", "last", "none"):
            raise MultipredictError(f"reduce={reduce!r} is not one of 'mean', 'last', 'none'")
        arch_ids = np.asarray(arch_ids, dtype=np.int64).reshape(-1)
        chunks = []
        with torch.no_grad():
            # chunks keep memory flat: all 15,625 NB201 cells x 10 samples x 9 nodes would be ~0.5 GB
            for start in range(0, len(arch_ids), PREDICT_CHUNK):
                x = self.predictor._features(arch_ids[start:start + PREDICT_CHUNK])
                chunks.append(_forward(self.params, x.unsqueeze(0).expand(self.mc_samples, *x.shape),
                                       self.hw_embed, self.predictor._propagation).cpu())
        out = torch.cat(chunks, dim=1).numpy().astype(np.float64) if chunks else np.zeros((self.mc_samples, 0))
        if reduce == "mean":
            return out.mean(axis=0)
        if reduce == "last":
            return out[-1]
        return out


class HELPOptions(Options):
    """HELP's settings (Lee et al., NeurIPS 2021; defaults = its released configuration)."""

    episodes: int | None = Field(None, ge=0, description="meta-training episodes (None: 2000 NB201 / 4000 FBNet)")
    inner_steps: int = Field(2, ge=0, description="inner adaptation steps while meta-training")
    eval_inner_steps: int | None = Field(None, ge=0, description="adaptation steps at meta-test (None: inner_steps)")
    meta_batch: int = Field(8, ge=1, description="devices per episode")
    num_query: int = Field(200, ge=1, description="query archs per meta-training device and episode")
    meta_lr: float = Field(1e-4, gt=0, description="outer Adam learning rate")
    inner_lr_init: float = Field(1e-3, gt=0, description="initial per-parameter inner learning rate (Meta-SGD)")
    hidden: int = Field(100, ge=1, description="predictor width")
    kl_weight: float = Field(0.1, ge=0, description="weight of the KL term")
    z_scale: float = Field(0.01, ge=0, description="scale of the z-modulator's sample")
    mc_samples: int = Field(10, ge=1, description="Monte-Carlo samples at meta-test")
    eval_every: int = Field(50, ge=1, description="episodes between meta-validation checks")
    spearman_from: Literal["mc_mean", "last_sample"] = Field(
        "mc_mean", description="rank the MC mean, or the last MC sample (HELP's released evaluation)")
    second_order: bool = Field(True, description="second-order MAML gradients")
    source_samples: int | None = Field(None, ge=2, description="training pool per meta-train device "
                                                               "(None: 900 NB201 / 4000 FBNet)")
    device: str | None = Field("auto", description="torch device: auto, cpu, cuda")


class HELPPredictor:
    """HELP as an estimator: configure in the constructor, then ``meta_train``, ``adapt``, ``predict``.

    >>> model = HELPPredictor("nb201", episodes=2000, seed=0).meta_train(
    ...     HELP_DEVICE_SPLITS["nb201"]["meta_train"], HELP_DEVICE_SPLITS["nb201"]["meta_valid"])
    >>> adapted = model.adapt(reference_latency_ms, support_ids, support_labels)
    >>> model.predict(adapted, query_ids)  # normalised latency, MC mean
    """

    def __init__(self, space: str, *, num_support: int = 10, protocol: str = "help", seed: int = 0,
                 progress: Callable[[str, float], None] | None = None, **options):
        """``options``: `HELPOptions` (episodes, inner_steps, ..., device), validated there."""
        if space not in LATENCY_SPACES:
            raise UnknownNameError("HELP space", space, LATENCY_SPACES)
        if protocol not in PROTOCOLS:
            raise UnknownNameError("protocol", protocol, PROTOCOLS)
        if not isinstance(num_support, (int, np.integer)) or num_support < 1:
            raise MultipredictError(f"num_support={num_support!r}: expected a positive integer")
        settings = HELPOptions.parse(options, "HELP")
        self.options = settings
        self.space = space
        self.episodes = DEFAULT_EPISODES[space] if settings.episodes is None else int(settings.episodes)
        self.inner_steps = int(settings.inner_steps)
        self.eval_inner_steps = self.inner_steps if settings.eval_inner_steps is None else int(settings.eval_inner_steps)
        self.meta_batch, self.num_support, self.num_query = int(settings.meta_batch), int(num_support), \
            int(settings.num_query)
        self.meta_lr, self.inner_lr_init = float(settings.meta_lr), float(settings.inner_lr_init)
        self.hidden, self.kl_weight, self.z_scale = int(settings.hidden), float(settings.kl_weight), \
            float(settings.z_scale)
        self.mc_samples, self.eval_every = int(settings.mc_samples), int(settings.eval_every)
        self.spearman_from, self.second_order, self.protocol = settings.spearman_from, bool(settings.second_order), \
            protocol
        self.source_samples = settings.source_samples
        self.seed = int(seed)
        device = settings.device
        if device in (None, "auto"):
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.progress = progress

        features, propagation = _all_arch_features(space)
        self._all_features = torch.from_numpy(features).to(self.device)
        self._propagation = None if propagation is None else torch.from_numpy(propagation).to(self.device)
        self._init_state()
        self.history_: list[dict] = []
        self.best_episode_: int | None = None
        self.best_valid_spearman_: float | None = None
        self.meta_train_seconds_: float = 0.0

    # -- state ---------------------------------------------------------------------------------

    def _init_state(self) -> None:
        generator = torch.Generator().manual_seed(self.seed)
        n_features = self._all_features.shape[-1]
        theta = _init_predictor(self.space, n_features, self.hidden, generator)
        self.theta = {k: v.to(self.device).requires_grad_() for k, v in theta.items()}
        self.inner_lr = {k: torch.full_like(v, self.inner_lr_init).requires_grad_() for k, v in self.theta.items()}
        self.modulator = {k: v.to(self.device).requires_grad_()
                          for k, v in _init_modulator(self.hidden, generator).items()}
        # one generator for the z draws; episodes and support draws use numpy generators
        self._z_generator = torch.Generator().manual_seed(self.seed + 1)

    def _state(self) -> dict:
        return {group: {k: v.detach().clone() for k, v in getattr(self, group).items()}
                for group in ("theta", "inner_lr", "modulator")}

    def _load_state(self, state: dict) -> None:
        for group, values in state.items():
            target = getattr(self, group)
            with torch.no_grad():
                for k, v in values.items():
                    target[k].copy_(v)

    @property
    def reference_archs(self) -> list[int]:
        """Arch ids whose latencies a new device must provide (HELP's ``sample`` embedding)."""
        return help_data.reference_archs(self.space)

    def _features(self, arch_ids: np.ndarray) -> torch.Tensor:
        return self._all_features[torch.as_tensor(arch_ids, dtype=torch.long, device=self.device)]

    # -- the inner loop --------------------------------------------------------------------------

    def _adapted_params(self, hw: torch.Tensor, x_support: torch.Tensor, y_support: torch.Tensor,
                        steps: int, create_graph: bool) -> tuple[dict, torch.Tensor]:
        """Modulate, then take ``steps`` Meta-SGD steps on the support set of each of T tasks."""
        tasks = hw.shape[0]
        z_w, z_b, kl = _sample_z(self.modulator, hw, self.hidden, self._z_generator)
        width = 2 * self.hidden
        params = {}
        for name, value in self.theta.items():
            layer, kind = name.split(".")
            if layer in MODULATED_LAYERS:
                i = MODULATED_LAYERS.index(layer)
                if kind == "weight":  # scales the input columns, as HELP's broadcast does
                    scale = 1 + self.z_scale * z_w[:, i * width:(i + 1) * width]
                    params[name] = value.unsqueeze(0) * scale.unsqueeze(1)
                else:
                    params[name] = value.unsqueeze(0) + self.z_scale * z_b[:, i:i + 1]
            else:
                params[name] = value.unsqueeze(0).expand(tasks, *value.shape)
        with torch.enable_grad():
            for _ in range(steps):
                prediction = _forward(params, x_support, hw, self._propagation)
                # summing per-task MSEs gives every task the gradient of its own MSE
                loss = ((prediction - y_support) ** 2).mean(dim=1).sum()
                grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
                params = {k: v - self.inner_lr[k] * g for (k, v), g in zip(params.items(), grads)}
        return params, kl

    # -- meta-training ---------------------------------------------------------------------------

    def meta_train(self, train_devices: Sequence[str], valid_devices: Sequence[str] | None = None) -> "HELPPredictor":
        """Meta-train on ``train_devices``; keep the parameters with the best mean Spearman on
        ``valid_devices`` (``None``: HELP's meta-valid set; ``[]``: keep the last episode)."""
        started = time.perf_counter()
        if valid_devices is None:
            valid_devices = HELP_DEVICE_SPLITS[self.space]["meta_valid"]
        train_devices, valid_devices = list(train_devices), list(valid_devices)
        if not train_devices:
            raise MultipredictError("meta_train needs at least one training device; got none")
        train_tasks = [_device_task(self.space, d, self.protocol, self.seed, self.source_samples)
                       for d in train_devices]
        valid_tasks = [_device_task(self.space, d, self.protocol, self.seed, self.source_samples)
                       for d in valid_devices]
        for task in train_tasks:
            if len(task.split.train_ids) < self.num_support + 1:
                raise MultipredictError(
                    f"device {task.device!r} has {len(task.split.train_ids)} training archs, fewer than "
                    f"num_support + 1 = {self.num_support + 1}; lower num_support")

        rng = np.random.default_rng([self.seed, 0x4E1F])
        hw_all = torch.tensor(np.stack([t.hw_embed for t in train_tasks]), device=self.device)
        labels_all = [torch.from_numpy(t.labels).to(self.device) for t in train_tasks]
        optimiser = torch.optim.Adam(
            list(self.theta.values()) + list(self.inner_lr.values()) + list(self.modulator.values()),
            lr=self.meta_lr)
        best_state, best_score = None, -math.inf
        self.history_ = []
        n_tasks = min(self.meta_batch, len(train_tasks))
        n_query = min(self.num_query, min(len(t.split.train_ids) for t in train_tasks) - self.num_support)

        for episode in range(1, self.episodes + 1):
            chosen = rng.permutation(len(train_tasks))[:n_tasks]
            support, query = [], []
            for t in chosen:
                pool = rng.permutation(train_tasks[t].split.train_ids)
                support.append(pool[:self.num_support])
                query.append(pool[self.num_support:self.num_support + n_query])
            support, query = np.stack(support), np.stack(query)
            hw = hw_all[torch.as_tensor(chosen, device=self.device)]
            y_support = torch.stack([labels_all[t][torch.as_tensor(s, device=self.device)]
                                     for t, s in zip(chosen, support)])
            y_query = torch.stack([labels_all[t][torch.as_tensor(q, device=self.device)]
                                   for t, q in zip(chosen, query)])
            params, kl = self._adapted_params(hw, self._features(support), y_support, self.inner_steps,
                                              create_graph=self.second_order)
            prediction = _forward(params, self._features(query), hw, self._propagation)
            mse = ((prediction - y_query) ** 2).mean()
            loss = mse + self.kl_weight * kl.sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()

            record = {"episode": episode, "loss": loss.item(), "mse": mse.item(), "kl": kl.mean().item()}
            if valid_tasks and (episode % self.eval_every == 0 or episode == self.episodes):
                # a fresh random support set per evaluation, as HELP draws one per validation pass
                draw = np.random.default_rng([self.seed, episode])
                rows = self._evaluate(valid_tasks, [t.split.few_shot(self.num_support, draw) for t in valid_tasks])
                score = float(np.mean([r["spearman"] for r in rows]))
                record["valid_spearman"] = score
                if score > best_score:
                    best_score, best_state = score, self._state()
                    self.best_episode_ = episode
            record["seconds"] = time.perf_counter() - started
            self.history_.append(record)
            if self.progress is not None:
                self.progress("meta-train", episode / self.episodes)

        if best_state is not None:
            self._load_state(best_state)
            self.best_valid_spearman_ = best_score
        else:
            self.best_episode_ = self.episodes
        self.meta_train_seconds_ = time.perf_counter() - started
        return self

    # -- adaptation and scoring ------------------------------------------------------------------

    def adapt(self, reference_latency_ms, support_ids, support_labels, *, device_name: str = "device",
              mc_samples: int | None = None) -> AdaptedHELP:
        """Adapt to a new device from its latencies on :attr:`reference_archs` (ms) and a few
        (arch id, label) pairs. Labels should be scaled as in meta-training (the ``help`` protocol:
        min-max over the device's pool, squeezed into [0.05, 0.95]); predictions come back on the
        same scale."""
        support_ids = np.asarray(support_ids, dtype=np.int64)
        support_labels = np.asarray(support_labels, dtype=np.float32)
        if support_ids.ndim != 1 or support_ids.shape != support_labels.shape:
            raise MultipredictError(
                f"support_ids and support_labels must be 1-d of one length; got shapes "
                f"{support_ids.shape} and {support_labels.shape}")
        hw = hardware_embedding(reference_latency_ms)
        return self._adapt_many([device_name], hw[None], support_ids[None], support_labels[None],
                                mc_samples or self.mc_samples)[0]

    def predict(self, adapted: AdaptedHELP, arch_ids, reduce: str | None = None) -> np.ndarray:
        """Predictions of an adapted model; ``reduce`` defaults to this model's ``spearman_from``."""
        if reduce is None:
            reduce = "mean" if self.spearman_from == "mc_mean" else "last"
        return adapted.predict(arch_ids, reduce=reduce)

    def _adapt_many(self, names: list[str], hw: np.ndarray, support_ids: np.ndarray,
                    support_labels: np.ndarray, mc_samples: int) -> list[AdaptedHELP]:
        """Adapt D devices x mc_samples draws of z as one batch of tasks."""
        n_devices = len(names)
        repeat = lambda a: np.repeat(a, mc_samples, axis=0)  # noqa: E731 - device-major order
        hw_t = torch.from_numpy(repeat(hw)).to(self.device)
        x = self._features(repeat(support_ids))
        y = torch.from_numpy(repeat(support_labels)).to(self.device)
        params, _ = self._adapted_params(hw_t, x, y, self.eval_inner_steps, create_graph=False)
        adapted = []
        for d in range(n_devices):
            rows = slice(d * mc_samples, (d + 1) * mc_samples)
            adapted.append(AdaptedHELP(names[d], self, {k: v[rows].detach() for k, v in params.items()},
                                       hw_t[rows]))
        return adapted

    def _evaluate(self, tasks: list[_DeviceTask], support: list[np.ndarray]) -> list[dict]:
        """Adapt to each task from its support archs (one batch); score on its held-out archs."""
        support = np.stack(support)
        labels = np.stack([t.labels[s] for t, s in zip(tasks, support)])
        adapted = self._adapt_many([t.device for t in tasks], np.stack([t.hw_embed for t in tasks]),
                                   support, labels, self.mc_samples)
        rows = []
        for task, model, shots in zip(tasks, adapted, support):
            scored = task.split.scored_ids(shots)
            spearman, kendall = rank_correlations(self.predict(model, scored), task.labels[scored])
            rows.append({"device": task.device, "spearman": spearman, "kendall": kendall,
                         "n_eval": len(scored), "n_fewshot": len(shots), "pool": len(task.split.train_ids)})
        return rows

    def score(self, test_devices: Sequence[str], samples: int = 10, seed: int | None = None) -> list[dict]:
        """Adapt to each test device from ``samples`` few-shot archs and score it on the
        protocol's held-out archs. The few-shot draw depends on (seed, device) only, the same draw
        every other method of the project makes (:func:`multipredict.methods.protocol.few_shot_ids`);
        test devices always use the protocol's default training pool, whatever ``source_samples``."""
        seed = self.seed if seed is None else int(seed)
        rows = []
        for device in test_devices:
            started = time.perf_counter()
            task = _device_task(self.space, device, self.protocol, seed)
            row = self._evaluate([task], [few_shot_ids(task.split, samples, seed)])[0]
            row["seconds"] = time.perf_counter() - started
            rows.append(row)
            if self.progress is not None:
                self.progress(f"test {device}", len(rows) / len(test_devices))
        return rows


# --------------------------------------------------------------------------------------------
# The experiments runner's entry point

class HELPTrialOptions(HELPOptions):
    """A HELP trial's options: HELP's settings plus the meta-validation devices and progress."""

    valid_devices: tuple[str, ...] | None = Field(
        None, description="meta-validation devices (None: HELP's meta-valid set less train/test; () = none)")
    progress: Callable[[str, float], None] | None = Field(None, description="callable(stage, fraction)",
                                                          exclude=True)


OPTIONS = HELPTrialOptions.names()


def fit_and_score(*, space: str, train_devices: list[str], test_devices: list[str], samples: int,
                  seed: int, protocol: str = "help", **options) -> list[dict]:
    """Meta-train HELP once on ``train_devices`` (``samples`` support archs per episode, as HELP
    uses one number for both), then adapt to each test device from ``samples`` few-shot archs and
    score it. One row per test device; ``seconds`` = that device's adaptation and scoring plus an
    equal share of the meta-training time.

    Options: valid_devices (default: HELP's meta-valid set less the train/test devices; [] = no
    model selection) and HELPPredictor's settings: episodes (2000 NB201 / 4000 FBNet), inner_steps
    (2), eval_inner_steps (= inner_steps), meta_batch (8), num_query (200 query archs per
    meta-training device and episode), meta_lr (1e-4), inner_lr_init (1e-3), hidden (100),
    kl_weight (0.1), z_scale (0.01), mc_samples (10), eval_every (50), spearman_from ("mc_mean" |
    "last_sample", HELP's released evaluation), second_order (True), source_samples (training pool
    of the meta-train/valid devices; default 900 / 4000), device ("auto" | "cpu" | "cuda"),
    progress (callable(stage, fraction)).
    """
    parsed = HELPTrialOptions.parse(options, "HELP")
    options = {name: getattr(parsed, name) for name in options}
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise MultipredictError(f"samples={samples!r}: expected a positive number of few-shot archs (HELP: 10)")
    valid_devices = options.pop("valid_devices", None)
    valid_devices = None if valid_devices is None else list(valid_devices)
    if valid_devices is None:
        # HELP's meta-valid set, less any device this run trains or tests on (e.g. the adversarial
        # splits train on titanx_1); an empty set keeps the last episode
        taken = set(train_devices) | set(test_devices)
        valid_devices = [d for d in HELP_DEVICE_SPLITS.get(space, {}).get("meta_valid", ()) if d not in taken]
    overlap = set(valid_devices) & set(test_devices)
    if overlap:
        raise MultipredictError(
            f"devices {sorted(overlap)} are both meta-validation and test devices; pass "
            "valid_devices=... without them (or [] to skip model selection)")
    model = HELPPredictor(space, num_support=samples, protocol=protocol, seed=seed, **options)
    model.meta_train(train_devices, valid_devices)
    rows = model.score(test_devices, samples=samples, seed=seed)
    share = model.meta_train_seconds_ / max(len(rows), 1)
    for row in rows:
        row.update(method=METHOD, space=space, samples=samples, seed=seed, protocol=protocol,
                   spearman_from=model.spearman_from, episodes=model.episodes,
                   best_episode=model.best_episode_, valid_spearman=model.best_valid_spearman_,
                   meta_train_seconds=model.meta_train_seconds_)
        row["seconds"] += share
    return rows


__all__ = ["HELPPredictor", "AdaptedHELP", "fit_and_score", "fbnet_encoding", "nb201_global_graph",
           "hardware_embedding", "HELP_DEVICE_SPLITS", "DEFAULT_EPISODES", "OPTIONS", "HELPOptions", "HELPTrialOptions"]
