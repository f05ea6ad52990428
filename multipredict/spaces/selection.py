"""One way to name a set of archs on the command line (``zcp --archs``, ``measure --archs``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import MultipredictError
from . import get

SELECTION_HELP = (
    "comma-separated: ids (12), inclusive ranges (0-99), arch strings, 'reference' (HELP's 10 reference "
    "archs), 'random:N' or 'random:N:SEED' (N distinct random ids), 'all', '@FILE' or an existing file path "
    "(one id or arch string per line, '#' comments)")


def _resolve(module, item: str | int, where: str = "") -> int:
    try:
        if isinstance(item, (int, np.integer)) or str(item).isdigit():
            return module.arch_id(int(item))
        return module.arch_id(str(item))
    except MultipredictError as exc:
        raise MultipredictError(f"{where}{exc}") from None


def _from_file(module, path: Path) -> list[int]:
    ids = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            ids.append(_resolve(module, line, f"{path}:{number}: "))
    return ids


def select_archs(space: str, selection: str | Iterable[int]) -> list[int]:
    """Arch ids named by ``selection`` (see ``SELECTION_HELP``), validated, in the order given."""
    module = get(space)
    if not isinstance(selection, str):
        return [_resolve(module, a) for a in selection]
    text = selection.strip()
    if text and Path(text).expanduser().is_file():
        return _from_file(module, Path(text).expanduser())
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise MultipredictError(f"no archs selected by {selection!r}; use {SELECTION_HELP}")
    selected: list[int] = []
    for item in items:
        if item == "reference":
            from ..data import help  # HELP's `sample` hardware-embedding archs: where a new device starts

            selected.extend(help.reference_archs(space))
        elif item == "all":
            selected.extend(range(module.N_ARCHS))
        elif item.startswith("random:"):
            parts = item.split(":")
            try:
                count, seed = int(parts[1]), int(parts[2]) if len(parts) > 2 else 0
                if len(parts) > 3 or count < 1:
                    raise ValueError
            except (ValueError, IndexError):
                raise MultipredictError(f"bad arch selection {item!r}; expected 'random:N' or 'random:N:SEED' "
                                        f"with N >= 1") from None
            if count > module.N_ARCHS:
                raise MultipredictError(f"{item!r} asks for {count} archs but {space} has {module.N_ARCHS}")
            rng = np.random.default_rng(seed)
            selected.extend(int(i) for i in rng.choice(module.N_ARCHS, size=count, replace=False))
        elif item.startswith("@"):
            path = Path(item[1:]).expanduser()
            if not path.is_file():
                raise MultipredictError(f"arch list file {str(path)!r} (from {item!r}) does not exist")
            selected.extend(_from_file(module, path))
        elif "-" in item and all(p.strip().isdigit() for p in item.split("-", 1)):
            low, high = (int(p) for p in item.split("-", 1))
            if low > high:
                raise MultipredictError(f"bad arch range {item!r}; expected LOW-HIGH with LOW <= HIGH")
            selected.extend(_resolve(module, i) for i in range(low, high + 1))
        else:
            selected.append(_resolve(module, item))
    return selected
