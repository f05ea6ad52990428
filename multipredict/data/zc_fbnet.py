"""The 13 zero-cost proxies of the 5,000 HELP FBNet archs (abdelfattah-lab/nasflat_latency)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from ..errors import DataError
from .formats import load_json
from .sources import source_file

PROXIES = ("epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot", "params", "plain",
           "snip", "synflow", "zen")


@cache
def proxies() -> pd.DataFrame:
    """Index FBNet arch id (HELP order), one column per proxy."""
    from ..spaces import fbnet

    raw = load_json(source_file("nasflat_latency", "fbnet_zcp/zc_fbnet.json"))
    rows = []
    for arch_id_ in range(fbnet.N_ARCHS):
        key = fbnet.arch_key(arch_id_)
        if key not in raw:
            raise DataError(f"zc_fbnet.json has no record for FBNet arch {arch_id_} (key {key})")
        record = raw[key]
        rows.append([float(record[p]["score"] if isinstance(record[p], dict) else record[p]) for p in PROXIES])
    table = pd.DataFrame(np.asarray(rows), columns=list(PROXIES))
    table.index.name = "arch_id"
    table.attrs["source"] = "nasflat_latency:fbnet_zcp/zc_fbnet.json"
    table.attrs["sentinels"] = {}
    return table
