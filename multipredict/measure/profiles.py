"""Device profiles: what a latency measurement runs on, and the machine it actually ran on.

A :class:`DeviceProfile` is the *setting* (backend, threads, batch, precision, input resolution per
space); it is what two measurement runs must share to be comparable. :class:`MachineInfo` is the
*machine* the setting ran on (CPU model, cores, library versions, GPU), captured when a run starts
and stored next to its results, because "cpu-1t-b1" on a laptop and on a server are two devices.

Built-in profiles (``BUILTIN_PROFILES``) cover the usual settings; a user profile is a YAML or JSON
file holding the same fields::

    name: laptop-4t-b8
    backend: torch-cpu        # torch-cpu | torch-cuda | onnxruntime-cpu
    threads: 4
    batch: 8
    input_shapes: {nb201: [3, 32, 32], fbnet: [3, 32, 32]}
"""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import MultipredictError, UnknownNameError

BACKENDS: tuple[str, ...] = ("torch-cpu", "torch-cuda", "onnxruntime-cpu")
PRECISIONS: tuple[str, ...] = ("fp32",)
# the CIFAR resolution both spaces' benchmark latencies and proxies use (see spaces.models)
DEFAULT_INPUT_SHAPES: dict[str, tuple[int, int, int]] = {"nb201": (3, 32, 32), "fbnet": (3, 32, 32)}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class DeviceProfile(BaseModel):
    """The setting a latency is measured in. Frozen, so that it can key a results file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="short name; it labels every measured row")
    backend: Literal["torch-cpu", "torch-cuda", "onnxruntime-cpu"]
    threads: int = Field(1, ge=1, le=1024, description="intra-op threads (CPU backends; host threads on CUDA)")
    batch: int = Field(1, ge=1, le=4096, description="images per inference")
    precision: Literal["fp32"] = "fp32"
    input_shapes: dict[str, tuple[int, int, int]] = Field(
        default_factory=lambda: dict(DEFAULT_INPUT_SHAPES),
        description="(channels, height, width) of one input image, per search space")
    cuda_index: int = Field(0, ge=0, description="which GPU a torch-cuda profile uses")
    description: str = ""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(f"profile name {value!r} must start with a letter or digit and hold only letters, "
                             f"digits, '_', '.' or '-' (it names files and table rows)")
        return value

    @field_validator("input_shapes")
    @classmethod
    def _check_shapes(cls, value: dict[str, tuple[int, int, int]]) -> dict[str, tuple[int, int, int]]:
        for space, shape in value.items():
            if any(int(d) < 1 for d in shape):
                raise ValueError(f"input shape of {space!r} must be 3 positive sizes (C, H, W); got {list(shape)}")
        return value

    def input_shape(self, space: str) -> tuple[int, int, int]:
        """(C, H, W) of one input image of ``space``."""
        if space not in self.input_shapes:
            raise UnknownNameError("space in profile " + repr(self.name), space, list(self.input_shapes),
                                   f"Add '{space}: [3, H, W]' under input_shapes in the profile.")
        return tuple(int(d) for d in self.input_shapes[space])

    def batch_shape(self, space: str) -> tuple[int, int, int, int]:
        return (self.batch, *self.input_shape(space))

    def check_available(self) -> None:
        """Raise a clear error when this machine cannot run the profile's backend."""
        if self.backend == "torch-cuda":
            import torch

            if not torch.cuda.is_available():
                build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
                raise MultipredictError(
                    f"device profile {self.name!r} uses backend 'torch-cuda', but torch {torch.__version__} "
                    f"({build}) sees no CUDA GPU here; use a CPU profile such as 'cpu-1t-b1' or "
                    f"'ort-cpu-1t-b1', or run on a machine with a GPU and a CUDA build of torch")
            count = torch.cuda.device_count()
            if self.cuda_index >= count:
                raise MultipredictError(
                    f"device profile {self.name!r} asks for GPU cuda_index={self.cuda_index}, but this machine has "
                    f"{count} GPU(s) (indices 0..{count - 1}); set cuda_index in the profile")
        elif self.backend == "onnxruntime-cpu":
            try:
                import onnxruntime  # noqa: F401
            except ImportError:
                raise MultipredictError(
                    f"device profile {self.name!r} uses backend 'onnxruntime-cpu', but onnxruntime is not "
                    f"installed; `pip install onnxruntime onnx`, or use a torch profile such as 'cpu-1t-b1'"
                ) from None

    def settings(self) -> dict:
        """The fields that make two runs comparable (everything but the free-text description)."""
        return self.model_dump(mode="json", exclude={"description"})


def _builtin(name: str, backend: str, threads: int, batch: int, description: str) -> DeviceProfile:
    return DeviceProfile(name=name, backend=backend, threads=threads, batch=batch, description=description)


