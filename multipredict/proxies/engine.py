"""The fused engine: all asked-for proxies from as few passes over the network as possible.

One forward pass of the batch (train mode) feeds, at once:

- nwot (hooks on every ReLU's input) and flops (hooks on Conv2d/Linear shapes);
- the input Jacobian ``d(sum of logits)/d(input)`` for jacov and epe_nas (one backward);
- the cross-entropy weight gradients for grad_norm, snip, plain and, with the gradients w.r.t. the
  Conv2d/Linear outputs captured on the same backward, fisher (one backward);
- grasp's Hessian-gradient product: that backward is taken with ``create_graph`` and differentiated
  once more, instead of GraSP's own two forward passes.

params and l2_norm need no pass; synflow (|w|, float64, BN off, all-ones input) and zen (Gaussian
weights and inputs) need networks of their own and run on their own copies.

`compute_proxy` in `reference.py` computes each proxy alone, one pass each as the published code
does; the tests check that both paths agree and the speed benchmark compares them.
"""

from __future__ import annotations

import torch
from torch import nn

from . import scores
from .batch import ProxyBatch
from .scores import ALL_PROXIES, JACOBIAN_PROXIES, LOSS_GRADIENT_PROXIES

SHARED_PASS_PROXIES = JACOBIAN_PROXIES | LOSS_GRADIENT_PROXIES | {"nwot", "flops"}


def compute_proxies(model: nn.Module, batch: ProxyBatch, proxies=ALL_PROXIES, *,
                    device: str | torch.device | None = None, seed: int | None = None,
                    zen_output: str = "features") -> dict[str, float]:
    """Scores of ``proxies`` (default: all 13) for ``model`` on ``batch``, in the order asked.

    ``model`` is left unchanged (the passes run on copies). ``device`` defaults to CUDA when
    available. ``seed`` (default: the batch's seed) draws zen's Gaussian weights and inputs.
    """
    names = scores.validate_proxies(proxies)
    wanted = set(names)
    device = scores.resolve_device(device)
    seed = batch.seed if seed is None else int(seed)
    results: dict[str, float] = {}

    if "params" in wanted:
        results["params"] = scores.params_score(model)
    if "l2_norm" in wanted:
        results["l2_norm"] = scores.l2_norm_score(model)
    if wanted & SHARED_PASS_PROXIES:
        results.update(_shared_pass(model, batch, wanted & SHARED_PASS_PROXIES, device))
    if "synflow" in wanted:
        results["synflow"] = scores.synflow_score(model, batch.input_shape, device)
    if "zen" in wanted:
        results["zen"] = scores.zen_score(model, tuple(batch.inputs.shape), device, seed, zen_output)
    return {name: results[name] for name in names}


def _shared_pass(model: nn.Module, batch: ProxyBatch, wanted: set[str], device: torch.device) -> dict[str, float]:
    net = scores.working_copy(model, device)
    inputs, targets = batch.inputs.to(device), batch.targets.to(device)
    layers = scores.weight_layers(net)
    results: dict[str, float] = {}

    if wanted == {"flops"}:  # nothing else needs the batch: one sample is enough
        net.eval()
        counter = scores.FlopCounter(net)
        with torch.no_grad():
            net(inputs[:1])
        counter.remove()
        return {"flops": float(counter.total)}

    need_jacobian = bool(wanted & JACOBIAN_PROXIES)
    need_loss = bool(wanted & LOSS_GRADIENT_PROXIES)
    need_grasp = "grasp" in wanted

    handles = []
    outputs_of: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(layers))}
    if "fisher" in wanted:
        for i, layer in enumerate(layers):
            handles.append(layer.register_forward_hook(lambda m, inp, out, i=i: outputs_of[i].append(out)))
    kernel = scores.ReluCodeKernel(net, batch.size) if "nwot" in wanted else None
    counter = scores.FlopCounter(net) if "flops" in wanted else None

    x = inputs.clone().requires_grad_(need_jacobian)
    try:
        outputs = net(x)
    finally:
        for handle in handles:
            handle.remove()
        if kernel is not None:
            kernel.remove()
        if counter is not None:
            counter.remove()
    if kernel is not None:
        results["nwot"] = kernel.score()
    if counter is not None:
        results["flops"] = float(counter.total)

    if need_jacobian:
        (jacobian,) = torch.autograd.grad(outputs.sum(), x, retain_graph=need_loss)
        if "jacov" in wanted:
            results["jacov"] = scores.jacov_score(jacobian)
        if "epe_nas" in wanted:
            results["epe_nas"] = scores.epe_nas_score(jacobian, targets)

    if need_loss:
        loss = scores.cross_entropy(outputs, targets)
        weights = [layer.weight for layer in layers]
        acts = [out for i in range(len(layers)) for out in outputs_of[i]]
        grads = torch.autograd.grad(loss, weights + acts, create_graph=need_grasp, allow_unused=True)
        weight_grads, act_grads = list(grads[:len(weights)]), list(grads[len(weights):])
        results.update(scores.gradient_scores(layers, weight_grads, wanted))
        if "fisher" in wanted:
            total, k = 0.0, 0
            for i, layer in enumerate(layers):
                n = len(outputs_of[i])
                total += scores.fisher_layer_score(outputs_of[i], act_grads[k:k + n], layer.weight)
                k += n
            results["fisher"] = total
        if need_grasp:
            # GraSP: z = g_detached . g(w); dz/dw = H g
            z = sum((g.detach() * g).sum() for g in weight_grads if g is not None)
            if isinstance(z, torch.Tensor) and z.requires_grad:
                hessian_grads = torch.autograd.grad(z, weights, allow_unused=True)
                results["grasp"] = scores.grasp_score(layers, list(hessian_grads))
            else:  # no weight reaches the loss
                results["grasp"] = 0.0
    return results
