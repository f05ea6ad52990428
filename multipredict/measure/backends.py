"""Inference backends: turn a torch model into a ``run_once()`` that does one synchronous inference.

Each backend's :meth:`Backend.prepared` is a context manager that fixes the thread count, readies
the model (eval mode, fp32, on the device, or exported to ONNX) and a seeded input batch, and
yields ``run_once``; the timing protocol (:mod:`.protocol`) only ever calls that.

- ``torch-cpu``: torch eager under ``torch.inference_mode``, ``torch.set_num_threads(threads)``.
- ``torch-cuda``: the same on a GPU; ``run_once`` synchronises the device, so that a timed call
  covers the kernels and not just their launch.
- ``onnxruntime-cpu``: ``torch.onnx.export`` to a temporary file, then an ``InferenceSession`` on
  the CPU execution provider with ``intra_op_num_threads = threads``, one inter-op thread, sequential
  execution and full graph optimisation (BN folding and fusions, as a deployment would use).
"""

from __future__ import annotations

import tempfile
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from ..errors import MultipredictError
from ..threads import torch_threads
from .profiles import DeviceProfile

RunOnce = Callable[[], None]
INPUT_SEED = 0
ONNX_OPSET = 17


fixed_torch_threads = torch_threads  # the package's one definition (multipredict.threads)


def seeded_input(batch_shape: tuple[int, ...]) -> torch.Tensor:
    """The input batch: standard normal, the same for every arch and run (seed ``INPUT_SEED``)."""
    generator = torch.Generator().manual_seed(INPUT_SEED)
    return torch.randn(*batch_shape, generator=generator, dtype=torch.float32)


class Backend(ABC):
    """Configured from a profile; prepares one model at a time for timing."""

    name: str

    def __init__(self, profile: DeviceProfile):
        self.profile = profile

    @abstractmethod
    def prepared(self, model: nn.Module, batch_shape: tuple[int, ...]) -> Iterator[RunOnce]:
        """Context manager yielding ``run_once`` for ``model`` on a batch of ``batch_shape``."""


class TorchCPUBackend(Backend):
    name = "torch-cpu"

    @contextmanager
    def prepared(self, model: nn.Module, batch_shape: tuple[int, ...]) -> Iterator[RunOnce]:
        model = model.eval().float()
        x = seeded_input(batch_shape)
        with fixed_torch_threads(self.profile.threads), torch.inference_mode():
            def run_once() -> None:
                model(x)

            yield run_once


class TorchCUDABackend(Backend):
    name = "torch-cuda"

    @contextmanager
    def prepared(self, model: nn.Module, batch_shape: tuple[int, ...]) -> Iterator[RunOnce]:
        self.profile.check_available()
        device = torch.device("cuda", self.profile.cuda_index)
        model = model.eval().float().to(device)
        x = seeded_input(batch_shape).to(device)
        with fixed_torch_threads(self.profile.threads), torch.inference_mode():
            def run_once() -> None:
                model(x)
                torch.cuda.synchronize(device)

            torch.cuda.synchronize(device)
            try:
                yield run_once
            finally:
                model.to("cpu")  # leave the GPU free for the next arch


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | Path) -> None:
    """Export ``model`` (eval mode) with a fixed input shape to ``path``."""
    model = model.eval().float()
    kwargs = dict(input_names=["input"], output_names=["output"], opset_version=ONNX_OPSET)
    # export is untimed work; one torch thread keeps tracing from fighting ORT's or a busy host's
    # threads (on a loaded 2-core machine, 2 threads made it 5x slower)
    with torch.no_grad(), warnings.catch_warnings(), fixed_torch_threads(1):
        # the TorchScript exporter warns that it is legacy; it needs no extra package (onnxscript)
        # and gives a plain static graph, which is what a latency measurement wants
        warnings.simplefilter("ignore")
        try:
            try:
                torch.onnx.export(model, (example,), str(path), dynamo=False, **kwargs)
            except TypeError:  # a torch without the `dynamo` switch: its only exporter is TorchScript's
                torch.onnx.export(model, (example,), str(path), **kwargs)
        except Exception as legacy_error:  # noqa: BLE001 - retried below with the newer exporter
            try:
                torch.onnx.export(model, (example,), str(path), dynamo=True, **kwargs)
            except Exception as exc:  # noqa: BLE001
                raise MultipredictError(
                    f"could not export {type(model).__name__} to ONNX for the onnxruntime backend: {legacy_error}; "
                    f"the torch.export-based exporter failed too ({exc}). Install `onnxscript`, or measure "
                    f"with a torch profile such as 'cpu-1t-b1'") from exc


class OnnxRuntimeCPUBackend(Backend):
    name = "onnxruntime-cpu"

    def session_options(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.profile.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: ORT's warnings would interleave with progress bars
        return options

    @contextmanager
    def prepared(self, model: nn.Module, batch_shape: tuple[int, ...]) -> Iterator[RunOnce]:
        self.profile.check_available()
        import onnxruntime as ort

        x = seeded_input(batch_shape)
        with tempfile.TemporaryDirectory(prefix="multipredict-onnx-") as folder:
            path = Path(folder) / "model.onnx"
            export_onnx(model, x, path)
            session = ort.InferenceSession(str(path), self.session_options(), providers=["CPUExecutionProvider"])
            feeds = {session.get_inputs()[0].name: x.numpy()}

            def run_once() -> None:
                session.run(None, feeds)

            yield run_once


BACKENDS: dict[str, type[Backend]] = {
    cls.name: cls for cls in (TorchCPUBackend, TorchCUDABackend, OnnxRuntimeCPUBackend)
}


def make_backend(profile: DeviceProfile) -> Backend:
    """The backend a profile names, after checking this machine can run it."""
    profile.check_available()
    return BACKENDS[profile.backend](profile)
