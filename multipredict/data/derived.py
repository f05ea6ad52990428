"""Tables derived from the public benchmark files, kept on disk between processes: parsing and
verifying HELP's 27 NB201 latency files, EAGLE's and HW-NAS-Bench's takes about 1.2 s, which every
command that reads latencies (suggest, onboard, search, ...) paid again; reading the derived table
back takes about 0.04 s.

A stored table is named by what it is and keyed by what decides it: the data source and its
folders (`config.data_key`) and the code (`fingerprint.code_digest`, which covers the pinned
sha256 of every upstream file, so a table is never served from other files or another parser).
Only tables of the public benchmarks are stored (``MULTIPREDICT_DATA=benchmarks``, the default):
local data (``local`` / ``all``) is the user's own folder and can change under any key. Files are
parquet under ``<cache>/derived/``, written atomically; writing one removes that table's files
from other code (stale); an unreadable one is set aside and the table derived again
(`outputs.read_or_set_aside`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .. import config
from ..fingerprint import remove_other_code, stored_key
from ..outputs import read_or_set_aside, write_atomically

log = logging.getLogger(__name__)


def folder() -> Path:
    return config.cache_dir() / "derived"


def path_of(name: str) -> Path:
    return folder() / f"{name}-{stored_key(name=name)}.parquet"


def stored(name: str, derive: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """The table ``name``: read back when stored for this data and code, else ``derive()`` and keep
    it (index, column names and ``attrs`` included). Local data is never stored."""
    if config.data_source() != "benchmarks":
        return derive()
    path = path_of(name)
    table = read_or_set_aside(path, lambda: pd.read_parquet(path), "stored benchmark tables")
    if table is not None:
        return table
    table = derive()
    try:
        write_atomically(path, lambda tmp: table.to_parquet(tmp))
        remove_other_code(path.parent, f"{name}-*.parquet")  # the same table from other code: stale
    except OSError as error:  # a read-only or full cache: the table stands, it is derived again next time
        log.warning("could not keep the derived table %s under %s (%s)", name, folder(), error)
    return table