BUILTIN_PROFILES: dict[str, DeviceProfile] = {
    p.name: p
    for p in (
        _builtin("cpu-1t-b1", "torch-cpu", 1, 1, "torch eager on CPU, 1 thread, batch 1"),
        _builtin("cpu-2t-b1", "torch-cpu", 2, 1, "torch eager on CPU, 2 threads, batch 1"),
        _builtin("cpu-4t-b1", "torch-cpu", 4, 1, "torch eager on CPU, 4 threads, batch 1"),
        _builtin("cpu-1t-b8", "torch-cpu", 1, 8, "torch eager on CPU, 1 thread, batch 8"),
        _builtin("cpu-1t-b32", "torch-cpu", 1, 32, "torch eager on CPU, 1 thread, batch 32"),
        _builtin("cpu-2t-b32", "torch-cpu", 2, 32, "torch eager on CPU, 2 threads, batch 32"),
        _builtin("ort-cpu-1t-b1", "onnxruntime-cpu", 1, 1, "onnxruntime on CPU, 1 intra-op thread, batch 1"),
        _builtin("ort-cpu-2t-b1", "onnxruntime-cpu", 2, 1, "onnxruntime on CPU, 2 intra-op threads, batch 1"),
        _builtin("ort-cpu-1t-b8", "onnxruntime-cpu", 1, 8, "onnxruntime on CPU, 1 intra-op thread, batch 8"),
        _builtin("ort-cpu-1t-b32", "onnxruntime-cpu", 1, 32, "onnxruntime on CPU, 1 intra-op thread, batch 32"),
        _builtin("cuda-b1", "torch-cuda", 1, 1, "torch eager on the first CUDA GPU, batch 1"),
        _builtin("cuda-b32", "torch-cuda", 1, 32, "torch eager on the first CUDA GPU, batch 32"),
        _builtin("cuda-b256", "torch-cuda", 1, 256, "torch eager on the first CUDA GPU, batch 256"),
    )
}


def builtin_profiles() -> list[str]:
    return list(BUILTIN_PROFILES)


def _validation_message(exc: ValidationError, source: str) -> str:
    problems = []
    for err in exc.errors():
        field = ".".join(map(str, err["loc"])) or "(profile)"
        problems.append(f"{field}: {err['msg']} (got {err.get('input')!r})")
    return f"invalid device profile {source}: " + "; ".join(problems)


def profile_from_dict(data: dict, source: str = "(dict)") -> DeviceProfile:
    if not isinstance(data, dict):
        raise MultipredictError(f"a device profile {source} must be a mapping of fields; got {type(data).__name__}")
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as exc:
        raise MultipredictError(
            _validation_message(exc, source) + f". Fields: {', '.join(DeviceProfile.model_fields)}; "
            f"backends: {', '.join(BACKENDS)}") from None


def load_profile(path: str | os.PathLike) -> DeviceProfile:
    """A user profile from a ``.yaml`` / ``.yml`` / ``.json`` file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MultipredictError(f"device profile file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MultipredictError(f"device profile file {str(path)!r} is not valid JSON: {exc}") from None
    elif path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MultipredictError(f"device profile file {str(path)!r} is not valid YAML: {exc}") from None
    else:
        raise MultipredictError(f"device profile file {str(path)!r} must end in .yaml, .yml or .json")
    return profile_from_dict(data, repr(str(path)))


def get_profile(profile: str | os.PathLike | DeviceProfile | dict) -> DeviceProfile:
    """A profile from a built-in name, a YAML/JSON file path, a dict of fields, or a profile."""
    if isinstance(profile, DeviceProfile):
        return profile
    if isinstance(profile, dict):
        return profile_from_dict(profile)
    text = str(profile)
    if text in BUILTIN_PROFILES:
        return BUILTIN_PROFILES[text]
    if isinstance(profile, os.PathLike) or Path(text).suffix.lower() in (".yaml", ".yml", ".json") \
            or Path(text).expanduser().is_file():
        return load_profile(text)
    raise UnknownNameError("device profile", text, builtin_profiles(),
                           "Or pass the path of a .yaml/.json profile file (fields: name, backend, threads, batch, "
                           "precision, input_shapes).")


# ---------------------------------------------------------------------------------------------
# the machine


class MachineInfo(BaseModel):
    """The machine a run measured on, captured when the run starts."""

    model_config = ConfigDict(extra="allow", frozen=True)

    cpu_model: str
    logical_cores: int | None
    usable_cores: int | None = Field(description="cores this process may run on (CPU affinity)")
    platform: str
    python: str
    torch: str
    torch_threads: int
    onnxruntime: str | None = None
    cuda_device: str | None = None
    cuda_version: str | None = None

    def fingerprint(self) -> dict:
        """What must not change when a run resumes: the hardware and the inference libraries."""
        return {k: getattr(self, k) for k in ("cpu_model", "logical_cores", "torch", "onnxruntime", "cuda_device")}


def cpu_model() -> str:
    """The CPU's marketing name, e.g. 'AMD EPYC 7763 64-Core Processor'."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        import subprocess

        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                 timeout=5)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info(profile: DeviceProfile) -> MachineInfo:
    """Describe this machine as it matters for ``profile``'s backend."""
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    info = dict(cpu_model=cpu_model(), logical_cores=os.cpu_count(), usable_cores=usable,
                platform=platform.platform(), python=platform.python_version(), torch=torch.__version__,
                torch_threads=torch.get_num_threads())
    if profile.backend == "onnxruntime-cpu":
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    if profile.backend == "torch-cuda" and torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(profile.cuda_index)
        info["cuda_version"] = torch.version.cuda
    return MachineInfo(**info)
