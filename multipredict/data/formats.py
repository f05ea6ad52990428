"""Readers for the upstream file formats. Every reader verifies the pinned sha256 first.

- HELP ``.pt`` files hold plain lists/dicts: ``torch.load(weights_only=True)``.
- EAGLE / OneProxy ``.pickle``: ``pickle.loads`` can run code, so it only ever sees bytes whose
  sha256 matched the pinned list, the very bytes that were hashed (``fetch.read_verified``): a file
  swapped on disk between the check and the parse cannot slip through.
- NASLib ``.json`` and ``.zip`` (a zip of JSON files, each a list of records).
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile

from .fetch import read_verified
from .sources import SourceFile, source_file


def load_torch(file: SourceFile):
    import torch

    return torch.load(io.BytesIO(read_verified(file)), weights_only=True, map_location="cpu")


def load_verified_pickle(file: SourceFile):
    data = read_verified(file)  # raises before unpickling unless these bytes hash to the pinned sha256
    return pickle.loads(data)  # noqa: S301 - exactly the bytes verified above


def load_json(file: SourceFile):
    return json.loads(read_verified(file))


def load_zip_json(file: SourceFile) -> dict[str, object]:
    """Every JSON member of a zip, by member name (directories skipped)."""
    out: dict[str, object] = {}
    with zipfile.ZipFile(io.BytesIO(read_verified(file))) as archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            out[info.filename] = json.load(io.TextIOWrapper(archive.open(info), encoding="utf-8"))
    return out


def read_csv(file: SourceFile, **kwargs):
    import pandas as pd

    return pd.read_csv(io.BytesIO(read_verified(file)), **kwargs)


def latency_frame(columns: dict):
    """The wide latency layout every loader serves: index ``arch_id``, one column per device (ms)."""
    import pandas as pd

    table = pd.DataFrame(columns)
    table.index.name = "arch_id"
    table.columns.name = "device"
    return table


__all__ = ["latency_frame", "load_torch", "load_verified_pickle", "load_json", "load_zip_json", "read_csv", "source_file"]
