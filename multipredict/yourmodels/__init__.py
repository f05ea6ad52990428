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

from .encode import EncodeResult, default_profiles, encode_models
from .predict import ENCODINGS, PREDICTORS, PredictResult, predict_latency, read_encodings
from .zoo import CNNSpec, build_cnn, random_spec, zoo

__all__ = ["encode_models", "EncodeResult", "default_profiles", "predict_latency", "PredictResult", "read_encodings",
           "ENCODINGS", "PREDICTORS", "zoo", "random_spec", "build_cnn", "CNNSpec"]
