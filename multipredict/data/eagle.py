"""EAGLE / BRP-NAS (LatBench) NB201 latencies: dicts ``{eagle vector (6-tuple): seconds}``.

The EAGLE vector lists the cell's ops in arch-string order with none=0, skip_connect=1,
nor_conv_1x1=2, nor_conv_3x3=3, avg_pool_3x3=4. Values are converted to ms. The 341 disconnected
cells are never measured and stay missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from ..errors import UnknownNameError
from .formats import latency_frame, load_verified_pickle
from .sources import source_file

EAGLE_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


@dataclass(frozen=True)
class EagleDevice:
    name: str  # our canonical name (typos of the file names fixed, underscores)
    repo: str
    path: str
    kind: str
    batch: int | None
    precision: str
    anomaly: str = ""


_LLM = "NAS-LLM-GNN"
DEVICES: tuple[EagleDevice, ...] = (
    EagleDevice("desktop_gpu_gtx_1080ti_fp32", _LLM, "datasets/desktop-gpu-gtx-1080ti-fp32.pickle", "GPU", 1, "fp32",
                "nearly identical to desktop_cpu_core_i7_7820x_fp32 (Spearman 0.997, mean ratio 1.002): "
                "probably one device measured twice"),
    EagleDevice("desktop_gpu_gtx_1080ti_large", _LLM, "datasets/desktop-gpu-gtx-1080ti-large.pickle", "GPU", None, "fp32"),
    EagleDevice("embedded_gpu_jetson_nano_fp16", _LLM, "datasets/embedded-gpu-jetson-nono-fp16.pickle", "GPU", 1, "fp16",
                "file named jetson-nono-fp16 (sic); the 12.5-34 ms range suggests fp32"),
    EagleDevice("embedded_tpu_edge_tpu_large", _LLM, "datasets/embedded-tpu-edgetpu-large.pickle", "TPU", None, "int8"),
    EagleDevice("embedded_tpu_edge_tpu_int8", _LLM, "datasets/embeeded-tpu-edgetpu-int8.pickle", "TPU", 1, "int8",
                "file named embeeded-tpu-edgetpu-int8 (sic)"),
    EagleDevice("mobile_cpu_snapdragon_450_cortex_a53_int8", _LLM,
                "datasets/cpu/mobile-cpu-snapdragon-450-contex-a53-int8.pickle", "mobile", 1, "int8"),
    EagleDevice("mobile_cpu_snapdragon_675_kryo_460_int8", _LLM,
                "datasets/cpu/mobile-cpu-snapdragon-675-kryo-460-int8.pickle", "mobile", 1, "int8"),
    EagleDevice("mobile_cpu_snapdragon_855_kryo_485_int8", _LLM,
                "datasets/cpu/mobile-cpu-snapdragon-855-kryo-485-int8.pickle", "mobile", 1, "int8"),
    EagleDevice("mobile_gpu_snapdragon_450_adreno_506_int8", _LLM,
                "datasets/gpu/mobile-gpu-snapdragon-450-adreno-506-int8.pickle", "mobile", 1, "int8"),
    EagleDevice("mobile_gpu_snapdragon_675_adreno_612_int8", _LLM,
                "datasets/gpu/mobile-gpu-snapdragon-675-adren0-612-int8.pickle", "mobile", 1, "int8"),
    EagleDevice("mobile_gpu_snapdragon_855_adreno_640_int8", _LLM,
                "datasets/gpu/mobile-gpu-snapdragon-855-adren0-640-int8.pickle", "mobile", 1, "int8"),
    EagleDevice("mobile_dsp_snapdragon_675_hexagon_685_int8", _LLM,
                "datasets/dsp/mobile-dsp-snapdragon-675-hexagon-685-int8.pickle", "DSP", 1, "int8"),
    EagleDevice("mobile_dsp_snapdragon_855_hexagon_690_int8", _LLM,
                "datasets/dsp/mobile-dsp-snapdragon-855-hexagon-690-int8.pickle", "DSP", 1, "int8"),
    EagleDevice("desktop_cpu_core_i7_7820x_fp32", "brp-nas", "examples/desktop-cpu-core-i7-7820x-fp32.pkl", "CPU", 1,
                "fp32", "nearly identical to desktop_gpu_gtx_1080ti_fp32 (Spearman 0.997): probably one device "
                "measured twice"),
)
_BY_NAME = {d.name: d for d in DEVICES}


def devices() -> list[str]:
    return [d.name for d in DEVICES]


def eagle_vector_to_string(vector) -> str:
    ops = [EAGLE_OPS[int(v)] for v in vector]
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


_ID_BY_KEY: dict = {}  # EAGLE's arch key -> NB201 id: the 14 device files share their 15,625 keys


def _arch_id(key) -> int:
    from ..spaces import nb201

    found = _ID_BY_KEY.get(key)
    if found is None:
        found = _ID_BY_KEY[key] = nb201.arch_id(eagle_vector_to_string(key))
    return found


@cache
def latency(device: str) -> np.ndarray:
    """Latency in ms by NB201 index (NaN where EAGLE has no measurement)."""
    from ..spaces import nb201

    if device not in _BY_NAME:
        raise UnknownNameError("EAGLE device", device, devices())
    spec = _BY_NAME[device]
    raw = load_verified_pickle(source_file(spec.repo, spec.path))
    out = np.full(nb201.N_ARCHS, np.nan)
    ids = np.fromiter((_arch_id(k) for k in raw), dtype=np.int64, count=len(raw))
    out[ids] = np.fromiter((float(v) for v in raw.values()), dtype=float, count=len(raw)) * 1000.0
    out.setflags(write=False)
    return out


@cache
def latencies() -> pd.DataFrame:
    return latency_frame({d: latency(d) for d in devices()})
