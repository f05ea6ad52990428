"""The one minibatch zero-cost proxies look at: a user's image folder or a seeded synthetic batch.

Every score table records which batch produced it (`ProxyBatch.info`): proxies that read data
(jacov, nwot, epe_nas, the gradient proxies) change with the batch, so scores from different
batches must not be mixed silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import MultipredictError

DEFAULT_BATCH_SIZE = 64  # zero-cost-nas's batch; NAS-Bench-Suite-Zero used 32
DEFAULT_SEED = 0


@dataclass(frozen=True, eq=False)
class ProxyBatch:
    """Inputs ``(B, C, H, W)`` float32, integer class targets ``(B,)`` and where they came from."""

    inputs: torch.Tensor
    targets: torch.Tensor
    num_classes: int
    source: str  # "synthetic" or "imagefolder:<path>"
    seed: int

    def __post_init__(self):
        if self.inputs.ndim != 4:
            raise MultipredictError(f"a proxy batch needs inputs of shape (B, C, H, W); got {tuple(self.inputs.shape)}")
        if self.targets.shape != (self.inputs.shape[0],):
            raise MultipredictError(
                f"a proxy batch needs one target per input: inputs {tuple(self.inputs.shape)}, "
                f"targets {tuple(self.targets.shape)}")
        if len(self.targets) and int(self.targets.max()) >= self.num_classes:
            raise MultipredictError(
                f"target {int(self.targets.max())} is out of range for num_classes={self.num_classes}; "
                f"build the model and the batch with the same number of classes")

    @property
    def size(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.inputs.shape[1:])

    @property
    def info(self) -> dict[str, object]:
        """Columns that identify the batch in a score table."""
        return {
            "batch_source": self.source,
            "batch_size": self.size,
            "batch_seed": self.seed,
            "batch_shape": "x".join(map(str, self.input_shape)),
        }


def batch_info(batch: ProxyBatch) -> dict[str, object]:
    return batch.info


def synthetic_batch(input_shape=(3, 32, 32), num_classes: int = 10, batch_size: int = DEFAULT_BATCH_SIZE,
                    seed: int = DEFAULT_SEED) -> ProxyBatch:
    """Standard-normal images (the statistics of normalised data) and random labels, drawn from a
    private generator: the same seed gives the same batch on every machine.

    Labels come from ``min(num_classes, batch_size // 2)`` random classes, each used at least twice
    (as evenly as the batch allows): epe_nas correlates samples *within* a class, and a batch of
    16 uniform labels over 100 classes often has no class twice, which makes epe_nas a constant.
    """
    if batch_size < 2:
        raise MultipredictError(f"batch_size must be at least 2 (jacov and nwot compare samples); got {batch_size}")
    if num_classes < 1:
        raise MultipredictError(f"num_classes must be at least 1; got {num_classes}")
    generator = torch.Generator().manual_seed(int(seed))
    inputs = torch.randn((batch_size, *input_shape), generator=generator)
    n_present = max(1, min(num_classes, batch_size // 2))
    present = torch.randperm(num_classes, generator=generator)[:n_present]
    cycled = present[torch.arange(batch_size) % n_present]
    targets = cycled[torch.randperm(batch_size, generator=generator)]
    return ProxyBatch(inputs, targets, int(num_classes), "synthetic", int(seed))


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def image_folder_batch(root: str | os.PathLike, *, batch_size: int = DEFAULT_BATCH_SIZE, seed: int = DEFAULT_SEED,
                       image_size: int = 32, num_classes: int | None = None) -> ProxyBatch:
    """``batch_size`` images drawn (seeded) from an image folder laid out like torchvision's
    ``ImageFolder`` (one sub-folder per class, classes in name order), each resized so its shorter
    side is ``image_size`` (bilinear), centre-cropped to a square, scaled to [0, 1], and each channel
    standardised over the batch (a user's data has no published mean/std). ``num_classes`` defaults
    to the folder's class count; pass the model's class count when the folder has fewer classes.

    Pillow reads the images (``pip install pillow``); torchvision is not needed: its ImageFolder
    adds nothing here, and its wheels must match the torch build exactly.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MultipredictError(f"image folder {str(root)!r} does not exist; pass a folder with one sub-folder "
                                "per class, or leave it out to use a synthetic batch")
    try:
        from PIL import Image
    except ImportError:
        raise MultipredictError(
            f"reading the image folder {str(root)!r} needs Pillow, which is not installed; "
            "`pip install pillow` (or `pip install multipredict[images]`), or leave the folder out to use a "
            "synthetic batch") from None
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files = [(path, label) for label, name in enumerate(classes)
             for path in sorted((root / name).rglob("*")) if path.suffix.lower() in IMAGE_EXTENSIONS]
    if len(files) < 2:
        raise MultipredictError(f"image folder {str(root)!r} holds {len(files)} images in {len(classes)} class "
                                f"folders; at least 2 images ({', '.join(IMAGE_EXTENSIONS)}) are needed")
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(files), generator=generator)[:batch_size].tolist()
    images, labels = [], []
    for i in order:
        path, label = files[i]
        try:
            with Image.open(path) as image:
                images.append(_square(image.convert("RGB"), image_size, Image))
        except OSError as error:
            raise MultipredictError(f"cannot read image {str(path)!r}: {error}; remove or replace it") from error
        labels.append(label)
    inputs = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    mean = inputs.mean(dim=(0, 2, 3), keepdim=True)
    std = inputs.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    n_classes = len(classes) if num_classes is None else int(num_classes)
    return ProxyBatch((inputs - mean) / std, torch.tensor(labels, dtype=torch.int64), n_classes,
                      f"imagefolder:{root}", int(seed))


def _square(image, size: int, pil) -> np.ndarray:
    """Shorter side to ``size`` (bilinear), then the centre ``size`` x ``size`` crop, as uint8 HWC."""
    width, height = image.size
    scale = size / min(width, height)
    resized = image.resize((max(size, round(width * scale)), max(size, round(height * scale))), pil.BILINEAR)
    left = (resized.size[0] - size) // 2
    top = (resized.size[1] - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.uint8)


def make_batch(space: str, source: str | os.PathLike | ProxyBatch | None = None, *,
               batch_size: int = DEFAULT_BATCH_SIZE, seed: int = DEFAULT_SEED) -> ProxyBatch:
    """The batch for ``space``'s models: ``source`` None (or "synthetic") gives a synthetic batch,
    a folder path an image-folder batch with the space's class count."""
    from ..spaces.models import space_defaults

    if isinstance(source, ProxyBatch):
        return source
    defaults = space_defaults(space)
    if source is None or str(source) == "synthetic":
        return synthetic_batch(defaults["input_shape"], defaults["num_classes"], batch_size, seed)
    return image_folder_batch(source, batch_size=batch_size, seed=seed, image_size=defaults["input_shape"][-1],
                              num_classes=defaults["num_classes"])
