"""The arithmetic of the 13 zero-cost proxies, shared by the fused engine and the reference path.

Definitions follow NAS-Bench-Suite-Zero / zero-cost-nas (the source of the published scores), with
per-layer scores over ``Conv2d``/``Linear`` weights summed into one number:

=========  =====================================================================================
proxy      score
=========  =====================================================================================
params     number of parameters (all of them: weights, biases, BN affine)
flops      multiply-accumulates of Conv2d and Linear layers for one input sample
l2_norm    sum over layers of ||w||
grad_norm  sum over layers of ||g||, g = dL/dw of the cross-entropy loss on the batch
snip       sum |g * w|
plain      sum g * w
grasp      sum -w * (H g), the Hessian-gradient product of the same loss
fisher     per output channel k: 0.5 * mean_n (sum_hw act * dL/dact)^2, times the layer's fan-in
           (zero-cost-nas spreads the channel value over the channel's weights), summed
jacov      J = d(sum of logits)/d(input) per sample; C = corrcoef(J);
           -sum(log(l + 1e-5) + 1 / (l + 1e-5)) over the eigenvalues l of C
epe_nas    J grouped by class; per class s_c = sum log(|corrcoef| + 1e-5); sum_c |s_c|
           (more than 100 classes in the batch: mean pairwise |s_c - s_c'|)
nwot       binary codes c of every ReLU's input; K = sum c c^T + (1-c)(1-c)^T; log|det K|
synflow    BN off, |w| everywhere, float64, one all-ones input; R = sum(output); sum |w * dR/dw|
zen        Gaussian weights (BN gamma 1, beta 0, fresh running stats), Gaussian x,
           x' = x + 0.01 eps; log mean_n sum |f(x) - f(x')| + sum over BN of log sqrt(mean running var)
=========  =====================================================================================

The models are used in train mode (BN normalises with batch statistics), as the published scores
were. jacov, epe_nas and nwot are NaN / -inf where they are undefined (a cell whose output does not
depend on its input has an all-zero Jacobian); nothing here replaces them with sentinels.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import MultipredictError, UnknownNameError

ALL_PROXIES: tuple[str, ...] = (
    "epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm",
    "nwot", "params", "plain", "snip", "synflow", "zen",
)
JACOBIAN_PROXIES = frozenset({"jacov", "epe_nas"})
LOSS_GRADIENT_PROXIES = frozenset({"grad_norm", "snip", "plain", "fisher", "grasp"})
ZEN_OUTPUTS = ("features", "logits")
_EPS = 1e-5


def validate_proxies(proxies) -> tuple[str, ...]:
    if isinstance(proxies, str):
        proxies = [proxies]
    names = tuple(dict.fromkeys(proxies))
    for name in names:
        if name not in ALL_PROXIES:
            raise UnknownNameError("proxy", name, ALL_PROXIES)
    if not names:
        raise MultipredictError(f"no proxies asked for; choose from {', '.join(ALL_PROXIES)}")
    return names


def resolve_device(device: str | torch.device | None) -> torch.device:
    """CUDA when available unless a device is named."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def weight_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def is_relu(module: nn.Module) -> bool:
    # NASLib's rule (any activation whose class name says ReLU: ReLU, ReLU6, LeakyReLU)
    return "ReLU" in type(module).__name__


def working_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """A train-mode copy on ``device``: proxies change weights, grads and BN statistics, never the
    caller's model."""
    net = copy.deepcopy(model).to(device)
    net.train()
    net.zero_grad(set_to_none=True)
    return net


def check_logits(outputs: torch.Tensor, targets: torch.Tensor) -> None:
    if outputs.ndim != 2:
        raise MultipredictError(f"proxies need a model that returns (batch, classes) logits; got shape "
                                f"{tuple(outputs.shape)}")
    top = int(targets.max())
    if top >= outputs.shape[1]:
        raise MultipredictError(
            f"the batch has class {top} but the model has {outputs.shape[1]} outputs; build the model with "
            f"num_classes >= {top + 1} or use a batch with fewer classes")


# --- no-pass proxies ---------------------------------------------------------------------------

