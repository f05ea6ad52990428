"""The project's own data: the ``data/`` folder our code generated, read with no download at all.

``data/latency/<space>_<profile>.csv`` (written by ``multipredict measure``, each with its
``.meta.json``) become devices named after their profile (``cpu-1t-b1``, ``ort-cpu-1t-b8`` ...);
``data/zcp/<space>_*.parquet`` (written by ``multipredict zcp``) hold our 13 zero-cost proxies.
`multipredict.data.tables` serves them when ``MULTIPREDICT_DATA`` is ``local`` (these only) or
``all`` (beside the public benchmarks); `scripts/make_default_data.py` regenerates the folder.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from .. import config
from ..errors import DataError
from .formats import latency_frame

SOURCE = "this machine (data/)"


def _latency_files(space: str, root: Path) -> dict[str, Path]:
    files = {}
    for path in sorted((root / "latency").glob(f"{space}_*.csv")):
        files[path.stem[len(space) + 1:]] = path
    return files


def devices(space: str) -> list[str]:
    """Profile names with a latency file for ``space`` (no file is read)."""
    return list(_latency_files(space, config.local_data_dir()))


def profile_info(space: str, device: str) -> dict:
    """The ``.meta.json`` written beside a latency file: profile, protocol, machine ({} if absent)."""
    path = _latency_files(space, config.local_data_dir()).get(device)
    meta = None if path is None else path.with_name(path.name + ".meta.json")
    if meta is None or not meta.exists():
        return {}
    try:
        return json.loads(meta.read_text())
    except (OSError, ValueError):
        return {}


def latencies(space: str) -> pd.DataFrame:
    """Wide table (index ``arch_id``, one column per local profile, ms)."""
    return _latencies(space, config.local_data_dir())


@cache
def _latencies(space: str, root: Path) -> pd.DataFrame:
    columns = {}
    for name, path in _latency_files(space, root).items():
        try:
            table = pd.read_csv(path, usecols=["arch_id", "latency_ms"])
        except (OSError, ValueError) as error:
            raise DataError(f"cannot read the local latency file {path}: {error}; regenerate it with "
                            "`python scripts/make_default_data.py --latency` or `multipredict measure`") from error
        table = table.dropna().drop_duplicates("arch_id", keep="last")
        columns[name] = pd.Series(table["latency_ms"].to_numpy(dtype=float),
                                  index=table["arch_id"].to_numpy(dtype=np.int64))
    frame = latency_frame(columns)
    return frame.sort_index()


def nb201_arch_strings() -> dict[int, str]:
    """arch id -> NB201 arch string of every cell measured into ``data/latency`` (the ``arch``
    column ``multipredict measure`` writes): what the space knows with no download."""
    return _nb201_arch_strings(config.local_data_dir())


@cache
def _nb201_arch_strings(root: Path) -> dict[int, str]:
    strings: dict[int, str] = {}
    for path in _latency_files("nb201", root).values():
        try:
            table = pd.read_csv(path, usecols=["arch_id", "arch"])
        except (OSError, ValueError) as error:
            raise DataError(f"cannot read arch ids and strings from {path}: {error}") from error
        for arch_id, text in zip(table["arch_id"].astype(int), table["arch"].astype(str), strict=True):
            if strings.setdefault(int(arch_id), text) != text:
                raise DataError(f"{path} names NB201 arch {arch_id} {text!r}, another file {strings[int(arch_id)]!r}; "
                                "the files disagree, regenerate them")
    return strings


def zcp(space: str) -> pd.DataFrame:
    """Our 13 proxies (index ``arch_id``) from every ``data/zcp/<space>_*.parquet``; the first file
    in name order wins where two cover the same arch."""
    return _zcp(space, config.local_data_dir())


@cache
def _zcp(space: str, root: Path) -> pd.DataFrame:
    from .zc_fbnet import PROXIES

    paths = sorted((root / "zcp").glob(f"{space}_*.parquet"))
    if not paths:
        raise DataError(f"no {space} zero-cost proxies in {root / 'zcp'}; compute them with "
                        f"`multipredict zcp --space {space} --archs ... --out {root / 'zcp'}/{space}_mine.parquet`, "
                        "or use the public ones (MULTIPREDICT_DATA=benchmarks)")
    frames = [pd.read_parquet(p, columns=["arch_id", *PROXIES]) for p in paths]
    table = pd.concat(frames, ignore_index=True).drop_duplicates("arch_id", keep="first")
    return table.set_index("arch_id").sort_index().dropna()


__all__ = ["devices", "latencies", "zcp", "profile_info", "nb201_arch_strings", "SOURCE"]
