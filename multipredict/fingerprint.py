"""What identifies the code a result came from, for stores that must never serve a stale result
(`onboardstore`, `data.derived`): a sha256 of the package's source files and of every file the
repository ships in ``data/`` (the pretrained models, the calibration), with the numpy and torch
versions. Any edit or upgrade changes it, so those stores recompute instead of guessing what an
edit touched."""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import metadata
from pathlib import Path

import numpy as np

PACKAGE = Path(__file__).resolve().parent
SHIPPED_DATA = PACKAGE.parent / "data"


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 of the package's ``.py`` files and the shipped ``data/`` files (relative paths and
    bytes, about 3 MB: about 15 ms) and the numpy and torch versions (torch's read from its package
    metadata, without importing it). Once per process."""
    digest = hashlib.sha256()
    files = sorted(PACKAGE.rglob("*.py")) + (sorted(p for p in SHIPPED_DATA.rglob("*") if p.is_file())
                                             if SHIPPED_DATA.is_dir() else [])
    for path in files:
        digest.update(str(path.relative_to(PACKAGE.parent)).encode() + b"\0")
        digest.update(path.read_bytes())
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "none"
    digest.update(f"numpy {np.__version__} torch {torch_version}".encode())
    return digest.hexdigest()


def stored_key(**parts) -> str:
    """The key of a stored result decided by ``parts`` (JSON-able, or written by ``str``), the data
    the process reads (`config.data_key`) and this code: `code_tag`, then a sha256 of all of it."""
    from .config import data_key

    text = json.dumps({**parts, "data": data_key(), "code": code_digest()}, sort_keys=True, default=str)
    return f"{code_tag()}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def code_tag() -> str:
    """The start of `code_digest`, in the names of the files a store keeps, so that files other code
    kept can be told apart (`remove_other_code`)."""
    return code_digest()[:12]


def remove_other_code(folder: Path, pattern: str) -> None:
    """Remove the files in ``folder`` matching ``pattern`` whose names lack `code_tag`: what other
    code stored, which no key of this code reaches."""
    for path in folder.glob(pattern):
        if code_tag() not in path.name:
            path.unlink(missing_ok=True)
