"""Few-shot latency transfer (Multi-Predict): pretrain one predictor f(x, h) on source devices, then
add each target device from a handful of measurements.

1. **Pretrain** on every source device's training archs (the protocol's split: 900 NB201 / 4,000
   FBNet archs each), labels min-max scaled per device, one hardware-embedding row per device.
2. **Add a target** from ``k`` measured archs. A ``table`` embedding gets a new row copied from the
   source device whose latencies on those ``k`` archs have the highest Spearman correlation with
   the target's ``k`` measurements (the paper's Eq. 1, `closest_source_device`); ``sample`` uses
   the target's latencies on HELP's 10 reference archs (10 extra measurements, reported as
   ``n_measured``), ``index`` the binary code of its position.
3. **Fine-tune** on the ``k`` samples (target lr 1e-3, 50 epochs), labels min-max scaled over the
   ``k`` measurements themselves, so nothing but the few-shot samples of the target is used. The
   paper's text does not say which weights move. The authors' code freezes the arch body and
   trains the hardware embedding and the regression head (``target_train="head"``); that fits a
   target close to a source device (Table 1: .935 against .900 with every weight trained, 10
   repeats) but not an adversarial one, which needs a new arch representation (Table 2
   NB201-Adversarial: .51 against .77). The default, ``target_train="auto"``, freezes the body when
   Eq. 1's closest source device correlates with the target on the ``k`` archs at
   ``freeze_above`` (0.85) or more, and trains every weight otherwise.

`FewShotLatencyPredictor` is the reusable estimator (onboard your own device:
``fit()``, then ``add_device(name, arch_ids, latency_ms)``, then ``predict(name, arch_ids)`` in
ms). `fit_and_score` is the experiments runner's entry point. Pretrained models are cached (a
small in-process LRU keyed by everything that determines them), so several test devices, and
several calls differing only in the target sample budget, share one pretraining.

Defaults follow the paper's text (and the authors' code where the text is silent); the authors'
released code differs in places, each available as an option: a 2-layer head of width 1000
(``head_layers=2, head_width=1000``), Spearman on all pool archs including the few-shot ones
(``score_on="all"``), 150 source epochs.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from . import __version__, encodings
from .errors import MultipredictError, UnknownNameError
from .predictors import LatencyPredictor, hardware
from .predictors.latency import resolve_device
from .predictors.networks import AGGREGATIONS
from .predictors.evaluation import (SCORE_ON, device_latency, device_split, few_shot_ids, rank_correlations,
                                    target_split)
from .protocols import PROTOCOLS, SOURCE_SAMPLES, DeviceSplit

METHOD = "transfer"
SPACES = ("nb201", "fbnet")
TRANSFER_EMBEDDINGS = ("table", "sample", "index")
PREDICTORS = ("auto", "gcn", "mlp")
TARGET_LABELS = ("fewshot", "matched")
# Eq. 1's correlation: the paper's Spearman, or Pearson on log latency (our option: with ~10 samples
# it picks the device that is closest over the whole space 1.2-1.5x as often; benchmarks/README.md)
EQ1_CORRELATIONS = ("spearman", "pearson_log")
# what fine-tuning a target trains: ``auto`` freezes the arch body when some source device ranks the
# target's few-shot archs closely (Eq. 1's correlation >= ``freeze_above``), else trains every weight
TARGET_TRAIN = ("auto", "head", "all")
PRETRAIN_CACHE_SIZE = 2


# --------------------------------------------------------------------------------------------
# Eq. 1: the closest source device


def source_correlations(target_ms, source_ms: Mapping[str, Sequence[float]], method: str = "spearman"
                        ) -> dict[str, float]:
    """Correlation between the target's few-shot latencies and each source device's latencies on
    the same archs: Spearman rho (the paper), or ``pearson_log`` (Pearson r of log latencies). Pairs
    where either is missing are skipped; too few pairs or a constant series give NaN."""
    if method not in EQ1_CORRELATIONS:
        raise UnknownNameError("Eq. 1 correlation", method, EQ1_CORRELATIONS)
    target = np.asarray(target_ms, dtype=float)
    out = {}
    for name, values in source_ms.items():
        values = np.asarray(values, dtype=float)
        if values.shape != target.shape:
            raise MultipredictError(f"source device {name!r} has {values.shape} latencies for {target.shape} target "
                                    "measurements; pass both on the same archs")
        ok = np.isfinite(values) & np.isfinite(target)
        if method == "pearson_log":
            ok &= (values > 0) & (target > 0)
        if ok.sum() < 2 or np.ptp(values[ok]) == 0 or np.ptp(target[ok]) == 0:
            out[name] = float("nan")
        elif method == "spearman":
            out[name] = float(stats.spearmanr(values[ok], target[ok])[0])
        else:
            out[name] = float(np.corrcoef(np.log(values[ok]), np.log(target[ok]))[0, 1])
    return out


def closest_source_device(target_ms, source_ms: Mapping[str, Sequence[float]], method: str = "spearman") -> str:
    """The paper's Eq. 1: the source device whose latencies on the target's few-shot archs have the
    highest Spearman correlation (or ``method="pearson_log"``) with the target's measurements
    (ties: the first in order)."""
    if not source_ms:
        raise MultipredictError("closest_source_device needs at least one source device")
    return _most_correlated(source_correlations(target_ms, source_ms, method), len(np.asarray(target_ms)))


def _most_correlated(correlations: Mapping[str, float], n_measurements: int) -> str:
    """The device with the highest finite correlation (ties: the first in order)."""
    best, best_rho = None, -np.inf
    for name, rho in correlations.items():
        if np.isfinite(rho) and rho > best_rho:
            best, best_rho = name, rho
    if best is None:
        raise MultipredictError("no source device has a defined Spearman correlation with the target's "
                                f"{n_measurements} measurements (too few archs, or constant latencies); "
                                "measure at least 2 archs with different latencies")
    return best


# --------------------------------------------------------------------------------------------
# the estimator


@dataclass
class TargetDevice:
    """A target device added from few-shot samples."""

    name: str
    predictor: LatencyPredictor = field(repr=False)
    row: int
    few_shot_ids: np.ndarray = field(repr=False)
    label_scale: float  # label = label_scale * latency_ms + label_offset
    label_offset: float
    closest_source: str | None = None
    correlations: dict[str, float] = field(default_factory=dict, repr=False)
    n_measured: int = 0
    seconds: float = 0.0
    fine_tuned: str = "all"  # what fine-tuning trained: "head" (arch body frozen) or "all"


_PRETRAINED: OrderedDict[tuple, tuple] = OrderedDict()


def clear_pretrain_cache() -> None:
    _PRETRAINED.clear()


def resolve_predictor(space: str, encoding: str, predictor: str = "auto") -> str:
    """``gcn`` or ``mlp``: ``auto`` is the GCN for NB201 Vec-based encodings, else the MLP."""
    if predictor not in PREDICTORS:
        raise UnknownNameError("predictor", predictor, PREDICTORS)
    vec_body = encodings.body_kind(encoding) == "vec"
    if predictor == "auto":
        return "gcn" if (space == "nb201" and vec_body) else "mlp"
    if predictor == "gcn" and not (space == "nb201" and vec_body):
        raise MultipredictError(f"predictor='gcn' needs space 'nb201' and a Vec-based encoding (vec, zcpvec, "
                                f"hwlvec); got space {space!r}, encoding {encoding!r}. Use predictor='mlp' or 'auto'")
    return predictor


class FewShotLatencyPredictor:
    """Pretrain on source devices, then add target devices from a few measurements each.

    Source latencies come from the benchmark tables (``multipredict.data.tables.latencies``).

    Parameters (keyword): ``encoding`` (vec|zcp|hwl|zcpvec|hwlvec), ``embedding``
    (table|sample|index), ``predictor`` (auto|gcn|mlp; auto = GCN for NB201 Vec-based encodings),
    ``gcn_aggregation`` (``sum``, as the GCNs of BRP-NAS and the authors' code, or ``mean``, ours
    before the NB201 methods' revision 4),
    ``hwl_devices`` (HWL encodings: the reference devices whose latencies form the encoding;
    default the source devices), ``source_samples`` (per source device; default 900 NB201 / 4000
    FBNet), ``source_epochs``/``source_lr`` (250, 4e-4), ``target_epochs``/``target_lr`` (50,
    1e-3), ``target_labels`` (``fewshot``: min-max over the k measurements; ``matched``: see
    `_label_scaling`), ``eq1_correlation`` (``spearman``, the paper, or ``pearson_log``),
    ``target_batch_size`` (None: the batch size, i.e. full batch for k <= 128), ``target_train``
    (which weights fine-tuning trains, where the paper's text is silent: ``head`` freezes the arch
    body and trains the hardware embedding and the regression head, as the authors' code does;
    ``all`` trains every weight; ``auto``, the default, freezes the body when the closest source
    device's correlation with the target on the few-shot archs (Eq. 1's) is at least
    ``freeze_above`` (0.85), and trains every weight for a target no source device resembles),
    ``head_layers``/``head_width`` (4, 200), ``embedding_dim`` (8), ``index_order`` (``sources``:
    an ``index`` code numbers the device among the source devices, targets after them; ``authors``:
    its position in the authors' code's device list, `hardware.AUTHORS_DEVICE_ORDER`),
    ``batch_size`` (128),
    ``protocol`` (paper|help), ``seed``, ``device`` (torch device, auto = CUDA if available),
    ``pool_devices`` (extra devices, e.g. the test devices, that must be measured on every pool
    arch), ``pretrain_dir`` (a folder that keeps each pretraining's weights, so another process or a
    later run with the same pretraining settings loads them instead of training again; files are
    read with ``torch.load(weights_only=True)``), ``progress`` (optional ``callable(stage: str,
    fraction: float)``).
    """

    def __init__(self, space: str, source_devices: Sequence[str], *, encoding: str = "vec",
                 embedding: str = "table", predictor: str = "auto", gcn_aggregation: str = "sum",
                 hwl_devices: Sequence[str] | None = None,
                 source_samples: int | None = None, source_epochs: int = 250, source_lr: float = 4e-4,
                 target_epochs: int = 50, target_lr: float = 1e-3, target_labels: str = "fewshot",
                 eq1_correlation: str = "spearman",
                 target_batch_size: int | None = None, target_train: str = "auto",
                 freeze_above: float = 0.85, head_layers: int = 4, head_width: int = 200,
                 embedding_dim: int = 8, index_order: str = "sources", batch_size: int = 128,
                 protocol: str = "paper", seed: int = 0,
                 device: str = "auto", pool_devices: Sequence[str] = (), pretrain_dir: str | None = None,
                 progress: Callable[[str, float], None] | None = None):
        self.space = space
        self.source_devices = list(source_devices)
        self.encoding = encoding
        self.embedding = embedding
        self.predictor = predictor
        self.gcn_aggregation = gcn_aggregation
        self.hwl_devices = None if hwl_devices is None else list(hwl_devices)
        self.source_samples = source_samples
        self.source_epochs = source_epochs
        self.source_lr = source_lr
        self.target_epochs = target_epochs
        self.target_lr = target_lr
        self.target_labels = target_labels
        self.eq1_correlation = eq1_correlation
        self.target_batch_size = target_batch_size
        self.target_train = target_train
        self.freeze_above = freeze_above
        self.head_layers = head_layers
        self.head_width = head_width
        self.embedding_dim = embedding_dim
        self.index_order = index_order
        self.batch_size = batch_size
        self.protocol = protocol
        self.seed = seed
        self.device = device
        self.pool_devices = list(pool_devices)
        self.pretrain_dir = pretrain_dir
        self.progress = progress

    # ---------------------------------------------------------------- pretraining

    def _validate(self) -> None:
        if self.space not in SPACES:
            raise UnknownNameError("space", self.space, SPACES, "Latency transfer needs a space with latency data.")
        encodings.check_encoding(self.encoding)
        if self.embedding not in TRANSFER_EMBEDDINGS:
            raise UnknownNameError("hardware embedding", self.embedding, TRANSFER_EMBEDDINGS)
        if self.index_order not in hardware.INDEX_ORDERS:
            raise UnknownNameError("index_order", self.index_order, hardware.INDEX_ORDERS)
        if self.embedding == "index" and self.index_order == "authors":
            for name in self.source_devices:
                hardware.authors_position(self.space, name)
        if self.protocol not in PROTOCOLS:
            raise UnknownNameError("protocol", self.protocol, PROTOCOLS)
        if self.target_labels not in TARGET_LABELS:
            raise UnknownNameError("target_labels", self.target_labels, TARGET_LABELS)
        if self.eq1_correlation not in EQ1_CORRELATIONS:
            raise UnknownNameError("eq1_correlation", self.eq1_correlation, EQ1_CORRELATIONS)
        if self.target_train not in TARGET_TRAIN:
            raise UnknownNameError("target_train", self.target_train, TARGET_TRAIN)
        if self.gcn_aggregation not in AGGREGATIONS:
            raise UnknownNameError("gcn_aggregation", self.gcn_aggregation, AGGREGATIONS)
        if not isinstance(self.freeze_above, (int, float, np.number)) or not -1 <= float(self.freeze_above) <= 1:
            raise MultipredictError(f"freeze_above={self.freeze_above!r} is not valid; expected a correlation in "
                                    "[-1, 1] (0.85: freeze the arch body for targets that close to a source device)")
        if self.target_batch_size is not None and (not isinstance(self.target_batch_size, (int, np.integer))
                                                   or self.target_batch_size < 1):
            raise MultipredictError(f"target_batch_size={self.target_batch_size!r} is not valid; expected a positive "
                                    "integer or None (the source batch size)")
        if not self.source_devices:
            raise MultipredictError("transfer needs at least one source (training) device")
        if len(set(self.source_devices)) != len(self.source_devices):
            raise MultipredictError(f"source devices are listed twice: {self.source_devices}")
        for name in ("source_epochs", "target_epochs", "head_layers", "head_width", "batch_size", "embedding_dim"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < (0 if name.endswith("epochs") else 1):
                raise MultipredictError(f"{name}={value!r} is not valid; expected a positive integer")
        for name in ("source_lr", "target_lr"):
            if not float(getattr(self, name)) > 0:
                raise MultipredictError(f"{name}={getattr(self, name)!r} is not valid; expected a positive learning rate")

    @property
    def hwl_devices_(self) -> list[str]:
        if "hwl" not in encodings.uses(self.encoding):
            return []
        return list(self.hwl_devices) if self.hwl_devices is not None else list(self.source_devices)

    def _cache_key(self, pool_ids: np.ndarray) -> tuple:
        """Everything that decides a pretraining (stable across processes: it also names the file
        under ``pretrain_dir``); ``source_samples=None`` and the protocol's default are the same."""
        source_samples = int(self.source_samples or SOURCE_SAMPLES.get(self.space, 900))
        # a GCN's aggregation joins the key unless it is "mean", which every key before it implied,
        # so that pretrainings stored then stay valid (and are not mistaken for "sum" ones)
        extra = (self.gcn_aggregation,) if self.body_ == "gcn" and self.gcn_aggregation != "mean" else ()
        # likewise the index order joins only when it changes the pretraining's codes
        if self.embedding == "index" and self.index_order != "sources":
            extra += (("index_order", self.index_order),)
        return (__version__, torch.__version__, self.space, tuple(self.source_devices), self.encoding, self.embedding,
                self.body_, tuple(self.hwl_devices_), source_samples, int(self.source_epochs), float(self.source_lr),
                int(self.head_layers), int(self.head_width), int(self.embedding_dim), int(self.batch_size),
                self.protocol, int(self.seed), resolve_device(self.device).type,
                hashlib.sha256(np.asarray(pool_ids, dtype=np.int64).tobytes()).hexdigest()) + extra

    def _pretrain_file(self, key: tuple) -> Path | None:
        if self.pretrain_dir is None:
            return None
        digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32]
        return Path(self.pretrain_dir) / f"{self.space}-{self.encoding}-{self.embedding}-{digest}.pt"

    def resolve_pool(self) -> np.ndarray:
        """Validate the configuration and fix the pool (``pool_ids_``, ``pool_label_``) and the
        network body (``body_``) without training; `fit` calls it first."""
        self._validate()
        self.body_ = resolve_predictor(self.space, self.encoding, self.predictor)
        self.pool_ids_ = encodings.pool(self.space, self.encoding, self.source_devices + self.pool_devices,
                                        hwl_devices=self.hwl_devices_)
        if len(self.pool_ids_) < 2:
            raise MultipredictError(f"only {len(self.pool_ids_)} archs have the {self.encoding!r} encoding and a latency "
                                    f"on every device of {self.source_devices + self.pool_devices}; choose other devices")
        self.pool_label_ = encodings.describe_pool(self.space, self.encoding, self.pool_ids_)
        return self.pool_ids_

    def fit(self) -> FewShotLatencyPredictor:
        """Pretrain on the source devices (or reuse an identical cached pretraining)."""
        self.resolve_pool()
        key = self._cache_key(self.pool_ids_)
        path = self._pretrain_file(key)
        if key in _PRETRAINED:
            _PRETRAINED.move_to_end(key)
            self.encoder_, self.pretrained_, self.source_splits_, self.pretrain_seconds_ = _PRETRAINED[key]
            self.pretrain_cached_ = True
        else:
            self.pretrain_cached_ = path is not None and path.exists() and self._load_pretrained(path)
            if not self.pretrain_cached_:
                self._pretrain()
                if path is not None:
                    self._save_pretrained(path)
            _PRETRAINED[key] = (self.encoder_, self.pretrained_, self.source_splits_, self.pretrain_seconds_)
            while len(_PRETRAINED) > PRETRAIN_CACHE_SIZE:
                _PRETRAINED.popitem(last=False)
        self.targets_: dict[str, TargetDevice] = {}
        self.n_added_ = 0
        return self

    def _pretrain(self) -> None:
        started = time.perf_counter()
        model, features, labels, rows, vectors = self._pretraining_setup()
        model.fit(features, labels, rows, device_vectors=vectors, n_devices=len(self.source_devices))
        model.progress = None  # the callable belongs to this call, not to the cached model
        self.pretrained_ = model
        self.pretrain_seconds_ = time.perf_counter() - started

    def _save_pretrained(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + f".{os.getpid()}.part")
        torch.save({"predictor": self.pretrained_.state(), "seconds": float(self.pretrain_seconds_)}, part)
        os.replace(part, path)  # atomic: a reader sees the old file or the whole new one

    def _load_pretrained(self, path: Path) -> bool:
        """Restore a saved pretraining (False, and it is trained again, when the file is unreadable)."""
        model, features, _, _, vectors = self._pretraining_setup()
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model.restore(features, saved["predictor"], device_vectors=vectors, n_devices=len(self.source_devices))
        except (OSError, RuntimeError, KeyError, TypeError, pickle.UnpicklingError, MultipredictError):
            return False
        model.progress = None
        self.pretrained_ = model
        self.pretrain_seconds_ = float(saved.get("seconds", 0.0))
        return True

    def _pretraining_setup(self):
        """The source devices' splits and normalised labels, the fitted encoder and an unfitted
        predictor: (predictor, features, labels, device rows, embedding vectors)."""
        splits: dict[str, DeviceSplit] = {}
        ids, labels, rows = [], [], []
        for row, name in enumerate(self.source_devices):
            split_ = device_split(self.protocol, self.space, name, self.pool_ids_, self.seed,
                                  source_samples=self.source_samples)
            latency = device_latency(self.space, name)
            splits[name] = split_
            ids.append(split_.train_ids)
            labels.append(split_.normalise(latency[split_.train_ids]))
            rows.append(np.full(len(split_.train_ids), row))
        ids, labels, rows = np.concatenate(ids), np.concatenate(labels), np.concatenate(rows)
        form = "graph" if self.body_ == "gcn" else "flat"
        # normalisers see the training archs of the source devices only
        self.encoder_ = encodings.ArchEncoder(self.space, self.encoding, form=form,
                                              hwl_devices=self.hwl_devices_).fit(np.unique(ids))
        vectors = None
        if self.embedding == "sample":
            vectors = np.stack([hardware.sample_vector(self.space, d) for d in self.source_devices])
        elif self.embedding == "index":
            vectors = np.stack([hardware.index_vector(self._index_position(name, row), self.embedding_dim)
                                for row, name in enumerate(self.source_devices)])
        progress = None
        if self.progress is not None:
            progress = lambda fraction: self.progress("pretrain", fraction)  # noqa: E731
        model = LatencyPredictor(body=self.body_, embedding=self.embedding, embedding_dim=self.embedding_dim,
                                 gcn_aggregation=self.gcn_aggregation, head_layers=self.head_layers,
                                 head_width=self.head_width, lr=self.source_lr, epochs=self.source_epochs,
                                 batch_size=self.batch_size, seed=self.seed, device=self.device, progress=progress)
        self.source_splits_ = splits
        return model, self.encoder_.transform(ids), labels, rows, vectors

    def _index_position(self, name: str, position: int) -> int:
        """The position an ``index`` code stands for: ``position`` (among the source devices, then
        the targets in the order they were added) or, with ``index_order="authors"``, the device's
        position in the authors' device list."""
        if self.index_order == "authors":
            return hardware.authors_position(self.space, name)
        return position

    def _check_fitted(self) -> None:
        if not hasattr(self, "pretrained_"):
            raise MultipredictError("this FewShotLatencyPredictor is not pretrained; call fit() first")

    # ---------------------------------------------------------------- targets

    def add_device(self, name: str, arch_ids, latency_ms, *, reference_ms=None) -> TargetDevice:
        """Add target device ``name`` from its measured ``latency_ms`` on ``arch_ids`` (Eq. 1 init for
        a ``table`` embedding, then fine-tuning). ``reference_ms``: its latencies on HELP's 10
        reference archs, needed by the ``sample`` embedding (looked up in the benchmark when the
        device is a benchmark device and this is None)."""
        self._check_fitted()
        started = time.perf_counter()
        ids = np.asarray(arch_ids, dtype=np.int64).reshape(-1)
        latency = np.asarray(latency_ms, dtype=float).reshape(-1)
        if len(ids) != len(latency) or len(ids) == 0:
            raise MultipredictError(f"{len(ids)} arch ids but {len(latency)} latencies; pass one latency per arch")
        if not np.isfinite(latency).all():
            raise MultipredictError("target latencies contain NaN or inf; pass measured archs only")
        if name in self.source_devices:
            raise MultipredictError(f"{name!r} is a source device; a target must be a device the predictor was "
                                    "not pretrained on")
        code_position = None
        if self.embedding == "index":
            # unique per device added; a device the chosen order cannot code fails here, before any change
            code_position = self._index_position(name, len(self.source_devices) + self.n_added_)
        model = self.pretrained_.copy()
        row, closest, correlations = None, None, {}
        self.n_added_ += 1
        n_measured = len(np.unique(ids))
        if self.embedding == "table" and len(ids) < 2:
            raise MultipredictError("the table embedding's Eq. 1 initialisation needs >= 2 few-shot samples")
        if self.embedding == "table" or (self.target_train == "auto" and len(ids) >= 2):
            source_ms = {d: device_latency(self.space, d)[ids] for d in self.source_devices}
            correlations = source_correlations(latency, source_ms, self.eq1_correlation)
        if self.embedding == "table":
            closest = _most_correlated(correlations, len(latency))  # Eq. 1, on the correlations above
            row = model.add_device(copy_from=self.source_devices.index(closest))
        elif self.embedding == "sample":
            references = hardware.reference_archs(self.space)
            if reference_ms is None:
                vector = hardware.sample_vector(self.space, name)
            else:
                reference = np.asarray(reference_ms, dtype=float)
                if reference.shape != (len(references),) or not np.isfinite(reference).all():
                    raise MultipredictError(f"reference_ms must hold {len(references)} measured latencies, on archs "
                                            f"{references}; got shape {reference.shape}")
                vector = ((reference - reference.min()) / max(np.ptp(reference), 1e-12)).astype(np.float32)
            row = model.add_device(vector=vector)
            n_measured = len(np.union1d(ids, references))
        else:
            row = model.add_device(vector=hardware.index_vector(code_position, self.embedding_dim))
        features = self.encoder_.transform(ids)
        scale, offset = self._label_scaling(model, features, row, latency)
        trained = self._fine_tuned_part(correlations)
        model.fine_tune(features, scale * latency + offset, np.full(len(ids), row), lr=self.target_lr,
                        epochs=self.target_epochs, batch_size=self.target_batch_size, train=trained)
        target = TargetDevice(name, model, row, ids, scale, offset, closest, correlations, n_measured,
                              time.perf_counter() - started, trained)
        self.targets_[name] = target
        return target

    def _fine_tuned_part(self, correlations: Mapping[str, float]) -> str:
        """``head`` or ``all`` for one target. ``auto``: a source device that ranks the target's
        few-shot archs closely (correlation >= ``freeze_above``) means the pretrained arch
        representation already orders them as the target does, so only the device-specific part
        (embedding row, head) needs to move; a target unlike every source device (an adversarial
        one) needs the representation itself to change. Undefined correlations (fewer than 2
        samples, constant latencies) keep the body frozen: too little to retrain it from."""
        if self.target_train != "auto":
            return self.target_train
        finite = [rho for rho in correlations.values() if np.isfinite(rho)]
        return "all" if finite and max(finite) < float(self.freeze_above) else "head"

    def _label_scaling(self, model: LatencyPredictor, features, row: int, latency: np.ndarray) -> tuple[float, float]:
        """(a, b) with label = a * latency_ms + b for the target's fine-tuning labels.

        ``fewshot``: min-max over the k measurements (they span [0, 1]). ``matched``: the affine map
        that gives the k measurements the mean and standard deviation of the initialised model's
        predictions on the same archs, so fine-tuning corrects the ranking instead of first
        rescaling the outputs (the k archs rarely include the extremes a min-max over a device's
        whole training pool sees). Both use the k measurements only; ranking is unaffected by either.
        """
        low, high = float(latency.min()), float(latency.max())
        span = high - low if high > low else 1.0
        if self.target_labels == "matched" and len(latency) >= 2 and np.std(latency) > 0:
            initial = model.predict(features, np.full(len(latency), row))
            if np.std(initial) > 1e-6:
                scale = float(np.std(initial) / np.std(latency))
                return scale, float(np.mean(initial) - scale * np.mean(latency))
        return 1.0 / span, -low / span

    def predict(self, name: str, arch_ids, *, scale: str = "ms") -> np.ndarray:
        """Predicted latency of ``arch_ids`` on a source or target device, in ms (``scale="ms"``,
        rescaled with the device's label scaling) or as the normalised label (``"label"``)."""
        self._check_fitted()
        if scale not in ("ms", "label"):
            raise UnknownNameError("scale", scale, ("ms", "label"))
        ids = np.asarray(arch_ids, dtype=np.int64).reshape(-1)
        features = self.encoder_.transform(ids)
        if name in self.targets_:
            target = self.targets_[name]
            label = target.predictor.predict(features, np.full(len(ids), target.row))
            return label if scale == "label" else (label - target.label_offset) / target.label_scale
        if name in self.source_devices:
            label = self.pretrained_.predict(features, np.full(len(ids), self.source_devices.index(name)))
            return label if scale == "label" else self.source_splits_[name].denormalise(label)
        raise UnknownNameError("device of this predictor", name, self.source_devices + list(self.targets_),
                               "Add a target device with add_device(name, arch_ids, latency_ms) first.")


