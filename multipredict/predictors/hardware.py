"""Fixed hardware embeddings: how a device is described to a predictor without a learned row.

``sample``: the device's latencies on HELP's 10 reference archs (looked up by the trial layer,
`multipredict.methods.protocol.sample_vector`), min-max scaled over those 10 values, so that the vector
describes the *shape* of the device's latency profile (the labels are per-device min-max scaled
too). Measuring them costs a new device 10 extra measurements, which results report.

``index``: the binary code of the device's position (most significant bit first), ``dim`` bits.
Which position is an option of the transfer predictor (``index_order``): ``sources``, the device's
position among the source devices (targets numbered after them), or ``authors``, its position in
the device list of the Multi-Predict authors' released code (``AUTHORS_DEVICE_ORDER``), which keys
their ``index`` (and ``sample``) embeddings by it.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError, MultipredictError


INDEX_ORDERS = ("sources", "authors")

# the device order of the authors' code (``get_full_device_list``): the position a device's index
# code stands for there; device names are ours (the code's file names without ".pt")
AUTHORS_DEVICE_ORDER = {
    "nb201": ("1080ti_1", "2080ti_1", "desktop_cpu_core_i7_7820x_fp32", "embedded_gpu_jetson_nano_fp32", "eyeriss",
              "gold_6240", "mobile_cpu_snapdragon_855_kryo_485_int8", "mobile_gpu_snapdragon_450_adreno_506_int8",
              "pixel2", "samsung_a50", "silver_4210r", "titan_rtx_32", "titanx_32", "titanxp_32", "1080ti_256",
              "2080ti_256", "desktop_gpu_gtx_1080ti_fp32", "embedded_tpu_edge_tpu_int8", "fpga",
              "mobile_cpu_snapdragon_450_cortex_a53_int8", "mobile_dsp_snapdragon_675_hexagon_685_int8",
              "mobile_gpu_snapdragon_675_adreno_612_int8", "pixel3", "samsung_s7", "titan_rtx_1", "titanx_1",
              "titanxp_1", "1080ti_32", "2080ti_32", "embedded_gpu_jetson_nano_fp16", "essential_ph_1", "gold_6226",
              "mobile_cpu_snapdragon_675_kryo_460_int8", "mobile_dsp_snapdragon_855_hexagon_690_int8",
              "mobile_gpu_snapdragon_855_adreno_640_int8", "raspi4", "silver_4114", "titan_rtx_256", "titanx_256",
              "titanxp_256"),
    "fbnet": ("1080ti_1", "1080ti_64", "2080ti_32", "essential_ph_1", "fpga", "gold_6240", "pixel3", "samsung_a50",
              "silver_4114", "titan_rtx_1", "titan_rtx_64", "titanx_32", "titanxp_1", "titanxp_64", "1080ti_32",
              "2080ti_1", "2080ti_64", "eyeriss", "gold_6226", "pixel2", "raspi4", "samsung_s7", "silver_4210r",
              "titan_rtx_32", "titanx_1", "titanx_64", "titanxp_32"),
}


def authors_position(space: str, device: str) -> int:
    """``device``'s position in the authors' device list of ``space`` (``index_order="authors"``)."""
    order = AUTHORS_DEVICE_ORDER.get(space)
    if order is None:
        raise MultipredictError(f"index_order='authors' has no device list for space {space!r}; the authors' code "
                                f"lists devices of {sorted(AUTHORS_DEVICE_ORDER)} only; use index_order='sources'")
    if device not in order:
        raise MultipredictError(f"device {device!r} is not in the authors' {space} device list, so "
                                "index_order='authors' cannot code it; use index_order='sources'")
    return order.index(device)


def sample_embedding(reference_ms, *, device: str = "the device") -> np.ndarray:
    """The ``sample`` embedding of a device from its latencies on HELP's 10 reference archs: min-max
    scaled over those values (the shape of its latency profile)."""
    latency = np.asarray(reference_ms, dtype=float).reshape(-1)
    if not np.isfinite(latency).all() or len(latency) == 0:
        raise DataError(f"{device} has no latency on some of HELP's reference archs, which the 'sample' embedding "
                        "needs; measure them, or use embedding='table' or 'index'")
    low, high = latency.min(), latency.max()
    return ((latency - low) / (high - low if high > low else 1.0)).astype(np.float32)


def index_vector(position: int, dim: int = 8) -> np.ndarray:
    if not 0 <= position < 2 ** dim:
        raise MultipredictError(f"device position {position} does not fit a {dim}-bit index embedding; "
                                f"use at most {2 ** dim} devices or a larger embedding_dim")
    bits = [(position >> (dim - 1 - b)) & 1 for b in range(dim)]
    return np.asarray(bits, dtype=np.float32)
