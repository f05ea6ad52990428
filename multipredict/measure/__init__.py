"""Latency measurement on this machine: torch on CPU or CUDA, onnxruntime on CPU.

>>> from multipredict.measure import measure_archs, measure_arch
>>> measure_arch("nb201", 0, "cpu-1t-b1").latency_ms              # one arch, no files
>>> table = measure_archs("nb201", range(100), "ort-cpu-1t-b1", "lat.csv")   # resumable

A :class:`DeviceProfile` says *what* runs (backend, threads, batch, precision, input resolution);
the :class:`MeasurementProtocol` says *how* it is timed (warm-up, repeats, median and IQR, re-measure
or flag a noisy arch); :class:`MachineInfo` records *where* it ran, next to the results.
"""

from __future__ import annotations

import importlib

# name -> submodule. Loaded on first use (PEP 562), so that `multipredict --help` and the CLI's
# parser, which import `measure.command`, do not pay for importing torch and onnxruntime.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("BACKENDS", "Backend", "OnnxRuntimeCPUBackend", "TorchCPUBackend", "TorchCUDABackend",
                     "make_backend"), "backends"),
    **dict.fromkeys(("BUILTIN_PROFILES", "DeviceProfile", "MachineInfo", "builtin_profiles", "get_profile",
                     "load_profile", "machine_info"), "profiles"),
    **dict.fromkeys(("LatencyStats", "Measurement", "MeasurementProtocol", "make_protocol", "measure_latency",
                     "summarize", "time_calls"), "protocol"),
    **dict.fromkeys(("COLUMNS", "journal_path", "measure_arch", "measure_archs", "metadata_path",
                     "read_measurements", "resolve_arch", "resolve_archs"), "runner"),
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