# --------------------------------------------------------------------------------------------
# the experiments runner's entry point

DEFAULT_OPTIONS: dict[str, object] = {
    "encoding": "vec", "embedding": "table", "predictor": "auto", "gcn_aggregation": "sum", "source_epochs": 250,
    "target_epochs": 50, "source_lr": 4e-4, "target_lr": 1e-3, "target_labels": "fewshot",
    "eq1_correlation": "spearman",
    "target_batch_size": None, "target_train": "auto", "freeze_above": 0.85, "head_layers": 4, "head_width": 200,
    "embedding_dim": 8, "index_order": "sources",
    "batch_size": 128, "source_samples": None, "score_on": "heldout", "hwl_devices": None, "device": "auto",
    "pretrain_dir": None, "progress": None,
}
OPTIONS = tuple(DEFAULT_OPTIONS)


def check_options(options: Mapping[str, object], valid: Sequence[str], method: str) -> None:
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise UnknownNameError(f"{method} option", unknown[0], sorted(valid),
                               f"fit_and_score(method={method!r}) accepts these keyword options only.")


def prepare_trial(*, space: str, train_devices: list[str], test_devices: list[str], samples: int, seed: int,
                  protocol: str = "paper", **options):
    """A `fit_and_score` trial up to pretraining: the validated, unfitted model, each test device's
    (split, few-shot archs) and ``score_on``. Benchmarks that score a trial differently start here,
    so they transfer exactly what the trial does."""
    check_options(options, OPTIONS, METHOD)
    config = {**DEFAULT_OPTIONS, **options}
    score_on = config.pop("score_on")
    if score_on not in SCORE_ON:
        raise UnknownNameError("score_on", score_on, SCORE_ON)
    train_devices, test_devices = list(train_devices), list(test_devices)
    overlap = sorted(set(train_devices) & set(test_devices))
    if overlap:
        raise MultipredictError(f"devices {overlap} are both train and test devices; a test device must be unseen")
    hwl = config.get("hwl_devices")
    if hwl is not None and sorted(set(hwl) & set(test_devices)):
        raise MultipredictError(f"hwl_devices {sorted(set(hwl) & set(test_devices))} are test devices: their latencies "
                                "would leak into the encoding; choose other reference devices")
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise MultipredictError(f"samples={samples!r} is not valid; expected a positive number of few-shot archs")
    model = FewShotLatencyPredictor(space, train_devices, protocol=protocol, seed=seed, pool_devices=test_devices,
                                    **config)
    pool_ids = model.resolve_pool()
    # draw every target's few-shot archs before pretraining, so that a bad budget fails fast
    targets = {}
    for name in test_devices:
        split_ = target_split(protocol, space, name, pool_ids, seed, samples, score_on)
        targets[name] = (split_, few_shot_ids(split_, samples, seed))
    return model, targets, score_on