def params_score(model: nn.Module) -> float:
    return float(sum(p.numel() for p in model.parameters()))


@torch.no_grad()
def l2_norm_score(model: nn.Module) -> float:
    return float(sum(layer.weight.detach().double().norm() for layer in weight_layers(model)))


def expected_l2_norm_score(model: nn.Module) -> float:
    """l2_norm without initialisation noise: per layer the root-mean-square of ||w|| over PyTorch's
    default init (kaiming-uniform, a=sqrt(5): Var(w) = 1 / (3 fan_in)), i.e. sqrt(numel / (3 fan_in)),
    summed. It depends on the architecture only (for a model built with the default init; the
    actual weights are not read): at initialisation ||w|| of a 1x1 and a 3x3 conv of the same width
    have the same expectation, so a single draw ranks such archs at random, and two draws of the
    same archs agree only at Spearman ~0.94 on NB201 (benchmarks/README.md)."""
    total = 0.0
    for layer in weight_layers(model):
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        total += math.sqrt(layer.weight.numel() / (3.0 * fan_in))
    return float(total)


class FlopCounter:
    """Forward hooks that add up Conv2d/Linear multiply-accumulates per sample."""

    def __init__(self, model: nn.Module):
        self.total = 0
        self._handles = [m.register_forward_hook(self._hook) for m in weight_layers(model)]

    def _hook(self, module, inputs, output):
        per_sample = output.numel() // output.shape[0]
        if isinstance(module, nn.Conv2d):
            fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
        else:
            fan_in = module.in_features
        self.total += per_sample * fan_in

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


# --- data-dependent reductions ------------------------------------------------------------------

class ReluCodeKernel:
    """nwot's K, accumulated from forward hooks on every ReLU's input."""

    def __init__(self, model: nn.Module, batch_size: int):
        self.kernel: torch.Tensor | None = None  # float64 on the model's device, made on first use
        self.batch_size = batch_size
        self._handles = [m.register_forward_hook(self._hook) for m in model.modules() if is_relu(m)]

    def _hook(self, module, inputs, output):
        codes = (inputs[0].detach().flatten(1) > 0).to(torch.float32)
        # c c^T + (1-c)(1-c)^T = D - r_i - r_j + 2 c c^T (r = active units per sample): one matmul.
        # float32 is exact: entries are integers below 2**24 for any layer narrower than 8M units
        agree = codes @ codes.T
        active = codes.sum(1)
        update = (codes.shape[1] - active[:, None] - active[None, :] + 2 * agree).to(torch.float64)
        self.kernel = update if self.kernel is None else self.kernel + update

    def score(self) -> float:
        if self.kernel is None:  # a network without ReLUs: every code agrees with every other
            return -math.inf
        return float(torch.linalg.slogdet(self.kernel.cpu())[1])

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _corrcoef(rows: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.corrcoef(rows)


def jacov_score(jacobian: torch.Tensor) -> float:
    rows = jacobian.detach().flatten(1).cpu().double().numpy()
    corr = _corrcoef(rows)
    if not np.all(np.isfinite(corr)):
        return math.nan
    eigenvalues = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(eigenvalues + _EPS) + 1.0 / (eigenvalues + _EPS)))


def epe_nas_score(jacobian: torch.Tensor, targets: torch.Tensor) -> float:
    rows = jacobian.detach().flatten(1).cpu().double().numpy()
    labels = targets.detach().cpu().numpy()
    classes = np.unique(labels)
    many = len(classes) > 100
    per_class = []
    for c in classes:
        members = rows[labels == c]
        if len(members) == 1:
            if many:  # the reference implementation skips single-sample classes in this regime
                continue
            per_class.append(math.log(1.0 + _EPS))  # corrcoef of one row is 1
            continue
        s = float(np.sum(np.log(np.abs(_corrcoef(members)) + _EPS)))
        per_class.append(s / len(members) if many else s)
    values = np.array(per_class)
    if not many:
        return float(np.sum(np.abs(values)))
    return float(np.abs(values[:, None] - values[None, :]).sum() / max(len(values), 1))


