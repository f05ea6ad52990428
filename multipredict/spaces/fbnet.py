"""FBNet space of HELP / HW-NAS-Bench: 22 searchable layers, 9 blocks each; 5,000 sampled archs
keyed by their position in HELP's ``arch.pt``."""

from __future__ import annotations

import numpy as np

from ..errors import MultipredictError

NAME = "fbnet"
OPS: tuple[str, ...] = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
N_LAYERS = 22
N_ARCHS = 5000


def archs() -> np.ndarray:
    from ..data import help

    return help.fbnet_archs()


def arch_id(arch: str | int | list[int]) -> int:
    """Position of an arch in HELP's list, from an id, an op-index list or ``'7_8_1_...'``."""
    if isinstance(arch, (int, np.integer)):
        if not 0 <= int(arch) < N_ARCHS:
            raise MultipredictError(f"FBNet arch id {arch} is out of range; expected 0..{N_ARCHS - 1}")
        return int(arch)
    ops = parse(arch)
    key = _lookup().get(tuple(ops))
    if key is None:
        raise MultipredictError(f"FBNet arch {arch!r} is not one of the 5,000 benchmark archs")
    return key


def parse(arch: str | list[int]) -> list[int]:
    if isinstance(arch, str):
        parts = arch.replace(",", "_").replace(" ", "").strip("[]()").split("_")
        try:
            arch = [int(p) if p.isdigit() else OPS.index(p) for p in parts]
        except ValueError:
            raise MultipredictError(
                f"not an FBNet arch: {arch!r}; expected 22 op indices 0..8 joined by '_' "
                f"(e.g. '7_8_1_...') or op names from {OPS}") from None
    ops = [int(o) for o in arch]
    if len(ops) != N_LAYERS or not all(0 <= o < len(OPS) for o in ops):
        raise MultipredictError(f"an FBNet arch has {N_LAYERS} op indices in 0..8; got {ops!r}")
    return ops


def arch_key(arch_id_: int) -> str:
    """The ``'_'.join`` key zc_fbnet.json uses for this arch."""
    return "_".join(map(str, archs()[arch_id_]))


_LOOKUP: dict[tuple[int, ...], int] | None = None


def _lookup() -> dict[tuple[int, ...], int]:
    global _LOOKUP
    if _LOOKUP is None:
        _LOOKUP = {tuple(int(o) for o in row): i for i, row in enumerate(archs())}
    return _LOOKUP


def vec_encoding(arch_ids) -> np.ndarray:
    """The 22x9 one-hot, flattened to 198 values."""
    ops = archs()[np.asarray(arch_ids, dtype=np.int64)]
    return np.eye(len(OPS), dtype=np.float32)[ops].reshape(len(ops), -1)