def fit_and_score(*, space: str, train_devices: list[str], test_devices: list[str], samples: int,
                  seed: int, protocol: str = "paper", **options) -> list[dict]:
    """Pretrain on ``train_devices``, transfer to each test device from ``samples`` few-shot archs,
    score it on the protocol's held-out archs. One dict per test device.

    Options (defaults = the paper's text): encoding (vec|zcp|hwl|zcpvec|hwlvec), embedding
    (table|sample|index), predictor (auto|gcn|mlp), gcn_aggregation (sum|mean), source_epochs (250), target_epochs (50),
    source_lr (4e-4), target_lr (1e-3), target_labels (fewshot|matched), eq1_correlation (spearman|
    pearson_log: how Eq. 1 compares the k measurements with each source device), target_batch_size (None = the
    batch size: full batch for a few samples), target_train (auto|head|all: fine-tune the embedding and
    head with the arch body frozen, as the authors' code does, or every weight; auto = head when the
    closest source device's Eq. 1 correlation >= freeze_above (0.85), else all), head_layers (4),
    head_width (200), embedding_dim (8), index_order (sources|authors: which position an ``index``
    code stands for, the device's among the source devices or in the authors' device list),
    batch_size (128), source_samples (900 NB201 / 4000 FBNet), score_on (heldout|all), hwl_devices
    (default: the train devices), device (auto|cpu|cuda), pretrain_dir (keep / reuse pretrained weights
    there), progress (callable(stage, fraction)).

    ``seconds`` = the device's fine-tuning and scoring plus an equal share of the pretraining
    (``pretrain_seconds``; 0 when ``pretrain_cached``).
    """
    model, targets, score_on = prepare_trial(space=space, train_devices=train_devices, test_devices=test_devices,
                                             samples=samples, seed=seed, protocol=protocol, **options)
    model.fit()
    rows = []
    for j, name in enumerate(test_devices):
        started = time.perf_counter()
        split_, shots = targets[name]
        latency = device_latency(space, name)
        target = model.add_device(name, shots, latency[shots])
        scored = split_.scored_ids(shots)
        prediction = model.predict(name, scored, scale="label")
        spearman, kendall = rank_correlations(prediction, latency[scored])
        del model.targets_[name]  # keep memory flat across many test devices
        rows.append({
            "method": METHOD, "space": space, "device": name, "samples": int(samples), "seed": int(seed),
            "protocol": protocol, "spearman": spearman, "kendall": kendall, "n_eval": int(len(scored)),
            "n_fewshot": int(samples), "n_measured": int(target.n_measured), "pool": model.pool_label_,
            "pool_size": int(len(model.pool_ids_)), "seconds": time.perf_counter() - started,
            "pretrain_seconds": 0.0 if model.pretrain_cached_ else model.pretrain_seconds_,
            "pretrain_cached": bool(model.pretrain_cached_), "encoding": model.encoding, "embedding": model.embedding,
            "predictor": model.body_, "gcn_aggregation": model.gcn_aggregation if model.body_ == "gcn" else None,
            "head_layers": model.head_layers, "head_width": model.head_width,
            "index_order": model.index_order if model.embedding == "index" else None,
            "source_epochs": model.source_epochs, "target_epochs": model.target_epochs,
            "source_lr": float(model.source_lr), "target_lr": float(model.target_lr),
            "target_labels": model.target_labels, "eq1_correlation": model.eq1_correlation,
            "target_train": model.target_train, "fine_tuned": target.fine_tuned,
            "freeze_above": float(model.freeze_above), "target_batch_size": model.target_batch_size,
            "source_samples": int(len(next(iter(model.source_splits_.values())).train_ids)),
            "score_on": score_on, "closest_source": target.closest_source,
            "closest_source_spearman": (target.correlations.get(target.closest_source, float("nan"))
                                        if target.closest_source else float("nan")),
            "hwl_devices": ",".join(model.hwl_devices_) or None,
        })
        if model.progress is not None:
            model.progress(f"transfer {name}", (j + 1) / len(test_devices))
    share = (0.0 if model.pretrain_cached_ else model.pretrain_seconds_) / max(len(rows), 1)
    for row in rows:
        row["seconds"] += share
    return rows


__all__ = ["FewShotLatencyPredictor", "TargetDevice", "fit_and_score", "prepare_trial", "closest_source_device",
           "source_correlations", "resolve_predictor", "clear_pretrain_cache", "OPTIONS", "DEFAULT_OPTIONS"]
