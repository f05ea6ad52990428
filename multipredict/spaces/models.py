"""Torch models of the NB201 and FBNet search spaces, built from an arch id or string.

Both builders reproduce the networks whose FLOPs, parameter counts and zero-cost proxies the
benchmark files carry, so that proxies we compute are comparable with the published ones:

- **NB201** (NAS-Bench-201, CIFAR setting): stem 3x3 conv (16 channels) + BN; three stages of
  ``N = 5`` cells with 16, 32, 64 channels, joined by stride-2 residual blocks; cell edges are
  ``none``, ``skip_connect``, ``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU-Conv-BN) and
  ``avg_pool_3x3``; then BN-ReLU, global average pooling and a linear classifier (10 classes, as
  NAS-Bench-Suite-Zero's CIFAR-10 proxies). Parameter counts equal NASLib's ``params`` exactly.
- **FBNet** (the HW-NAS-Bench / HELP space): stem conv 16 ch; 22 searchable layers in 7 groups of
  [1, 4, 4, 4, 4, 4, 1] layers with output channels [16, 24, 32, 64, 112, 184, 352], the stride
  applied at a group's first layer; a 1x1 "header" conv; pooling; linear classifier (100 classes,
  CIFAR-100 per HELP's metainfo). Two input settings, as HW-NAS-Bench defines them:

  ===========  ===========  =========================  ======
  ``dataset``  stem stride  group strides              header
  ===========  ===========  =========================  ======
  ``cifar``    1            1, 1, 2, 2, 1, 2, 1        1504
  ``imagenet`` 2            1, 2, 2, 2, 1, 2, 1        1984
  ===========  ===========  =========================  ======

  The default is ``cifar`` on 32x32 inputs, the setting of the 5,000 archs in ``zc_fbnet.json``
  (whose ``params`` our builder reproduces exactly). Searchable blocks: ``k{3,5}_e{1,3,6}`` are
  inverted residuals (1x1 expand, kxk depthwise, 1x1 project; identity shortcut when shape
  allows), ``_g2`` makes both 1x1 convs 2-group convs with a channel shuffle between, ``skip`` is
  the identity, or a 1x1 conv-BN-ReLU where the stride or the width changes.

Every model offers ``forward_features(x)`` (the feature map before global pooling, which the zen
proxy reads) besides ``forward(x)`` (logits). ReLUs are ``nn.ReLU`` modules (not in-place) so that
proxies can hook them.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn

from ..errors import MultipredictError, UnknownNameError
from . import fbnet, nb201

# ---------------------------------------------------------------------------------------------
# NB201


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int):
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` edge: outputs zeros of the input's shape (and passes no gradient)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class NB201Cell(nn.Module):
    """A 4-node cell; node j sums its incoming edges' ops applied to earlier nodes."""

    def __init__(self, ops: tuple[str, ...], channels: int):
        super().__init__()
        self.op_names = tuple(ops)
        self.edges = nn.ModuleList(_nb201_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in range(1, 4):
            incoming = [self.edges[e](nodes[src]) for e, (src, dst) in enumerate(nb201.EDGES) if dst == node]
            nodes.append(sum(incoming[1:], incoming[0]))
        return nodes[3]


def _nb201_op(op: str, channels: int) -> nn.Module:
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise UnknownNameError("NB201 op", op, nb201.OPS)


class NB201ResidualBlock(nn.Module):
    """The fixed stride-2 ResNet block between stages (2x width, half resolution)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    def __init__(self, ops: tuple[str, ...], *, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10):
        super().__init__()
        ops = nb201.parse(nb201.format_arch(ops))  # validates the six op names
        self.arch = nb201.format_arch(ops)
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(NB201ResidualBlock(c, 2 * c))
                c *= 2
            layers.extend(NB201Cell(ops, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.lastact(self.cells(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(self.forward_features(x)).flatten(1))


def build_nb201(arch: str | int, *, num_classes: int = 10, channels: int = 16, cells_per_stage: int = 5,
                seed: int | None = None) -> NB201Network:
    """NB201 network for an arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` or a NAS-Bench-201
    index (0..15624; an index needs HELP's arch table). Weights get PyTorch's default init, drawn
    from ``torch.manual_seed(seed)`` when ``seed`` is given (the global RNG is left untouched)."""
    arch_str = nb201.arch_string(arch) if isinstance(arch, int) or not isinstance(arch, str) else arch
    ops = nb201.parse(arch_str)
    with _seeded(seed):
        return NB201Network(ops, channels=channels, cells_per_stage=cells_per_stage, num_classes=num_classes)


# ---------------------------------------------------------------------------------------------
# FBNet

FBNET_GROUP_LAYERS: tuple[int, ...] = (1, 4, 4, 4, 4, 4, 1)
FBNET_GROUP_CHANNELS: tuple[int, ...] = (16, 24, 32, 64, 112, 184, 352)
FBNET_STEM_CHANNELS = 16
# dataset setting -> (stem stride, per-group strides, header channels)
FBNET_SETTINGS: dict[str, tuple[int, tuple[int, ...], int]] = {
    "cifar": (1, (1, 1, 2, 2, 1, 2, 1), 1504),
    "imagenet": (2, (1, 2, 2, 2, 1, 2, 1), 1984),
}
# op name -> (kernel, expansion, groups); "skip" is handled apart
_FBNET_BLOCKS: dict[str, tuple[int, int, int]] = {
    "k3_e1": (3, 1, 1), "k3_e1_g2": (3, 1, 2), "k3_e3": (3, 3, 1), "k3_e6": (3, 6, 1),
    "k5_e1": (5, 1, 1), "k5_e1_g2": (5, 1, 2), "k5_e3": (5, 3, 1), "k5_e6": (5, 6, 1),
}


class ConvBNReLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=_same_padding(kernel_size, stride), bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
        )


def _same_padding(kernel_size: int, stride: int) -> int:
    # HW-NAS-Bench's rule: the output is input / stride for odd kernels
    return math.ceil((kernel_size - stride) / 2)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class InvertedResidual(nn.Module):
    """1x1 (grouped) expand -> BN-ReLU -> [shuffle] -> kxk depthwise -> BN-ReLU -> 1x1 (grouped)
    project -> BN, plus the input when shapes match."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, expansion: int, groups: int, stride: int):
        super().__init__()
        mid = c_in * expansion
        self.expand = nn.Sequential(nn.Conv2d(c_in, mid, 1, groups=groups, bias=False), nn.BatchNorm2d(mid), nn.ReLU())
        self.shuffle = ChannelShuffle(groups) if groups > 1 else nn.Identity()
        self.depthwise = nn.Sequential(
            nn.Conv2d(mid, mid, kernel_size, stride=stride, padding=_same_padding(kernel_size, stride), groups=mid,
                      bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(),
        )
        self.project = nn.Sequential(nn.Conv2d(mid, c_out, 1, groups=groups, bias=False), nn.BatchNorm2d(c_out))
        self.residual = c_in == c_out and stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.shuffle(self.expand(x))))
        return out + x if self.residual else out


def _fbnet_block(op: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    if op == "skip":
        return nn.Identity() if c_in == c_out and stride == 1 else ConvBNReLU(c_in, c_out, 1, stride)
    kernel, expansion, groups = _FBNET_BLOCKS[op]
    return InvertedResidual(c_in, c_out, kernel, expansion, groups, stride)


class FBNetNetwork(nn.Module):
    def __init__(self, ops: list[int] | tuple[int, ...], *, num_classes: int = 100, dataset: str = "cifar"):
        super().__init__()
        if dataset not in FBNET_SETTINGS:
            raise UnknownNameError("FBNet dataset setting", dataset, list(FBNET_SETTINGS),
                                   "Use 'cifar' for 32x32 inputs, 'imagenet' for 224x224.")
        ops = fbnet.parse(list(ops))
        self.arch = "_".join(map(str, ops))
        stem_stride, strides, header = FBNET_SETTINGS[dataset]
        self.stem = ConvBNReLU(3, FBNET_STEM_CHANNELS, 3, stem_stride)
        blocks: list[nn.Module] = []
        c_in, layer = FBNET_STEM_CHANNELS, 0
        for n_layers, c_out, stride in zip(FBNET_GROUP_LAYERS, FBNET_GROUP_CHANNELS, strides):
            for i in range(n_layers):
                blocks.append(_fbnet_block(fbnet.OPS[ops[layer]], c_in, c_out, stride if i == 0 else 1))
                c_in, layer = c_out, layer + 1
        self.blocks = nn.Sequential(*blocks)
        self.header = ConvBNReLU(c_in, header, 1)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(header, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # HW-NAS-Bench's FBNet init (the one behind zc_fbnet.json), not PyTorch's default
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.001)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.header(self.blocks(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(self.forward_features(x)).flatten(1))


def build_fbnet(arch: str | int | list[int], *, num_classes: int = 100, dataset: str = "cifar",
                seed: int | None = None) -> FBNetNetwork:
    """FBNet network for a HELP arch id (0..4999), a list of 22 op indices or ``'7_8_1_...'``, with
    HW-NAS-Bench's init drawn from ``torch.manual_seed(seed)`` when ``seed`` is given."""
    if isinstance(arch, int) or (not isinstance(arch, (str, list, tuple)) and hasattr(arch, "__index__")):
        ops = [int(o) for o in fbnet.archs()[fbnet.arch_id(int(arch))]]
    else:
        ops = fbnet.parse(arch if isinstance(arch, str) else list(arch))
    with _seeded(seed):
        return FBNetNetwork(ops, num_classes=num_classes, dataset=dataset)


# ---------------------------------------------------------------------------------------------
# Space-level helpers

SPACE_DEFAULTS: dict[str, dict] = {
    # the task of the published proxies each space is compared with
    "nb201": {"num_classes": 10, "input_shape": (3, 32, 32), "dataset": "cifar10"},
    "fbnet": {"num_classes": 100, "input_shape": (3, 32, 32), "dataset": "cifar100"},
}


def model_spaces() -> list[str]:
    return list(SPACE_DEFAULTS)


def space_defaults(space: str) -> dict:
    if space not in SPACE_DEFAULTS:
        raise UnknownNameError("space with a model builder", space, model_spaces(),
                               "Proxies need a torch model; only these spaces have one.")
    return dict(SPACE_DEFAULTS[space])


def build_model(space: str, arch, *, num_classes: int | None = None, seed: int | None = None) -> nn.Module:
    """The torch model of ``arch`` in ``space`` ('nb201' or 'fbnet'), in train mode."""
    defaults = space_defaults(space)
    num_classes = defaults["num_classes"] if num_classes is None else int(num_classes)
    if space == "nb201":
        return build_nb201(arch, num_classes=num_classes, seed=seed)
    return build_fbnet(arch, num_classes=num_classes, seed=seed)


def count_parameters(model: nn.Module) -> int:
    """All parameters (weights, biases, BN affine), as NASLib's and HW-NAS-Bench's counts."""
    return sum(p.numel() for p in model.parameters())


@contextmanager
def _seeded(seed: int | None):
    if seed is None:
        yield
        return
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise MultipredictError(f"seed must be an int or None; got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