def fisher_layer_score(acts: list[torch.Tensor], grads: list[torch.Tensor | None], weight: torch.Tensor) -> float:
    """One layer's fisher: the channel values summed over every call of the layer."""
    per_channel = None
    for act, grad in zip(acts, grads):
        if grad is None:
            continue
        act, grad = act.detach(), grad.detach()
        g_nk = (act * grad).sum(dim=tuple(range(2, act.ndim))) if act.ndim > 2 else act * grad
        value = 0.5 * g_nk.pow(2).mean(0)
        per_channel = value if per_channel is None else per_channel + value
    if per_channel is None:
        return 0.0
    return float(per_channel.abs().sum()) * math.prod(weight.shape[1:])


def gradient_scores(layers: list[nn.Module], grads: list[torch.Tensor | None], wanted) -> dict[str, float]:
    """grad_norm, snip and plain from the loss gradients of the weights."""
    totals = {"grad_norm": 0.0, "snip": 0.0, "plain": 0.0}
    for layer, grad in zip(layers, grads):
        if grad is None:
            continue
        w, g = layer.weight.detach(), grad.detach()
        if "grad_norm" in wanted:
            totals["grad_norm"] += float(g.norm())
        if "snip" in wanted or "plain" in wanted:
            wg = w * g
            totals["snip"] += float(wg.abs().sum())
            totals["plain"] += float(wg.sum())
    return {k: v for k, v in totals.items() if k in wanted}


def grasp_score(layers: list[nn.Module], hessian_grads: list[torch.Tensor | None]) -> float:
    return float(sum(-(layer.weight.detach() * hg).sum() for layer, hg in zip(layers, hessian_grads)
                     if hg is not None))


def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    check_logits(outputs, targets)
    return F.cross_entropy(outputs, targets)


# --- proxies with a pass of their own ------------------------------------------------------------

def _bypass(module: nn.Module) -> None:
    module.forward = lambda x: x  # instance attribute: this copy's BN becomes the identity


def synflow_score(model: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> float:
    net = copy.deepcopy(model).to(device=device, dtype=torch.float64)
    net.train()
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            _bypass(module)
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    net.zero_grad(set_to_none=True)
    output = net(torch.ones((1, *input_shape), dtype=torch.float64, device=device))
    output.sum().backward()
    return float(sum((layer.weight.detach() * layer.weight.grad).abs().sum() for layer in weight_layers(net)
                     if layer.weight.grad is not None))


def zen_score(model: nn.Module, batch_shape: tuple[int, ...], device: torch.device, seed: int,
              output: str = "features", mixup_gamma: float = 1e-2) -> float:
    """``output='features'`` reads the map before global pooling (Zen-NAS; needs the model's
    ``forward_features``), ``'logits'`` the model output (as zc_fbnet.json was computed)."""
    if output not in ZEN_OUTPUTS:
        raise UnknownNameError("zen output", output, ZEN_OUTPUTS)
    net = copy.deepcopy(model).to(device)
    net.train()
    generator = torch.Generator().manual_seed(int(seed))

    def gaussian(shape):  # drawn on the CPU so that every device gets the same numbers
        return torch.randn(shape, generator=generator).to(device)

    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(gaussian(m.weight.shape))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)):
                if m.weight is not None:
                    m.weight.fill_(1.0)
                    m.bias.zero_()
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                    m.reset_running_stats()  # the score must not depend on the model's history
        x = gaussian(batch_shape)
        x_mixed = x + mixup_gamma * gaussian(batch_shape)
        if output == "features":
            if not hasattr(net, "forward_features"):
                raise MultipredictError(
                    f"zen on the pre-pooling features needs a model with forward_features(x); "
                    f"{type(model).__name__} has none. Pass zen_output='logits' to use the model output")
            forward = net.forward_features
        else:
            forward = net
        difference = (forward(x) - forward(x_mixed)).abs()
        if output == "features":
            value = difference.flatten(1).sum(1).mean()
        else:
            value = difference.sum()
        bn_log_scale = sum(torch.log(torch.sqrt(m.running_var.mean())) for m in net.modules()
                           if isinstance(m, nn.BatchNorm2d) and m.running_var is not None)
        return float(torch.log(value) + bn_log_scale)
