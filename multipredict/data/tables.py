"""The tidy benchmark tables every other module reads: latency and zero-cost proxies per space.

``latencies(space)`` is wide (index ``arch_id``, one column per device, ms, NaN = not measured);
``tidy_latencies(space)`` the same as long rows ``arch_id, device, latency_ms``.
``zcp(space)`` is the 13-proxy table of the archs that have one (all 5,000 FBNet archs; the ~725
NAS-Bench-Suite-Zero NB201 cells).

Which data they hold follows ``MULTIPREDICT_DATA`` (`multipredict.config.data_source`): the public
benchmarks (default), the project's own ``data/`` folder only (``local``: no download), or both
(``all``: local profiles are extra devices; proxies stay the published ones).
"""

from __future__ import annotations


import pandas as pd

from .. import config
from ..errors import DataError, UnknownNameError
from ..spaces import LATENCY_SPACES
from . import derived, eagle, help, hwnasbench, local, zc_fbnet

PROXIES = zc_fbnet.PROXIES


def _check_space(space: str) -> None:
    if space not in LATENCY_SPACES:
        raise UnknownNameError("space", space, LATENCY_SPACES, "Latency data exists for nb201 and fbnet only.")


def uses_benchmarks() -> bool:
    return config.data_source() in ("benchmarks", "all")


def uses_local() -> bool:
    return config.data_source() in ("local", "all")


def latency_sources(space: str) -> dict[str, list[str]]:
    """Device names per source (no download)."""
    _check_space(space)
    out = {}
    if uses_benchmarks():
        out["HELP"] = help.devices(space)
        if space == "nb201":
            out["EAGLE"] = eagle.devices()
            out["HW-NAS-Bench"] = hwnasbench.devices()
    if uses_local():
        out[local.SOURCE] = local.devices(space)
    return out


@config.cache_per_data_source
def latencies(space: str) -> pd.DataFrame:
    _check_space(space)
    return derived.stored(f"latencies-{space}", lambda: _latencies(space))


def _latencies(space: str) -> pd.DataFrame:
    frames = []
    if uses_benchmarks():
        frames.append(help.latencies(space))
        if space == "nb201":
            frames += [eagle.latencies(), hwnasbench.latencies()]
    if uses_local():
        own = local.latencies(space)
        if own.shape[1] == 0 and not frames:
            raise DataError(f"MULTIPREDICT_DATA=local, but {config.local_data_dir() / 'latency'} holds no {space} "
                            f"latencies; measure some (`multipredict measure --space {space} ... --out "
                            f"data/latency/{space}_<profile>.csv`) or use the public benchmarks (MULTIPREDICT_DATA="
                            "benchmarks)")
        frames.append(own)
    table = pd.concat(frames, axis=1).sort_index()
    table.index.name = "arch_id"
    table.columns.name = "device"
    if space == "nb201" and uses_benchmarks():  # HW-NAS-Bench's -1 (missing edgetpu measurement) became NaN
        table.attrs["sentinels"] = {d: hwnasbench.sentinel_count(d) for d in hwnasbench.devices()}
    return table


def tidy_latencies(space: str) -> pd.DataFrame:
    wide = latencies(space)
    long = wide.melt(ignore_index=False, var_name="device", value_name="latency_ms").dropna().reset_index()
    return long[["arch_id", "device", "latency_ms"]]


def zcp(space: str, dataset: str = "cifar10") -> pd.DataFrame:
    """13 zero-cost proxies per arch (rows: archs that have all of them): the published ones, or
    ours from ``data/zcp`` when ``MULTIPREDICT_DATA=local``."""
    return _zcp(space, dataset)


@config.cache_per_data_source
def _zcp(space: str, dataset: str) -> pd.DataFrame:
    _check_space(space)
    if not uses_benchmarks():
        return local.zcp(space)
    if space == "fbnet":
        return zc_fbnet.proxies()
    from . import naslib

    table = naslib.nb201_proxies(dataset)
    return table[list(PROXIES)].dropna()


def flops_params(space: str) -> pd.DataFrame:
    """FLOPs and params (as the upstream tables give them) for the archs that have them: all
    5,000 FBNet archs (zc_fbnet.json); the NAS-Bench-Suite-Zero NB201 cells (NASLib, cifar10)."""
    _check_space(space)
    if not uses_benchmarks():
        return local.zcp(space)[["flops", "params"]]
    if space == "fbnet":
        return zc_fbnet.proxies()[["flops", "params"]]
    from . import naslib

    return naslib.nb201_proxies("cifar10")[["flops", "params"]].dropna()
