"""Your own models, your own device: encode models nobody here designed (ZCP + HWL) and predict a
device's latency for all of them from a few measured ones.

>>> from multipredict.yourmodels import encode_models, predict_latency, zoo
>>> encode_models(zoo(8), "enc.parquet", profiles=["cpu-1t-b1", "ort-cpu-1t-b1"])   # or a folder of .onnx
>>> result = predict_latency("enc.parquet", "my_device.csv")     # columns model,latency_ms
>>> print(result.summary()); result.predictions

``zoo`` is a documented, seeded recipe of small CNNs (`multipredict.yourmodels.zoo`); `encode`
computes and journals the table; `predict` fits the few-shot predictor; `cli` registers the
``encode`` and ``predict`` commands.
"""

import sys
import types
from importlib import import_module

# each name is loaded when first asked for: encode, predict and zoo import torch, which the command
# line (it builds every command's parser, `cli.register` among them) should not pay for
LAZY = {"encode_models": "encode", "EncodeResult": "encode", "default_profiles": "encode",
        "predict_latency": "predict", "PredictResult": "predict", "read_encodings": "predict",
        "ENCODINGS": "predict", "PREDICTORS": "predict", "random_spec": "zoo", "build_cnn": "zoo", "CNNSpec": "zoo"}


def __getattr__(name: str):
    if name in LAZY:
        return getattr(import_module(f".{LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    """``zoo`` names both the recipe function and its module: the package's ``zoo`` is the function,
    even after ``import multipredict.yourmodels.zoo`` (which sets the attribute to the module)."""

    @property
    def zoo(self):
        return import_module(".zoo", __name__).zoo

    @zoo.setter
    def zoo(self, module) -> None:  # the import system's setattr(package, "zoo", module): keep the function
        pass


sys.modules[__name__].__class__ = _Package

__all__ = ["encode_models", "EncodeResult", "default_profiles", "predict_latency", "PredictResult", "read_encodings",
           "ENCODINGS", "PREDICTORS", "zoo", "random_spec", "build_cnn", "CNNSpec"]
