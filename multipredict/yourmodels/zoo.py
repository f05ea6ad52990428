"""A seeded zoo of small torchvision-style CNNs that nobody here designed: evidence that the ZCP and
HWL encodings work on models outside the benchmark search spaces.

The recipe (`random_spec(seed, index)`), every choice drawn from ``numpy.random.default_rng([seed,
index])``:

- family: ``resnet`` (basic blocks: k x k conv - BN - ReLU - k x k conv - BN, plus an identity or a
  1x1 conv + BN shortcut, then ReLU) or ``mobilenet`` (inverted residuals: 1x1 expand by the
  stage's ratio - BN - ReLU6 - depthwise k x k - BN - ReLU6 - 1x1 project - BN, residual when the
  shape allows; no expand conv at ratio 1);
- input resolution 32 or 64 (3 channels); the stem is a 3x3 conv - BN - ReLU of width 8, 16, 24 or
  32, with stride 2 at 64 pixels;
- 2, 3 or 4 stages, each halving the resolution in its first block, with 1-3 blocks, a kernel size
  of 3, 5 or 7, an expansion ratio of 1, 3 or 6 (mobilenet), and a width of the previous stage's
  times 1, 1.5 or 2 (rounded to a multiple of 8, at most 256);
- global average pooling and a linear classifier over 10 classes.

Weights are initialised under ``torch.manual_seed(seed)`` (no downloaded weights anywhere).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

FAMILIES = ("resnet", "mobilenet")
KERNELS = (3, 5, 7)
EXPANSIONS = (1, 3, 6)
RESOLUTIONS = (32, 64)
NUM_CLASSES = 10


@dataclass(frozen=True)
class Stage:
    depth: int
    width: int
    kernel: int
    expansion: int


@dataclass(frozen=True)
class CNNSpec:
    """One CNN of the zoo: everything `build_cnn` needs, JSON-serialisable."""

    name: str
    family: str
    resolution: int
    stem_width: int
    stages: tuple[Stage, ...]
    num_classes: int = NUM_CLASSES

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.resolution, self.resolution)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _round8(value: float) -> int:
    return int(max(8, min(256, 8 * round(value / 8))))


def random_spec(seed: int, index: int) -> CNNSpec:
    """The ``index``-th CNN of the zoo drawn with ``seed`` (see the module's recipe)."""
    rng = np.random.default_rng([int(seed), int(index)])
    family = str(rng.choice(FAMILIES))
    resolution = int(rng.choice(RESOLUTIONS))
    stem = int(rng.choice((8, 16, 24, 32)))
    stages, width = [], stem
    for _ in range(int(rng.integers(2, 5))):
        width = _round8(width * float(rng.choice((1.0, 1.5, 2.0))))
        stages.append(Stage(depth=int(rng.integers(1, 4)), width=width, kernel=int(rng.choice(KERNELS)),
                            expansion=int(rng.choice(EXPANSIONS)) if family == "mobilenet" else 1))
    name = f"cnn{index:03d}_{family}_r{resolution}"
    return CNNSpec(name=name, family=family, resolution=resolution, stem_width=stem, stages=tuple(stages))


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(cin, cout, kernel, stride), nn.ReLU(inplace=True),
                                  *_conv_bn(cout, cout, kernel))
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout
                         else nn.Sequential(*_conv_bn(cin, cout, 1, stride)))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [*_conv_bn(cin, hidden, 1), nn.ReLU6(inplace=True)]
        layers += [*_conv_bn(hidden, hidden, kernel, stride, groups=hidden), nn.ReLU6(inplace=True),
                   *_conv_bn(hidden, cout, 1)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        out = self.body(x)
        return x + out if self.residual else out


class ZooCNN(nn.Module):
    def __init__(self, spec: CNNSpec):
        super().__init__()
        stem_stride = 2 if spec.resolution >= 64 else 1
        blocks: list[nn.Module] = [*_conv_bn(3, spec.stem_width, 3, stem_stride), nn.ReLU(inplace=True)]
        cin = spec.stem_width
        for stage in spec.stages:
            for b in range(stage.depth):
                stride = 2 if b == 0 else 1
                if spec.family == "resnet":
                    blocks.append(BasicBlock(cin, stage.width, stage.kernel, stride))
                else:
                    blocks.append(InvertedResidual(cin, stage.width, stage.kernel, stride, stage.expansion))
                cin = stage.width
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, spec.num_classes)

    def forward_features(self, x):
        return self.features(x)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def build_cnn(spec: CNNSpec, seed: int = 0) -> nn.Module:
    """The torch model of ``spec``, weights initialised under ``seed`` (the caller's RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return ZooCNN(spec).eval()


class ZooFactory:
    """A zero-argument model factory for `encode_models`; ``identity`` names it in the table."""

    def __init__(self, spec: CNNSpec, seed: int = 0):
        self.spec, self.seed = spec, int(seed)

    @property
    def identity(self) -> str:
        return f"multipredict.yourmodels.zoo:{self.spec.to_json()}:seed={self.seed}"

    def __call__(self) -> nn.Module:
        return build_cnn(self.spec, self.seed)


def zoo(count: int, seed: int = 0) -> dict[str, ZooFactory]:
    """``count`` CNNs of the recipe as ``{name: factory}`` (``factory.spec.input_shape`` is each
    one's input)."""
    specs = [random_spec(seed, i) for i in range(int(count))]
    return {spec.name: ZooFactory(spec, seed) for spec in specs}
