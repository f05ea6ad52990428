"""Where a user's models come from: ONNX files (a folder or a list) or torch model factories.

Every model becomes a `ModelSource`: a name, what identifies its content (``sha256:<hex>`` of an
ONNX file, ``factory:<name>`` of a callable), its input shape ``(C, H, W)`` and a ``load()`` that
builds the torch module both the proxy engine and the latency backends read. ONNX files are
converted with onnx2torch (the ``onnx`` extra). A model that cannot be used as it is (a dynamic
input shape nobody fixed, several inputs) keeps a ``problem`` naming why and how to fix it, so
that the rest of a folder is still encoded.

Pickle-based files (``.pt``, ``.pth``, ``.pkl``, ...) are never read: unpickling runs code.
"""

from __future__ import annotations

import copy
import hashlib
import os
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..errors import MultipredictError

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".joblib", ".npy", ".npz")
ONNX_SUFFIX = ".onnx"
PICKLE_REFUSAL = "pickle-based files can run code when they are read and are never loaded"


@dataclass(frozen=True)
class ModelSource:
    name: str
    source: str  # sha256:<hex> (a file) or factory:<qualified name>
    load: Callable[[], nn.Module]
    input_shape: tuple[int, int, int] | None
    path: Path | None = None
    problem: str | None = None  # why it cannot be encoded as it is (None: it can)

    @property
    def shape_text(self) -> str:
        return "x".join(map(str, self.input_shape)) if self.input_shape else ""


def parse_input_shape(text: str | tuple | list | None) -> tuple[int, int, int] | None:
    """``"3,64,64"`` / ``"3x64x64"`` / ``(3, 64, 64)`` as ``(C, H, W)``; None stays None."""
    if text is None or text == "":
        return None
    parts = text.replace("x", ",").split(",") if isinstance(text, str) else list(text)
    try:
        shape = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise MultipredictError(f"input shape {text!r} is not three positive whole numbers C,H,W; pass e.g. "
                                f"--input-shape 3,32,32 (channels, height, width of one image)")
    return shape


def refuse_pickle(path: Path, flag: str) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise MultipredictError(f"{flag} {str(path)!r} is a {path.suffix} file: {PICKLE_REFUSAL}; export the model "
                                f"to ONNX (torch.onnx.export) or pass a model factory through the Python API")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def factory_identity(factory: Callable) -> str:
    """A factory's ``identity`` attribute if it has one, else its qualified name."""
    identity = getattr(factory, "identity", None)
    if identity:
        return str(identity)
    named = factory if hasattr(factory, "__qualname__") else type(factory)
    return f"{getattr(named, '__module__', '?')}.{named.__qualname__}"


def collect(models, *, input_shape=None, input_shapes: Mapping[str, tuple] | None = None,
            warn: Callable[[str], None] | None = None) -> list[ModelSource]:
    """The models to encode: a folder of ONNX files, one ONNX file, or a mapping ``{name: factory
    or ONNX path}``. ``input_shape`` fixes a dynamic ONNX input (and is every factory's input unless
    ``input_shapes`` names one per model). Pickle files in a folder are skipped with a warning; one
    given directly is refused."""
    shape = parse_input_shape(input_shape)
    input_shapes = {k: parse_input_shape(v) for k, v in (input_shapes or {}).items()}
    warn = warn or (lambda message: None)
    if isinstance(models, (str, os.PathLike)):
        path = Path(models).expanduser()
        if path.is_dir():
            skipped = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
            if skipped:
                warn(f"{len(skipped)} file(s) in {str(path)!r} skipped ({', '.join(skipped[:5])}): {PICKLE_REFUSAL}; "
                     f"export them to ONNX")
            files = sorted(p for p in path.iterdir() if p.suffix.lower() == ONNX_SUFFIX and p.is_file())
            if not files:
                raise MultipredictError(f"--models {str(path)!r} holds no .onnx files; export each model with "
                                        f"torch.onnx.export(model, example_input, 'name.onnx') into that folder")
            return [onnx_source(p.stem, p, shape) for p in files]
        if not path.exists():
            raise MultipredictError(f"--models {str(path)!r} does not exist; give a folder of .onnx files")
        refuse_pickle(path, "--models")
        if path.suffix.lower() != ONNX_SUFFIX:
            raise MultipredictError(f"--models {str(path)!r} is not an .onnx file or a folder of them")
        return [onnx_source(path.stem, path, shape)]
    if not isinstance(models, Mapping) or not models:
        raise MultipredictError(f"models must be a folder of ONNX files or a non-empty mapping {{name: factory}}; "
                                f"got {type(models).__name__}")
    sources = []
    for name, item in models.items():
        name = str(name)
        if isinstance(item, (str, os.PathLike)):
            refuse_pickle(Path(item), f"model {name!r}:")
            sources.append(onnx_source(name, Path(item), input_shapes.get(name, shape)))
        elif isinstance(item, nn.Module):  # a built model: each use gets its own copy
            own = input_shapes.get(name) or shape
            problem = None if own else f"model {name!r} has no input shape; pass input_shape=(C, H, W)"
            sources.append(ModelSource(name, f"module:{factory_identity(type(item))}",
                                       lambda item=item: copy.deepcopy(item), own, problem=problem))
        elif callable(item):
            own = input_shapes.get(name) or getattr(getattr(item, "spec", None), "input_shape", None) or shape
            problem = None if own else (f"model {name!r} is a factory without an input shape; pass "
                                        f"input_shape=(C, H, W) (or input_shapes={{{name!r}: ...}})")
            sources.append(ModelSource(name, f"factory:{factory_identity(item)}", item, own, problem=problem))
        else:
            raise MultipredictError(f"model {name!r} is a {type(item).__name__}; give a zero-argument callable that "
                                    f"returns a torch.nn.Module, or the path of an ONNX file")
    return sources


