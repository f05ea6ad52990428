"""The Multi-Predict authors' released code (AutoML-Conf 2023 code submission), as far as our
replication scripts need it: the device list that keys their ``index`` (and ``sample``)
embeddings, and the device their scoring looks a target's embedding up by.

``authors_index_position`` is an ``index_position`` hook of
`multipredict.predictors.fewshot.FewShotLatencyPredictor` (pass it through the trial layer as
``TrialHooks(index_position=authors_index_position)``): every device's index code stands for its
position in the authors' device list instead of its position among our source devices.
"""

from __future__ import annotations

from multipredict.errors import MultipredictError
from multipredict.methods import protocol
from multipredict.predictors import index_vector

# the device order of the authors' code (``get_full_device_list``): the position a device's index
# code stands for there; device names are ours (the code's file names without ".pt")
AUTHORS_DEVICE_ORDER: dict[str, tuple[str, ...]] = {
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


def authors_position(space: str | None, device: str) -> int:
    """``device``'s position in the authors' device list of ``space``."""
    order = AUTHORS_DEVICE_ORDER.get(space)
    if order is None:
        raise MultipredictError(f"the authors' code has no device list for space {space!r}; it lists devices of "
                                f"{sorted(AUTHORS_DEVICE_ORDER)} only; drop the authors' index codes")
    if device not in order:
        raise MultipredictError(f"device {device!r} is not in the authors' {space} device list, so the authors' "
                                "index codes cannot code it; choose a device of that list")
    return order.index(device)


def authors_index_position(space: str | None, device: str, default_position: int) -> int:
    """An ``index_position`` hook: the code of ``device`` is its position in the authors' list
    (``default_position``, its position among our source devices and targets, is not used)."""
    return authors_position(space, device)


def looked_up_device(space: str, train: list[str], test: list[str], name: str) -> str:
    """The device whose embedding the authors' scoring hands target ``name``: the one at the
    target's train + transfer position in their full device list."""
    return AUTHORS_DEVICE_ORDER[space][(list(train) + list(test)).index(name)]


def looked_up_row(model, predictor, train: list[str], test: list[str], other: str, *, authors_codes: bool) -> int:
    """The row of ``predictor`` (a copy of a fine-tuned target's, which this may extend) holding the
    embedding the authors' scoring hands a target whose looked-up device is ``other``.
    ``authors_codes``: the trial coded devices by the authors' list (`authors_index_position`)."""
    space = model.space
    if other in model.source_devices:
        return model.source_devices.index(other)
    if model.embedding == "sample":
        return predictor.add_device(vector=protocol.sample_vector(space, other))
    if authors_codes:  # the code the authors' scoring hands it: `other`'s own code
        return predictor.add_device(vector=index_vector(authors_position(space, other), model.embedding_dim))
    # a code after every source and target position: one no device was trained or tuned with
    position = len(train) + len(test) + authors_position(space, other)
    return predictor.add_device(vector=index_vector(position, model.embedding_dim))


__all__ = ["AUTHORS_DEVICE_ORDER", "authors_position", "authors_index_position", "looked_up_device", "looked_up_row"]
