"""The device catalogue: every device with latency data, with what is known about it.

Names are unique across sources: HELP's names (``1080ti_1``), EAGLE's long descriptive names
(``desktop_gpu_gtx_1080ti_fp32``, file-name typos fixed) and HW-NAS-Bench's ``edgegpu`` /
``edgetpu``. ``catalogue(space)`` describes each from the pinned list alone (no download);
``catalogue(space, coverage=True)`` loads the data to count archs covered and distinct values.
With ``MULTIPREDICT_DATA=local`` / ``all`` the profiles measured into ``data/latency`` are devices
too (source "this machine (data/)"), described from their ``.meta.json``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import pandas as pd

from .. import config
from ..errors import MultipredictError, UnknownNameError
from . import eagle, help, hwnasbench, local
from .tables import uses_benchmarks, uses_local

KINDS = ("GPU", "CPU", "mobile", "ASIC", "FPGA", "TPU", "DSP")


@dataclass(frozen=True)
class Device:
    name: str
    space: str
    source: str
    kind: str
    batch: int | None
    precision: str | None
    unit: str  # unit of the tables the project serves (always ms); ``source_unit`` is upstream's
    source_unit: str
    description: str
    anomaly: str = ""


_HELP_DESCRIPTIONS = {
    "1080ti": "NVIDIA GTX 1080 Ti", "2080ti": "NVIDIA RTX 2080 Ti", "titan_rtx": "NVIDIA Titan RTX",
    "titanx": "NVIDIA Titan X", "titanxp": "NVIDIA Titan Xp", "gold_6226": "Intel Xeon Gold 6226",
    "gold_6240": "Intel Xeon Gold 6240", "silver_4114": "Intel Xeon Silver 4114",
    "silver_4210r": "Intel Xeon Silver 4210R", "samsung_a50": "Samsung Galaxy A50 (phone)",
    "samsung_s7": "Samsung Galaxy S7 (phone)", "pixel2": "Google Pixel 2 (phone)", "pixel3": "Google Pixel 3 (phone)",
    "essential_ph_1": "Essential Phone PH-1", "raspi4": "Raspberry Pi 4 (ARM CPU)",
    "eyeriss": "Eyeriss ASIC (simulated)", "fpga": "FPGA (HW-NAS-Bench)",
}
_PHONES = {"samsung_a50", "samsung_s7", "pixel2", "pixel3", "essential_ph_1"}
_INTEGER_PHONES = {"samsung_a50", "samsung_s7", "pixel2", "essential_ph_1"}


def _help_device(space: str, name: str) -> Device:
    gpu = re.fullmatch(r"(1080ti|2080ti|titan_rtx|titanxp|titanx)_(\d+)", name)
    anomaly = ""
    if name in _INTEGER_PHONES:
        anomaly = "integer ms with many ties"
    elif name == "eyeriss":
        anomaly = "coarse: few distinct values (38 on NB201)"
    elif name == "fpga":
        anomaly = "coarse: few distinct values (84 on NB201)"
    if gpu:
        kind, batch, base = "GPU", int(gpu.group(2)), gpu.group(1)
    elif name in _PHONES:
        kind, batch, base = "mobile", 1, name
    elif name == "eyeriss":
        kind, batch, base = "ASIC", 1, name
    elif name == "fpga":
        kind, batch, base = "FPGA", 1, name
    else:
        kind, batch, base = "CPU", 1, name
    return Device(name, space, "HELP", kind, batch, None, "ms", "ms", _HELP_DESCRIPTIONS.get(base, base), anomaly)


def devices(space: str) -> list[Device]:
    if space not in ("nb201", "fbnet"):
        raise UnknownNameError("space", space, ["nb201", "fbnet"], "Latency data exists for nb201 and fbnet only.")
    out = [_help_device(space, name) for name in help.devices(space)] if uses_benchmarks() else []
    if uses_local():
        out += [_local_device(space, name) for name in local.devices(space)]
    if space == "nb201" and uses_benchmarks():
        for spec in eagle.DEVICES:
            out.append(Device(spec.name, space, "EAGLE", spec.kind, spec.batch, spec.precision, "ms", "s",
                              f"EAGLE/LatBench {spec.path.rsplit('/', 1)[-1]}", spec.anomaly))
        for name in hwnasbench.devices():
            out.append(Device(name, space, "HW-NAS-Bench", "GPU" if name == "edgegpu" else "TPU", 1, None, "ms", "ms",
                              f"HW-NAS-Bench {name} via OneProxy (1,999-arch subset)",
                              "subset of 1,999 archs" + ("; 259 missing (-1) values" if name == "edgetpu" else "")))
    return out


def _local_device(space: str, name: str) -> Device:
    info = local.profile_info(space, name)
    profile, machine = info.get("profile", {}), info.get("machine", {})
    kind = "GPU" if str(profile.get("backend", "")).endswith("cuda") else "CPU"
    where = machine.get("cpu_model") or machine.get("cuda_device") or "this machine"
    description = f"{profile.get('description', name)} ({where}; {info.get('rows', '?')} archs measured)"
    return Device(name, space, local.SOURCE, kind, profile.get("batch"), profile.get("precision"), "ms", "ms",
                  description)


def device(space: str, name: str) -> Device:
    for d in devices(space):
        if d.name == name:
            return d
    raise UnknownNameError(f"{space} device", name, [d.name for d in devices(space)],
                           f"See `multipredict devices --space {space}`.")


def device_names(space: str) -> list[str]:
    return [d.name for d in devices(space)]


def catalogue(space: str, coverage: bool = False) -> pd.DataFrame:
    """One row per device; with ``coverage`` the archs covered and distinct latency values."""
    found = devices(space)
    if not found:
        raise MultipredictError(f"no {space} devices under MULTIPREDICT_DATA={config.data_source()}: the local data "
                                f"folder {config.local_data_dir()} holds no {space} latency table. Set "
                                f"MULTIPREDICT_DATA=benchmarks (or all) for the public devices, or measure one with "
                                f"`multipredict measure --space {space} ... --out "
                                f"{config.local_data_dir()}/latency/{space}_<name>.csv`")
    table = pd.DataFrame([asdict(d) for d in found])
    table["batch"] = table["batch"].astype("Int64")
    if coverage:
        from .tables import latencies

        lat = latencies(space)
        table["archs"] = [int(lat[n].notna().sum()) for n in table["name"]]
        table["distinct_values"] = [int(lat[n].nunique()) for n in table["name"]]
        table["min_ms"] = [float(lat[n].min()) for n in table["name"]]
        table["max_ms"] = [float(lat[n].max()) for n in table["name"]]
    return table