def onnx_source(name: str, path: Path, input_shape: tuple[int, int, int] | None) -> ModelSource:
    """An ONNX file as a source; its input shape is read from the graph (a dynamic height, width or
    channel count needs ``input_shape``; a dynamic batch is fine: each profile feeds its own)."""
    import onnx

    digest = f"sha256:{sha256_of(path)}"
    load = lambda: onnx_to_torch(path)  # noqa: E731 - deferred: converting costs time
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as error:  # noqa: BLE001 - onnx raises its own types for a damaged file
        return ModelSource(name, digest, load, input_shape, path,
                           problem=f"{path.name} is not a readable ONNX model ({_short(error)})")
    initialisers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialisers]
    if len(inputs) != 1:
        return ModelSource(name, digest, load, input_shape, path,
                           problem=f"{path.name} has {len(inputs)} inputs; only models with one image input "
                                   f"(N, C, H, W) can be encoded")
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4:
        return ModelSource(name, digest, load, input_shape, path,
                           problem=f"{path.name} takes an input of shape {dims}; expected (N, C, H, W) images")
    fixed = dims[1:]
    if all(isinstance(d, int) and d > 0 for d in fixed):
        file_shape = tuple(int(d) for d in fixed)
        if input_shape is not None and tuple(input_shape) != file_shape:
            return ModelSource(name, digest, load, file_shape, path,
                               problem=f"{path.name} fixes its input to {'x'.join(map(str, file_shape))}, but "
                                       f"--input-shape is {'x'.join(map(str, input_shape))}; drop --input-shape "
                                       f"or re-export the model")
        return ModelSource(name, digest, load, file_shape, path)
    if input_shape is None:
        return ModelSource(name, digest, load, None, path,
                           problem=f"{path.name} has a dynamic input shape {dims} that the profiles cannot feed; "
                                   f"pass --input-shape C,H,W (e.g. --input-shape 3,224,224)")
    agree = all(not isinstance(d, int) or d <= 0 or d == s for d, s in zip(fixed, input_shape))
    if not agree:
        return ModelSource(name, digest, load, input_shape, path,
                           problem=f"{path.name} takes input {dims}, which --input-shape "
                                   f"{'x'.join(map(str, input_shape))} does not fit")
    return ModelSource(name, digest, load, tuple(input_shape), path)


def _short(error: BaseException) -> str:
    from ..messages import one_line

    return one_line(f"{type(error).__name__}: {error}")[:300]


def onnx_to_torch(path: Path) -> nn.Module:
    """The ONNX model at ``path`` as a torch module (onnx2torch)."""
    import onnx

    convert = _onnx2torch()
    try:
        return convert(constants_as_initialisers(onnx.load(str(path)))).eval()
    except Exception as error:  # noqa: BLE001 - onnx2torch raises NotImplementedError, KeyError...
        raise MultipredictError(f"{path.name} could not be converted to torch ({_short(error)}); pass the model "
                                f"as a torch factory through the Python API (encode_models)") from error


def constants_as_initialisers(model):
    """``model`` with Constant nodes and Identity nodes of initialisers turned into initialisers:
    onnx2torch reads a Conv's bias or a Clip's bounds only from initialisers, and torch's exporter
    writes shared weights as Identity nodes and Clip bounds as Constant nodes."""
    from onnx import numpy_helper

    graph = model.graph
    values = {t.name: t for t in graph.initializer}
    changed = True
    while changed:
        changed = False
        for node in list(graph.node):
            tensor = None
            if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
                tensor = numpy_helper.to_array(node.attribute[0].t)
            elif node.op_type == "Identity" and node.input[0] in values:
                tensor = numpy_helper.to_array(values[node.input[0]])
            if tensor is not None:
                initialiser = numpy_helper.from_array(tensor, node.output[0])
                graph.initializer.append(initialiser)
                values[node.output[0]] = initialiser
                graph.node.remove(node)
                changed = True
    return model


def _onnx2torch():
    """onnx2torch's ``convert``. Its NMS and RoIAlign converters import torchvision at import time;
    when torchvision is missing, or is a build that does not load with this torch (PyPI's wheels
    are CUDA builds, the project pins the CPU torch), a stand-in is used for the import only:
    models with those ops then fail to convert with a message, every other model works."""
    if "onnx2torch" in sys.modules:
        return sys.modules["onnx2torch"].convert
    try:
        import onnx2torch  # noqa: F401
        return onnx2torch.convert
    except ModuleNotFoundError as error:
        if error.name == "onnx2torch":
            raise MultipredictError("reading ONNX files needs onnx2torch, which is not installed; "
                                    "`pip install 'multipredict[onnx]'` (or onnx2torch==1.5.15), or pass torch "
                                    "model factories through the Python API") from None
    except Exception:  # noqa: BLE001 - torchvision's own import failed (RuntimeError: operator does not exist)
        pass
    for key in [k for k in sys.modules if k == "torchvision" or k.startswith(("torchvision.", "onnx2torch"))]:
        del sys.modules[key]
    stand_in, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")

    def unavailable(*args, **kwargs):
        raise MultipredictError("this model uses an op that needs torchvision (NMS / RoIAlign), which cannot be "
                                "loaded here; remove detection post-processing from the exported model")

    ops.nms = ops.roi_align = ops.box_convert = unavailable
    stand_in.ops = ops
    sys.modules.update({"torchvision": stand_in, "torchvision.ops": ops})
    try:
        import onnx2torch
    finally:
        for key in ("torchvision", "torchvision.ops"):
            sys.modules.pop(key, None)
    return onnx2torch.convert
