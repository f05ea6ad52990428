"""One proxy at a time, each with its own copy of the network and its own passes, the way
zero-cost-nas / NASLib compute them. It is the yardstick for the fused engine: the tests check
that both give the same numbers, the speed benchmark times both."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import UnknownNameError
from . import scores
from .batch import ProxyBatch
from .scores import ALL_PROXIES


def compute_proxy(model: nn.Module, batch: ProxyBatch, name: str, *, device: str | torch.device | None = None,
                  seed: int | None = None, zen_output: str = "features") -> float:
    """The score of one proxy, computed on its own (see `compute_proxies` for all at once)."""
    if name not in _REFERENCE:
        raise UnknownNameError("proxy", name, ALL_PROXIES)
    device = scores.resolve_device(device)
    seed = batch.seed if seed is None else int(seed)
    if name == "zen":
        return scores.zen_score(model, tuple(batch.inputs.shape), device, seed, zen_output)
    return _REFERENCE[name](model, batch, device)


def _params(model, batch, device):
    return scores.params_score(model)


def _l2_norm(model, batch, device):
    return scores.l2_norm_score(model)


def _flops(model, batch, device):
    net = scores.working_copy(model, device).eval()
    counter = scores.FlopCounter(net)
    with torch.no_grad():
        net(batch.inputs[:1].to(device))
    counter.remove()
    return float(counter.total)


def _loss_backward(model, batch, device):
    net = scores.working_copy(model, device)
    outputs = net(batch.inputs.to(device))
    scores.cross_entropy(outputs, batch.targets.to(device)).backward()
    layers = scores.weight_layers(net)
    return layers, [layer.weight.grad for layer in layers]


def _gradient_proxy(name):
    def compute(model, batch, device):
        layers, grads = _loss_backward(model, batch, device)
        return scores.gradient_scores(layers, grads, {name})[name]
    return compute


def _fisher(model, batch, device):
    net = scores.working_copy(model, device)
    layers = scores.weight_layers(net)
    acts = {i: [] for i in range(len(layers))}
    grads = {i: [] for i in range(len(layers))}

    def capture(i):
        def hook(module, inputs, output):
            acts[i].append(output)
            grads[i].append(None)
            slot = len(grads[i]) - 1
            output.register_hook(lambda g: grads[i].__setitem__(slot, g))
        return hook

    handles = [layer.register_forward_hook(capture(i)) for i, layer in enumerate(layers)]
    try:
        outputs = net(batch.inputs.to(device))
    finally:
        for handle in handles:
            handle.remove()
    scores.cross_entropy(outputs, batch.targets.to(device)).backward()
    return sum(scores.fisher_layer_score(acts[i], grads[i], layer.weight) for i, layer in enumerate(layers))


def _grasp(model, batch, device):
    # GraSP's own recipe: gradient from a first pass, Hessian-gradient product from a second
    net = scores.working_copy(model, device)
    inputs, targets = batch.inputs.to(device), batch.targets.to(device)
    layers = scores.weight_layers(net)
    weights = [layer.weight for layer in layers]
    first = torch.autograd.grad(scores.cross_entropy(net(inputs), targets), weights, allow_unused=True)
    second = torch.autograd.grad(scores.cross_entropy(net(inputs), targets), weights, create_graph=True,
                                 allow_unused=True)
    z = sum((g1.detach() * g2).sum() for g1, g2 in zip(first, second) if g1 is not None and g2 is not None)
    z.backward()
    return scores.grasp_score(layers, [w.grad for w in weights])


def _jacobian(model, batch, device):
    net = scores.working_copy(model, device)
    x = batch.inputs.to(device).clone().requires_grad_(True)
    outputs = net(x)
    outputs.backward(torch.ones_like(outputs))
    return x.grad


def _jacov(model, batch, device):
    return scores.jacov_score(_jacobian(model, batch, device))


def _epe_nas(model, batch, device):
    return scores.epe_nas_score(_jacobian(model, batch, device), batch.targets)


def _nwot(model, batch, device):
    net = scores.working_copy(model, device)
    kernel = scores.ReluCodeKernel(net, batch.size)
    with torch.no_grad():
        net(batch.inputs.to(device))
    kernel.remove()
    return kernel.score()


def _synflow(model, batch, device):
    return scores.synflow_score(model, batch.input_shape, device)


_REFERENCE = {
    "epe_nas": _epe_nas,
    "fisher": _fisher,
    "flops": _flops,
    "grad_norm": _gradient_proxy("grad_norm"),
    "grasp": _grasp,
    "jacov": _jacov,
    "l2_norm": _l2_norm,
    "nwot": _nwot,
    "params": _params,
    "plain": _gradient_proxy("plain"),
    "snip": _gradient_proxy("snip"),
    "synflow": _synflow,
    "zen": None,  # handled in compute_proxy (needs the seed)
}
assert set(_REFERENCE) == set(ALL_PROXIES)


def compute_proxies_separately(model: nn.Module, batch: ProxyBatch, proxies=ALL_PROXIES, **kwargs) -> dict[str, float]:
    """`compute_proxy` for each name: the unfused baseline, same output as `compute_proxies`."""
    return {name: compute_proxy(model, batch, name, **kwargs) for name in scores.validate_proxies(proxies)}
