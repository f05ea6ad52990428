"""Stored onboarding results: onboarding the same measurements again with the same settings and the
same code reads the stored result (the command takes about 1.3 s) instead of onboarding anew (6-7 s).

A result's key is a sha256 of everything that decides it:

- the measurements (arch ids and latencies, in their order) and the device's name;
- the settings: source devices, folds, seed, the archs to predict, the predictor's options, torch
  threads;
- the data the process reads (`config.data_key`);
- the code: `fingerprint.code_digest` (every source file of the package and every file the
  repository ships in ``data/``: the pretrained models, the calibration; numpy's and torch's
  versions).

Any change to any of them onboards anew, so a stored result is never stale; the price is one
recomputation after an edit or an upgrade. Not in the key: whether torch sees a GPU (a result
computed on the CPU is reused on a machine that gained one).

One parquet file per result under ``<cache>/onboard/`` (the predictions; the rest of the result,
JSON, in its metadata; about 400 KB for NB201), written to a temporary name and moved into place, so
a crash never leaves half a file; an unreadable one is set aside and computed again
(`outputs.read_or_set_aside`). Storing a result removes those that other code stored, so the folder
holds the results of one version of the code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .config import cache_dir
from .fingerprint import remove_other_code, stored_key
from .outputs import read_or_set_aside, write_atomically

METADATA_KEY = b"multipredict.onboard"


def folder() -> Path:
    return cache_dir() / "onboard"


def result_key(space: str, table: pd.DataFrame, *, device: str, settings: dict) -> str:
    """The key of onboarding ``table`` (``arch_id, latency_ms``) with ``settings`` (JSON-able, or
    written by ``str``); see the module's docs for what else goes in."""
    digest = hashlib.sha256()
    for column, dtype in (("arch_id", np.int64), ("latency_ms", np.float64)):
        digest.update(np.ascontiguousarray(table[column].to_numpy(dtype=dtype)).tobytes())
    return stored_key(space=space, device=device, settings=settings, measurements=digest.hexdigest())


def path_of(key: str, root: Path | None = None) -> Path:
    return (root or folder()) / f"{key}.parquet"


def save(key: str, predictions: pd.DataFrame, record: dict, root: Path | None = None) -> Path:
    """Store one result: ``predictions`` as the table, ``record`` (JSON-able; frames as lists of
    rows) in its metadata. The results other code stored (no key of this code can reach them) are
    removed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = path_of(key, root)
    table = pa.Table.from_pandas(predictions, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           METADATA_KEY: json.dumps(record, default=str).encode()})
    write_atomically(path, lambda tmp: pq.write_table(table, tmp))
    remove_other_code(path.parent, "*.parquet")
    return path


def load(key: str, root: Path | None = None) -> tuple[pd.DataFrame, dict, Path] | None:
    """The stored ``(predictions, record, path)`` of ``key``, or None (not stored, or unreadable:
    then set aside, with a warning)."""
    path = path_of(key, root)

    def read() -> tuple[pd.DataFrame, dict, Path]:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        record = json.loads(table.schema.metadata[METADATA_KEY])
        return table.to_pandas(), record, path

    return read_or_set_aside(path, read, "stored onboarding results")
